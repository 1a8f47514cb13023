import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { http, HttpResponse } from 'msw';

/**
 * One fake repository, two transports (STYLE rule 11): a table of
 * responses by path, mounted by a real `node:http` server on 127.0.0.1
 * (integration tests, child processes) or by msw (unit edge cases).
 */
export interface ResponseSpec {
  /** Default 200 (or 206 for a satisfiable Range). */
  status?: number;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Wait this long before sending anything (a stall before headers). */
  delayMs?: number;
  /** Send this many body bytes, then reset the connection. */
  truncateAt?: number;
  /** Send this many body bytes, then send nothing more while keeping the connection open. */
  stallAfter?: number;
  /** Send the body `bytes` at a time, one piece every `everyMs` (a slow server or a slow-retrieval attack). */
  trickle?: { bytes: number; everyMs: number };
  /** Omit Content-Length (chunked), so only the streaming cap can catch an oversized body. */
  omitLength?: boolean;
  /** Answer Range requests with the whole body (200), as servers without Range support do. */
  ignoreRange?: boolean;
}

export interface RequestInfo {
  path: string;
  range: string | undefined;
  /** How many times this path was requested before, this one excluded. */
  count: number;
}

export type ResponseEntry = ResponseSpec | ((req: RequestInfo) => ResponseSpec | undefined);
/** Keys are paths without the leading slash (e.g. `catalog.json`, `packages/a-1.0.0-x86_64.swpkg`). */
export type ResponseTable = Map<string, ResponseEntry>;

function resolveEntry(table: ResponseTable, req: RequestInfo): ResponseSpec | undefined {
  const e = table.get(req.path);
  if (e === undefined) return undefined;
  return typeof e === 'function' ? e(req) : e;
}

interface Shaped {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Applies Range (206/416) and lengths the way a static server does. */
function shape(spec: ResponseSpec, range: string | undefined): Shaped {
  const body = spec.body ?? new Uint8Array();
  const headers: Record<string, string> = { 'accept-ranges': 'bytes', ...spec.headers };
  let status = spec.status ?? 200;
  let slice = body;
  const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
  if (m && status === 200 && !spec.ignoreRange) {
    const start = Number(m[1]);
    if (start >= body.length) {
      return {
        status: 416,
        headers: { ...headers, 'content-range': `bytes */${body.length}`, 'content-length': '0' },
        body: new Uint8Array(),
      };
    }
    status = 206;
    slice = body.subarray(start);
    headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  }
  if (!spec.omitLength) headers['content-length'] = String(slice.length);
  return { status, headers, body: slice };
}

export interface TableServer {
  url: string;
  port: number;
  requests: RequestInfo[];
  close(): Promise<void>;
}

/** Serves `table` on 127.0.0.1 (a free port). Every socket is destroyed on close, stalled ones included. */
export async function startTableServer(table: ResponseTable): Promise<TableServer> {
  const requests: RequestInfo[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    const count = counts.get(path) ?? 0;
    counts.set(path, count + 1);
    const info: RequestInfo = { path, range: req.headers.range, count };
    requests.push(info);
    const spec = resolveEntry(table, info);
    if (!spec) {
      res.writeHead(404, { 'content-length': '9' }).end('not found');
      return;
    }
    const send = (): void => {
      const s = shape(spec, info.range);
      res.writeHead(s.status, s.headers);
      const trickle = spec.trickle;
      if (trickle && req.method !== 'HEAD') {
        let at = 0;
        const next = (): void => {
          timers.delete(t);
          if (res.destroyed) return;
          const piece = s.body.subarray(at, at + trickle.bytes);
          at += piece.length;
          if (at >= s.body.length) {
            res.end(piece);
            return;
          }
          res.write(piece);
          t = setTimeout(next, trickle.everyMs);
          timers.add(t);
        };
        let t = setTimeout(next, 0);
        timers.add(t);
        return;
      }
      const cut = spec.truncateAt ?? spec.stallAfter;
      if (cut === undefined || req.method === 'HEAD') {
        res.end(req.method === 'HEAD' ? undefined : s.body);
        return;
      }
      res.write(s.body.subarray(0, Math.min(cut, s.body.length)), () => {
        if (spec.truncateAt !== undefined) {
          // Let the bytes leave before the reset so the client really holds a partial file.
          const t = setTimeout(() => res.socket?.destroy(), 50);
          timers.add(t);
        }
      });
    };
    if (spec.delayMs) {
      const t = setTimeout(send, spec.delayMs);
      timers.add(t);
    } else send();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * The same table as msw handlers under `base` (e.g. `http://repo.test/`).
 * Truncation errors the body stream; a stall never closes it (until the
 * client aborts).
 */
export function tableHandlers(table: ResponseTable, base: string, requests: RequestInfo[] = []): ReturnType<typeof http.get>[] {
  const counts = new Map<string, number>();
  return [
    http.get(`${base.replace(/\/$/, '')}/*`, async ({ request }) => {
      const path = decodeURIComponent(new URL(request.url).pathname).replace(/^\/+/, '');
      const count = counts.get(path) ?? 0;
      counts.set(path, count + 1);
      const info: RequestInfo = { path, range: request.headers.get('range') ?? undefined, count };
      requests.push(info);
      const spec = resolveEntry(table, info);
      if (!spec) return new HttpResponse('not found', { status: 404 });
      if (spec.delayMs) await new Promise((r) => setTimeout(r, spec.delayMs));
      const s = shape(spec, info.range);
      const trickle = spec.trickle;
      if (trickle) {
        let at = 0;
        let timer: NodeJS.Timeout | undefined;
        const slow = new ReadableStream<Uint8Array>({
          pull: (ctl) =>
            new Promise<void>((done) => {
              timer = setTimeout(() => {
                const piece = s.body.slice(at, at + trickle.bytes);
                at += piece.length;
                ctl.enqueue(piece);
                if (at >= s.body.length) ctl.close();
                done();
              }, trickle.everyMs);
            }),
          cancel: () => clearTimeout(timer),
        });
        return new HttpResponse(slow, { status: s.status, headers: s.headers });
      }
      const cut = spec.truncateAt ?? spec.stallAfter;
      if (cut === undefined) return new HttpResponse(s.body as Uint8Array<ArrayBuffer>, { status: s.status, headers: s.headers });
      const head = s.body.slice(0, Math.min(cut, s.body.length));
      const stream = new ReadableStream<Uint8Array>({
        start(ctl) {
          ctl.enqueue(head);
          if (spec.truncateAt !== undefined) setTimeout(() => ctl.error(new TypeError('connection reset')), 10);
        },
      });
      return new HttpResponse(stream, { status: s.status, headers: s.headers });
    }),
  ];
}
