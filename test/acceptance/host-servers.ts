import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AcceptanceFailure } from './util.js';

/** One `swpkg serve` process on 127.0.0.1. */
export interface ServedRoot {
  name: string;
  root: string;
  port: number;
  url: string;
  dns?: { host: string; port: number; name: string; addresses: string[] };
  pid: number;
  logFile: string;
  /** Access-log and DNS lines seen so far. */
  lines(): string[];
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts `bin/swpkg serve ROOT --port 0 --json` (the product's server, as a
 * publisher would run it) and waits for its one-line ready envelope. The
 * access log (stderr) goes to `logDir/NAME.log` and stays readable through
 * `lines()`. A server that does not announce itself within `timeoutMs` is
 * killed and the start fails.
 */
export async function startServe(o: {
  repoRoot: string;
  name: string;
  root: string;
  logDir: string;
  dns?: { name: string; address: string };
  timeoutMs?: number;
}): Promise<ServedRoot> {
  const args = [join(o.repoRoot, 'bin', 'swpkg'), 'serve', o.root, '--host', '127.0.0.1', '--port', '0', '--json', '--grace-seconds', '2'];
  if (o.dns) args.push('--dns-port', '0', '--dns-name', o.dns.name, '--dns-address', o.dns.address);
  const child = spawn('/bin/sh', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: o.repoRoot });
  live.add(child);
  child.on('exit', () => live.delete(child));
  const logFile = join(o.logDir, `${o.name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const seen: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    seen.push(line);
    if (seen.length > 20_000) seen.splice(0, 10_000);
    log.write(`${line}\n`);
  });
  log.write(`# ${new Date().toISOString()} sh ${args.join(' ')}\n`);
  const ready = await new Promise<{ url: string; port: number; dns?: ServedRoot['dns'] }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new AcceptanceFailure(`swpkg serve ${o.root} did not report ready within ${o.timeoutMs ?? 60_000} ms`, seen.slice(-20).join('\n')),
      );
    }, o.timeoutMs ?? 60_000);
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        const env = JSON.parse(line) as {
          ok: boolean;
          result?: { url: string; port: number; dns?: ServedRoot['dns'] };
          error?: { code: string; message: string };
        };
        if (env.ok && env.result) resolve(env.result);
        else reject(new AcceptanceFailure(`swpkg serve ${o.root} failed: ${env.error?.code}: ${env.error?.message}`));
      } catch {
        reject(new AcceptanceFailure(`swpkg serve ${o.root} printed something other than its ready line: ${line.slice(0, 300)}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new AcceptanceFailure(`swpkg serve ${o.root} exited (${signal ?? code}) before it was ready`, seen.slice(-20).join('\n')));
    });
  });
  return {
    name: o.name,
    root: o.root,
    port: ready.port,
    url: ready.url,
    ...(ready.dns ? { dns: ready.dns } : {}),
    pid: child.pid ?? -1,
    logFile,
    lines: () => [...seen],
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(t);
      log.end();
    },
  };
}
