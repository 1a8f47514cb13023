import { open, lstat, readdir, readlink, rm, symlink, unlink, chmod } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { SwpkgError } from '../../catalog/index.js';
import { isElf, machineName, readArchiveMembers, readElf } from './elf.js';
import { runCommand } from './run-command.js';

/** The runtime prefix every port is configured for: the active generation's stable path (DESIGN.md "Paths"). */
export const PREFIX = '/pkg/current';

/** Removed from every package unless nothing else is there: the guest has no man, info or doc readers. */
export const DEFAULT_REMOVE = ['share/man', 'share/info', 'share/doc', 'lib/*.la'];

type ElfKind = 'executable' | 'shared' | 'relocatable' | 'archive' | 'none';

interface Sniffed {
  kind: ElfKind;
  /** Needs a dynamic loader or shared libraries (PT_INTERP or DT_NEEDED). */
  dynamic: boolean;
  /** ELF machines found: the file's own, or every ELF member's for an archive. */
  machines: { member?: string; machine: number }[];
}

async function sniff(path: string): Promise<Sniffed> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(8);
  try {
    await fh.read(head, 0, 8, 0);
  } finally {
    await fh.close();
  }
  if (head.toString('latin1') === '!<arch>\n') {
    const members = (await readArchiveMembers(path)) ?? [];
    return { kind: 'archive', dynamic: false, machines: members.map((m) => ({ member: m.name, machine: m.elf.machine })) };
  }
  if (!isElf(head)) return { kind: 'none', dynamic: false, machines: [] };
  const elf = await readElf(path);
  // ELF magic with headers that do not parse: not something we can vouch for.
  if (!elf) return { kind: 'executable', dynamic: true, machines: [{ machine: -1 }] };
  const kind: ElfKind = elf.type === 'executable' || elf.type === 'shared' || elf.type === 'relocatable' ? elf.type : 'none';
  return { kind, dynamic: elf.interpreter || elf.needed > 0, machines: [{ machine: elf.machine }] };
}

/** What the packaged tree must be: its arch's ELF machine and static linking, or no machine code at all for `any`. */
export type TreeRules = { arch: 'any'; strip?: string } | { arch: string; elfMachine: number; static: boolean; strip?: string };

/** The native x86_64 rules, for callers that predate cross targets. */
const X86_64_RULES: TreeRules = { arch: 'x86_64', elfMachine: 62, static: true, strip: 'strip' };

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('/')
    .map((seg) => seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
    .join('/');
  return new RegExp(`^${body}$`);
}

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    out.push(p);
    const st = await lstat(join(dir, p));
    if (st.isDirectory()) out.push(...(await walk(dir, p)));
  }
  return out;
}

export interface NormalizeReport {
  removed: string[];
  stripped: string[];
  relinked: string[];
}

/**
 * Turns an installed tree (the DESTDIR copy of /pkg/current) into the exact
 * payload to pack, the same way every time:
 * - drops `remove` paths (plus DEFAULT_REMOVE);
 * - symlinks pointing into /pkg/current become relative (packages may not
 *   hold absolute links); any other absolute link is refused;
 * - every ELF executable, shared object, object file and archive member must
 *   have the ELF machine of the package's arch, and an `any` package may hold
 *   none: a cross build that silently used the host compiler is E_WRONG_ARCH;
 * - a dynamically linked executable or library (PT_INTERP or DT_NEEDED) is
 *   refused for a static target: ports are fully static (E_BUILD);
 * - ELF executables are stripped (`strip --strip-all`, with the target's
 *   strip), static archives and objects lose debug info with deterministic
 *   archive headers (`-D`);
 * - setuid/setgid bits are cleared.
 * Checks run before strip, so a wrong-arch file is named, not a strip failure.
 */
export async function normalizeTree(
  dir: string,
  remove: string[],
  port: string,
  rules: TreeRules = X86_64_RULES,
): Promise<NormalizeReport> {
  const report: NormalizeReport = { removed: [], stripped: [], relinked: [] };
  const patterns = [...DEFAULT_REMOVE, ...remove].map(globToRegExp);
  for (const p of await walk(dir)) {
    if (patterns.some((re) => re.test(p))) {
      const exists = await lstat(join(dir, p)).then(
        () => true,
        () => false,
      );
      if (exists) {
        await rm(join(dir, p), { recursive: true, force: true });
        report.removed.push(p);
      }
    }
  }
  for (const p of await walk(dir)) {
    const abs = join(dir, p);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) {
      const target = await readlink(abs);
      if (target.startsWith('/')) {
        if (target !== PREFIX && !target.startsWith(PREFIX + '/')) {
          throw new SwpkgError('E_BUILD', `${port}: ${p} links to ${target}, outside the package`, {
            hint: 'make the install step create relative links, or remove the link in the recipe',
            details: { port, path: p, target },
          });
        }
        const rel = posix.relative(posix.dirname(posix.join(PREFIX, p)), target) || '.';
        await unlink(abs);
        await symlink(rel, abs);
        report.relinked.push(p);
      }
      continue;
    }
    if (!st.isFile()) continue;
    if (st.mode & 0o6000) await chmod(abs, st.mode & 0o1777);
    const { kind, dynamic, machines } = await sniff(abs);
    if (kind === 'none') continue;
    const expected = 'elfMachine' in rules ? rules.elfMachine : undefined;
    const wrong = machines.find((m) => m.machine !== expected);
    if (wrong) {
      const what = wrong.member ? `${p} (member ${wrong.member})` : p;
      const found = wrong.machine < 0 ? 'an unreadable ELF header' : machineName(wrong.machine);
      throw new SwpkgError(
        'E_WRONG_ARCH',
        expected === undefined
          ? `${port}: ${what} is ${found} machine code, but an arch "any" package holds no machine code`
          : `${port}: ${what} is ${found} machine code, but the package is for ${rules.arch}`,
        {
          hint:
            expected === undefined
              ? 'build the port for a target (drop "arch": "any") or remove the file'
              : 'the build used a compiler for another machine: pass the target compiler ($CC, the triple-prefixed tools) instead of a hard-coded gcc/cc',
          details: {
            port,
            path: p,
            ...(wrong.member ? { member: wrong.member } : {}),
            arch: rules.arch,
            expectedMachine: expected ?? null,
            machine: wrong.machine,
          },
        },
      );
    }
    const mustBeStatic = 'static' in rules && rules.static;
    if (mustBeStatic && (kind === 'executable' || kind === 'shared') && dynamic) {
      throw new SwpkgError('E_BUILD', `${port}: ${p} is dynamically linked, but ports must be fully static`, {
        hint: 'link with -static (the toolchain wrapper does) and build static libraries only (--disable-shared)',
        details: { port, path: p },
      });
    }
    const args =
      kind === 'executable'
        ? ['--strip-all', abs]
        : kind === 'shared'
          ? ['--strip-unneeded', abs]
          : ['--strip-debug', '--enable-deterministic-archives', abs];
    const r = await runCommand(rules.strip ?? 'strip', args, { timeoutMs: 120_000 });
    if (r.code !== 0) {
      throw new SwpkgError('E_BUILD', `${port}: strip ${p} failed: ${r.output.trim()}`, { details: { port, path: p } });
    }
    report.stripped.push(p);
  }
  return report;
}
