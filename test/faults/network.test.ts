import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../helpers/http-table-server.js';
import { tempDir, treeHash } from '../helpers/tmp.js';
import { addMainRepo, pkgJson } from '../integration/userland/helpers.js';

/**
 * Network faults during `pkg install` against a loopback server: a reset
 * mid-stream (the next run resumes with Range), a stall, more bytes than
 * declared, wrong bytes, 404/500, a stale catalog, and failover to a mirror.
 */
/** The package's hash name in the web root (set with each fresh repository). */
let PATH: string;
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  // Incompressible content so the package is large enough to cut in the middle.
  repo = await buildFakeRepo({ packages: [{ name: 'big', version: '1.0.0', files: { 'share/big/blob': randomBytes(600_000) } }] });
  PATH = repo.packages.get('big@1.0.0')!.path;
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function refused(code: string, env: Record<string, string> = {}): Promise<void> {
  const before = await treeHash(root);
  const r = await pkgJson(root, ['install', 'big', '--yes'], env);
  expect(r.json?.error?.code, r.stdout).toBe(code);
  expect(await treeHash(root)).toBe(before);
}

describe('network faults during install', () => {
  it('a reset mid-stream fails the run (E_NETWORK, exit 5); the next run resumes with Range', async () => {
    const body = await repo.bytes(PATH);
    repo.table.set(PATH, (req) => (req.count === 0 ? { body, truncateAt: 200_000 } : { body }));
    const first = await pkgJson(root, ['install', 'big', '--yes'], { PKG_FETCH_RETRIES: '0' });
    expect(first.json?.error?.code).toBe('E_NETWORK');
    expect(first.code).toBe(5);
    const parts = (await readdir(join(root, 'cache'))).filter((n) => n.endsWith('.part'));
    expect(parts).toHaveLength(1);
    const have = (await readFile(join(root, 'cache', parts[0]!))).length;
    expect(have).toBeGreaterThan(0);
    expect((await pkgJson(root, ['doctor'])).json?.result.partialDownloads).toHaveLength(1);

    const second = await pkgJson(root, ['install', 'big', '--yes'], { PKG_FETCH_RETRIES: '0' });
    expect(second.json?.ok, second.stdout).toBe(true);
    expect(second.json?.result.downloads[0]).toMatchObject({ name: 'big', resumedFrom: have, bytes: body.length - have });
    const pkgRequests = server.requests.filter((r) => r.path === PATH);
    expect(pkgRequests.map((r) => r.range)).toEqual([undefined, `bytes=${have}-`]);
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
    expect(await readdir(join(root, 'cache'))).toEqual([]);
  });

  it('a reset is resumed within the same run when retries are allowed', async () => {
    const body = await repo.bytes(PATH);
    repo.table.set(PATH, (req) => (req.count === 0 ? { body, truncateAt: 100_000 } : { body }));
    const r = await pkgJson(root, ['install', 'big', '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.warnings?.join('\n')).toMatch(/resuming/);
  });

  it('a stall fails with E_STALLED', async () => {
    repo.table.set(PATH, { body: await repo.bytes(PATH), stallAfter: 1000 });
    const r = await pkgJson(root, ['install', 'big', '--yes'], { PKG_STALL_TIMEOUT: '0.5', PKG_FETCH_RETRIES: '0' });
    expect(r.json?.error?.code).toBe('E_STALLED');
    expect(r.code).toBe(5);
  });

  it('a server dripping bytes below the minimum average rate fails with E_STALLED naming the rate', async () => {
    // 64 bytes every 20 ms passes the window rule (bytes in every window) but averages ~3 KB/s.
    repo.table.set(PATH, { body: await repo.bytes(PATH), trickle: { bytes: 64, everyMs: 20 } });
    const store = await treeHash(join(root, 'store'));
    const gens = await treeHash(join(root, 'generations'));
    const r = await pkgJson(root, ['install', 'big', '--yes', '--stall-timeout', '0.3', '--min-rate', '20000'], { PKG_FETCH_RETRIES: '0' });
    expect(r.json?.error?.code, r.stdout).toBe('E_STALLED');
    expect(r.code).toBe(5);
    expect(r.json?.error?.details).toMatchObject({ rule: 'rate', minBytesPerSecond: 20000 });
    expect(r.json?.error?.details['bytesPerSecond']).toBeLessThan(20000);
    expect(r.json?.error?.message).toMatch(/B\/s, below the minimum average of 20000 B\/s/);
    expect(await treeHash(join(root, 'store'))).toBe(store);
    expect(await treeHash(join(root, 'generations'))).toBe(gens);
  });

  it('the same drip through `pkg update` (the catalog) fails with E_STALLED and keeps the accepted catalog', async () => {
    await repo.publish([{ name: 'newer', version: '1.0.0' }]);
    repo.table.set('catalog.json', { body: await repo.bytes('catalog.json'), trickle: { bytes: 16, everyMs: 20 } });
    const before = await treeHash(root);
    const r = await pkgJson(root, ['update'], { PKG_STALL_TIMEOUT: '0.3', PKG_MIN_RATE: '5000' });
    expect(r.json?.error?.code, r.stdout).toBe('E_STALLED');
    expect(r.json?.error?.details).toMatchObject({ rule: 'rate', minBytesPerSecond: 5000 });
    expect(await treeHash(root)).toBe(before);
  });

  it('a transfer fast enough for the rate rule but longer than the deadline fails with E_STALLED (deadline), without retries', async () => {
    repo.table.set(PATH, { body: await repo.bytes(PATH), trickle: { bytes: 4096, everyMs: 20 } });
    const store = await treeHash(join(root, 'store'));
    const r = await pkgJson(root, ['install', 'big', '--yes', '--fetch-deadline', '0.5'], { PKG_MIN_RATE: '1000', PKG_FETCH_RETRIES: '2' });
    expect(r.json?.error?.code, r.stdout).toBe('E_STALLED');
    expect(r.json?.error?.details).toMatchObject({ rule: 'deadline', deadlineMs: 500 });
    // One request: resuming would not beat a deadline that covers the whole file.
    expect(server.requests.filter((q) => q.path === PATH)).toHaveLength(1);
    expect(await treeHash(join(root, 'store'))).toBe(store);
  });

  it('more bytes than the catalog declares fail with E_TOO_LARGE and leave nothing', async () => {
    repo.table.set(PATH, { body: Buffer.concat([await repo.bytes(PATH), randomBytes(5000)]) });
    await refused('E_TOO_LARGE');
  });

  it('wrong bytes fail with E_HASH_MISMATCH and leave nothing', async () => {
    repo.table.set(PATH, { body: randomBytes((await repo.bytes(PATH)).length) });
    await refused('E_HASH_MISMATCH');
  });

  it('404 and 500 fail with E_HTTP', async () => {
    repo.table.delete(PATH);
    await refused('E_HTTP');
    repo.table.set(PATH, { status: 500 });
    await refused('E_HTTP');
  });

  it('a stale catalog from the server is refused by update (E_ROLLBACK) and the accepted one kept', async () => {
    const stale = await repo.bytes('catalog.json');
    await repo.publish([{ name: 'newer', version: '1.0.0' }]);
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    repo.table.set('catalog.json', { body: stale });
    const before = await treeHash(root);
    expect((await pkgJson(root, ['update'])).json?.error?.code).toBe('E_ROLLBACK');
    expect(await treeHash(root)).toBe(before);
    expect((await pkgJson(root, ['search', 'newer'])).json?.result).toHaveLength(1);
  });

  it('fails over to the next mirror when the first is down', async () => {
    const mirror = await startTableServer(repo.table);
    try {
      const set = await pkgJson(root, ['repo', 'set', 'main', server.url, '--mirror', mirror.url]);
      expect(set.json?.ok).toBe(true);
      // Both servers mount the same table: the first request (the primary) gets 503, the mirror the file.
      const body = await repo.bytes(PATH);
      let primaryHits = 0;
      repo.table.set(PATH, () => (primaryHits++ === 0 ? { status: 503 } : { body }));
      const r = await pkgJson(root, ['install', 'big', '--yes']);
      expect(r.json?.ok, r.stdout).toBe(true);
      expect(r.json?.warnings?.join('\n')).toMatch(/trying the next mirror/);
      expect(mirror.requests.some((q) => q.path === PATH)).toBe(true);
    } finally {
      await mirror.close();
    }
  });
});

describe('redirects', () => {
  const redirect = (location: string, status = 302): { status: number; headers: Record<string, string> } => ({
    status,
    headers: { location },
  });

  it('follows a redirect within the same server', async () => {
    repo.table.set('moved/big.swpkg', { body: await repo.bytes(PATH) });
    repo.table.set(PATH, redirect('/moved/big.swpkg', 301));
    const r = await pkgJson(root, ['install', 'big', '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
  });

  it('refuses a redirect to another origin (E_REDIRECT, exit 3) without contacting it', async () => {
    const other = await startTableServer(new Map([[PATH, { body: await repo.bytes(PATH) }]]));
    try {
      repo.table.set(PATH, redirect(`${other.url}${PATH}`));
      const before = await treeHash(root);
      const r = await pkgJson(root, ['install', 'big', '--yes']);
      expect(r.json?.error?.code, r.stdout).toBe('E_REDIRECT');
      expect(r.code).toBe(3);
      expect(r.json?.error?.details).toMatchObject({ reason: 'origin', to: `${other.url}${PATH}` });
      expect(other.requests).toEqual([]);
      expect(await treeHash(root)).toBe(before);
    } finally {
      await other.close();
    }
  });

  it('follows a redirect to a configured mirror', async () => {
    const mirror = await startTableServer(new Map([[PATH, { body: await repo.bytes(PATH) }]]));
    try {
      expect((await pkgJson(root, ['repo', 'set', 'main', server.url, '--mirror', mirror.url])).json?.ok).toBe(true);
      repo.table.set(PATH, redirect(`${mirror.url}${PATH}`, 307));
      const r = await pkgJson(root, ['install', 'big', '--yes']);
      expect(r.json?.ok, r.stdout).toBe(true);
      expect(mirror.requests.map((q) => q.path)).toEqual([PATH]);
    } finally {
      await mirror.close();
    }
  });

  it('refuses a redirect to file:// (E_REDIRECT)', async () => {
    repo.table.set(PATH, redirect('file:///etc/passwd'));
    await refused('E_REDIRECT');
  });

  it('refuses a redirect loop and an endless chain (E_REDIRECT_LOOP)', async () => {
    repo.table.set(PATH, redirect('/packages/other.swpkg'));
    repo.table.set('packages/other.swpkg', redirect(`/${PATH}`));
    await refused('E_REDIRECT_LOOP');
    repo.table.set(PATH, (req) => redirect(`/${PATH}?hop=${req.count}`));
    await refused('E_REDIRECT_LOOP');
  });

  it('refuses oversized response headers (E_HEADERS_TOO_LARGE)', async () => {
    repo.table.set(PATH, { body: await repo.bytes(PATH), headers: { 'x-padding': 'y'.repeat(64 * 1024) } });
    await refused('E_HEADERS_TOO_LARGE');
  });

  it('pkg update refuses a catalog redirected to another origin and keeps the accepted one', async () => {
    const other = await startTableServer(new Map([['catalog.json', { body: await repo.bytes('catalog.json') }]]));
    try {
      repo.table.set('catalog.json', redirect(`${other.url}catalog.json`));
      const before = await treeHash(root);
      const r = await pkgJson(root, ['update']);
      expect(r.json?.error?.code, r.stdout).toBe('E_REDIRECT');
      expect(other.requests).toEqual([]);
      expect(await treeHash(root)).toBe(before);
    } finally {
      await other.close();
    }
  });
});
