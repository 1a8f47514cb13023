import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SwpkgError } from '../../../catalog/index.js';
import { findEmulator, normalizeTree, parseElf, readArchiveMembers, readElf, runCommand } from '../../../ports/index.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

/**
 * The ELF checks against real binaries compiled here: the host's gcc (glibc,
 * dynamic), musl-gcc (x86_64, static) and the aarch64 musl cross compiler
 * (static and dynamic), plus an object file and an archive of the target.
 */
let dir: string;
const bin: Record<string, string> = {};

async function compile(name: string, cc: string, args: string[]): Promise<void> {
  const out = join(dir, name);
  const r = await runCommand(cc, [...args, '-o', out, join(dir, 'hello.c')], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${cc} failed: ${r.output}`);
  bin[name] = out;
}

beforeAll(async () => {
  // Shared by every test (tempDir folders are removed after each one).
  dir = await mkdtemp(join(tmpdir(), 'swport-elf-'));
  await writeFile(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n');
  await compile('x86-dynamic', 'gcc', []);
  await compile('x86-static', 'musl-gcc', ['-static']);
  await compile('arm-static', 'aarch64-linux-musl-gcc', ['-static']);
  await compile('arm-dynamic', 'aarch64-linux-musl-gcc', []);
  await compile('arm.o', 'aarch64-linux-musl-gcc', ['-c']);
  const ar = await runCommand('aarch64-linux-gnu-ar', ['rcD', join(dir, 'libarm.a'), bin['arm.o']!], { timeoutMs: 30_000 });
  if (ar.code !== 0) throw new Error(ar.output);
  bin['libarm.a'] = join(dir, 'libarm.a');
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('reading ELF headers', () => {
  it('names the machine and the linking of real binaries', async () => {
    expect(await readElf(bin['x86-static']!)).toMatchObject({ bits: 64, machine: 62, type: 'executable', interpreter: false, needed: 0 });
    expect(await readElf(bin['x86-dynamic']!)).toMatchObject({ machine: 62, interpreter: true });
    expect((await readElf(bin['x86-dynamic']!))!.needed).toBeGreaterThan(0);
    expect(await readElf(bin['arm-static']!)).toMatchObject({ bits: 64, machine: 183, type: 'executable', interpreter: false, needed: 0 });
    expect(await readElf(bin['arm-dynamic']!)).toMatchObject({ machine: 183, interpreter: true });
    expect(await readElf(bin['arm.o']!)).toMatchObject({ machine: 183, type: 'relocatable' });
    expect(await readElf(join(dir, 'hello.c'))).toBeUndefined();
  });

  it('lists the ELF members of a static archive', async () => {
    const members = await readArchiveMembers(bin['libarm.a']!);
    expect(members?.map((m) => [m.name, m.elf.machine])).toEqual([['arm.o/', 183]]);
    expect(await readArchiveMembers(bin['arm.o']!)).toBeUndefined();
  });

  it('gives up on truncated headers instead of reading past them', async () => {
    const bytes = await readFile(bin['arm-static']!);
    // The ELF header alone: program headers are announced but missing.
    const head = bytes.subarray(0, 64);
    const read = (pos: number, len: number): Promise<Buffer> => Promise.resolve(head.subarray(pos, pos + len));
    expect(await parseElf(read)).toBeUndefined();
    expect(await parseElf(() => Promise.resolve(Buffer.from('\x7fELF')))).toBeUndefined();
  });
});

describe('packaging checks the ELF machine and static linking', () => {
  const aarch64 = { arch: 'aarch64', elfMachine: 183, static: true, strip: 'aarch64-linux-gnu-strip' };

  async function treeWith(files: Record<string, string>): Promise<string> {
    const t = await tempDir();
    for (const [rel, from] of Object.entries(files)) {
      await mkdir(join(t, rel, '..'), { recursive: true });
      await copyFile(from, join(t, rel));
    }
    return t;
  }

  async function refused(t: string, rules: Parameters<typeof normalizeTree>[3]): Promise<SwpkgError> {
    const before = await treeHash(t);
    try {
      await normalizeTree(t, [], 'demo', rules);
    } catch (e) {
      expect(e).toBeInstanceOf(SwpkgError);
      // Checks run before strip: the refused tree is as the build left it.
      expect(await treeHash(t)).toBe(before);
      return e as SwpkgError;
    }
    throw new Error('expected a refusal');
  }

  it('accepts and strips a static aarch64 tree with the target strip', async () => {
    const t = await treeWith({ 'bin/hello': bin['arm-static']!, 'lib/libarm.a': bin['libarm.a']! });
    const r = await normalizeTree(t, [], 'demo', aarch64);
    expect(r.stripped).toEqual(['bin/hello', 'lib/libarm.a']);
    expect(await readElf(join(t, 'bin/hello'))).toMatchObject({ machine: 183 });
  });

  it('refuses a host binary in an aarch64 package (a cross build that used the host compiler)', async () => {
    const e = await refused(await treeWith({ 'bin/hello': bin['x86-static']! }), aarch64);
    expect(e.code).toBe('E_WRONG_ARCH');
    expect(e.details).toMatchObject({ path: 'bin/hello', arch: 'aarch64', expectedMachine: 183, machine: 62 });
  });

  it('refuses an aarch64 binary in an x86_64 package', async () => {
    const e = await refused(await treeWith({ 'bin/hello': bin['arm-static']! }), {
      arch: 'x86_64',
      elfMachine: 62,
      static: true,
      strip: 'strip',
    });
    expect(e.code).toBe('E_WRONG_ARCH');
    expect(e.details).toMatchObject({ machine: 183, expectedMachine: 62 });
  });

  it('refuses a static archive with a member for another machine', async () => {
    const e = await refused(await treeWith({ 'lib/libarm.a': bin['libarm.a']! }), {
      arch: 'x86_64',
      elfMachine: 62,
      static: true,
      strip: 'strip',
    });
    expect(e.code).toBe('E_WRONG_ARCH');
    expect(e.details).toMatchObject({ path: 'lib/libarm.a', member: 'arm.o/' });
  });

  it('refuses machine code in an arch "any" package', async () => {
    const e = await refused(await treeWith({ 'share/x/hello': bin['arm-static']! }), { arch: 'any' });
    expect(e.code).toBe('E_WRONG_ARCH');
    expect(e.details['expectedMachine']).toBeNull();
  });

  it('refuses a dynamically linked aarch64 output for the static target', async () => {
    const e = await refused(await treeWith({ 'bin/hello': bin['arm-dynamic']! }), aarch64);
    expect(e.code).toBe('E_BUILD');
    expect(e.details['path']).toBe('bin/hello');
  });
});

describe('the emulator for foreign-arch smoke tests', () => {
  it('is not needed for the host arch', () => {
    expect(findEmulator('x86_64-linux-musl')).toBeUndefined();
  });

  it('is qemu-user-static for aarch64, and its absence is E_NO_EMULATOR naming the package', async () => {
    expect(findEmulator('aarch64-linux-musl')).toBe('/usr/bin/qemu-aarch64-static');
    const empty = await tempDir();
    try {
      findEmulator('aarch64-linux-musl', [empty]);
      throw new Error('expected a refusal');
    } catch (e) {
      expect((e as SwpkgError).code).toBe('E_NO_EMULATOR');
      expect((e as SwpkgError).hint).toMatch(/qemu-user-static/);
      expect((e as SwpkgError).details).toMatchObject({ tool: 'qemu-aarch64-static', target: 'aarch64-linux-musl' });
    }
    expect(existsSync(join(empty, 'qemu-aarch64-static'))).toBe(false);
  });
});
