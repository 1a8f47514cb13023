import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pruneStoreImages } from '../../acceptance/evidence.js';
import { tempDir } from '../../helpers/tmp.js';

describe('evidence store-image pruning', () => {
  it('keeps the newest finished runs and never touches a run still in progress', async () => {
    const base = await tempDir('evidence-');
    const run = async (name: string, finished: boolean): Promise<void> => {
      await mkdir(join(base, name), { recursive: true });
      await writeFile(join(base, name, 'store.img'), 'store');
      if (finished) await writeFile(join(base, name, 'result.json'), '{}');
    };
    // The oldest run is still going (a concurrent --all); three newer ones have finished.
    await run('2026-01-01T00-00-00Z-aarch64', false);
    await run('2026-01-01T01-00-00Z', true);
    await run('2026-01-01T02-00-00Z-aarch64', true);
    await run('2026-01-01T03-00-00Z', true);
    expect(await pruneStoreImages(base, 2)).toEqual(['2026-01-01T01-00-00Z']);
    expect(existsSync(join(base, '2026-01-01T00-00-00Z-aarch64', 'store.img'))).toBe(true);
    expect(existsSync(join(base, '2026-01-01T01-00-00Z', 'result.json'))).toBe(true);
    expect(existsSync(join(base, '2026-01-01T02-00-00Z-aarch64', 'store.img'))).toBe(true);
  });

  it('removes the A/B system disk and its firmware variables with the store, and keeps the newest runs whole', async () => {
    const base = await tempDir('evidence-');
    const disks = ['store.img', 'system.img', 'system.img.vars.fd'];
    for (const name of ['2026-01-01T01-00-00Z', '2026-01-01T02-00-00Z', '2026-01-01T03-00-00Z']) {
      await mkdir(join(base, name), { recursive: true });
      for (const d of disks) await writeFile(join(base, name, d), d);
      await writeFile(join(base, name, 'result.json'), '{}');
    }
    // An older run whose store was pruned by an earlier version still has its system disk.
    await mkdir(join(base, '2026-01-01T00-00-00Z'), { recursive: true });
    await writeFile(join(base, '2026-01-01T00-00-00Z', 'system.img'), 'x');
    await writeFile(join(base, '2026-01-01T00-00-00Z', 'result.json'), '{}');
    expect(await pruneStoreImages(base, 2)).toEqual(['2026-01-01T00-00-00Z', '2026-01-01T01-00-00Z']);
    for (const d of disks) {
      expect(existsSync(join(base, '2026-01-01T00-00-00Z', d))).toBe(false);
      expect(existsSync(join(base, '2026-01-01T01-00-00Z', d))).toBe(false);
      expect(existsSync(join(base, '2026-01-01T03-00-00Z', d))).toBe(true);
    }
    expect(existsSync(join(base, '2026-01-01T01-00-00Z', 'result.json'))).toBe(true);
  });
});
