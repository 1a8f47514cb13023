import { chmod, mkdir, realpath, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SwpkgError, sha256File, sha256Hex, canonicalJson } from '../../catalog/index.js';
import { probeOutput } from './run-command.js';
import type { Target } from './recipe.js';

/** qemu-user for aarch64 (Debian qemu-user-static): static, so it also runs inside the sandboxes. */
export const QEMU_USER = 'qemu-aarch64-static';

/**
 * Bumped whenever the builder changes how it turns a recipe into bytes
 * (wrapper flags, normalisation, layout): it is part of every cache key, so
 * a new builder never reuses packages an old one made.
 */
export const BUILDER_VERSION = 1;

export interface Toolchain {
  target: Target;
  /** One line naming every input that shapes the output; recorded in the package. */
  id: string;
  /** SHA-256 over `components`: the cache key's toolchain part. */
  sha256: string;
  components: Record<string, string>;
}

/**
 * Where each target's toolchain lives on a Debian host. x86_64 is native
 * (musl-tools over the host gcc); aarch64 is Debian's cross gcc with
 * musl-dev:arm64's wrapper, binutils under the `aarch64-linux-gnu-` prefix,
 * and the arm64 kernel headers of linux-libc-dev-arm64-cross.
 */
interface TargetToolchain {
  muslGcc: string;
  muslLibc: string;
  /** The gcc the musl wrapper runs. */
  gcc: string;
  /** The Debian package shipping muslGcc and muslLibc. */
  muslPackage: string;
  /** Prefix of the target's binutils (`` for the host's own). */
  binutilsPrefix: string;
  headersPackage: string;
  kernelHeaders: [string, string][];
  /** What to install when the toolchain is missing. */
  install: string;
  /** Non-native targets: the autotools host triple and the build machine's. */
  cross?: { host: string; build: string; cmakeProcessor: string };
}

/** Kernel headers musl-gcc lacks (DESIGN.md "Ports"): linked from the host's linux-libc-dev. */
export const KERNEL_HEADER_LINKS: [string, string][] = [
  ['linux', '/usr/include/linux'],
  ['asm', '/usr/include/x86_64-linux-gnu/asm'],
  ['asm-generic', '/usr/include/asm-generic'],
  ['mtd', '/usr/include/mtd'],
];

const ARM64_HEADERS = '/usr/aarch64-linux-gnu/include';

const TOOLCHAINS: Record<Target, TargetToolchain> = {
  'x86_64-linux-musl': {
    muslGcc: '/usr/bin/musl-gcc',
    muslLibc: '/usr/lib/x86_64-linux-musl/libc.a',
    gcc: 'x86_64-linux-gnu-gcc',
    // Arch-qualified: with musl-dev:arm64 also installed, the bare name prints both versions run together.
    muslPackage: 'musl-dev:amd64',
    binutilsPrefix: '',
    headersPackage: 'linux-libc-dev:amd64',
    kernelHeaders: KERNEL_HEADER_LINKS,
    install: 'apt-get install -y musl-tools',
  },
  'aarch64-linux-musl': {
    muslGcc: '/usr/bin/aarch64-linux-musl-gcc',
    muslLibc: '/usr/lib/aarch64-linux-musl/libc.a',
    gcc: 'aarch64-linux-gnu-gcc',
    muslPackage: 'musl-dev:arm64',
    binutilsPrefix: 'aarch64-linux-gnu-',
    headersPackage: 'linux-libc-dev-arm64-cross',
    kernelHeaders: ['linux', 'asm', 'asm-generic', 'mtd'].map((n): [string, string] => [n, `${ARM64_HEADERS}/${n}`]),
    install:
      'dpkg --add-architecture arm64 && apt-get update && apt-get install -y gcc-aarch64-linux-gnu musl-dev:arm64 linux-libc-dev-arm64-cross (scripts/setup.sh does this)',
    cross: { host: 'aarch64-linux-musl', build: 'x86_64-pc-linux-gnu', cmakeProcessor: 'aarch64' },
  },
};

/** The target's binutils, linked under the triple for a cross target. */
const BINUTILS = ['ar', 'ranlib', 'strip', 'nm', 'objcopy', 'objdump', 'readelf', 'ld', 'as', 'size', 'strings'];
/**
 * Those also linked under their plain names, first in PATH: archive and
 * inspection tools Makefiles hard-code. Never `as` or `ld`: the host gcc
 * (building sqlite's lemon) finds its assembler and linker through PATH.
 */
const PLAIN_BINUTILS = new Set(['ar', 'ranlib', 'strip', 'nm', 'objcopy', 'objdump', 'readelf', 'size', 'strings']);

/** The strip program for `target`'s binaries (the host's for the native target). */
export function stripFor(target: Target): string {
  return `${TOOLCHAINS[target].binutilsPrefix}strip`;
}

/** The autotools/CMake cross settings of a non-native target; undefined for x86_64. */
export function crossOf(target: Target): TargetToolchain['cross'] {
  return TOOLCHAINS[target].cross;
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  const out = await probeOutput(cmd, args);
  return out
    ?.split('\n')
    .find((l) => l.trim() !== '')
    ?.trim();
}

/** A host tool is identified by the bytes of its binary (after links) and, when it answers, its --version line. */
async function hostToolId(tool: string): Promise<string> {
  const dirs = ['/usr/bin', '/usr/sbin', '/bin', '/sbin'];
  let path: string | undefined;
  for (const d of dirs) {
    const p = join(d, tool);
    if (existsSync(p)) {
      path = await realpath(p);
      break;
    }
  }
  if (!path) {
    throw new SwpkgError('E_BUILD', `host tool ${tool} is missing`, {
      hint: `install ${tool} (the recipe lists it in hostTools)`,
      details: { tool, searched: dirs },
    });
  }
  const version = tool === 'perl' ? await probeOutput('perl', ['-e', 'print $^V']) : await firstLine(path, ['--version']);
  return `${path} ${(await sha256File(path)).sha256}${version ? ` ${version}` : ''}`;
}

async function debVersion(pkg: string): Promise<string | undefined> {
  return probeOutput('dpkg-query', ['-W', '-f', '${Version}', pkg]);
}

/**
 * Identifies the toolchain for `target`: compiler, C library, binutils, the
 * kernel headers and any host tools the recipe runs. Fails with E_BUILD and
 * the package to install when musl-gcc is missing.
 */
/** The base toolchain is probed once per process; a package upgrade mid-run is not a case worth a re-probe per port. */
const baseProbes = new Map<Target, Promise<Record<string, string>>>();

async function probeBase(target: Target): Promise<Record<string, string>> {
  const t = TOOLCHAINS[target];
  const missing = [t.muslGcc, t.muslLibc, ...(t.cross ? [`/usr/bin/${t.gcc}`, `/usr/bin/${t.binutilsPrefix}ld`] : [])].find(
    (p) => !existsSync(p),
  );
  const headers = t.kernelHeaders.find(([n, p]) => n === 'asm' && !existsSync(p));
  if (missing !== undefined || headers !== undefined) {
    throw new SwpkgError('E_BUILD', `the ${target} toolchain is missing (${missing ?? headers?.[1]})`, {
      hint: t.install,
      details: { target, expected: missing ?? headers?.[1] },
    });
  }
  // The keys stay those of the first (x86_64-only) builder, so its cache keys are unchanged.
  return {
    builder: String(BUILDER_VERSION),
    target,
    gcc: (await firstLine(t.gcc, ['--version'])) ?? 'unknown',
    'musl-dev': (await debVersion(t.muslPackage)) ?? 'unknown',
    'musl-libc.a': (await sha256File(t.muslLibc)).sha256,
    binutils: (await firstLine(`${t.binutilsPrefix}ld`, ['--version'])) ?? 'unknown',
    'linux-libc-dev': (await debVersion(t.headersPackage)) ?? 'unknown',
    make: (await firstLine('make', ['--version'])) ?? 'unknown',
    ...(t.cross ? { 'qemu-user': (await firstLine(QEMU_USER, ['--version'])) ?? 'absent' } : {}),
  };
}

export async function detectToolchain(target: Target, hostTools: string[] = []): Promise<Toolchain> {
  let base = baseProbes.get(target);
  if (!base) {
    base = probeBase(target);
    baseProbes.set(target, base);
    // A failed probe (toolchain missing) is not remembered: installing it fixes the next call.
    base.catch(() => baseProbes.delete(target));
  }
  const components: Record<string, string> = { ...(await base) };
  for (const tool of [...hostTools].sort()) components[`host:${tool}`] = await hostToolId(tool);
  const gccShort = /\) (\S+)$/.exec(components['gcc'] ?? '')?.[1] ?? components['gcc'];
  const id = `${target} gcc-${gccShort} musl-${components['musl-dev']} ${(components['binutils'] ?? '').replace(/^GNU ld \(.*\) /, 'binutils-')} swport-builder-${BUILDER_VERSION}`;
  return { target, id, sha256: sha256Hex(canonicalJson(components)), components };
}

/**
 * Writes the compiler wrappers into `binDir` and the kernel-header links into
 * `headersDir`. Paths given are as the build sees them (inner paths under
 * bwrap). The wrapper makes every compile static, adds the kernel headers
 * after musl's own, and maps the source path to `.` so __FILE__ strings do
 * not depend on where the tree was built.
 */
export async function writeToolchainWrappers(o: {
  target?: Target;
  binDir: string;
  headersDir: string;
  innerHeadersDir: string;
  innerSrcDir: string;
}): Promise<{ cc: string; env: Record<string, string> }> {
  const target = o.target ?? 'x86_64-linux-musl';
  const t = TOOLCHAINS[target];
  await mkdir(o.binDir, { recursive: true });
  await mkdir(o.headersDir, { recursive: true });
  for (const [name, dir] of t.kernelHeaders) {
    if (existsSync(dir)) await symlink(dir, join(o.headersDir, name));
  }
  const script = [
    '#!/bin/sh',
    `exec ${t.muslGcc} -static -idirafter ${o.innerHeadersDir} -ffile-prefix-map=${o.innerSrcDir}=. "$@"`,
    '',
  ].join('\n');
  const cc = `${target}-gcc`;
  await writeFile(join(o.binDir, cc), script, { mode: 0o755 });
  await chmod(join(o.binDir, cc), 0o755);
  if (!t.cross) {
    // Makefiles that hard-code `gcc` or `cc` still get the musl toolchain, never glibc.
    for (const alias of ['cc', 'gcc', 'musl-gcc']) await symlink(cc, join(o.binDir, alias));
    return { cc, env: {} };
  }
  // Cross: `cc` and `gcc` stay the host's, for tools a build compiles and runs on the
  // build machine (sqlite's lemon); a Makefile that wrongly uses them for the
  // target yields a host binary, which packaging refuses (E_WRONG_ARCH). The
  // target's binutils come under the triple (what autotools --host looks for)
  // and under their plain names first in PATH (Makefiles that hard-code `ar`).
  const env: Record<string, string> = { CC_FOR_BUILD: 'gcc', BUILD_CC: 'gcc', HOSTCC: 'gcc' };
  for (const tool of BINUTILS) {
    const real = `/usr/bin/${t.binutilsPrefix}${tool}`;
    await symlink(real, join(o.binDir, `${target}-${tool}`));
    if (PLAIN_BINUTILS.has(tool)) await symlink(real, join(o.binDir, tool));
    if (['ar', 'ranlib', 'strip', 'nm', 'objcopy', 'objdump', 'readelf', 'ld'].includes(tool))
      env[tool.toUpperCase()] = `${target}-${tool}`;
  }
  env['CONFIGURE_CROSS_ARGS'] = `--build=${t.cross.build} --host=${t.cross.host}`;
  env['CROSS_EMULATOR'] = QEMU_USER;
  await writeFile(
    join(o.binDir, '..', 'cross.cmake'),
    [
      'set(CMAKE_SYSTEM_NAME Linux)',
      `set(CMAKE_SYSTEM_PROCESSOR ${t.cross.cmakeProcessor})`,
      `set(CMAKE_C_COMPILER ${cc})`,
      `set(CMAKE_AR ${env['AR']})`,
      `set(CMAKE_RANLIB ${env['RANLIB']})`,
      `set(CMAKE_STRIP ${env['STRIP']})`,
      // Test programs configure wants to run go through qemu-user.
      `set(CMAKE_CROSSCOMPILING_EMULATOR ${QEMU_USER})`,
      'set(CMAKE_FIND_ROOT_PATH $ENV{SYSROOT})',
      'set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)',
      'set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)',
      'set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)',
      'set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)',
      '',
    ].join('\n'),
  );
  return { cc, env };
}
