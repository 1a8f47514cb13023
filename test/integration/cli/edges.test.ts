/**
 * Rough edges a new user hits with swpkg and swport (issue 11), through the built binaries: what
 * is printed, the code and exit status, and that nothing was written when the input was refused.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../../helpers/run-cli.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

async function payload(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  return dir;
}

function packArgs(src: string, out: string, name: string, extra: string[] = []): string[] {
  return [
    'pack',
    src,
    '--name',
    name,
    '--version',
    '1.0.0',
    '--arch',
    'x86_64',
    '--summary',
    `${name} tool`,
    '--license',
    'MIT',
    '--out',
    out,
    ...extra,
  ];
}

/** Runs a built CLI whose reader stops after the first chunk, as `| head -2` does. */
function runIntoClosedPipe(bin: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(resolve(REPO_ROOT, 'bin', bin), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', rej);
    child.on('close', (code) => res({ code, stderr }));
  });
}

describe('swpkg and swport edges (built CLI)', { timeout: 180_000 }, () => {
  it('-q prints nothing for key generate, pack and publish; the work is done (1)', async () => {
    const d = await tempDir();
    const key = await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys'), '-q']);
    expect([key.code, key.stdout, key.stderr]).toEqual([0, '', '']);
    await mkdir(join(d, 'pkgs'));
    const pack = await runCli('swpkg', packArgs(await payload(join(d, 'src')), join(d, 'pkgs/tool.swpkg'), 'tool', ['-q']));
    expect([pack.code, pack.stdout, pack.stderr]).toEqual([0, '', '']);
    const pub = await runCli('swpkg', [
      'repo',
      'publish',
      join(d, 'pkgs'),
      '--key',
      join(d, 'keys/swpkg.key'),
      '--out',
      join(d, 'web'),
      '--quiet',
    ]);
    expect([pub.code, pub.stdout, pub.stderr]).toEqual([0, '', '']);
    expect(await readdir(join(d, 'web'))).toContain('catalog.json');
  });

  it('publish refuses dependencies nothing in the folder meets, with the list; the flag allows it (12)', async () => {
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    await mkdir(join(d, 'pkgs'));
    const src = await payload(join(d, 'src'));
    await runCli('swpkg', packArgs(src, join(d, 'pkgs/app.swpkg'), 'app', ['--depends', 'libgreet@^1.0,zlib']));
    await runCli('swpkg', packArgs(src, join(d, 'pkgs/zlib.swpkg'), 'zlib'));
    const before = await treeHash(d);
    const args = ['repo', 'publish', join(d, 'pkgs'), '--key', join(d, 'keys/swpkg.key'), '--out', join(d, 'web')];
    const refused = await runCli('swpkg', [...args, '--json']);
    expect(refused.code).toBe(4);
    expect(refused.json.error).toMatchObject({
      code: 'E_RESOLVE',
      details: { unmet: [{ package: 'app@1.0.0', requires: 'libgreet@^1.0' }] },
    });
    expect(await treeHash(d)).toBe(before);
    const human = await runCli('swpkg', args);
    expect(human.stderr).toContain('app@1.0.0 (x86_64) requires libgreet@^1.0');
    const allowed = await runCli('swpkg', [...args, '--allow-unmet-dependencies']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr).toMatch(/warning: app@1\.0\.0 \(x86_64\) requires libgreet@\^1\.0/);
  });

  it('a missing file is E_NOT_FOUND naming the path, for a flag and an argument (10, 15)', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const before = await treeHash(d);
    const key = await runCli('swpkg', [
      'repo',
      'publish',
      join(d, 'src'),
      '--key',
      join(d, 'missing.key'),
      '--out',
      join(d, 'web'),
      '--json',
    ]);
    expect(key.code).toBe(2);
    expect(key.json.error).toMatchObject({ code: 'E_NOT_FOUND', details: { path: join(d, 'missing.key') } });
    expect(key.json.error.message).toContain('--key');
    const human = await runCli('swpkg', ['repo', 'publish', join(d, 'src'), '--key', join(d, 'missing.key'), '--out', join(d, 'web')]);
    expect(human.stderr).toMatch(/^error E_NOT_FOUND: --key: .*missing\.key\n/);
    const arg = await runCli('swpkg', ['verify', join(d, 'nope.swpkg'), '--json']);
    expect(arg.json.error).toMatchObject({ code: 'E_NOT_FOUND', details: { path: join(d, 'nope.swpkg') } });
    expect(await treeHash(d)).toBe(before);
  });

  it('pack names every missing field at once, marks them in help, and bad metadata has a fix line (11)', async () => {
    const d = await tempDir();
    const src = await payload(join(d, 'src'));
    const before = await treeHash(d);
    const missing = await runCli('swpkg', ['pack', src, '--name', 'x', '--out', join(d, 'x.swpkg'), '--json']);
    expect(missing.json.error.code).toBe('E_USAGE');
    for (const f of ['--version', '--arch', '--summary', '--license']) expect(missing.json.error.message).toContain(f);
    const help = await runCli('swpkg', ['pack', '--help']);
    for (const f of ['name', 'version', 'arch', 'summary', 'license']) {
      expect(help.stdout.replace(/\s+/g, ' ')).toMatch(new RegExp(`--${f}=\\S+ \\(required unless in --manifest\\)`));
    }
    const badVersion = await runCli(
      'swpkg',
      packArgs(src, join(d, 'x.swpkg'), 'x').map((a) => (a === '1.0.0' ? '1.0' : a)),
    );
    expect(badVersion.stderr).toMatch(/^error E_INVALID_VERSION: .*\n {2}fix: .*--version/);
    const badName = await runCli('swpkg', packArgs(src, join(d, 'x.swpkg'), 'Bad Name', ['--json']));
    expect(badName.json.error).toMatchObject({ code: 'E_INVALID_MANIFEST', hint: expect.stringContaining('--name') });
    expect(await treeHash(d)).toBe(before);
  });

  it('help into a closed pipe exits 0 without a top-level-await warning (13)', async () => {
    for (const bin of ['swpkg', 'swport']) {
      const r = await runIntoClosedPipe(bin, ['--help']);
      expect(r.stderr).not.toContain('unsettled');
      expect(r.code).toBe(0);
    }
  });

  it('each tool names itself in --version and help (14)', async () => {
    const sp = await runCli('swport', ['--version']);
    expect(sp.stdout).toMatch(/^swport\/\d+\.\d+\.\d+ /);
    const sk = await runCli('swpkg', ['--version']);
    expect(sk.stdout).toMatch(/^swpkg\/\d+\.\d+\.\d+ /);
    const help = await runCli('swport', ['--help']);
    expect(help.stdout).toMatch(/VERSION\n {2}swport\//);
    expect(help.stdout).not.toContain('swpkg/');
  });

  it('a hostile summary is escaped by swpkg inspect and exact under --json (issue 10)', async () => {
    const d = await tempDir();
    const src = await payload(join(d, 'src'));
    const evil = 'ok\x1b]0;owned\x07\x1b[2J';
    const args = packArgs(src, join(d, 'evil.swpkg'), 'evil').map((a) => (a === 'evil tool' ? evil : a));
    expect((await runCli('swpkg', args)).code).toBe(0);
    const human = await runCli('swpkg', ['inspect', join(d, 'evil.swpkg')]);
    expect(human.stdout).toContain('ok\\e]0;owned\\x07\\e[2J');
    expect(human.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    const json = await runCli('swpkg', ['inspect', join(d, 'evil.swpkg'), '--json']);
    expect(json.json.result.manifest.summary).toBe(evil);
  });

  it('rotate-root points index.html and hosted-repo.json at the new root; verify-hosted says when nothing was pinned (18)', async () => {
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'k1')]);
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'k2')]);
    await mkdir(join(d, 'pkgs'));
    await runCli('swpkg', packArgs(await payload(join(d, 'src')), join(d, 'pkgs/tool.swpkg'), 'tool'));
    const pub = await runCli('swpkg', [
      'repo',
      'publish',
      join(d, 'pkgs'),
      '--key',
      join(d, 'k1/swpkg.key'),
      '--out',
      join(d, 'web'),
      '--json',
    ]);
    expect(pub.code, pub.stderr).toBe(0);
    const rot = await runCli('swpkg', [
      'repo',
      'rotate-root',
      join(d, 'web'),
      '--old-key',
      join(d, 'k1/swpkg.key'),
      '--new-key',
      join(d, 'k2/swpkg.key'),
      '--json',
    ]);
    expect(rot.code, rot.stderr).toBe(0);
    const fp2 = rot.json.result.fingerprint as string;
    expect(fp2).not.toBe(pub.json.result.rootFingerprint);
    const html = await readFile(join(d, 'web/index.html'), 'utf8');
    expect(html).toContain(fp2);
    expect(html).not.toContain(pub.json.result.rootFingerprint);
    expect(JSON.parse(await readFile(join(d, 'web/hosted-repo.json'), 'utf8'))).toMatchObject({ rootFingerprint: fp2, rootVersion: 2 });

    const unpinned = await runCli('swpkg', ['repo', 'verify-hosted', join(d, 'web'), '--json']);
    expect(unpinned.code, unpinned.stdout).toBe(0);
    expect(unpinned.json.warnings).toEqual(expect.arrayContaining([expect.stringContaining('nothing was pinned')]));
    const pinned = await runCli('swpkg', ['repo', 'verify-hosted', join(d, 'web'), '--fingerprint', fp2, '--json']);
    expect(pinned.code, pinned.stdout).toBe(0);
    expect(pinned.json.warnings.join()).not.toContain('nothing was pinned');
  });

  it('swport catalog list keeps its columns aligned past long licenses (18)', async () => {
    const r = await runCli('swport', ['catalog', 'list']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const col = lines[0]!.indexOf('DEPENDS');
    expect(lines.some((l) => / AND | OR | WITH /.test(l))).toBe(true);
    for (const l of lines.slice(1)) expect(l.slice(col - 2, col), l).toBe('  ');
    for (const l of lines.slice(1)) expect(l[col], l).not.toBe(' ');
  });

  it('an unknown command gets a did-you-mean (8)', async () => {
    const near = await runCli('swpkg', ['repo', 'pubish']);
    expect(near.code).toBe(2);
    expect(near.stderr).toMatch(/^error E_USAGE: unknown command `swpkg repo pubish`\n {2}fix: did you mean `swpkg repo publish`\?/);
    expect((await runCli('swpkg', ['pubish'])).stderr).toContain('`swpkg repo publish`');
    expect((await runCli('swport', ['recipe', 'bild'])).stderr).toContain('`swport recipe build`');
    expect((await runCli('swpkg', ['zzzzzz'])).stderr).not.toContain('did you mean');
  });
});
