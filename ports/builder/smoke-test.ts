import { createServer, type Server } from 'node:http';
import { chmod, copyFile, cp, lstat, mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { SwpkgError, extractPackage, silentReporter } from '../../catalog/index.js';
import { buildPorts, type BuildOptions, type BuiltPackage } from './build-port.js';
import { dependencyOrder, edgesOf, loadPortsCatalog, loadRecipeClosure } from './ports-catalog.js';
import { PREFIX } from './package-tree.js';
import { runCommand } from './run-command.js';
import { probeSandbox } from './sandbox.js';
import { readElf } from './elf.js';
import { DEFAULT_TARGET, TARGET_INFO, type Target } from './recipe.js';
import { QEMU_USER } from './toolchain.js';

/** What the smoke HTTP server answers at `$SMOKE_HTTP_URL/hello.txt`. */
export const SMOKE_HTTP_BODY = 'swport smoke ok\n';

export interface SmokeResult {
  name: string;
  version: string;
  /** Packages installed into the smoke root: the port and its runtime dependencies. */
  installed: string[];
  /** `bwrap`: run with the root mounted at /pkg/current and nothing from the host but busybox. */
  isolation: 'bwrap' | 'host';
  target: string;
  /** The emulator the package's programs ran under (qemu-user for a foreign arch), when one was needed. */
  emulator?: string;
  seconds: number;
  output: string;
}

/** Serves a small fixed page on 127.0.0.1 for smoke tests that need an HTTP peer (curl). */
async function startSmokeServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/hello.txt') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(SMOKE_HTTP_BODY) });
      res.end(SMOKE_HTTP_BODY);
      return;
    }
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('smoke server has no port');
  return { server, url: `http://127.0.0.1:${addr.port}` };
}

/** The package arch of the machine running swport. */
export function hostArch(): string {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
}

/**
 * The qemu-user binary that runs `target`'s programs on this host, or
 * undefined when the host runs them natively. It must be the static build
 * (Debian qemu-user-static): the smoke sandbox has no host libraries. Missing
 * is E_NO_EMULATOR with the package to install. binfmt_misc is not relied
 * on: it may be unregistered (containers), so programs are started through
 * qemu explicitly.
 */
export function findEmulator(target: Target, dirs: string[] = ['/usr/bin', '/usr/local/bin', '/bin']): string | undefined {
  const arch = TARGET_INFO[target].arch;
  if (arch === hostArch()) return undefined;
  const found = dirs.map((d) => join(d, QEMU_USER)).find((p) => existsSync(p));
  if (!found) {
    throw new SwpkgError('E_NO_EMULATOR', `${target} programs cannot run on this ${hostArch()} host: ${QEMU_USER} is missing`, {
      hint: 'apt-get install -y qemu-user-static (scripts/setup.sh installs it)',
      details: { target, arch, host: hostArch(), tool: QEMU_USER, searched: dirs },
    });
  }
  return found;
}

async function walkFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(dir, p));
    if (st.isDirectory()) out.push(...(await walkFiles(dir, p)));
    else if (st.isFile() && st.mode & 0o111) out.push(p);
  }
  return out;
}

/**
 * Moves every executable ELF program of `machine` from `root` into `realDir`
 * and leaves in its place a shell script that runs it under qemu-user, with
 * argv[0] kept. The smoke script then finds `lua` on PATH (or at
 * $PKG_PREFIX/bin/lua) exactly as in the guest. Paths in the scripts are as
 * the smoke run sees them (`innerRealDir`, `innerQemu`).
 */
export async function wrapForEmulator(o: {
  root: string;
  realDir: string;
  machine: number;
  innerRealDir: string;
  innerQemu: string;
}): Promise<string[]> {
  const wrapped: string[] = [];
  for (const p of await walkFiles(o.root)) {
    const elf = await readElf(join(o.root, p));
    if (!elf || elf.machine !== o.machine || (elf.type !== 'executable' && elf.type !== 'shared')) continue;
    const real = join(o.realDir, p);
    await mkdir(dirname(real), { recursive: true });
    const mode = (await lstat(join(o.root, p))).mode & 0o7777;
    await rename(join(o.root, p), real);
    await writeFile(join(o.root, p), `#!/bin/sh\nexec ${o.innerQemu} -0 "$0" ${o.innerRealDir}/${p} "$@"\n`);
    await chmod(join(o.root, p), mode);
    wrapped.push(p);
  }
  return wrapped;
}

/** A folder of busybox applet links, so the smoke script sees only busybox besides the package. */
async function busyboxDir(dir: string): Promise<boolean> {
  const bb = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));
  if (!bb) return false;
  const list = await runCommand(bb, ['--list'], { timeoutMs: 10_000 });
  if (list.code !== 0) return false;
  await mkdir(dir, { recursive: true });
  await copyFile(bb, join(dir, 'busybox'));
  for (const applet of list.output.split('\n').map((s) => s.trim())) {
    if (applet && applet !== 'busybox' && /^[A-Za-z0-9_.[-]+$/.test(applet))
      await symlink('busybox', join(dir, applet)).catch(() => undefined);
  }
  return true;
}

/**
 * Installs the port's package and its runtime dependencies into one fresh
 * root, then runs the recipe's smoke script with `busybox sh`: PATH holds the
 * root's `bin` and busybox applets only, PKG_PREFIX the root, SMOKE_HTTP_URL a
 * server on 127.0.0.1. Under bubblewrap the root is mounted at /pkg/current
 * with no host /usr, so a binary that needs anything beyond its package fails
 * here as it would in the guest. A failing script is E_BUILD with its output.
 * Packages for another arch (aarch64 on an x86_64 host) run the same script:
 * their programs are started through qemu-user (see wrapForEmulator), and a
 * missing qemu-user is E_NO_EMULATOR before anything is built.
 */
export async function runSmokeTest(name: string, opts: BuildOptions): Promise<SmokeResult> {
  const reporter = opts.reporter ?? silentReporter;
  const target = (opts.target ?? DEFAULT_TARGET) as Target;
  const needed = TARGET_INFO[target] ? findEmulator(target) : undefined;
  const catalog = await loadPortsCatalog(opts.paths.portsDir);
  const recipes = await loadRecipeClosure(catalog, [name]);
  const built = await buildPorts([name], { ...opts, withRuntime: true });
  const byName = new Map(built.map((b): [string, BuiltPackage] => [b.name, b]));
  const runtime = dependencyOrder([name], (n) => {
    const l = recipes.get(n);
    return l ? edgesOf(l.recipe, 'runtime') : undefined;
  });
  const l = recipes.get(name)!;
  const scratch = await mkdtemp(join(tmpdir(), `swport-smoke-${name}-`));
  const { server, url } = await startSmokeServer();
  const t0 = Date.now();
  try {
    const root = join(scratch, 'root');
    await mkdir(root);
    for (const n of runtime) {
      const pkg = byName.get(n)!;
      const into = join(scratch, 'pkgs', n);
      await extractPackage(pkg.path, into, { expectedSha256: pkg.sha256, fsync: false });
      await cp(into, root, { recursive: true, verbatimSymlinks: true });
    }
    const bb = join(scratch, 'bin');
    const haveBusybox = await busyboxDir(bb);
    const work = join(scratch, 'work');
    await mkdir(work);
    const sandbox = opts.sandbox ?? (await probeSandbox());
    const useBwrap = sandbox.kind === 'bwrap' && haveBusybox;
    const realDir = join(scratch, 'real');
    let emulator: string | undefined;
    if (needed) {
      const wrapped = await wrapForEmulator({
        root,
        realDir,
        machine: TARGET_INFO[target].elfMachine,
        innerRealDir: useBwrap ? '/qemu/real' : realDir,
        innerQemu: useBwrap ? `/qemu/${QEMU_USER}` : needed,
      });
      // Data-only packages (arch any) have no programs: nothing runs under qemu.
      if (wrapped.length > 0) {
        emulator = needed;
        reporter.info(`${name}: ${wrapped.length} program(s) run under ${emulator}`);
      }
    }
    if (!haveBusybox) reporter.warn('busybox not found: the smoke test runs with the host PATH, so it proves less than in the guest');
    let cmd: string;
    let args: string[];
    let env: Record<string, string>;
    let cwd: string | undefined;
    if (useBwrap) {
      const etc = join(scratch, 'etc');
      await mkdir(etc);
      await writeFile(join(etc, 'passwd'), 'root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
      await writeFile(join(etc, 'group'), 'root:x:0:\nnogroup:x:65534:\n');
      await writeFile(join(etc, 'hosts'), '127.0.0.1 localhost\n');
      cmd = 'bwrap';
      args = [
        // No user namespace (it would map only our own uid, and nginx's chown of its
        // temp folders to the worker user would fail where the guest's root succeeds);
        // the network stays shared so the script reaches the server on 127.0.0.1.
        '--unshare-ipc',
        '--unshare-pid',
        '--unshare-uts',
        '--unshare-cgroup-try',
        '--die-with-parent',
        '--new-session',
        '--hostname',
        'swport-smoke',
        '--ro-bind',
        root,
        PREFIX,
        '--ro-bind',
        bb,
        '/bin',
        '--ro-bind',
        etc,
        '/etc',
        '--ro-bind',
        l.dir,
        '/smoke',
        ...(emulator ? ['--ro-bind', emulator, `/qemu/${QEMU_USER}`, '--ro-bind', realDir, '/qemu/real'] : []),
        '--dev',
        '/dev',
        '--proc',
        '/proc',
        '--tmpfs',
        '/tmp',
        '--clearenv',
        '--setenv',
        'PATH',
        `${PREFIX}/bin:${PREFIX}/sbin:/bin`,
        '--setenv',
        'PKG_PREFIX',
        PREFIX,
        '--setenv',
        'SMOKE_HTTP_URL',
        url,
        '--setenv',
        'HOME',
        '/tmp',
        '--setenv',
        'TMPDIR',
        '/tmp',
        '--setenv',
        'TZ',
        'UTC',
        '--chdir',
        '/tmp',
        '--',
        '/bin/sh',
        `/smoke/${l.recipe.smoke}`,
      ];
      env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
    } else {
      const path = haveBusybox ? `${root}/bin:${root}/sbin:${bb}` : `${root}/bin:${root}/sbin:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
      cmd = haveBusybox ? join(bb, 'sh') : '/bin/sh';
      args = [join(l.dir, l.recipe.smoke)];
      env = { PATH: path, PKG_PREFIX: root, SMOKE_HTTP_URL: url, HOME: work, TMPDIR: work, TZ: 'UTC' };
      cwd = work;
    }
    reporter.info(
      `${name}: smoke test (${useBwrap ? 'bwrap, package at /pkg/current' : 'host'}${emulator ? `, ${target} under qemu-user` : ''})`,
    );
    const r = await runCommand(cmd, args, { env, ...(cwd ? { cwd } : {}), timeoutMs: 120_000 });
    const output = r.output.trim();
    if (r.code !== 0) {
      const tail = output.split('\n').slice(-20);
      throw new SwpkgError(
        'E_BUILD',
        `${name}: smoke test failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}):\n  ${tail.join('\n  ')}`,
        {
          hint: `run the script by hand: PKG_PREFIX=<extracted package> sh ${join(l.dir, l.recipe.smoke)}`,
          details: { port: name, phase: 'smoke', script: join(l.dir, l.recipe.smoke) },
        },
      );
    }
    return {
      name,
      version: l.recipe.version,
      installed: runtime,
      isolation: useBwrap ? 'bwrap' : 'host',
      target,
      ...(emulator ? { emulator } : {}),
      seconds: (Date.now() - t0) / 1000,
      output,
    };
  } finally {
    server.close();
    server.closeAllConnections();
    await rm(scratch, { recursive: true, force: true });
  }
}
