import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runCommand } from './run-command.js';

/**
 * How a build is isolated:
 * - `bwrap`: bubblewrap with every namespace unshared (no network), a fresh
 *   root holding only /usr and /etc read-only, and the build folders bound at
 *   fixed paths (`/build/...`, `/pkg/current`), so paths inside binaries never
 *   depend on where the checkout lives.
 * - `unshare`: `unshare -n` (no network), real paths.
 * - `none`: no isolation at all; a warning says so.
 */
export type SandboxKind = 'bwrap' | 'unshare' | 'none';

export interface Sandbox {
  kind: SandboxKind;
  /** True when folders can be mounted at fixed inner paths (bwrap only). */
  fixedPaths: boolean;
  /** Why a weaker kind was chosen, for the warning. */
  reason?: string;
}

export interface SandboxMount {
  host: string;
  inner: string;
  writable: boolean;
}

export interface SandboxSpec {
  mounts: SandboxMount[];
  env: Record<string, string>;
  /** Inner working directory. */
  cwd: string;
  argv: string[];
}

let probed: Promise<Sandbox> | undefined;

async function works(cmd: string, args: string[]): Promise<{ ok: boolean; why: string }> {
  try {
    const r = await runCommand(cmd, args, { timeoutMs: 15_000 });
    return { ok: r.code === 0, why: r.output.trim().split('\n').slice(-1)[0] ?? `exit ${r.code}` };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

/**
 * Finds the strongest sandbox that actually works here (a binary that exists
 * but fails, as bwrap does in some containers, counts as absent). Probed once
 * per process. `SWPORT_SANDBOX=bwrap|unshare|none` forces a kind.
 */
export function probeSandbox(env: NodeJS.ProcessEnv = process.env): Promise<Sandbox> {
  const forced = env['SWPORT_SANDBOX'];
  if (forced === 'none') return Promise.resolve({ kind: 'none', fixedPaths: false, reason: 'SWPORT_SANDBOX=none' });
  if (forced === 'unshare') return Promise.resolve({ kind: 'unshare', fixedPaths: false, reason: 'SWPORT_SANDBOX=unshare' });
  probed ??= (async (): Promise<Sandbox> => {
    const dir = await mkdtemp(join(tmpdir(), 'swport-probe-'));
    try {
      await writeFile(join(dir, 'probe'), 'ok');
      const spec: SandboxSpec = {
        mounts: [{ host: dir, inner: '/build/probe', writable: true }],
        env: { PATH: '/usr/bin:/bin' },
        cwd: '/build/probe',
        argv: ['/bin/sh', '-c', 'test "$(cat probe)" = ok && echo written > out'],
      };
      const [cmd, args] = await bwrapCommand(spec);
      const b = await works(cmd, args);
      if (b.ok) return { kind: 'bwrap', fixedPaths: true };
      const u = await works('unshare', ['-n', '--', '/bin/true']);
      if (u.ok) return { kind: 'unshare', fixedPaths: false, reason: `bubblewrap does not work here (${b.why})` };
      return { kind: 'none', fixedPaths: false, reason: `neither bubblewrap (${b.why}) nor unshare -n (${u.why}) works here` };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return probed;
}

async function isSymlink(p: string): Promise<boolean> {
  return lstat(p).then(
    (s) => s.isSymbolicLink(),
    () => false,
  );
}

async function bwrapCommand(spec: SandboxSpec): Promise<[string, string[]]> {
  const args = ['--unshare-all', '--die-with-parent', '--new-session', '--hostname', 'swport'];
  args.push('--ro-bind', '/usr', '/usr');
  // Merged-/usr systems have /bin -> usr/bin; older ones have real folders.
  for (const top of ['bin', 'lib', 'lib64', 'sbin']) {
    if (await isSymlink(`/${top}`)) args.push('--symlink', `usr/${top}`, `/${top}`);
    else if (
      await lstat(`/${top}`).then(
        () => true,
        () => false,
      )
    )
      args.push('--ro-bind', `/${top}`, `/${top}`);
  }
  args.push('--ro-bind', '/etc', '/etc', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp');
  for (const m of spec.mounts) args.push(m.writable ? '--bind' : '--ro-bind', m.host, m.inner);
  args.push('--clearenv');
  for (const [k, v] of Object.entries(spec.env).sort(([a], [b]) => (a < b ? -1 : 1))) args.push('--setenv', k, v);
  args.push('--chdir', spec.cwd, '--', ...spec.argv);
  return ['bwrap', args];
}

/**
 * The command that runs `spec` in `sandbox`. Without fixed paths the mounts
 * must already have `inner === host`: the caller lays folders out per kind.
 */
export async function sandboxCommand(
  sandbox: Sandbox,
  spec: SandboxSpec,
): Promise<{ cmd: string; args: string[]; env: Record<string, string>; cwd?: string }> {
  if (sandbox.kind === 'bwrap') {
    const [cmd, args] = await bwrapCommand(spec);
    return { cmd, args, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } };
  }
  for (const m of spec.mounts) {
    if (m.inner !== m.host) throw new Error(`sandbox ${sandbox.kind} cannot mount ${m.host} at ${m.inner}`);
  }
  if (sandbox.kind === 'unshare') return { cmd: 'unshare', args: ['-n', '--', ...spec.argv], env: spec.env, cwd: spec.cwd };
  const [first, ...rest] = spec.argv;
  return { cmd: first!, args: rest, env: spec.env, cwd: spec.cwd };
}
