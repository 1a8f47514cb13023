import { chmod, mkdir, realpath, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SwpkgError, sha256File, sha256Hex, canonicalJson } from '../../catalog/index.js';
import { probeOutput } from './run-command.js';
import type { Target } from './recipe.js';

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

const MUSL_GCC = '/usr/bin/musl-gcc';
const MUSL_LIBC = '/usr/lib/x86_64-linux-musl/libc.a';

/** Kernel headers musl-gcc lacks (DESIGN.md "Ports"): linked from the host's linux-libc-dev. */
export const KERNEL_HEADER_LINKS: [string, string][] = [
  ['linux', '/usr/include/linux'],
  ['asm', '/usr/include/x86_64-linux-gnu/asm'],
  ['asm-generic', '/usr/include/asm-generic'],
  ['mtd', '/usr/include/mtd'],
];

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
  if (!existsSync(MUSL_GCC) || !existsSync(MUSL_LIBC)) {
    throw new SwpkgError('E_BUILD', `the ${target} toolchain is missing (${MUSL_GCC})`, {
      hint: 'apt-get install -y musl-tools',
      details: { target, expected: MUSL_GCC },
    });
  }
  return {
    builder: String(BUILDER_VERSION),
    target,
    gcc: (await firstLine('x86_64-linux-gnu-gcc', ['--version'])) ?? 'unknown',
    'musl-dev': (await debVersion('musl-dev')) ?? 'unknown',
    'musl-libc.a': (await sha256File(MUSL_LIBC)).sha256,
    binutils: (await firstLine('ld', ['--version'])) ?? 'unknown',
    'linux-libc-dev': (await debVersion('linux-libc-dev')) ?? 'unknown',
    make: (await firstLine('make', ['--version'])) ?? 'unknown',
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
  binDir: string;
  headersDir: string;
  innerHeadersDir: string;
  innerSrcDir: string;
}): Promise<{ cc: string }> {
  await mkdir(o.binDir, { recursive: true });
  await mkdir(o.headersDir, { recursive: true });
  for (const [name, target] of KERNEL_HEADER_LINKS) {
    if (existsSync(target)) await symlink(target, join(o.headersDir, name));
  }
  const script = [
    '#!/bin/sh',
    `exec ${MUSL_GCC} -static -idirafter ${o.innerHeadersDir} -ffile-prefix-map=${o.innerSrcDir}=. "$@"`,
    '',
  ].join('\n');
  const cc = 'x86_64-linux-musl-gcc';
  await writeFile(join(o.binDir, cc), script, { mode: 0o755 });
  await chmod(join(o.binDir, cc), 0o755);
  // Makefiles that hard-code `gcc` or `cc` still get the musl toolchain, never glibc.
  for (const alias of ['cc', 'gcc', 'musl-gcc']) await symlink(cc, join(o.binDir, alias));
  return { cc };
}
