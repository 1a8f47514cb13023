import { describe, expect, it } from 'vitest';
import { mkdir, writeFile, readdir, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../helpers/run-cli.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { hashedName, publishedPath } from '../../helpers/published.js';
import { startStaticServer } from '../../../repo-server/index.js';
import { craftManifest, craftSwpkg, type CraftEntry } from '../../faults/craft.js';

async function payload(dir: string, text: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'bin/hello'), text, { mode: 0o755 });
}

describe('swpkg end to end (built CLI)', { timeout: 180_000 }, () => {
  it('key generate, pack, inspect, verify, publish, verify-hosted over HTTP', async () => {
    const d = await tempDir();
    const key = await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys'), '--json']);
    expect(key.code).toBe(0);
    expect(key.json.ok).toBe(true);
    expect((await stat(join(d, 'keys/swpkg.key'))).mode & 0o777).toBe(0o600);

    await payload(join(d, 'src'), '#!/bin/sh\necho hello\n');
    await mkdir(join(d, 'pkgs'));
    const pack = await runCli('swpkg', [
      'pack',
      join(d, 'src'),
      '--name',
      'hello',
      '--version',
      '1.0.0',
      '--arch',
      'x86_64',
      '--summary',
      'Says hello',
      '--license',
      'MIT',
      '--depends',
      'libc@*',
      '--key',
      join(d, 'keys/swpkg.key'),
      '--out',
      join(d, 'pkgs/hello.swpkg'),
      '--json',
    ]);
    expect(pack.code, pack.stderr).toBe(0);
    expect(pack.json.result.sha256).toMatch(/^[0-9a-f]{64}$/);

    const inspect = await runCli('swpkg', ['inspect', join(d, 'pkgs/hello.swpkg'), '--json']);
    expect(inspect.json.result.manifest).toMatchObject({ name: 'hello', version: '1.0.0', depends: { libc: '*' } });
    const human = await runCli('swpkg', ['inspect', join(d, 'pkgs/hello.swpkg'), '--files']);
    expect(human.stdout).toContain('bin/hello');

    const verify = await runCli('swpkg', ['verify', join(d, 'pkgs/hello.swpkg'), '--key', join(d, 'keys/swpkg.pub'), '--json']);
    expect(verify.json.result.signature).toBe('verified');

    const pub = await runCli('swpkg', [
      'repo',
      'publish',
      join(d, 'pkgs'),
      '--key',
      join(d, 'keys/swpkg.key'),
      '--out',
      join(d, 'web'),
      '--name',
      'main',
      // hello depends on libc, which this repository does not carry.
      '--allow-unmet-dependencies',
      '--json',
    ]);
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.json.warnings).toEqual([expect.stringContaining('requires libc@*')]);
    expect(pub.json.result.packages[0].path).toMatch(hashedName('hello-1.0.0-x86_64'));

    const server = await startStaticServer({ root: join(d, 'web') });
    try {
      const vh = await runCli('swpkg', ['repo', 'verify-hosted', server.url, '--fingerprint', pub.json.result.rootFingerprint]);
      expect(vh.code, vh.stdout + vh.stderr).toBe(0);
      expect(vh.stdout).toMatch(/PASS {2}catalog signature and freshness/);
      expect(vh.stdout).not.toContain('FAIL');
    } finally {
      await server.close();
    }
  });

  it('repo index + repo sign produce a catalog equivalent to publish', async () => {
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    await payload(join(d, 'src'), 'x\n');
    await mkdir(join(d, 'pkgs'));
    await runCli('swpkg', [
      'pack',
      join(d, 'src'),
      '--name',
      'x',
      '--version',
      '0.1.0',
      '--arch',
      'any',
      '--summary',
      's',
      '--license',
      'MIT',
      '--out',
      join(d, 'pkgs/x.swpkg'),
    ]);
    const idx = await runCli('swpkg', ['repo', 'index', join(d, 'pkgs'), '--name', 'main', '--out', join(d, 'catalog.json'), '--json']);
    expect(idx.json.result.packages).toBe(1);
    const sign = await runCli('swpkg', ['repo', 'sign', join(d, 'catalog.json'), '--key', join(d, 'keys/swpkg.key'), '--json']);
    expect(sign.json.result.signatures).toBe(1);
    expect(JSON.parse(await readFile(join(d, 'catalog.json'), 'utf8')).signatures).toHaveLength(1);
  });

  it('bad input: clear error, documented exit code, nothing written', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'), 'x\n');
    const before = await treeHash(d);
    const badVersion = await runCli('swpkg', [
      'pack',
      join(d, 'src'),
      '--name',
      'x',
      '--version',
      '1.0',
      '--arch',
      'x86_64',
      '--summary',
      's',
      '--license',
      'MIT',
      '--out',
      join(d, 'x.swpkg'),
      '--json',
    ]);
    expect(badVersion.code).toBe(2);
    expect(badVersion.json).toMatchObject({ ok: false, error: { code: 'E_INVALID_VERSION', details: { field: 'version' } } });
    const unknownFlag = await runCli('swpkg', ['pack', join(d, 'src'), '--bogus']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain('E_USAGE');
    await writeFile(join(d, 'garbage.swpkg'), 'garbage');
    const afterGarbage = await treeHash(d);
    const garbage = await runCli('swpkg', ['verify', join(d, 'garbage.swpkg')]);
    expect(garbage.code).toBe(3);
    expect(garbage.stderr).toContain('E_CORRUPT');
    expect(await treeHash(d)).toBe(afterGarbage);
    expect(before).not.toBe(afterGarbage);
    const missingKey = await runCli('swpkg', ['repo', 'publish', join(d, 'src'), '--key', join(d, 'nope.key'), '--out', join(d, 'web')]);
    expect(missingKey.code).toBe(2);
    expect(await readdir(d)).not.toContain('web');
  });

  it('pack --health-check declares checks; a bad one (zero timeout, path out of the package) is refused and writes nothing', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'), '#!/bin/sh\nexit 0\n');
    const base = ['pack', join(d, 'src'), '--name', 'svc', '--version', '1.0.0', '--arch', 'x86_64', '--summary', 's', '--license', 'MIT'];
    const before = await treeHash(d);
    for (const [spec, code] of [
      ['up:bin/hello:0', 'E_INVALID_MANIFEST'],
      ['up:../bin/hello:5', 'E_UNSAFE_PATH'],
      ['up:/bin/sh', 'E_UNSAFE_PATH'],
      ['up:bin/hello:5:wanted', 'E_INVALID_MANIFEST'],
    ] as const) {
      const r = await runCli('swpkg', [...base, '--health-check', spec, '--out', join(d, 'svc.swpkg'), '--json']);
      // A path out of the package is unsafe wherever it comes from (exit 3, as for a setuid file); the rest is usage.
      expect(r.code, spec).toBe(code === 'E_UNSAFE_PATH' ? 3 : 2);
      expect(r.json.error.code, spec).toBe(code);
    }
    expect(await treeHash(d)).toBe(before);
    const ok = await runCli('swpkg', [...base, '--health-check', 'up:bin/hello:5:advisory', '--out', join(d, 'svc.swpkg'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const inspect = await runCli('swpkg', ['inspect', join(d, 'svc.swpkg'), '--json']);
    expect(inspect.json.result.manifest.health).toEqual([{ name: 'up', command: 'bin/hello', timeout: 5, level: 'advisory' }]);
  });

  it('a package with a hostile manifest is a verification refusal (exit 3), for verify and for publish', async () => {
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    await mkdir(join(d, 'pkgs'));
    const files: CraftEntry[] = [{ path: 'a', type: 'file', content: 'x\n' }];
    const manifest = craftManifest('dup', '1.0.0', files);
    (manifest['files'] as unknown[]).push((manifest['files'] as unknown[])[0]);
    await writeFile(join(d, 'pkgs/dup.swpkg'), craftSwpkg({ manifest, entries: files }));
    const before = await treeHash(d);
    const verify = await runCli('swpkg', ['verify', join(d, 'pkgs/dup.swpkg'), '--json']);
    expect(verify.code).toBe(3);
    expect(verify.json.error.code).toBe('E_BAD_MANIFEST');
    const publish = await runCli('swpkg', [
      'repo',
      'publish',
      join(d, 'pkgs'),
      '--key',
      join(d, 'keys/swpkg.key'),
      '--out',
      join(d, 'web'),
    ]);
    expect(publish.code).toBe(3);
    expect(publish.stderr).toContain('E_BAD_MANIFEST');
    expect(await treeHash(d)).toBe(before);
  });

  it('verify-hosted exits 3 and names the failing check when a package is missing', async () => {
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    await payload(join(d, 'src'), 'x\n');
    await mkdir(join(d, 'pkgs'));
    await runCli('swpkg', [
      'pack',
      join(d, 'src'),
      '--name',
      'x',
      '--version',
      '0.1.0',
      '--arch',
      'x86_64',
      '--summary',
      's',
      '--license',
      'MIT',
      '--out',
      join(d, 'pkgs/x.swpkg'),
    ]);
    await runCli('swpkg', ['repo', 'publish', join(d, 'pkgs'), '--key', join(d, 'keys/swpkg.key'), '--out', join(d, 'web')]);
    const { rm } = await import('node:fs/promises');
    const x = await publishedPath(join(d, 'web'), 'x-0.1.0-x86_64');
    await rm(join(d, 'web', x));
    const vh = await runCli('swpkg', ['repo', 'verify-hosted', join(d, 'web')]);
    expect(vh.code).toBe(3);
    expect(vh.stdout).toContain(`FAIL  ${x}: `);
    expect(vh.stdout).toMatch(/FAIL {2}packages\/x-0\.1\.0-x86_64\.[0-9a-f]{64}\.swpkg: .*\[E_FETCH\]$/m);
    const js = await runCli('swpkg', ['repo', 'verify-hosted', join(d, 'web'), '--json']);
    expect(js.code).toBe(3);
    expect(js.json.error.code).toBe('E_HOSTED_CHECK');
    // Every FAIL row carries its code under --json too, so a script branches on codes, not wording.
    const failed = (js.json.error.details.checks as { name: string; ok: boolean; code?: string }[]).filter((c) => !c.ok);
    expect(failed.map((c) => [c.name, c.code])).toEqual([[x, 'E_FETCH']]);
  });
});
