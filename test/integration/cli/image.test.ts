import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../helpers/run-cli.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

/** The image tools as swpkg commands; booting a real guest is the acceptance suite's (`boot` scenario). */
describe('swpkg image (built CLI)', { timeout: 120_000 }, () => {
  it('lists fetch, bundle, build and boot under the image topic, each with examples', async () => {
    const topic = await runCli('swpkg', ['image', '--help']);
    expect(topic.code).toBe(0);
    for (const c of ['fetch', 'bundle', 'build', 'boot']) expect(topic.stdout).toContain(`image ${c}`);
    const boot = await runCli('swpkg', ['image', 'boot', '--help']);
    expect(boot.stdout).toContain('--exec');
    expect(boot.stdout).toMatch(/EXAMPLES[\s\S]*image boot --exec/);
  });

  it('a bad --port is a usage error (exit 2) before anything starts', async () => {
    const r = await runCli('swpkg', ['image', 'boot', '--port', '80:99999', '--exec', 'true', '--json']);
    expect([r.code, r.json.error.code]).toEqual([2, 'E_USAGE']);
    expect(r.json.error.details).toEqual({ port: '80:99999' });
  });

  it('an artifact folder without a manifest is refused with E_NOT_FOUND, and the folder is left as it was', async () => {
    const d = await tempDir();
    await mkdir(join(d, 'images'));
    await writeFile(join(d, 'images', 'vmlinuz'), 'not a kernel');
    const store = join(d, 'store.img');
    await writeFile(store, '');
    const before = await treeHash(d);
    const r = await runCli('swpkg', ['image', 'boot', '--artifacts', join(d, 'images'), '--store', store, '--exec', 'true', '--json']);
    expect([r.code, r.json.error.code]).toEqual([2, 'E_NOT_FOUND']);
    expect(r.json.error.details.path).toBe(join(d, 'images', 'manifest.json'));
    expect(await treeHash(d)).toBe(before);
  });

  it('system-disk refuses an artifact folder without a manifest (E_NOT_FOUND) and writes no disk', async () => {
    const d = await tempDir();
    await mkdir(join(d, 'images'));
    await writeFile(join(d, 'images', 'vmlinuz'), 'not a kernel');
    const before = await treeHash(d);
    const r = await runCli('swpkg', ['image', 'system-disk', '--artifacts', join(d, 'images'), '--out', join(d, 'sys.img'), '--json']);
    expect([r.code, r.json.error.code], r.stdout).toEqual([2, 'E_NOT_FOUND']);
    expect(existsSync(join(d, 'sys.img'))).toBe(false);
    expect(await treeHash(d)).toBe(before);
  });

  it('build refuses a --stage-repo without its three parts, or with a bad URL, before writing anything (E_USAGE)', async () => {
    for (const v of ['main,http://10.0.2.2:8080/', 'main,ftp://10.0.2.2/,' + 'ab'.repeat(32)]) {
      const d = await tempDir();
      const r = await runCli('swpkg', ['image', 'build', '--out', join(d, 'images'), '--no-apt', '--stage-repo', v, '--json']);
      expect([r.code, r.json.error.code], r.stdout).toEqual([2, 'E_USAGE']);
      expect(existsSync(join(d, 'images'))).toBe(false);
    }
  });

  it('bundle writes the one pkg client build and reports it (--json)', async () => {
    const d = await tempDir();
    const r = await runCli('swpkg', ['image', 'bundle', join(d, 'pkg.mjs'), '--json']);
    expect(r.code).toBe(0);
    expect(r.json.result).toMatchObject({ file: join(d, 'pkg.mjs'), version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(r.json.result.bytes).toBeGreaterThan(10_000);
  });
});
