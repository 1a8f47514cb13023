/**
 * Rough edges a new user hits with pkg (issue 11), each fed through the CLI against a loopback
 * repository: what is printed, what the exit code is, and that nothing changed when it should not.
 */
import { randomBytes } from 'node:crypto';
import { chmod, readFile, readlink, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../userland/cli/run.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { addMainRepo, pkg, pkgJson } from './helpers.js';

/**
 * pkg in this process on a terminal: stdin, stdout and stderr say they are TTYs. `answer` is typed
 * once `Proceed?` is asked; `whileAsked` runs while the question waits.
 */
async function pkgOnTerminal(
  root: string,
  args: string[],
  answer: string,
  whileAsked: () => Promise<void> = async () => {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const tty = <T extends object>(s: T): T & { isTTY: true; columns: number } => Object.assign(s, { isTTY: true as const, columns: 100 });
  const stdout = tty(new PassThrough());
  const stderr = tty(new PassThrough());
  const stdin = tty(new PassThrough());
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  let asked: () => void = () => {};
  const question = new Promise<void>((res) => (asked = res));
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
    if (err.includes('Proceed? [y/N]')) asked();
  });
  const running = runCli(['--root', root, ...args], { stdout, stderr, stdin, env: { PKG_STALL_TIMEOUT: '2', PKG_LOCK_TIMEOUT: '5' } });
  void question.then(async () => {
    await whileAsked();
    stdin.end(`${answer}\n`);
  });
  const code = await running;
  return { code, stdout: out, stderr: err };
}

/** A hostile summary: clears the screen, retitles the window, hides text with NUL and CR, and a C1 CSI. */
const EVIL_SUMMARY = 'nice\x1b[2J\x1b]0;owned\x07 tool\x00\rhidden \x9b31m';
const EVIL_SHOWN = 'nice\\e[2J\\e]0;owned\\x07 tool\\0\\rhidden \\x9b31m';

let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      // Incompressible, so the archive spans several read chunks.
      { name: 'big', version: '1.0.0', files: { 'share/big.bin': randomBytes(3 * 1024 * 1024) } },
      { name: 'hello', version: '1.0.0', summary: 'Says hello', files: { 'bin/hello': '#!/bin/sh\necho hello\n' } },
      { name: 'evil', version: '1.0.0', summary: EVIL_SUMMARY, files: { 'bin/evil': '#!/bin/sh\n' } },
      { name: 'greeter', version: '1.0.0', depends: { hello: '*' }, files: { 'bin/greeter': '#!/bin/sh\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-edges-');
  await addMainRepo(root, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

describe('pkg progress', () => {
  it('extraction counts bytes and moves through one big package (2)', async () => {
    const r = await pkg(root, ['install', 'big', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('verifying and extracting: '));
    const pcts = lines.map((l) => Number(/: (\d+)%/.exec(l)?.[1]));
    expect(pcts.at(-1)).toBe(100);
    expect(pcts.some((p) => p > 0 && p < 100)).toBe(true);
    for (const l of lines) expect(l).toMatch(/\((\d+(\.\d)?) (B|KiB|MiB) \/ 3\.\d MiB\)$/);
  });
});

describe('terminal injection (issue 10)', () => {
  it('names and summaries from a catalog are escaped on the terminal and exact under --json', async () => {
    await pkg(root, ['update']);
    const search = await pkg(root, ['search', 'nice']);
    expect(search.code, search.stderr).toBe(0);
    expect(search.stdout).toContain(EVIL_SHOWN);
    expect(search.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    const info = await pkg(root, ['info', 'evil']);
    expect(info.stdout).toContain(EVIL_SHOWN);
    expect(info.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    const json = await pkg(root, ['search', 'nice', '--json']);
    expect(json.json?.result[0].summary).toBe(EVIL_SUMMARY);
  });
});

describe('pkg changes are shown, asked and never print twice', () => {
  async function twoGenerations(): Promise<void> {
    expect((await pkg(root, ['install', 'hello', '--yes'])).code).toBe(0);
    expect((await pkg(root, ['install', 'evil', '--yes'])).code).toBe(0);
  }

  it('repo add, update, rollback and gc say their outcome once, on stdout (3)', async () => {
    const other = await tempDir('pkg-edges-');
    const add = await pkgOnTerminal(other, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint], 'y');
    expect([add.code, add.stderr]).toEqual([0, '']);
    expect(add.stdout.match(/main {2}http/g)).toHaveLength(1);
    const up = await pkgOnTerminal(other, ['update'], 'y');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.match(/catalog v\d+ accepted/g)).toHaveLength(1);
    expect(up.stderr).not.toMatch(/catalog v|accepted/);
    await pkg(other, ['install', 'hello', '--yes']);
    await pkg(other, ['install', 'evil', '--yes']);
    const rb = await pkgOnTerminal(other, ['rollback', '--yes'], 'y');
    expect(rb.stdout.match(/is now current/g)).toHaveLength(1);
    expect(rb.stderr).not.toMatch(/generation/i);
    const gc = await pkgOnTerminal(other, ['gc', '--keep', '0', '--yes'], 'y');
    expect(gc.stdout.match(/Removed 1 generation/g)).toHaveLength(1);
    expect(gc.stderr).not.toMatch(/removed/i);
  });

  it('rollback needs --yes without a terminal and has --dry-run; both change nothing (4)', async () => {
    await twoGenerations();
    const before = await treeHash(root);
    const refused = await pkgJson(root, ['rollback']);
    expect([refused.code, refused.json?.error?.code]).toEqual([2, 'E_CONFIRM']);
    const dry = await pkgJson(root, ['rollback', '--dry-run']);
    expect(dry.json?.result).toMatchObject({ from: 2, to: 1, changed: true, dryRun: true });
    expect(await treeHash(root)).toBe(before);
    expect((await pkgJson(root, ['rollback', '--yes'])).json?.result).toMatchObject({ from: 2, to: 1, changed: true });
    expect(await readlink(join(root, 'current'))).toMatch(/1$/);
  });

  it('gc --keep N keeps N generations besides the current one, shows its list and asks (5)', async () => {
    await twoGenerations();
    expect((await pkg(root, ['install', 'big', '--yes'])).code).toBe(0);
    const before = await treeHash(root);
    const refused = await pkgJson(root, ['gc', '--keep', '1']);
    expect(refused.json?.error?.code).toBe('E_CONFIRM');
    const dry = await pkg(root, ['gc', '--keep', '1', '--dry-run']);
    expect(dry.stdout).toMatch(/^Plan: delete generations 1 \(keeping 2, 3\),$/m);
    expect(dry.stdout).toContain('Dry run: nothing was changed.');
    expect(await treeHash(root)).toBe(before);
    const done = await pkgJson(root, ['gc', '--keep', '1', '--yes']);
    expect(done.json?.result).toMatchObject({ removedGenerations: [1], keptGenerations: [2, 3] });
    const gens = await pkgJson(root, ['generations']);
    expect(gens.json?.result.map((g: { number: number }) => g.number)).toEqual([2, 3]);
  });

  it('answering no at the prompt changes nothing and is not an error (16)', async () => {
    await twoGenerations();
    const before = await treeHash(root);
    for (const args of [['install', 'big'], ['rollback'], ['gc', '--keep', '0'], ['remove', 'hello']]) {
      const r = await pkgOnTerminal(root, args, 'n');
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('Nothing was changed.');
      expect(r.stderr).not.toContain('error');
      expect(await treeHash(root)).toBe(before);
    }
  });

  it('another pkg can change the root while a prompt waits; the stale answer then changes nothing (17)', async () => {
    let other: Awaited<ReturnType<typeof pkg>> | undefined;
    const r = await pkgOnTerminal(root, ['install', 'big'], 'y', async () => {
      other = await pkg(root, ['install', 'hello', '--yes']);
    });
    expect(other?.code, other?.stderr).toBe(0);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error E_CONFIRM: the root changed while you were answering/);
    const list = await pkgJson(root, ['list']);
    expect(list.json?.result.map((p: { name: string }) => p.name)).toEqual(['hello']);
  });
});

describe('pkg says what went wrong and what was meant', () => {
  it('did you mean, for commands, flags and package names (8)', async () => {
    const cmd = await pkgJson(root, ['instal', 'hello']);
    expect(cmd.json?.error).toMatchObject({ code: 'E_USAGE', hint: expect.stringContaining('`install`') });
    const flag = await pkgJson(root, ['install', 'hello', '--yse']);
    expect(flag.json?.error).toMatchObject({ code: 'E_USAGE', hint: expect.stringContaining('`--yes`') });
    await pkg(root, ['update']);
    const info = await pkgJson(root, ['info', 'helo']);
    expect(info.json?.error).toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringContaining('did you mean "hello"') });
  });

  it('with no repository, search and install say so and how to add one; nothing is created (9)', async () => {
    const empty = await tempDir('pkg-edges-');
    const before = await treeHash(empty);
    for (const args of [
      ['search', 'hello'],
      ['install', 'hello', '--yes'],
    ]) {
      const r = await pkgJson(empty, args);
      expect([r.code, r.json?.error?.code], args.join(' ')).toEqual([2, 'E_NOT_FOUND']);
      expect(r.json?.error?.hint).toContain('pkg repo add');
    }
    expect(await treeHash(empty)).toBe(before);
  });

  it('a root that does not exist is named, not read as empty (9)', async () => {
    const missing = join(await tempDir('pkg-edges-'), 'typo');
    const r = await pkg(missing, ['list']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: .*typo does not exist/m);
    const j = await pkgJson(missing, ['list']);
    expect(j.json?.warnings).toEqual([expect.stringContaining('does not exist')]);
  });

  it('upgrade of a name nothing offers does not suggest installing it; --root without a value is an error (18)', async () => {
    await pkg(root, ['update']);
    await pkg(root, ['install', 'hello', '--yes']);
    const nosuch = await pkgJson(root, ['upgrade', 'nosuch', '--yes']);
    expect(nosuch.json?.error?.code).toBe('E_NOT_INSTALLED');
    expect(nosuch.json?.error?.hint).not.toContain('pkg install nosuch');
    const offered = await pkgJson(root, ['upgrade', 'big', '--yes']);
    expect(offered.json?.error?.hint).toContain('pkg install big');
    const out = new PassThrough();
    const err = new PassThrough();
    let stderr = '';
    let stdout = '';
    err.on('data', (c: Buffer) => (stderr += c.toString()));
    out.on('data', (c: Buffer) => (stdout += c.toString()));
    const stdin = new PassThrough();
    stdin.end();
    const code = await runCli(['--root'], { stdout: out, stderr: err, stdin, env: {} });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^error E_USAGE: --root needs a value/);
    expect(stdout).toBe('');
  });

  it('remove --cascade says why it takes a dependent along, not "requested" (18)', async () => {
    await pkg(root, ['update']);
    await pkg(root, ['install', 'greeter', '--yes']);
    await pkg(root, ['install', 'hello', '--yes']);
    const r = await pkgJson(root, ['remove', 'hello', '--cascade', '--dry-run']);
    expect(r.json?.result.plan.lines.map((l: { name: string; reason: string }) => `${l.name}: ${l.reason}`)).toEqual([
      'greeter: needs hello (--cascade)',
      'hello: requested',
    ]);
  });

  it('doctor advises --reinstall, whose plan downloads again and whose run repairs the store (6)', async () => {
    await pkg(root, ['update']);
    await pkg(root, ['install', 'hello', '--yes']);
    const target = await realpath(join(root, 'current/bin/hello'));
    await chmod(target, 0o755);
    await writeFile(target, 'changed\n');
    const sick = await pkgJson(root, ['doctor']);
    expect(sick.json?.error?.hint).toContain('--reinstall');
    expect((await pkgJson(root, ['install', 'hello', '--yes'])).json?.result.plan.empty).toBe(true);
    const dry = await pkgJson(root, ['install', 'hello', '--reinstall', '--dry-run']);
    const size = repo.packages.get('hello@1.0.0')!.size;
    expect(dry.json?.result.plan).toMatchObject({
      downloadCount: 1,
      downloadBytes: size,
      lines: [{ action: 'reinstall', name: 'hello', from: '1.0.0', to: '1.0.0', download: size }],
    });
    const fixed = await pkgJson(root, ['install', 'hello', '--reinstall', '--yes']);
    expect(fixed.json?.ok, fixed.stdout).toBe(true);
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
    expect(await readFile(join(root, 'current/bin/hello'), 'utf8')).toContain('echo hello');
    const notInstalled = await pkgJson(root, ['install', 'big', '--reinstall', '--yes']);
    expect(notInstalled.json?.error?.code).toBe('E_NOT_INSTALLED');
  });
});
