import { beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair } from '../../../catalog/index.js';
import {
  S3Target,
  createRelease,
  publishRepository,
  rotatePublishedRoot,
  verifyHosted,
  type PublishOptions,
} from '../../../publishing/index.js';
import { HttpRepoReader } from '../../../cli/shared/repo-readers.js';
import { buildPackage, type FakePackage } from '../../helpers/fake-repo.js';
import { runCli } from '../../helpers/run-cli.js';
import { bucketState, freshBucket, putObject, startRgw, type Rgw } from '../../helpers/rgw.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { hashedName } from '../../helpers/published.js';
import { pkgJson } from '../userland/helpers.js';

/**
 * Publishing to a real S3 server: Ceph's RADOS Gateway on 127.0.0.1
 * (scripts/rgw.sh). Clients and verify-hosted read the bucket over plain
 * HTTP (a public GetObject policy), the way they would read it behind a CDN.
 */
let rgw: Rgw;
beforeAll(async () => {
  rgw = await startRgw();
}, 300_000);

async function packagesDir(pkgs: FakePackage[]): Promise<string> {
  const d = await tempDir('s3-pkgs-');
  await mkdir(join(d, 'in'));
  for (const p of pkgs) {
    const b = await buildPackage(join(d, 'build'), p);
    await copyFile(b.file, join(d, 'in', b.file.split('/').pop()!));
  }
  return join(d, 'in');
}

function target(bucket: string, o: Partial<{ endpoint: string; secretAccessKey: string }> = {}): S3Target {
  return new S3Target({
    bucket,
    prefix: 'repo',
    endpoint: o.endpoint ?? rgw.endpoint,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: o.secretAccessKey ?? rgw.secretAccessKey,
    region: rgw.region,
    timeoutMs: 5000,
  });
}

function publishTo(t: S3Target, dir: string, key: KeyPair, more: Partial<PublishOptions> = {}): ReturnType<typeof publishRepository> {
  return publishRepository({ packagesDir: dir, out: t.where, target: t, key, name: 'main', ...more });
}

async function hostedPointer(url: string): Promise<{ catalog: string; retainedCatalogs?: string[] }> {
  const r = await fetch(`${url}hosted-repo.json`);
  expect(r.status).toBe(200);
  return (await r.json()) as { catalog: string; retainedCatalogs?: string[] };
}

const A = { name: 'alpha', version: '1.0.0', files: { 'bin/alpha': '#!/bin/sh\necho alpha\n' } };
const B = { name: 'beta', version: '2.0.0', depends: { alpha: '^1' } };

// Real uploads and CLI processes on a shared 2-core machine: a generous bound, not a speed assertion.
describe('swpkg repo publish --to s3:// (Ceph RGW)', { timeout: 120_000 }, () => {
  it('publishes through the CLI; verify-hosted passes and pkg installs over the bucket’s HTTP endpoint', async () => {
    const b = await freshBucket(rgw);
    const dir = await packagesDir([A, B]);
    const d = await tempDir();
    expect((await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')])).code).toBe(0);
    const pub = await runCli(
      'swpkg',
      ['repo', 'publish', dir, '--key', join(d, 'keys/swpkg.key'), '--to', b.s3, '--endpoint', rgw.endpoint, '--name', 'main', '--json'],
      { env: rgw.env },
    );
    expect(pub.json?.ok, pub.stdout + pub.stderr).toBe(true);
    const fp = pub.json.result.rootFingerprint as string;
    expect(pub.json.result.catalogPath).toMatch(/^catalogs\/\d+-[0-9a-f]{64}\.json$/);

    const v = await verifyHosted(new HttpRepoReader(b.url), { pinnedFingerprint: fp });
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.packages).toBe(2);

    // Hashed names are cacheable forever, the pointer only briefly.
    const cc = async (p: string): Promise<string | null> => (await fetch(`${b.url}${p}`, { method: 'HEAD' })).headers.get('cache-control');
    expect(await cc(pub.json.result.catalogPath)).toMatch(/immutable/);
    const alphaPath = (pub.json.result.packages as { name: string; path: string }[]).find((p) => p.name === 'alpha')!.path;
    expect(alphaPath).toMatch(hashedName('alpha-1.0.0-x86_64'));
    expect(await cc(alphaPath)).toMatch(/immutable/);
    expect(await cc(`${alphaPath}.sha256`)).toMatch(/immutable/);
    expect(await cc('roots/1.json')).toMatch(/immutable/);
    expect(await cc('hosted-repo.json')).toBe('public, max-age=60');

    const root = await tempDir('pkg-root-');
    expect((await pkgJson(root, ['repo', 'add', 'main', b.url, '--fingerprint', fp])).json?.ok).toBe(true);
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0].source).toBe(`${b.url}${pub.json.result.catalogPath}`);
    const inst = await pkgJson(root, ['install', 'beta', '--yes']);
    expect(inst.json?.ok, inst.stdout).toBe(true);

    // A rerun with nothing changed writes the same immutable bytes again: accepted, a new catalog version.
    const again = await runCli(
      'swpkg',
      ['repo', 'publish', dir, '--key', join(d, 'keys/swpkg.key'), '--to', b.s3, '--endpoint', rgw.endpoint, '--json'],
      { env: rgw.env },
    );
    expect(again.json?.ok, again.stdout + again.stderr).toBe(true);
    expect(again.json.result.retainedCatalogs).toEqual([pub.json.result.catalogPath]);
    expect((await verifyHosted(new HttpRepoReader(b.url))).ok).toBe(true);
  });

  it('keeps the last N catalogs and every package they name fetchable; older ones go', async () => {
    const b = await freshBucket(rgw);
    const key = generateKeyPair();
    const t0 = new Date('2026-12-01T00:00:00Z');
    const at = (s: number): Date => new Date(t0.getTime() + s * 1000);
    const r1 = await publishTo(target(b.bucket), await packagesDir([A]), key, { now: at(0), keepCatalogs: 2, retainSeconds: 60 });
    const r2 = await publishTo(target(b.bucket), await packagesDir([{ ...A, version: '1.1.0' }]), key, {
      now: at(1),
      keepCatalogs: 2,
      retainSeconds: 60,
    });
    // alpha 1.0.0 left the catalog but v1, still kept, names it.
    expect(r2.retainedCatalogs).toEqual([r1.catalogPath]);
    const alpha10 = r1.packages[0]!.path;
    expect((await fetch(`${b.url}${alpha10}`)).status).toBe(200);
    expect((await verifyHosted(new HttpRepoReader(b.url), { now: at(2) })).checks.filter((c) => !c.ok)).toEqual([]);
    // Two minutes on: past --retain, v1 and the package only it named are gone; v2 stays (N = 2).
    const r3 = await publishTo(target(b.bucket), await packagesDir([{ ...A, version: '1.2.0' }]), key, {
      now: at(120),
      keepCatalogs: 2,
      retainSeconds: 60,
    });
    expect(r3.retainedCatalogs).toEqual([r2.catalogPath]);
    expect(r3.deleted).toEqual([alpha10]);
    expect((await fetch(`${b.url}${alpha10}.sha256`)).status).not.toBe(200);
    expect((await fetch(`${b.url}${r1.catalogPath}`)).status).not.toBe(200);
    expect((await fetch(`${b.url}${r2.catalogPath}`)).status).toBe(200);
    expect((await fetch(`${b.url}${r2.packages[0]!.path}`)).status).toBe(200);
  });

  it('refuses a bucket that holds something other than a repository, writing nothing', async () => {
    const b = await freshBucket(rgw);
    await putObject(rgw, b.bucket, 'repo/photos/cat.jpg', 'not a repository');
    const before = await bucketState(rgw, b.bucket);
    await expect(publishTo(target(b.bucket), await packagesDir([A]), generateKeyPair())).rejects.toMatchObject({
      code: 'E_NOT_REPOSITORY',
    });
    expect(await bucketState(rgw, b.bucket)).toEqual(before);
  });

  it('wrong credentials: E_ACCESS_DENIED (exit 2), nothing written', async () => {
    const b = await freshBucket(rgw);
    const dir = await packagesDir([A]);
    await expect(publishTo(target(b.bucket, { secretAccessKey: 'wrong-secret' }), dir, generateKeyPair())).rejects.toMatchObject({
      code: 'E_ACCESS_DENIED',
    });
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    const r = await runCli(
      'swpkg',
      ['repo', 'publish', dir, '--key', join(d, 'keys/swpkg.key'), '--to', b.s3, '--endpoint', rgw.endpoint, '--json'],
      {
        env: { ...rgw.env, AWS_SECRET_ACCESS_KEY: 'wrong-secret' },
      },
    );
    expect(r.code).toBe(2);
    expect(r.json?.error?.code).toBe('E_ACCESS_DENIED');
    expect(await bucketState(rgw, b.bucket)).toEqual([]);
  });

  it('--to without --endpoint, without credentials, or not s3://: E_USAGE (exit 2), nothing written', async () => {
    const b = await freshBucket(rgw);
    const dir = await packagesDir([A]);
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    const base = ['repo', 'publish', dir, '--key', join(d, 'keys/swpkg.key'), '--json'];
    const cases: [string[], Record<string, string>][] = [
      [['--to', b.s3], rgw.env],
      [['--to', b.s3, '--endpoint', rgw.endpoint], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }],
      [['--to', `http://${b.bucket}/repo`, '--endpoint', rgw.endpoint], rgw.env],
      [['--to', `s3://${b.bucket}/../x`, '--endpoint', rgw.endpoint], rgw.env],
      [['--to', b.s3, '--endpoint', 'ftp://127.0.0.1/'], rgw.env],
    ];
    for (const [args, env] of cases) {
      const r = await runCli('swpkg', [...base, ...args], { env });
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.json?.error?.code).toBe('E_USAGE');
    }
    expect(await bucketState(rgw, b.bucket)).toEqual([]);
  });

  it('wrong endpoint: E_NETWORK naming it, nothing written', async () => {
    const b = await freshBucket(rgw);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(
      publishTo(target(b.bucket, { endpoint: `http://127.0.0.1:${port}` }), await packagesDir([A]), generateKeyPair()),
    ).rejects.toMatchObject({
      code: 'E_NETWORK',
    });
    expect(await bucketState(rgw, b.bucket)).toEqual([]);
  });

  it('a pointer moved by another publish meanwhile: the CAS loses with E_PUBLISH_RACE; clients see only the winner', async () => {
    const b = await freshBucket(rgw);
    const key = generateKeyPair();
    await publishTo(target(b.bucket), await packagesDir([A]), key);
    const winnerDir = await packagesDir([A, B]);
    let winner: Awaited<ReturnType<typeof publishRepository>> | undefined;
    // The other publisher swaps the pointer after this one read it and before this one swaps.
    class Interleaved extends S3Target {
      override async swapPointer(path: string, bytes: Uint8Array | string, token: string | null): Promise<void> {
        winner ??= await publishTo(target(b.bucket), winnerDir, key);
        return super.swapPointer(path, bytes, token);
      }
    }
    const loser = new Interleaved({
      bucket: b.bucket,
      prefix: 'repo',
      endpoint: rgw.endpoint,
      accessKeyId: rgw.accessKeyId,
      secretAccessKey: rgw.secretAccessKey,
    });
    await expect(publishTo(loser, await packagesDir([{ ...A, version: '9.0.0' }]), key)).rejects.toMatchObject({ code: 'E_PUBLISH_RACE' });
    expect((await hostedPointer(b.url)).catalog).toBe(winner!.catalogPath);
    const v = await verifyHosted(new HttpRepoReader(b.url));
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.catalogVersion).toBe(winner!.catalogVersion);
    // The loser retries from the new state and wins.
    const retry = await publishTo(target(b.bucket), await packagesDir([A, B, { ...A, name: 'gamma' }]), key);
    expect(retry.catalogVersion).toBeGreaterThan(winner!.catalogVersion);
  });

  it('two publishes started together: at most one pointer swap per state, the bucket always verifies', async () => {
    const b = await freshBucket(rgw);
    const key = generateKeyPair();
    await publishTo(target(b.bucket), await packagesDir([A]), key);
    const [d1, d2] = [await packagesDir([A, B]), await packagesDir([A, { ...B, version: '3.0.0' }])];
    const results = await Promise.allSettled([publishTo(target(b.bucket), d1, key), publishTo(target(b.bucket), d2, key)]);
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'E_PUBLISH_RACE' });
    expect((await verifyHosted(new HttpRepoReader(b.url))).checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('an object overwritten in the bucket: publish refuses E_IMMUTABLE, verify-hosted FAILs, pkg refuses the bytes', async () => {
    const b = await freshBucket(rgw);
    const key = generateKeyPair();
    const dir = await packagesDir([A]);
    const r = await publishTo(target(b.bucket), dir, key);
    await putObject(rgw, b.bucket, `repo/${r.packages[0]!.path}`, 'someone else’s bytes');
    const v = await verifyHosted(new HttpRepoReader(b.url));
    expect(v.ok).toBe(false);
    expect(v.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([r.packages[0]!.path]);
    const before = await bucketState(rgw, b.bucket);
    await expect(publishTo(target(b.bucket), dir, key)).rejects.toMatchObject({ code: 'E_IMMUTABLE' });
    expect(await bucketState(rgw, b.bucket)).toEqual(before);

    const root = await tempDir('pkg-root-');
    expect((await pkgJson(root, ['repo', 'add', 'main', b.url, '--fingerprint', r.rootFingerprint])).json?.ok).toBe(true);
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    const state = await treeHash(join(root, 'generations')).catch(() => 'none');
    const inst = await pkgJson(root, ['install', 'alpha', '--yes']);
    expect(inst.json?.ok).toBe(false);
    expect(['E_HASH_MISMATCH', 'E_TOO_LARGE', 'E_CORRUPT']).toContain(inst.json?.error?.code);
    expect(await treeHash(join(root, 'generations')).catch(() => 'none')).toBe(state);
  });

  it('a connection reset in the middle of an upload: the publish fails, clients still see the old state, a rerun completes', async () => {
    const b = await freshBucket(rgw);
    const key = generateKeyPair();
    await publishTo(target(b.bucket), await packagesDir([A]), key);
    const pointerBefore = await hostedPointer(b.url);
    // A proxy that resets the first connection carrying more than 4 KiB upstream (a package body).
    const upstream = new URL(rgw.endpoint);
    let reset = false;
    const proxy: Server = createServer((client: Socket) => {
      const server = connect(Number(upstream.port), upstream.hostname);
      let sent = 0;
      client.on('data', (c: Buffer) => {
        sent += c.length;
        if (!reset && sent > 4096) {
          reset = true;
          client.resetAndDestroy();
          server.destroy();
          return;
        }
        server.write(c);
      });
      server.on('data', (c: Buffer) => client.write(c));
      server.on('error', () => client.destroy());
      client.on('error', () => server.destroy());
      server.on('end', () => client.end());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const big = { name: 'big', version: '1.0.0', files: { 'share/big.bin': new Uint8Array(256 * 1024).map((_, i) => (i * 7919) % 251) } };
    const dir = await packagesDir([A, big]);
    try {
      const viaProxy = target(b.bucket, { endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` });
      await expect(publishTo(viaProxy, dir, key)).rejects.toMatchObject({ code: 'E_NETWORK' });
      expect(reset).toBe(true);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
    expect(await hostedPointer(b.url)).toEqual(pointerBefore);
    const rerun = await publishTo(target(b.bucket), dir, key);
    expect(rerun.packages.map((p) => p.name).sort()).toEqual(['alpha', 'big']);
    expect((await verifyHosted(new HttpRepoReader(b.url))).checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('a mirror serving a stale pointer: the client keeps its newer catalog (no rollback) and takes the live one', async () => {
    const live = await freshBucket(rgw);
    const mirror = await freshBucket(rgw);
    const key = generateKeyPair();
    const t0 = new Date();
    const at = (s: number): Date => new Date(t0.getTime() + s * 1000);
    const dir1 = await packagesDir([A]);
    const dir2 = await packagesDir([A, B]);
    const r1 = await publishTo(target(live.bucket), dir1, key, { now: at(0) });
    await publishTo(target(mirror.bucket), dir1, key, { now: at(0) });
    const pointerV1 = await (await fetch(`${mirror.url}hosted-repo.json`)).arrayBuffer();
    await publishTo(target(live.bucket), dir2, key, { now: at(1) });
    const r2 = await publishTo(target(mirror.bucket), dir2, key, { now: at(1) });
    const root = await tempDir('pkg-root-');
    expect(
      (await pkgJson(root, ['repo', 'add', 'main', mirror.url, '--fingerprint', r1.rootFingerprint, '--mirror', live.url])).json?.ok,
    ).toBe(true);
    expect((await pkgJson(root, ['update'])).json?.result.repos[0].version).toBe(r2.catalogVersion);

    // The first server now serves the older pointer (its v1 catalog is still retained there); the live one moved on.
    await putObject(rgw, mirror.bucket, 'repo/hosted-repo.json', new Uint8Array(pointerV1));
    const r3 = await publishTo(target(live.bucket), await packagesDir([A, B, { ...A, name: 'gamma' }]), key, { now: at(2) });
    const up = await pkgJson(root, ['update']);
    expect(up.json?.ok, up.stdout).toBe(true);
    expect(up.json?.result.repos[0]).toMatchObject({ version: r3.catalogVersion, source: `${live.url}${r3.catalogPath}` });

    // Both serve the stale pointer: refused as a rollback, the accepted catalog stays as it was.
    await putObject(rgw, live.bucket, 'repo/hosted-repo.json', new Uint8Array(pointerV1));
    const before = await treeHash(root);
    const stale = await pkgJson(root, ['update']);
    expect(stale.json?.error?.code).toBe('E_ROLLBACK');
    expect(await treeHash(root)).toBe(before);
  });
});

/** A bucket repository whose root names a release key (rotated in through the same target). */
async function releaseBucket(): Promise<{ b: Awaited<ReturnType<typeof freshBucket>>; key: KeyPair; rel: KeyPair; t: S3Target }> {
  const b = await freshBucket(rgw);
  const key = generateKeyPair();
  const rel = generateKeyPair();
  const t = target(b.bucket);
  await publishTo(t, await packagesDir([A, B]), key);
  await rotatePublishedRoot({
    out: t.where,
    target: t,
    oldRootKeys: [key],
    newRootKeys: [key],
    releaseKeys: [{ type: 'ed25519', public: Buffer.from(rel.publicKey).toString('hex') }],
    expiresIn: 365 * 86400,
  });
  return { b, key, rel, t };
}

describe('releases and root rotation on an S3 target (Ceph RGW)', { timeout: 180_000 }, () => {
  it('rotate-root and release create --to s3://; the pinned package survives a publish that drops it; verify-hosted and pkg read it over HTTP', async () => {
    const b = await freshBucket(rgw);
    const d = await tempDir();
    for (const k of ['root', 'release']) expect((await runCli('swpkg', ['key', 'generate', '--out', join(d, k)])).code).toBe(0);
    const rootKey = join(d, 'root/swpkg.key');
    const s3 = ['--to', b.s3, '--endpoint', rgw.endpoint];
    const cli = async (args: string[]): Promise<Record<string, unknown>> => {
      const r = await runCli('swpkg', [...args, '--json'], { env: rgw.env });
      expect(r.json?.ok, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(true);
      return r.json.result;
    };
    const pub = await cli(['repo', 'publish', await packagesDir([A, B]), '--key', rootKey, ...s3, '--name', 'main']);
    const alpha10 = (pub['packages'] as { name: string; path: string }[]).find((p) => p.name === 'alpha')!.path;
    const rot = await cli([
      'repo',
      'rotate-root',
      ...s3,
      '--old-key',
      rootKey,
      '--new-key',
      rootKey,
      '--release-key',
      join(d, 'release/swpkg.pub'),
    ]);
    expect(rot['version']).toBe(2);
    expect((await hostedPointer(b.url)) as unknown).toMatchObject({ rootVersion: 2, rootFingerprint: rot['fingerprint'] });
    const rel = await cli(['release', 'create', ...s3, '--id', 'edge', '--key', join(d, 'release/swpkg.key'), '--arch', 'x86_64']);
    expect(rel['path']).toBe('releases/edge/1.json');
    expect((rel['packages'] as { location: string }[]).map((p) => p.location)).toContain(alpha10);
    const head = await fetch(`${b.url}releases/edge/1.json`, { method: 'HEAD' });
    expect(head.headers.get('cache-control')).toMatch(/immutable/);
    const listing = (await (await fetch(`${b.url}releases/index.json`)).json()) as { releases: { id: string; version: number }[] };
    expect(listing.releases.map((r) => [r.id, r.version])).toEqual([['edge', 1]]);
    expect(await (await fetch(`${b.url}index.html`)).text()).toContain('releases/edge/1.json');

    // The next set drops alpha 1.0.0; nothing but the release keeps it (one catalog kept, no retention window).
    const next = await cli([
      'repo',
      'publish',
      await packagesDir([{ ...A, version: '1.1.0' }, B]),
      '--key',
      rootKey,
      ...s3,
      '--retain',
      '0s',
      '--keep-catalogs',
      '1',
    ]);
    expect(next['retained']).toEqual([alpha10]);
    expect(next['deleted']).toEqual([]);
    // The page a publish renders into the bucket lists the bucket's releases.
    expect(await (await fetch(`${b.url}index.html`)).text()).toContain('releases/edge/1.json');
    expect((await fetch(`${b.url}${alpha10}`)).status).toBe(200);
    const v = await verifyHosted(new HttpRepoReader(b.url), { pinnedFingerprint: rot['fingerprint'] as string });
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    // The release row: signed by the release role, alpha 1.0.0 (no longer in the catalog) present with its hash.
    expect(v.checks.find((c) => c.name === 'releases/edge/1.json')?.detail).toMatch(/2 package\(s\), 2 in this repository, all present/);

    const root = await tempDir('pkg-root-');
    expect((await pkgJson(root, ['repo', 'add', 'main', b.url, '--fingerprint', pub['rootFingerprint'] as string])).json?.ok).toBe(true);
    // The client walks to root v2 (roots/2.json in the bucket), whose release role trusts the release key.
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    const inst = await pkgJson(root, ['install', '--release', `${b.url}releases/edge/1.json`, '--yes']);
    expect(inst.json?.ok, inst.stdout + inst.stderr).toBe(true);
    expect(inst.json?.result.release.digest).toBe(rel['digest']);
  });

  it('refuses a key the root does not name, a taken version, an altered or missing package, a bucket with no repository: nothing written', async () => {
    const { b, key, rel, t } = await releaseBucket();
    const opts = { out: t.where, target: t, id: 'edge', arch: 'x86_64', expiresIn: 86400 };
    await createRelease({ ...opts, keys: [rel] });
    const republished = await publishTo(t, await packagesDir([A, B]), key);
    const alpha = republished.packages.find((p) => p.name === 'alpha')!.path;
    const beta = republished.packages.find((p) => p.name === 'beta')!.path;
    const cases: { name: string; run: () => Promise<unknown>; code: string; before?: () => Promise<void> }[] = [
      { name: 'the catalog key', run: () => createRelease({ ...opts, keys: [key] }), code: 'E_UNKNOWN_KEY' },
      { name: 'a published version', run: () => createRelease({ ...opts, keys: [rel], version: 1 }), code: 'E_IMMUTABLE' },
      {
        name: 'a rotation not signed by the current root key',
        run: () =>
          rotatePublishedRoot({
            out: t.where,
            target: t,
            oldRootKeys: [generateKeyPair()],
            newRootKeys: [generateKeyPair()],
            expiresIn: 86400,
          }),
        code: 'E_UNKNOWN_KEY',
      },
      {
        name: 'a missing package object',
        before: async () => {
          const del = await rgw.aws.fetch(`${rgw.endpoint}/${b.bucket}/repo/${beta}`, { method: 'DELETE' });
          expect(del.ok).toBe(true);
        },
        run: () => createRelease({ ...opts, keys: [rel] }),
        code: 'E_NOT_FOUND',
      },
      {
        name: 'an altered package object',
        before: () => putObject(rgw, b.bucket, `repo/${alpha}`, 'someone else’s bytes'),
        run: () => createRelease({ ...opts, keys: [rel] }),
        code: 'E_HASH_MISMATCH',
      },
    ];
    for (const c of cases) {
      await c.before?.();
      const before = await bucketState(rgw, b.bucket);
      await expect(c.run(), c.name).rejects.toMatchObject({ code: c.code });
      expect(await bucketState(rgw, b.bucket), c.name).toEqual(before);
    }
    const empty = await freshBucket(rgw);
    const et = target(empty.bucket);
    await expect(createRelease({ ...opts, out: et.where, target: et, keys: [rel] })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(
      rotatePublishedRoot({ out: et.where, target: et, oldRootKeys: [key], newRootKeys: [key], expiresIn: 86400 }),
    ).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await bucketState(rgw, empty.bucket)).toEqual([]);
  });

  it('two release creators racing for one version: one wins, the other gets E_IMMUTABLE; the listing names the winner', async () => {
    const { b, rel, t } = await releaseBucket();
    const opts = { id: 'edge', arch: 'x86_64', expiresIn: 86400, keys: [rel], version: 1 };
    const results = await Promise.allSettled([
      createRelease({ ...opts, out: t.where, target: target(b.bucket), packages: ['alpha@1.0.0'] }),
      createRelease({ ...opts, out: t.where, target: target(b.bucket), packages: ['alpha@1.0.0', 'beta@2.0.0'] }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'E_IMMUTABLE' });
    const listing = (await (await fetch(`${b.url}releases/index.json`)).json()) as { releases: { digest: string }[] };
    expect(listing.releases.map((r) => r.digest)).toEqual([(won[0] as PromiseFulfilledResult<{ digest: string }>).value.digest]);
  });

  it('a rotation whose pointer swap meets a publish keeps the publish: the pointer names its catalog and the new root', async () => {
    const b = await freshBucket(rgw);
    const key = generateKeyPair();
    await publishTo(target(b.bucket), await packagesDir([A]), key);
    let other: Awaited<ReturnType<typeof publishRepository>> | undefined;
    class Interleaved extends S3Target {
      override async swapPointer(path: string, bytes: Uint8Array | string, token: string | null): Promise<void> {
        other ??= await publishTo(target(b.bucket), await packagesDir([A, B]), key);
        return super.swapPointer(path, bytes, token);
      }
    }
    const t = new Interleaved({
      bucket: b.bucket,
      prefix: 'repo',
      endpoint: rgw.endpoint,
      accessKeyId: rgw.accessKeyId,
      secretAccessKey: rgw.secretAccessKey,
    });
    const rot = await rotatePublishedRoot({ out: t.where, target: t, oldRootKeys: [key], newRootKeys: [key], expiresIn: 365 * 86400 });
    expect(await hostedPointer(b.url)).toMatchObject({ catalog: other!.catalogPath, rootVersion: 2, rootFingerprint: rot.fingerprint });
    expect((await verifyHosted(new HttpRepoReader(b.url))).checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('release create and rotate-root --to: usage errors before any request (exit 2), nothing written', async () => {
    const b = await freshBucket(rgw);
    const d = await tempDir();
    await runCli('swpkg', ['key', 'generate', '--out', join(d, 'keys')]);
    const key = join(d, 'keys/swpkg.key');
    const cases: string[][] = [
      ['release', 'create', '--to', b.s3, '--id', 'edge', '--key', key, '--arch', 'x86_64'],
      ['release', 'create', d, '--to', b.s3, '--endpoint', rgw.endpoint, '--id', 'edge', '--key', key, '--arch', 'x86_64'],
      ['release', 'create', '--id', 'edge', '--key', key, '--arch', 'x86_64'],
      ['repo', 'rotate-root', '--to', `s3://${b.bucket}/../x`, '--endpoint', rgw.endpoint, '--old-key', key, '--new-key', key],
    ];
    for (const args of cases) {
      const r = await runCli('swpkg', [...args, '--json'], { env: rgw.env });
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.json?.error?.code, args.join(' ')).toBe('E_USAGE');
    }
    expect(await bucketState(rgw, b.bucket)).toEqual([]);
  });
});
