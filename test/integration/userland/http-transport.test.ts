import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex as sha, SwpkgError } from '../../../catalog/index.js';
import {
  downloadFile,
  fetchBytes,
  nodeHttpTransport,
  undiciTransport,
  type HttpRequest,
  type HttpTransport,
} from '../../../userland/index.js';
import { startTableServer, type ResponseTable, type TableServer } from '../../helpers/http-table-server.js';
import { failure } from '../../helpers/failure.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * pkg's socket transports against a real loopback server: node:http (the default since it spares
 * loading undici) and the undici package run the same download cases (resets mid-stream, stalls,
 * bodies cut off while streaming), then node:http's own bounds (header size, header timeout, no
 * redirects, errno, one kept-alive connection). No msw here: it would intercept node:http.
 */
const loopTable: ResponseTable = new Map();
let loop: TableServer;
let undici: HttpTransport;
const nodeHttp = nodeHttpTransport();

beforeAll(async () => {
  loop = await startTableServer(loopTable);
  undici = await undiciTransport();
});
afterEach(() => {
  loopTable.clear();
  loop.requests.length = 0;
});
afterAll(async () => {
  await undici.close?.();
  await nodeHttp.close?.();
  await loop.close();
});

// The rate and deadline rules have their own tests (test/faults/network.test.ts); here they are off.
const limits = { stallMs: 300, minBytes: 1, minBytesPerSecond: 0, deadlineMs: 0 };
const payload = randomBytes(200_000);

/** The code of the coded error `p` rejects with (test/helpers/failure.ts: a success or an uncoded error fails the test). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  return (await failure(p)).code;
}

describe.each([
  ['node:http', (): HttpTransport => nodeHttp],
  ['undici', (): HttpTransport => undici],
])('downloadFile over a real socket (%s)', (_name, socket) => {
  // A server per transport: the table's per-path request counts start at 0 for each.
  let sock: TableServer;
  beforeAll(async () => {
    sock = await startTableServer(loopTable);
  });
  afterEach(() => {
    sock.requests.length = 0;
  });
  afterAll(async () => {
    await sock.close();
  });
  const url = (): string => `${sock.url}p.swpkg`;

  it('resumes a reset transfer with Range and hashes the part it already had', async () => {
    const dir = await tempDir();
    loopTable.set('p.swpkg', (req) => (req.count === 0 ? { body: payload, truncateAt: 70_000 } : { body: payload }));
    const dest = join(dir, 'p.swpkg');
    const r = await downloadFile([url()], { transport: socket(), dest, size: payload.length, sha256: sha(payload), limits, retries: 1 });
    expect(r.resumedFrom).toBeGreaterThan(0);
    expect(sock.requests.map((q) => q.range)).toEqual([undefined, `bytes=${r.resumedFrom}-`]);
    expect(sha(await readFile(dest))).toBe(sha(payload));
  });

  it('leaves the .part for the next run when retries are exhausted, and that run resumes', async () => {
    const dir = await tempDir();
    const dest = join(dir, 'p.swpkg');
    loopTable.set('p.swpkg', { body: payload, truncateAt: 50_000 });
    expect(
      await codeOf(downloadFile([url()], { transport: socket(), dest, size: payload.length, sha256: sha(payload), limits, retries: 0 })),
    ).toBe('E_NETWORK');
    const part = await readFile(`${dest}.part`);
    expect(part.length).toBeGreaterThan(0);
    loopTable.set('p.swpkg', { body: payload });
    const r = await downloadFile([url()], { transport: socket(), dest, size: payload.length, sha256: sha(payload), limits, retries: 0 });
    expect(r.resumedFrom).toBe(part.length);
    expect(sock.requests[sock.requests.length - 1]!.range).toBe(`bytes=${part.length}-`);
    expect(sha(await readFile(dest))).toBe(sha(payload));
  });

  it('refuses a body that runs past the declared size while streaming (no Content-Length)', async () => {
    const dir = await tempDir();
    const dest = join(dir, 'p.swpkg');
    loopTable.set('p.swpkg', { body: Buffer.concat([payload, randomBytes(10)]), omitLength: true });
    expect(await codeOf(downloadFile([url()], { transport: socket(), dest, size: payload.length, sha256: sha(payload), limits }))).toBe(
      'E_TOO_LARGE',
    );
    expect(await readdir(dir)).toEqual([]);
    loopTable.set('c.json', { body: Buffer.from('x'.repeat(100)), omitLength: true });
    expect(await codeOf(fetchBytes(`${sock.url}c.json`, { transport: socket(), maxBytes: 99, limits }))).toBe('E_TOO_LARGE');
  });

  it('reports a stall as E_STALLED and keeps what arrived for a resume', async () => {
    const dir = await tempDir();
    loopTable.set('p.swpkg', { body: payload, stallAfter: 1000 });
    const dest = join(dir, 'p.swpkg');
    expect(
      await codeOf(downloadFile([url()], { transport: socket(), dest, size: payload.length, sha256: sha(payload), limits, retries: 0 })),
    ).toBe('E_STALLED');
    expect((await readFile(`${dest}.part`)).length).toBe(1000);
  });
});

describe('the node:http transport', () => {
  const req = (headersTimeoutMs = 2000): HttpRequest => ({
    headers: {},
    signal: new AbortController().signal,
    headersTimeoutMs,
  });

  it('refuses response headers over the limit with E_HEADERS_TOO_LARGE', async () => {
    loopTable.set('c.json', { body: Buffer.from('{}'), headers: { 'x-padding': 'y'.repeat(20 * 1024) } });
    expect(await codeOf(nodeHttp.get(`${loop.url}c.json`, req()))).toBe('E_HEADERS_TOO_LARGE');
    // Just under the limit is an answer.
    loopTable.set('c.json', { body: Buffer.from('{}'), headers: { 'x-padding': 'y'.repeat(8 * 1024) } });
    const res = await nodeHttp.get(`${loop.url}c.json`, req());
    expect(res.status).toBe(200);
    await res.discard();
  });

  it('gives up with E_STALLED when no headers arrive in time', async () => {
    loopTable.set('slow.json', { body: Buffer.from('{}'), delayMs: 2000 });
    let err: { code?: string; details?: Record<string, unknown> } = {};
    await nodeHttp.get(`${loop.url}slow.json`, req(200)).catch((e: unknown) => (err = e as typeof err));
    expect(err.code).toBe('E_STALLED');
    expect(err.details).toMatchObject({ rule: 'headers', timeoutMs: 200 });
  });

  it('returns a redirect instead of following it', async () => {
    loopTable.set('a.json', { status: 302, headers: { location: '/b.json' } });
    loopTable.set('b.json', { body: Buffer.from('{}') });
    const res = await nodeHttp.get(`${loop.url}a.json`, req());
    expect(res.status).toBe(302);
    expect(res.header('Location')).toBe('/b.json');
    await res.discard();
    expect(loop.requests.map((q) => q.path)).toEqual(['a.json']);
  });

  it('maps a refused connection to E_NETWORK with the errno', async () => {
    const closed = await startTableServer(new Map());
    const url = closed.url;
    await closed.close();
    let err: { code?: string; details?: Record<string, unknown> } = {};
    await nodeHttp.get(`${url}c.json`, req()).catch((e: unknown) => (err = e as typeof err));
    expect(err.code).toBe('E_NETWORK');
    expect(err.details?.['errno']).toBe('ECONNREFUSED');
  });

  it('refuses a scheme that is not HTTP with E_NETWORK before connecting anywhere', async () => {
    let err: { code?: string; details?: Record<string, unknown> } = {};
    await nodeHttp.get('ftp://127.0.0.1/c.json', req()).catch((e: unknown) => (err = e as typeof err));
    expect(err.code).toBe('E_NETWORK');
    expect(err.details).toMatchObject({ url: 'ftp://127.0.0.1/c.json', errno: 'EPROTO' });
    expect(loop.requests).toEqual([]);
  });

  it('keeps one connection for requests made one after another', async () => {
    const t = nodeHttpTransport();
    const sockets = new Set<string>();
    const srv = createServer((rq, rs) => {
      sockets.add(`${rq.socket.remotePort}`);
      rs.writeHead(200, { 'content-length': '2' }).end('{}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      for (let i = 0; i < 3; i++) {
        const res = await t.get(`http://127.0.0.1:${port}/c${i}.json`, req());
        const chunks: Uint8Array[] = [];
        for await (const c of res.body) chunks.push(c);
        expect(Buffer.concat(chunks).toString()).toBe('{}');
      }
      expect(sockets.size).toBe(1);
    } finally {
      await t.close?.();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  it('stops at once when the caller aborts before the answer', async () => {
    loopTable.set('slow.json', { body: Buffer.from('{}'), delayMs: 2000 });
    const ctl = new AbortController();
    const reason = new SwpkgError('E_STALLED', 'caller gave up');
    const p = nodeHttp.get(`${loop.url}slow.json`, { headers: {}, signal: ctl.signal, headersTimeoutMs: 5000 });
    setTimeout(() => ctl.abort(reason), 50);
    await expect(p).rejects.toBe(reason);
  });
});
