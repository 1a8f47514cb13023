import { createServer, type Server } from 'node:http';
import { copyFile, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { SwpkgError, extractPackage, silentReporter } from '../../catalog/index.js';
import { buildPorts, type BuildOptions, type BuiltPackage } from './build-port.js';
import { dependencyOrder, edgesOf, loadPortsCatalog, loadRecipeClosure } from './ports-catalog.js';
import { PREFIX } from './package-tree.js';
import { runCommand } from './run-command.js';
import { probeSandbox } from './sandbox.js';

/** What the smoke HTTP server answers at `$SMOKE_HTTP_URL/hello.txt`. */
export const SMOKE_HTTP_BODY = 'swport smoke ok\n';

export interface SmokeResult {
  name: string;
  version: string;
  /** Packages installed into the smoke root: the port and its runtime dependencies. */
  installed: string[];
  /** `bwrap`: run with the root mounted at /pkg/current and nothing from the host but busybox. */
  isolation: 'bwrap' | 'host';
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
 */
export async function runSmokeTest(name: string, opts: BuildOptions): Promise<SmokeResult> {
  const reporter = opts.reporter ?? silentReporter;
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
    reporter.info(`${name}: smoke test (${useBwrap ? 'bwrap, package at /pkg/current' : 'host'})`);
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
      seconds: (Date.now() - t0) / 1000,
      output,
    };
  } finally {
    server.close();
    server.closeAllConnections();
    await rm(scratch, { recursive: true, force: true });
  }
}
