import { open, lstat, readdir, readlink, rm, symlink, unlink, chmod } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { SwpkgError } from '../../catalog/index.js';
import { runCommand } from './run-command.js';

/** The runtime prefix every port is configured for: the active generation's stable path (DESIGN.md "Paths"). */
export const PREFIX = '/pkg/current';

/** Removed from every package unless nothing else is there: the guest has no man, info or doc readers. */
export const DEFAULT_REMOVE = ['share/man', 'share/info', 'share/doc', 'lib/*.la'];

type ElfKind = 'executable' | 'shared' | 'relocatable' | 'archive' | 'none';

async function sniff(path: string): Promise<{ kind: ElfKind; dynamic: boolean }> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    if (bytesRead >= 8 && head.subarray(0, 8).toString('latin1') === '!<arch>\n') return { kind: 'archive', dynamic: false };
    if (bytesRead < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return { kind: 'none', dynamic: false };
    const type = head.readUInt16LE(16);
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    let dynamic = false;
    if (phnum > 0 && phnum < 256 && phentsize >= 4) {
      const ph = Buffer.alloc(phentsize * phnum);
      await fh.read(ph, 0, ph.length, phoff);
      for (let i = 0; i < phnum; i++) {
        const pType = ph.readUInt32LE(i * phentsize);
        if (pType === 3 /* PT_INTERP */) dynamic = true;
      }
    }
    const kind: ElfKind = type === 1 ? 'relocatable' : type === 2 ? 'executable' : type === 3 ? 'shared' : 'none';
    return { kind, dynamic };
  } finally {
    await fh.close();
  }
}

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
 * - ELF executables are stripped (`strip --strip-all`), static archives and
 *   objects lose debug info with deterministic archive headers (`-D`);
 * - a dynamically linked executable is refused: ports are fully static;
 * - setuid/setgid bits are cleared.
 */
export async function normalizeTree(dir: string, remove: string[], port: string): Promise<NormalizeReport> {
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
    const { kind, dynamic } = await sniff(abs);
    if (kind === 'none') continue;
    if ((kind === 'executable' || kind === 'shared') && dynamic) {
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
    const r = await runCommand('strip', args, { timeoutMs: 120_000 });
    if (r.code !== 0) {
      throw new SwpkgError('E_BUILD', `${port}: strip ${p} failed: ${r.output.trim()}`, { details: { port, path: p } });
    }
    report.stripped.push(p);
  }
  return report;
}
