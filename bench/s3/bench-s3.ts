/**
 * Issue 16 benchmarks, each beside its baseline in the same run:
 *   1. publish of an N-package corpus (default 1000) to Ceph RGW (scripts/rgw.sh) vs to a folder;
 *   2. `pkg install` of M packages (default 100) through one dead mirror (accepts, never answers)
 *      plus a live one vs through the live one alone; target: within one stall timeout + 10 %;
 *   3. the same install with --downloads 1 (serial) vs the default 4 at once, from `swpkg serve`.
 *
 *   bash scripts/rgw.sh start
 *   bash bench/s3/bench.sh [--packages 1000] [--install 100] [--stall 2] [--runs 3]
 *
 * Prints one JSON document with the times and ratios.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { AwsClient } from 'aws4fetch';
import { generateKeyPair, packPackage } from '../../catalog/index.js';
import { S3Target, publishRepository } from '../../publishing/index.js';
import { startStaticServer } from '../../repo-server/index.js';

const ROOT = resolve(import.meta.dirname, '../..');

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 ? process.argv[i + 1] : fallback);
}

const N = arg('packages', '1000');
const M = Math.min(arg('install', '100'), N);
const STALL = arg('stall', '2');
const RUNS = arg('runs', '3');

function pkg(root: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; ms: number; out: string }> {
  return new Promise((res, rej) => {
    const t = process.hrtime.bigint();
    const c = spawn(join(ROOT, 'bin/pkg'), ['--root', root, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', rej);
    c.on('close', (code) => res({ code: code ?? -1, ms: Number(process.hrtime.bigint() - t) / 1e6, out }));
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

const work = await mkdtemp(join(tmpdir(), 'swpkg-bench-s3-'));
try {
  // The corpus: N small packages, each a script and a data file (what a repository of tools looks like).
  const key = generateKeyPair();
  const inDir = join(work, 'in');
  await mkdir(inDir);
  for (let i = 0; i < N; i++) {
    const src = join(work, 'src', `p${i}`);
    await mkdir(join(src, 'bin'), { recursive: true });
    await mkdir(join(src, 'share'), { recursive: true });
    await writeFile(join(src, 'bin', `p${i}`), `#!/bin/sh\necho p${i}\n`, { mode: 0o755 });
    await writeFile(join(src, 'share', `p${i}.dat`), Buffer.alloc(4096 + (i % 64) * 256, i % 251));
    await packPackage({
      dir: src,
      meta: {
        name: `p${i}`,
        version: '1.0.0',
        arch: 'any',
        abi: 'linux-musl-static',
        summary: `package ${i}`,
        license: 'MIT',
        depends: {},
      },
      out: join(inDir, `p${i}-1.0.0-any.swpkg`),
      key,
      sourceDateEpoch: 1704067200,
    });
  }

  // 1. Publish: folder vs RGW, same corpus, same key.
  const folder = await timed(() => publishRepository({ packagesDir: inDir, out: join(work, 'www'), key, name: 'bench' }));
  const env = Object.fromEntries(
    execFileSync('bash', [join(ROOT, 'scripts/rgw.sh'), 'env'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const endpoint = env['SWPKG_S3_ENDPOINT']!;
  const creds = { accessKeyId: env['AWS_ACCESS_KEY_ID']!, secretAccessKey: env['AWS_SECRET_ACCESS_KEY']! };
  const aws = new AwsClient({ ...creds, service: 's3', region: 'us-east-1', retries: 0 });
  const bucket = `bench-${Date.now()}`;
  const made = await aws.fetch(`${endpoint}/${bucket}`, { method: 'PUT' });
  if (!made.ok) throw new Error(`creating bucket ${bucket} at ${endpoint}: HTTP ${made.status} (is scripts/rgw.sh started?)`);
  const s3 = await timed(() =>
    publishRepository({
      packagesDir: inDir,
      out: `s3://${bucket}/main`,
      target: new S3Target({ bucket, prefix: 'main', endpoint, ...creds }),
      key,
      name: 'bench',
    }),
  );

  // 2. Install M packages: live alone vs a dead first server + the live one.
  const server = await startStaticServer({ root: join(work, 'www') });
  const sockets = new Set<Socket>();
  let deadConnections = 0;
  const dead = createServer((s) => {
    deadConnections++;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadUrl = `http://127.0.0.1:${(dead.address() as { port: number }).port}/`;
  const names = Array.from({ length: M }, (_, i) => `p${i}`);
  const pkgEnv = { PKG_STALL_TIMEOUT: String(STALL) };
  let run = 0;
  // Adds and updates a fresh root, then times the install alone; returns its time and the dead server's connections during it.
  const install = async (servers: string[], extra: string[] = []): Promise<{ ms: number; dead: number }> => {
    const root = join(work, `root-${run++}`);
    const add = await pkg(
      root,
      [
        'repo',
        'add',
        'bench',
        servers[0]!,
        '--fingerprint',
        folder.value.rootFingerprint,
        ...servers.slice(1).flatMap((m) => ['--mirror', m]),
      ],
      pkgEnv,
    );
    if (add.code !== 0) throw new Error(add.out);
    const up = await pkg(root, ['update'], pkgEnv);
    if (up.code !== 0) throw new Error(up.out);
    const before = deadConnections;
    const r = await pkg(root, ['install', ...names, '--yes', ...extra], pkgEnv);
    if (r.code !== 0) throw new Error(r.out);
    return { ms: r.ms, dead: deadConnections - before };
  };
  // Interleaved pairs, the median of each: the machine is shared.
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const live: number[] = [];
  const withDead: number[] = [];
  const serial: number[] = [];
  let deadInInstall = 0;
  for (let i = 0; i < RUNS; i++) {
    live.push((await install([server.url])).ms);
    const d = await install([deadUrl, server.url]);
    withDead.push(d.ms);
    deadInInstall = Math.max(deadInInstall, d.dead);
    serial.push((await install([server.url], ['--downloads', '1'])).ms);
  }
  const liveOnly = median(live);
  const deadPlusLive = median(withDead);
  const serialMs = median(serial);
  for (const s of sockets) s.destroy();
  dead.close();
  await server.close();

  process.stdout.write(
    JSON.stringify(
      {
        date: new Date().toISOString(),
        publish: {
          packages: N,
          folderMs: Math.round(folder.ms),
          rgwMs: Math.round(s3.ms),
          ratioRgwToFolder: +(s3.ms / folder.ms).toFixed(2),
        },
        install: {
          packages: M,
          stallTimeoutS: STALL,
          runs: RUNS,
          liveOnlyMs: Math.round(liveOnly),
          deadPlusLiveMs: Math.round(deadPlusLive),
          extraMs: Math.round(deadPlusLive - liveOnly),
          targetExtraMs: Math.round(STALL * 1000 + liveOnly * 0.1),
          deadServerConnectionsPerInstall: deadInInstall,
        },
        downloads: {
          packages: M,
          server: 'swpkg serve (repo-server static server) on 127.0.0.1',
          parallel4Ms: Math.round(liveOnly),
          serialMs: Math.round(serialMs),
          ratioSerialToParallel: +(serialMs / liveOnly).toFixed(2),
        },
      },
      null,
      2,
    ) + '\n',
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
