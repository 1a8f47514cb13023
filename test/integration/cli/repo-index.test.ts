import { describe, expect, it } from 'vitest';
import { copyFile, mkdir, readFile, writeFile, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { packPackage } from '../../../catalog/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { craftManifest, craftSwpkg, type CraftEntry } from '../../faults/craft.js';

/** Twelve small real packages, p00..p11, packed by the product. */
async function packages(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < 12; i++) {
    const name = `p${String(i).padStart(2, '0')}`;
    const src = join(dir, `../src-${name}`);
    await mkdir(join(src, 'share'), { recursive: true });
    await writeFile(join(src, 'share', `${name}.txt`), `${name}\n`.repeat(100 + i * 37));
    await packPackage({
      dir: src,
      meta: { name, version: '1.0.0', arch: 'any', abi: 'linux-musl-static', summary: name, license: 'MIT', depends: {} },
      out: join(dir, `${name}.swpkg`),
    });
  }
}

/** The catalog a run wrote, without the fields that name the time it ran. */
async function catalogBody(file: string): Promise<unknown> {
  const env = JSON.parse(await readFile(file, 'utf8')) as { payload: string };
  const {
    version: _v,
    generated: _g,
    expires: _e,
    ...rest
  } = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Record<string, unknown>;
  return rest;
}

const index = (pkgs: string, out: string, jobs: number) =>
  runCli('swpkg', ['repo', 'index', pkgs, '--name', 'main', '--out', out, '--jobs', String(jobs), '--json']);

describe('swpkg repo index --jobs (worker threads, built CLI)', { timeout: 180_000 }, () => {
  it('writes the same catalog with three workers as one package at a time', async () => {
    const d = await tempDir();
    await packages(join(d, 'pkgs'));
    const one = await index(join(d, 'pkgs'), join(d, 'one.json'), 1);
    const three = await index(join(d, 'pkgs'), join(d, 'three.json'), 3);
    expect(one.code, one.stderr).toBe(0);
    expect(three.code, three.stderr).toBe(0);
    expect(three.json.result.packages).toBe(12);
    expect(await catalogBody(join(d, 'three.json'))).toEqual(await catalogBody(join(d, 'one.json')));
  });

  it('refuses the first bad package in name order, whichever worker fails first, and writes nothing', async () => {
    const d = await tempDir();
    await packages(join(d, 'pkgs'));
    // p03: a file whose bytes differ from the manifest's hash (same size). p09: cut short, so its gzip is broken.
    const files: CraftEntry[] = [{ path: 'a', type: 'file', content: 'x' }];
    await writeFile(
      join(d, 'pkgs/p03.swpkg'),
      craftSwpkg({ manifest: craftManifest('p03', '1.0.0', files), entries: [{ ...files[0]!, content: 'y' }] }),
    );
    await truncate(join(d, 'pkgs/p09.swpkg'), Math.floor((await stat(join(d, 'pkgs/p09.swpkg'))).size / 2));
    const before = await treeHash(d);
    for (const jobs of [1, 3]) {
      const r = await index(join(d, 'pkgs'), join(d, 'catalog.json'), jobs);
      expect(r.code, `--jobs ${jobs}: ${r.stderr}`).not.toBe(0);
      expect(r.json.error.code, `--jobs ${jobs}`).toBe('E_HASH_MISMATCH');
      expect(r.json.error.details.path).toBe(join(d, 'pkgs/p03.swpkg'));
      expect(await treeHash(d)).toBe(before);
    }
  });

  it('refuses two files of one name, version and arch with three workers, and writes nothing', async () => {
    const d = await tempDir();
    await packages(join(d, 'pkgs'));
    await copyFile(join(d, 'pkgs/p05.swpkg'), join(d, 'pkgs/p05-again.swpkg'));
    const before = await treeHash(d);
    const r = await index(join(d, 'pkgs'), join(d, 'catalog.json'), 3);
    expect(r.json.error.code).toBe('E_IMMUTABLE');
    expect(await treeHash(d)).toBe(before);
  });

  it('refuses --jobs 0 as a usage error (exit 2) and writes nothing', async () => {
    const d = await tempDir();
    await packages(join(d, 'pkgs'));
    const before = await treeHash(d);
    const r = await index(join(d, 'pkgs'), join(d, 'catalog.json'), 0);
    expect([r.code, r.json.error.code]).toEqual([2, 'E_USAGE']);
    expect(await treeHash(d)).toBe(before);
  });
});
