import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../helpers/http-table-server.js';
import { tempDir } from '../helpers/tmp.js';
import { addMainRepo, pkgBundle, pkgJson, spawnPkg } from '../integration/userland/helpers.js';

/**
 * Two writers at once, as real processes: while one holds the lock (paused
 * at a test hook), a second fails with E_LOCKED naming the holder's pid and
 * command when its wait runs out, or waits and then succeeds; readers never
 * wait.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeAll(async () => {
  await pkgBundle();
}, 120_000);
beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'one', version: '1.0.0' },
      { name: 'two', version: '1.0.0' },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('two writers', () => {
  it('the second fails with E_LOCKED naming the holder, or waits for it; readers do not wait', async () => {
    const pause = join(await tempDir(), 'paused');
    const first = spawnPkg(root, ['install', 'one', '--yes', '--json'], {
      PKG_TEST_PAUSE_AT: 'lock.acquired:1',
      PKG_TEST_PAUSE_FILE: pause,
    });
    await until(() => existsSync(pause) && readFileSync(pause, 'utf8').endsWith('\n'), 30_000);
    const holderPid = Number(readFileSync(pause, 'utf8').trim());

    const second = await spawnPkg(root, ['install', 'two', '--yes', '--json', '--lock-timeout', '0.5']);
    expect(second.code).toBe(6);
    expect(second.json?.error?.code).toBe('E_LOCKED');
    expect(second.json?.error?.details['command']).toContain('install one');
    expect(second.json?.error?.details['pid']).toBe(holderPid);

    const reader = await spawnPkg(root, ['list', '--json']);
    expect(reader.json?.ok).toBe(true);

    const waiting = spawnPkg(root, ['install', 'two', '--yes', '--json', '--lock-timeout', '30']);
    setTimeout(() => void rm(pause, { force: true }), 500);
    const [a, b] = await Promise.all([first, waiting]);
    expect(a.json?.ok, a.stdout).toBe(true);
    expect(b.json?.ok, b.stdout).toBe(true);
    const list = await pkgJson(root, ['list']);
    expect(list.json?.result.map((p: { name: string }) => p.name)).toEqual(['one', 'two']);
  });

  it('a lock left by a killed writer is taken over by the next one', async () => {
    const killed = await spawnPkg(root, ['install', 'one', '--yes'], { PKG_TEST_CRASH_AT: 'lock.acquired:1' });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(root, 'lock'))).toBe(true);
    const next = await spawnPkg(root, ['install', 'one', '--yes', '--json', '--lock-timeout', '0']);
    expect(next.json?.ok, next.stdout).toBe(true);
  });
});
