import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { get } from 'node:http';
import { writeFile, rename, readdir, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { startStaticServer, type StaticServer } from '../../../repo-server/index.js';
import { SwpkgError } from '../../../catalog/index.js';
import { makeFixture, rawRequest, waitFor, type Fixture } from './helpers.js';

let fx: Fixture;
let server: StaticServer;
const logLines: string[] = [];
const PKG = '/packages/a-1.0.0-any.swpkg';

beforeAll(async () => {
  fx = await makeFixture();
  server = await startStaticServer({ root: fx.root, log: (l) => logLines.push(l) });
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
  await fx?.cleanup();
});

describe('serving files', () => {
  it('GET sends the file with length, type, validators and range support', async () => {
    const r = await rawRequest(server.url, PKG);
    expect(r.status).toBe(200);
    expect(r.body.equals(fx.pkg)).toBe(true);
    expect(r.headers['content-length']).toBe(String(fx.pkg.length));
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['etag']).toMatch(/^"[0-9a-f-]+"$/);
    expect(Date.parse(r.headers['last-modified'] ?? '')).not.toBeNaN();
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('fetch (undici) reads the same bytes', async () => {
    const res = await fetch(new URL(PKG, server.url));
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(fx.pkg)).toBe(true);
  });

  it('HEAD sends the headers of GET and no body', async () => {
    const r = await rawRequest(server.url, PKG, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(fx.pkg.length));
    expect(r.body.length).toBe(0);
  });

  it('HEAD ignores Range (range handling is defined for GET only, RFC 9110 §14.2)', async () => {
    const r = await rawRequest(server.url, PKG, { method: 'HEAD', headers: { Range: 'bytes=0-9' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(fx.pkg.length));
  });

  it('an empty file is 200 with Content-Length 0', async () => {
    const r = await rawRequest(server.url, '/empty.json');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('0');
    expect(r.body.length).toBe(0);
  });

  it.each([
    ['/catalog.json', 'application/json'],
    ['/hosted-repo.json', 'application/json'],
    ['/index.html', 'text/html; charset=utf-8'],
    ['/repo-root.pub', 'text/plain; charset=utf-8'],
    ['/catalog.json.sha256', 'text/plain; charset=utf-8'],
  ])('%s has Content-Type %s', async (path, type) => {
    const r = await rawRequest(server.url, path);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
  });

  it.each([
    [PKG, 'public, max-age=31536000, immutable'],
    ['/packages/a-1.0.0-any.swpkg.sha256', 'public, max-age=31536000, immutable'],
    ['/catalog.json', 'no-cache'],
    ['/catalog.json.sha256', 'no-cache'],
    ['/hosted-repo.json', 'no-cache'],
    ['/index.html', 'no-cache'],
    ['/roots/1.json', 'no-cache'],
    ['/', 'no-cache'],
  ])('%s has Cache-Control %s', async (path, cc) => {
    const r = await rawRequest(server.url, path);
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe(cc);
  });

  it('/ serves index.html; a folder redirects to its slash form, which serves its index.html', async () => {
    const home = await rawRequest(server.url, '/');
    expect(home.body.toString()).toContain('<title>repo</title>');
    const redirect = await rawRequest(server.url, '/sub');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('/sub/');
    const sub = await rawRequest(server.url, '/sub/');
    expect(sub.status).toBe(200);
    expect(sub.body.toString()).toBe('<p>sub</p>');
    expect((await rawRequest(server.url, '/empty-dir/')).status).toBe(404);
    expect((await rawRequest(server.url, '/missing.json')).status).toBe(404);
  });

  it('a symlink that stays inside the root is followed', async () => {
    const r = await rawRequest(server.url, '/latest.swpkg');
    expect(r.status).toBe(200);
    expect(r.body.equals(fx.pkg)).toBe(true);
  });

  it('a FIFO in the root is a 404 and does not block the server', async () => {
    const r = await rawRequest(server.url, '/fifo');
    expect(r.status).toBe(404);
    expect((await rawRequest(server.url, '/health')).status).toBe(200);
  });

  it('a file replaced by rename gets a new ETag', async () => {
    await writeFile(join(fx.root, 'roots', 'tmp'), '{"v":2}');
    const before = (await rawRequest(server.url, '/roots/1.json')).headers.etag;
    await rename(join(fx.root, 'roots', 'tmp'), join(fx.root, 'roots', '1.json'));
    const after = await rawRequest(server.url, '/roots/1.json');
    expect(after.body.toString()).toBe('{"v":2}');
    expect(after.headers.etag).not.toBe(before);
  });
});

describe('ranges', () => {
  const size = () => fx.pkg.length;

  it.each([
    ['bytes=0-9', 0, 9],
    ['bytes=100-', 100, -1],
    ['bytes=-50', -50, -1],
    ['bytes=10-99999999', 10, -1],
  ])('%s → 206 with Content-Range and exactly those bytes', async (range, from, to) => {
    const s = size();
    const start = from < 0 ? s + from : from;
    const end = to < 0 ? s - 1 : to;
    const r = await rawRequest(server.url, PKG, { headers: { Range: range } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${s}`);
    expect(r.headers['content-length']).toBe(String(end - start + 1));
    expect(r.body.equals(fx.pkg.subarray(start, end + 1))).toBe(true);
  });

  it.each(['bytes=999999999999-', 'bytes=-0', `bytes=${256 * 1024 + 17}-`])('%s → 416 with Content-Range: bytes */size', async (range) => {
    const r = await rawRequest(server.url, PKG, { headers: { Range: range } });
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${size()}`);
    expect(r.body.includes(fx.pkg.subarray(0, 16))).toBe(false);
  });

  it.each(['bytes=5-2', 'bytes=abc', 'bytes=0-1,2-3', 'lines=1-2', 'bytes=' + '9'.repeat(5000)])(
    'an unusable Range %s is ignored: 200 with the whole file',
    async (range) => {
      const r = await rawRequest(server.url, PKG, { headers: { Range: range } });
      expect(r.status).toBe(200);
      expect(r.body.equals(fx.pkg)).toBe(true);
    },
  );

  it('If-Range with the current ETag honours the range; a stale one sends the whole file', async () => {
    const etag = (await rawRequest(server.url, PKG, { method: 'HEAD' })).headers.etag ?? '';
    const fresh = await rawRequest(server.url, PKG, { headers: { Range: 'bytes=0-3', 'If-Range': etag } });
    expect(fresh.status).toBe(206);
    expect(fresh.body.equals(fx.pkg.subarray(0, 4))).toBe(true);
    const stale = await rawRequest(server.url, PKG, { headers: { Range: 'bytes=0-3', 'If-Range': '"stale"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.equals(fx.pkg)).toBe(true);
    const weak = await rawRequest(server.url, PKG, { headers: { Range: 'bytes=0-3', 'If-Range': `W/${etag}` } });
    expect(weak.status).toBe(200);
  });

  it('If-Range with the Last-Modified date honours the range', async () => {
    const lm = (await rawRequest(server.url, PKG, { method: 'HEAD' })).headers['last-modified'] ?? '';
    const r = await rawRequest(server.url, PKG, { headers: { Range: 'bytes=1-2', 'If-Range': lm } });
    expect(r.status).toBe(206);
  });
});

describe('conditional requests', () => {
  it('If-None-Match with the ETag → 304 without a body, keeping validators and Cache-Control', async () => {
    const first = await rawRequest(server.url, '/catalog.json');
    const etag = first.headers.etag ?? '';
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await rawRequest(server.url, '/catalog.json', { headers: { 'If-None-Match': inm } });
      expect(r.status).toBe(304);
      expect(r.body.length).toBe(0);
      expect(r.headers.etag).toBe(etag);
      expect(r.headers['cache-control']).toBe('no-cache');
    }
    const miss = await rawRequest(server.url, '/catalog.json', { headers: { 'If-None-Match': '"nope"' } });
    expect(miss.status).toBe(200);
    expect(miss.body.equals(first.body)).toBe(true);
  });

  it('If-Modified-Since → 304 when unchanged, ignored when If-None-Match is present (RFC 9110 §13.2.2)', async () => {
    const lm = (await rawRequest(server.url, '/catalog.json')).headers['last-modified'] ?? '';
    expect((await rawRequest(server.url, '/catalog.json', { headers: { 'If-Modified-Since': lm } })).status).toBe(304);
    const old = new Date(Date.parse(lm) - 3600_000).toUTCString();
    expect((await rawRequest(server.url, '/catalog.json', { headers: { 'If-Modified-Since': old } })).status).toBe(200);
    const both = await rawRequest(server.url, '/catalog.json', { headers: { 'If-Modified-Since': lm, 'If-None-Match': '"nope"' } });
    expect(both.status).toBe(200);
  });
});

describe('refusals: never the file', () => {
  const traversal = [
    '/../outside/secret.txt',
    '/../../../../../../etc/passwd',
    '/%2e%2e/outside/secret.txt',
    '/%2E%2E/%2E%2E/etc/passwd',
    '/.%2e/outside/secret.txt',
    '/packages/../../outside/secret.txt',
    '/..%2Foutside%2Fsecret.txt',
    '/packages%2F..%2F..%2Foutside%2Fsecret.txt',
    '/..%5Coutside%5Csecret.txt',
    '/..\\outside\\secret.txt',
    '/catalog.json%00',
    '/%00',
    '/.hidden',
    '/.git/config',
    '/.git/',
    '/%2egit/config',
    '/packages/../.git/config',
    '/escape.txt',
    '/escape-dir/secret.txt',
    '/to-hidden.txt',
    'http://127.0.0.1/../outside/secret.txt',
  ];
  it.each(traversal)('%s → 400 or 404 without the secret', async (path) => {
    const r = await rawRequest(server.url, path);
    expect([400, 404]).toContain(r.status);
    expect(r.body.toString()).not.toContain(fx.secret);
  });

  it('ranges on a refused path do not leak either', async () => {
    const r = await rawRequest(server.url, '/escape.txt', { headers: { Range: 'bytes=0-3' } });
    expect(r.status).toBe(404);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND'])('%s → 405 with Allow: GET, HEAD', async (method) => {
    const r = await rawRequest(server.url, '/catalog.json', { method });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
  });

  it('a request target over the length bound → 414', async () => {
    const r = await rawRequest(server.url, '/' + 'a'.repeat(5000));
    expect(r.status).toBe(414);
  });

  it('refusals leave the root unchanged', async () => {
    const before = (await readdir(fx.root)).sort();
    await rawRequest(server.url, '/new-file', { method: 'PUT' });
    await rawRequest(server.url, '/catalog.json', { method: 'DELETE' });
    expect((await readdir(fx.root)).sort()).toEqual(before);
  });
});

describe('health, metrics and access log', () => {
  it('/health is 200 JSON {ok:true}', async () => {
    const res = await fetch(new URL('/health', server.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ ok: true });
  });

  it('/metrics counts responses by status and body bytes, in Prometheus text format', async () => {
    const before = server.metrics();
    await rawRequest(server.url, PKG);
    await rawRequest(server.url, '/missing');
    const res = await fetch(new URL('/metrics', server.url));
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await res.text();
    const value = (line: RegExp): number => Number(line.exec(text)?.[1]);
    expect(value(/^swpkg_http_requests_total\{code="404"\} (\d+)$/m)).toBe((before.requests['404'] ?? 0) + 1);
    expect(value(/^swpkg_http_requests_total\{code="200"\} (\d+)$/m)).toBe((before.requests['200'] ?? 0) + 1);
    expect(value(/^swpkg_http_response_body_bytes_total (\d+)$/m)).toBeGreaterThanOrEqual(before.bytesSent + fx.pkg.length);
    // The /metrics request itself is the one in flight.
    expect(value(/^swpkg_http_requests_in_flight (\d+)$/m)).toBe(1);
    expect(text).toMatch(/^# TYPE swpkg_http_requests_total counter$/m);
  });

  it('logs one line per request with method, path, status and bytes; escapes hostile fields', async () => {
    const n = logLines.length;
    await rawRequest(server.url, '/catalog.json', { headers: { 'User-Agent': 'evil" agent\\' } });
    await waitFor(() => logLines.length > n, 'the access log line');
    const line = logLines[logLines.length - 1] ?? '';
    expect(line).toMatch(/"GET \/catalog\.json HTTP\/1\.1" 200 \d+ /);
    expect(line).toContain('evil\\x22 agent\\x5c');
    expect(line.split('\n')).toHaveLength(1);
  });
});

describe('errors at start', () => {
  it('a missing root → E_NOT_FOUND', async () => {
    await expect(startStaticServer({ root: join(fx.root, 'nope') })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('a root that is a file → E_USAGE', async () => {
    await expect(startStaticServer({ root: join(fx.root, 'catalog.json') })).rejects.toMatchObject({ code: 'E_USAGE' });
  });

  it('a port in use → E_USAGE, and the running server is unaffected', async () => {
    const err = await startStaticServer({ root: fx.root, port: server.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwpkgError);
    expect((err as SwpkgError).code).toBe('E_USAGE');
    expect((await rawRequest(server.url, '/health')).status).toBe(200);
  });
});

describe('options', () => {
  it('cacheControl overrides the policy per path and falls back to the default', async () => {
    const s = await startStaticServer({ root: fx.root, cacheControl: (p) => (p === 'catalog.json' ? 'public, max-age=5' : undefined) });
    try {
      expect((await rawRequest(s.url, '/catalog.json')).headers['cache-control']).toBe('public, max-age=5');
      expect((await rawRequest(s.url, PKG)).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    } finally {
      await s.close({ graceMs: 0 });
    }
  });
});

describe('IPv6 loopback', () => {
  it('binds ::1 and serves', async () => {
    const s6 = await startStaticServer({ root: fx.root, host: '::1' });
    try {
      expect(s6.url).toBe(`http://[::1]:${s6.port}/`);
      const r = await rawRequest(s6.url, '/catalog.json');
      expect(r.status).toBe(200);
    } finally {
      await s6.close({ graceMs: 0 });
    }
  });
});

describe('slow clients and shutdown', () => {
  // Larger than loopback socket buffers (tcp_wmem + tcp_rmem maxima, a few MiB each), so a
  // client that stops reading really stalls the server's writes.
  const BIG = 24 * 1024 * 1024;
  let big: Fixture;
  beforeAll(async () => {
    big = await makeFixture({ bigSize: BIG });
  });
  afterAll(async () => {
    await big?.cleanup();
  });

  it('a client that stops reading mid-download does not hold up others and is dropped after the idle timeout', async () => {
    const s = await startStaticServer({ root: big.root, timeouts: { idleMs: 500 } });
    const stalled = connect(s.port, '127.0.0.1');
    try {
      stalled.on('error', () => {});
      let received = 0;
      stalled.on('data', (c: Buffer) => {
        received += c.length;
        // Read a little, then stop reading for good: the kernel buffers fill and the server's writes stall.
        if (received > 64 * 1024) stalled.pause();
      });
      stalled.write('GET /packages/big-1.0.0-any.swpkg HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => received > 64 * 1024, 'the stalled client to start receiving');

      const other = await rawRequest(s.url, '/packages/a-1.0.0-any.swpkg');
      expect(other.status).toBe(200);
      expect(other.body.equals(big.pkg)).toBe(true);

      // The server gives up on the stalled socket: nothing in flight, no connection left, one abort.
      await waitFor(() => s.metrics().inFlight === 0 && s.metrics().connections === 0, 'the stalled connection to be dropped');
      expect(s.metrics().aborted).toBe(1);
      expect(received).toBeLessThan(BIG);
    } finally {
      stalled.destroy();
      await s.close({ graceMs: 0 });
    }
  });

  it('a file truncated during a download ends the response short, never with wrong bytes', async () => {
    const victim = join(big.root, 'packages', 'shrinking-1.0.0-any.swpkg');
    await writeFile(victim, Buffer.alloc(BIG, 0x33));
    const s = await startStaticServer({ root: big.root });
    try {
      let received = 0;
      let paused = false;
      let resume: () => void = () => {};
      const done = new Promise<{ complete: boolean; length: string | undefined }>((resolve) => {
        get({ host: '127.0.0.1', port: s.port, path: '/packages/shrinking-1.0.0-any.swpkg', agent: false }, (res) => {
          res.on('data', (c: Buffer) => {
            received += c.length;
            if (paused || received < 1024 * 1024) return;
            paused = true;
            res.pause();
            resume = () => res.resume();
          });
          // Whether Node reports 'end' or 'aborted'/'error' for a short body, `complete` tells.
          const finish = (): void => resolve({ complete: res.complete, length: res.headers['content-length'] });
          res.on('end', finish);
          res.on('error', finish);
          res.on('close', finish);
        }).on('error', () => {});
      });
      await waitFor(() => paused, 'the download to start');
      await truncate(victim, 2 * 1024 * 1024);
      resume();
      const r = await done;
      expect(r.length).toBe(String(BIG));
      expect(r.complete).toBe(false);
      expect(received).toBeLessThan(BIG);
      await waitFor(() => s.metrics().inFlight === 0, 'the response to be torn down');
      expect(s.metrics().aborted).toBe(1);
    } finally {
      await s.close({ graceMs: 0 });
    }
  });

  it('close() lets an in-flight download finish, then refuses new connections', async () => {
    const s = await startStaticServer({ root: big.root });
    try {
      let received = 0;
      let resume: () => void = () => {};
      const done = new Promise<{ status: number; complete: boolean }>((resolve, reject) => {
        get({ host: '127.0.0.1', port: s.port, path: '/packages/big-1.0.0-any.swpkg', agent: false }, (res) => {
          let paused = false;
          res.on('data', (c: Buffer) => {
            received += c.length;
            if (paused || received < 1024 * 1024) return;
            paused = true;
            res.pause();
            resume = () => res.resume();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, complete: res.complete }));
          res.on('error', reject);
        }).on('error', reject);
      });
      await waitFor(() => received >= 1024 * 1024, 'the download to start');
      expect(s.metrics().inFlight).toBe(1);

      const closed = s.close({ graceMs: 30_000 });
      // New connections are refused once close() has begun.
      const refused = await rawRequest(s.url, '/health').catch((e: NodeJS.ErrnoException) => e.code);
      expect(refused).toBe('ECONNREFUSED');

      resume();
      const result = await done;
      expect(result).toEqual({ status: 200, complete: true });
      expect(received).toBe(big.bigSize);
      await closed;
      expect(s.metrics().connections).toBe(0);
    } finally {
      await s.close({ graceMs: 0 });
    }
  });

  it('close() destroys a download still running when the grace period ends', async () => {
    const s = await startStaticServer({ root: big.root });
    const stalled = connect(s.port, '127.0.0.1');
    try {
      stalled.on('error', () => {});
      let received = 0;
      stalled.on('data', (c: Buffer) => {
        received += c.length;
        stalled.pause();
      });
      stalled.write('GET /packages/big-1.0.0-any.swpkg HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => received > 0, 'the download to start');
      await s.close({ graceMs: 200 });
      expect(s.metrics().connections).toBe(0);
      expect(s.metrics().aborted).toBe(1);
    } finally {
      stalled.destroy();
    }
  });

  it('close() does not wait for idle keep-alive connections or connections that sent nothing', async () => {
    const s = await startStaticServer({ root: fx.root, timeouts: { keepAliveMs: 60_000, headersMs: 60_000, requestMs: 60_000 } });
    const silent = connect(s.port, '127.0.0.1');
    silent.on('error', () => {});
    try {
      const res = await fetch(new URL('/health', s.url)); // undici keeps the connection alive
      expect(res.status).toBe(200);
      await res.text();
      await waitFor(() => s.metrics().connections === 2, 'both connections');
      // A 60 s grace would time the test out if close() waited for these two.
      await s.close({ graceMs: 60_000 });
      expect(s.metrics().connections).toBe(0);
    } finally {
      silent.destroy();
    }
  });
});
