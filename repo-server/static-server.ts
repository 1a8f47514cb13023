import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { constants as fsc } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, relative, sep, isAbsolute } from 'node:path';
import { SwpkgError } from '../catalog/index.js';
import { normalizeRequestPath, encodePath } from './normalize-request-path.js';
import { parseRange } from './parse-range.js';
import { contentTypeFor, defaultCacheControl, etagFor, noneMatchHits, ifRangeHolds } from './file-headers.js';
import { ServerMetrics, type ServerMetricsSnapshot } from './server-metrics.js';
import { sendFileRange } from './send-file-range.js';

export interface StaticServerTimeouts {
  /** Time allowed to receive request headers (slowloris bound). Default 10 s. */
  headersMs?: number;
  /** Time allowed to receive a whole request. Default 30 s. */
  requestMs?: number;
  /** A socket with no successful read or write for this long is destroyed (stalled client). Default 30 s. */
  idleMs?: number;
  /** Idle time between requests on a kept-alive connection. Default 5 s. */
  keepAliveMs?: number;
  /** close() lets in-flight responses run this long, then destroys what is left. Default 10 s. */
  shutdownGraceMs?: number;
}

export interface StaticServerOptions {
  /** The folder to serve; must exist. Symlinks inside it are followed only while they stay inside. */
  root: string;
  /** Address to bind; loopback by default (DESIGN.md). `::1` works too. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Receives one access-log line per finished or aborted response. */
  log?: (line: string) => void;
  /**
   * Overrides the Cache-Control policy: gets the path below ROOT ('packages/a-1.0.0-any.swpkg');
   * undefined falls back to the default (packages immutable, metadata revalidated).
   */
  cacheControl?: (path: string) => string | undefined;
  timeouts?: StaticServerTimeouts;
  /** Connections beyond this are closed as soon as they are accepted. Default 512. */
  maxConnections?: number;
}

export interface StaticServer {
  /** Base URL, e.g. `http://127.0.0.1:8080/` (IPv6 hosts bracketed). */
  url: string;
  host: string;
  port: number;
  /** The realpath of the served folder. */
  root: string;
  /**
   * Graceful stop: stops accepting, closes idle connections, lets in-flight
   * responses finish for `graceMs` (default: timeouts.shutdownGraceMs), then destroys
   * every remaining connection. Resolves once every connection is gone. Idempotent;
   * a later call with a smaller grace shortens the wait (a second Ctrl-C).
   */
  close(opts?: { graceMs?: number }): Promise<void>;
  metrics(): ServerMetricsSnapshot;
}

/**
 * Starts an HTTP/1.1 static file server for a published repository root
 * (DESIGN.md "Repo server").
 *
 * Guarantees:
 * - only regular files below ROOT's realpath are ever read; the request path is decoded
 *   once and refused (400/404, never the file) for `..`, encoded separators, NUL, dot
 *   segments and dotfiles; a symlink whose target leaves ROOT or names a dotfile is a 404;
 * - only GET and HEAD (405 otherwise); single byte ranges (206/416); strong ETags with
 *   If-None-Match/If-Modified-Since (304) and If-Range;
 * - files are streamed from one open descriptor (the one that was checked) through two
 *   recycled buffers per response (sendFileRange), never buffered whole; a client that
 *   disconnects or stalls releases its descriptor and socket
 *   (idle timeout), and does not slow other clients;
 * - `/health` and `/metrics` are answered by the server itself and shadow files of those names.
 * Throws E_NOT_FOUND when ROOT does not exist, E_USAGE when it is not a folder or the
 * address cannot be bound (in use, not local, not permitted).
 */
export async function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const host = opts.host ?? '127.0.0.1';
  const realRoot = await resolveRoot(opts.root);
  const t = {
    headersMs: opts.timeouts?.headersMs ?? 10_000,
    requestMs: opts.timeouts?.requestMs ?? 30_000,
    idleMs: opts.timeouts?.idleMs ?? 30_000,
    keepAliveMs: opts.timeouts?.keepAliveMs ?? 5_000,
    shutdownGraceMs: opts.timeouts?.shutdownGraceMs ?? 10_000,
  };
  const log = opts.log;
  const metrics = new ServerMetrics();
  const inFlightBySocket = new Map<Socket, number>();
  const bodyBytes = new WeakMap<ServerResponse, number>();
  let closing = false;

  const server = createServer({
    headersTimeout: t.headersMs,
    // requestTimeout must be ≥ headersTimeout or Node refuses the options.
    requestTimeout: Math.max(t.requestMs, t.headersMs),
    keepAliveTimeout: t.keepAliveMs,
    // The header/request timeouts are enforced by a periodic sweep; its default period
    // (30 s) would make a short headersTimeout meaningless.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(t.headersMs / 2))),
  });
  server.maxHeadersCount = 64;
  server.maxConnections = opts.maxConnections ?? 512;
  // Without a callback Node keeps stalled sockets forever; destroying them releases the
  // file descriptor and the buffers of a client that stopped reading.
  server.setTimeout(t.idleMs, (socket) => socket.destroy());

  let allSocketsClosed: (() => void) | undefined;
  server.on('connection', (socket: Socket) => {
    metrics.connections++;
    inFlightBySocket.set(socket, 0);
    socket.once('close', () => {
      metrics.connections--;
      inFlightBySocket.delete(socket);
      if (inFlightBySocket.size === 0) allSocketsClosed?.();
    });
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const socket = req.socket;
    const remote = socket.remoteAddress ?? '-';
    metrics.inFlight++;
    inFlightBySocket.set(socket, (inFlightBySocket.get(socket) ?? 0) + 1);
    if (closing) res.setHeader('Connection', 'close');
    res.once('close', () => {
      metrics.inFlight--;
      const aborted = !res.writableFinished;
      metrics.countResponse(res.statusCode, aborted);
      const current = inFlightBySocket.get(socket);
      // The socket may already be gone (and forgotten) when its response reports 'close'.
      if (current !== undefined) {
        inFlightBySocket.set(socket, current - 1);
        // A response that was already running when close() began was sent with keep-alive;
        // end its connection now that it is done so shutdown does not wait for the idle timer.
        if (closing && current - 1 === 0) socket.destroySoon();
      }
      if (log) log(accessLogLine(req, res, remote, bodyBytes.get(res) ?? 0, aborted, performance.now() - started));
    });
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        sendText(req, res, 500, 'internal server error\n');
      } else {
        res.destroy(err instanceof Error ? err : undefined);
      }
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(req, res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    const p = normalizeRequestPath(req.url ?? '');
    if (!p.ok) {
      sendText(req, res, p.status, p.status === 414 ? 'uri too long\n' : p.status === 404 ? 'not found\n' : 'bad request\n');
      return;
    }
    if (p.segments.length === 1 && !p.directory) {
      if (p.segments[0] === 'health') {
        sendBody(req, res, 200, JSON.stringify({ ok: true }) + '\n', 'application/json');
        return;
      }
      if (p.segments[0] === 'metrics') {
        sendBody(req, res, 200, metrics.toPrometheus(), 'text/plain; version=0.0.4; charset=utf-8');
        return;
      }
    }
    await serveFile(req, res, p.segments, p.directory, false);
  }

  async function serveFile(
    req: IncomingMessage,
    res: ServerResponse,
    segments: string[],
    directory: boolean,
    isIndex: boolean,
  ): Promise<void> {
    const fh = await openInsideRoot(realRoot, segments);
    if (!fh) {
      sendText(req, res, 404, 'not found\n');
      return;
    }
    let handedOff = false;
    try {
      const st = await fh.stat({ bigint: true });
      if (st.isDirectory() && !isIndex) {
        if (!directory && segments.length > 0) {
          // Relative links in a folder's index.html only work from the slash-terminated URL.
          sendText(req, res, 301, 'moved\n', { Location: encodePath(segments, true) });
          return;
        }
        await fh.close();
        handedOff = true;
        await serveFile(req, res, [...segments, 'index.html'], false, true);
        return;
      }
      if (!st.isFile()) {
        sendText(req, res, 404, 'not found\n');
        return;
      }
      const size = Number(st.size);
      const etag = etagFor(st);
      const lastModified = new Date(Number(st.mtimeMs)).toUTCString();
      const relPath = segments.join('/');
      const headers: Record<string, string | number> = {
        ETag: etag,
        'Last-Modified': lastModified,
        'Cache-Control': opts.cacheControl?.(relPath) ?? defaultCacheControl(segments),
        'Accept-Ranges': 'bytes',
        'X-Content-Type-Options': 'nosniff',
      };

      if (notModified(req, etag, st.mtimeMs)) {
        res.writeHead(304, headers);
        res.end();
        return;
      }

      headers['Content-Type'] = contentTypeFor(segments[segments.length - 1] ?? '');
      let start = 0;
      let end = size - 1;
      let status = 200;
      // RFC 9110 §14.2: range handling is defined for GET only; HEAD gets the full length.
      if (req.method === 'GET') {
        const ifRange = singleHeader(req.headers['if-range']);
        const honoured = ifRange === undefined || ifRangeHolds(ifRange, etag, lastModified);
        const range = honoured ? parseRange(req.headers.range, size) : ({ kind: 'none', reason: 'absent' } as const);
        if (range.kind === 'unsatisfiable') {
          sendText(req, res, 416, 'range not satisfiable\n', { 'Content-Range': `bytes */${size}`, ETag: etag, 'Accept-Ranges': 'bytes' });
          return;
        }
        if (range.kind === 'range') {
          status = 206;
          start = range.start;
          end = range.end;
          headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
        }
      }
      headers['Content-Length'] = end - start + 1;
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || end < start) {
        res.end();
        return;
      }
      // A client that goes away or a failed read ends this early; the 'close' handler
      // then logs the response as aborted, and the finally below closes the descriptor.
      await sendFileRange(fh, res, start, end, (n) => countBody(res, n));
    } finally {
      if (!handedOff) await fh.close().catch(() => {});
    }
  }

  function countBody(res: ServerResponse, n: number): void {
    metrics.bytesSent += n;
    bodyBytes.set(res, (bodyBytes.get(res) ?? 0) + n);
  }

  function sendBody(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    text: string,
    type: string,
    extra: Record<string, string> = {},
  ): void {
    const body = Buffer.from(text, 'utf8');
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...extra,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    countBody(res, body.length);
    res.end(body);
  }

  function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
    sendBody(req, res, status, text, 'text/plain; charset=utf-8', extra);
  }

  await listen(server, host, opts.port ?? 0);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (opts.port ?? 0);
  const url = `http://${isIPv6(host) ? `[${host}]` : host}:${port}/`;

  let closed: Promise<void> | undefined;
  let forceTimer: NodeJS.Timeout | undefined;
  let forceAt = Infinity;
  function scheduleForce(graceMs: number): void {
    const at = Date.now() + Math.max(0, graceMs);
    if (at >= forceAt) return;
    forceAt = at;
    if (forceTimer) clearTimeout(forceTimer);
    forceTimer = setTimeout(() => server.closeAllConnections(), Math.max(0, graceMs));
  }

  return {
    url,
    host,
    port,
    root: realRoot,
    metrics: () => metrics.snapshot(),
    close(o?: { graceMs?: number }): Promise<void> {
      scheduleForce(o?.graceMs ?? t.shutdownGraceMs);
      if (closed) return closed;
      closing = true;
      closed = new Promise<void>((resolve) => {
        // Node may call the server's close callback before the sockets' own 'close' events
        // have run; wait for both so metrics and per-response logs are final on resolve.
        let serverClosed = false;
        const settle = (): void => {
          if (!serverClosed || inFlightBySocket.size > 0) return;
          if (forceTimer) clearTimeout(forceTimer);
          resolve();
        };
        allSocketsClosed = settle;
        server.close(() => {
          serverClosed = true;
          settle();
        });
        server.closeIdleConnections();
        // Connections that have parsed no request yet are neither idle nor in flight to
        // Node; they would otherwise hold shutdown until the headers timeout.
        for (const [socket, n] of inFlightBySocket) if (n === 0) socket.destroySoon();
      });
      return closed;
    },
  };
}

async function resolveRoot(root: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SwpkgError('E_NOT_FOUND', `the folder to serve does not exist: ${root}`, {
        hint: 'publish a repository first (swpkg repo publish --out DIR) or pass the folder that holds catalog.json',
        details: { path: root },
        cause: e,
      });
    }
    throw new SwpkgError('E_USAGE', `cannot open the folder to serve: ${root}`, { details: { path: root, errno: code }, cause: e });
  }
  const st = await stat(real);
  if (!st.isDirectory()) {
    throw new SwpkgError('E_USAGE', `not a folder: ${root}`, {
      hint: 'pass the folder that holds the published repository',
      details: { path: root },
    });
  }
  return real;
}

/**
 * Opens `segments` below `realRoot` for reading, or returns undefined (→ 404).
 * The realpath must stay inside the root and contain no dot-named component (a symlink
 * to `.git/config` is refused like the direct path). The checked path is then opened
 * with O_NOFOLLOW, and the handle — not the name — is what gets served. O_NONBLOCK keeps
 * a FIFO planted in the root from blocking the event loop on open.
 */
async function openInsideRoot(realRoot: string, segments: readonly string[]): Promise<FileHandle | undefined> {
  let real: string;
  try {
    real = await realpath(join(realRoot, ...segments));
  } catch {
    return undefined;
  }
  const rel = relative(realRoot, real);
  if (rel !== '') {
    if (isAbsolute(rel)) return undefined;
    if (rel.split(sep).some((s) => s.startsWith('.'))) return undefined;
  }
  try {
    return await open(real, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

function singleHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since; both only for GET/HEAD. */
function notModified(req: IncomingMessage, etag: string, mtimeMs: bigint): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return noneMatchHits(inm, etag);
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  if (Number.isNaN(since)) return false;
  return Math.floor(Number(mtimeMs) / 1000) * 1000 <= since;
}

function listen(server: ReturnType<typeof createServer>, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const hint =
        e.code === 'EADDRINUSE'
          ? 'another process uses this port: choose another with --port (0 picks a free one)'
          : e.code === 'EACCES'
            ? 'ports below 1024 need privileges: choose a port ≥ 1024'
            : e.code === 'EADDRNOTAVAIL'
              ? 'the address is not on this machine: use 127.0.0.1 or ::1'
              : undefined;
      reject(
        new SwpkgError(hint ? 'E_USAGE' : 'E_NETWORK', `cannot listen on ${host}:${port}: ${e.code ?? e.message}`, {
          ...(hint ? { hint } : {}),
          details: { host, port, errno: e.code },
          cause: e,
        }),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port });
  });
}

// Request lines and headers are attacker-controlled; escape anything that could forge
// a log line or a terminal escape sequence.
function logField(v: string | undefined): string {
  if (v === undefined || v === '') return '-';
  return v.replace(/[\u0000-\u001f\u007f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Combined-log-like line: client, time, request, status, body bytes, referer, agent, duration. */
function accessLogLine(req: IncomingMessage, res: ServerResponse, remote: string, bytes: number, aborted: boolean, ms: number): string {
  const ua = req.headers['user-agent'];
  const referer = req.headers.referer;
  return (
    `${remote} - - [${new Date().toISOString()}] "${logField(req.method)} ${logField(req.url)} HTTP/${req.httpVersion}" ` +
    `${res.statusCode} ${bytes} "${logField(referer)}" "${logField(ua)}" ${ms.toFixed(1)}ms${aborted ? ' aborted' : ''}`
  );
}
