import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setupServer } from 'msw/node';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadFile, fetchBytes, fetchTransport } from '../../../userland/index.js';
import { tableHandlers, type RequestInfo, type ResponseTable } from '../../helpers/http-table-server.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * Edge cases of the download path. The same response table is mounted by
 * msw (WHATWG fetch transport; unhandled requests are errors) for plain
 * answers. What needs a real socket (resets mid-stream, stalls, bodies cut
 * off while streaming) is in test/integration/userland/http-transport.test.ts,
 * without msw, which would intercept node:http in this process.
 */
const BASE = 'http://repo.test';
const MIRROR = 'http://mirror.test';
const table: ResponseTable = new Map();
const mirrorTable: ResponseTable = new Map();
const requests: RequestInfo[] = [];
const server = setupServer(...tableHandlers(table, BASE, requests), ...tableHandlers(mirrorTable, MIRROR));

beforeAll(async () => {
  server.listen({ onUnhandledFrame: 'error' });
});
afterEach(() => {
  table.clear();
  mirrorTable.clear();
  requests.length = 0;
});
afterAll(async () => {
  server.close();
});

const transport = fetchTransport();
// The rate and deadline rules have their own tests (test/faults/network.test.ts); here they are off.
const limits = { stallMs: 300, minBytes: 1, minBytesPerSecond: 0, deadlineMs: 0 };
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const payload = randomBytes(200_000);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('downloadFile', () => {
  it('downloads, verifies and renames into place', async () => {
    const dir = await tempDir();
    table.set('p.swpkg', { body: payload });
    const dest = join(dir, 'p.swpkg');
    const r = await downloadFile([`${BASE}/p.swpkg`], { transport, dest, size: payload.length, sha256: sha(payload), limits });
    expect(r.transferred).toBe(payload.length);
    expect(sha(await readFile(dest))).toBe(sha(payload));
    expect(await readdir(dir)).toEqual(['p.swpkg']);
  });

  it('starts over when the server ignores Range', async () => {
    const dir = await tempDir();
    const dest = join(dir, 'p.swpkg');
    await writeFile(`${dest}.part`, payload.subarray(0, 1000));
    table.set('p.swpkg', { body: payload, ignoreRange: true });
    const r = await downloadFile([`${BASE}/p.swpkg`], { transport, dest, size: payload.length, sha256: sha(payload), limits });
    expect(r.transferred).toBe(payload.length);
    expect(sha(await readFile(dest))).toBe(sha(payload));
  });

  it('refuses more bytes than declared by Content-Length before reading the body', async () => {
    const dir = await tempDir();
    const dest = join(dir, 'p.swpkg');
    table.set('p.swpkg', { body: Buffer.concat([payload, randomBytes(10)]) });
    expect(await codeOf(downloadFile([`${BASE}/p.swpkg`], { transport, dest, size: payload.length, sha256: sha(payload), limits }))).toBe(
      'E_TOO_LARGE',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses the wrong bytes and deletes them', async () => {
    const dir = await tempDir();
    const dest = join(dir, 'p.swpkg');
    const wrong = Buffer.from(payload);
    wrong[100] = wrong[100]! ^ 1;
    table.set('p.swpkg', { body: wrong });
    expect(await codeOf(downloadFile([`${BASE}/p.swpkg`], { transport, dest, size: payload.length, sha256: sha(payload), limits }))).toBe(
      'E_HASH_MISMATCH',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('fails over to the next mirror and reports every failure when all fail', async () => {
    const dir = await tempDir();
    const dest = join(dir, 'p.swpkg');
    table.set('p.swpkg', { status: 500 });
    mirrorTable.set('p.swpkg', { body: payload });
    await downloadFile([`${BASE}/p.swpkg`, `${MIRROR}/p.swpkg`], { transport, dest, size: payload.length, sha256: sha(payload), limits });
    expect(sha(await readFile(dest))).toBe(sha(payload));

    const dest2 = join(dir, 'q.swpkg');
    const wrong = randomBytes(payload.length);
    mirrorTable.set('q.swpkg', { body: wrong });
    let err: { code?: string; details?: Record<string, unknown> } = {};
    try {
      await downloadFile([`${BASE}/q.swpkg`, `${MIRROR}/q.swpkg`], {
        transport,
        dest: dest2,
        size: payload.length,
        sha256: sha(payload),
        limits,
      });
    } catch (e) {
      err = e as typeof err;
    }
    // A refused file says more than a missing one: the verification failure is reported.
    expect(err.code).toBe('E_HASH_MISMATCH');
    expect((err.details?.['mirrors'] as unknown[]).length).toBe(2);
  });
});

describe('redirects through the WHATWG fetch transport (the guest bundle)', () => {
  it('refuses another origin unless it is one of the URLs given (a mirror)', async () => {
    const dir = await tempDir();
    table.set('p.swpkg', { status: 302, headers: { location: `${MIRROR}/p.swpkg` } });
    mirrorTable.set('p.swpkg', { body: payload });
    const o = { transport, dest: join(dir, 'p.swpkg'), size: payload.length, sha256: sha(payload), limits };
    expect(await codeOf(downloadFile([`${BASE}/p.swpkg`], o))).toBe('E_REDIRECT');
    expect(await readdir(dir)).toEqual([]);
    await downloadFile([`${BASE}/p.swpkg`], { ...o, origins: [BASE, MIRROR] });
    expect(sha(await readFile(o.dest))).toBe(sha(payload));
  });

  it('refuses a non-HTTP scheme and a loop', async () => {
    table.set('c.json', { status: 301, headers: { location: 'file:///etc/passwd' } });
    expect(await codeOf(fetchBytes(`${BASE}/c.json`, { transport, maxBytes: 100, limits }))).toBe('E_REDIRECT');
    table.set('c.json', { status: 308, headers: { location: '/d.json' } });
    table.set('d.json', { status: 308, headers: { location: '/c.json' } });
    expect(await codeOf(fetchBytes(`${BASE}/c.json`, { transport, maxBytes: 100, limits }))).toBe('E_REDIRECT_LOOP');
  });
});

describe('fetchBytes', () => {
  it('caps documents and maps statuses', async () => {
    table.set('c.json', { body: Buffer.from('x'.repeat(100)) });
    expect(await codeOf(fetchBytes(`${BASE}/c.json`, { transport, maxBytes: 99, limits }))).toBe('E_TOO_LARGE');
    expect((await fetchBytes(`${BASE}/c.json`, { transport, maxBytes: 100, limits })).length).toBe(100);
    expect(await codeOf(fetchBytes(`${BASE}/missing.json`, { transport, maxBytes: 100, limits }))).toBe('E_HTTP');
  });

  it('times out when no headers arrive', async () => {
    table.set('slow.json', { body: Buffer.from('{}'), delayMs: 2000 });
    expect(await codeOf(fetchBytes(`${BASE}/slow.json`, { transport, maxBytes: 100, limits }))).toBe('E_STALLED');
  });
});
