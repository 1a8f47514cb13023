import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { realpath, stat } from 'node:fs/promises';
import { SwpkgError } from '../catalog/index.js';
import { normalizeRequestPath } from './normalize-request-path.js';
import { ServerMetrics, type ServerMetricsSnapshot } from './server-metrics.js';
import { serveFile, sendBody, sendText, type ServeFileContext } from './serve-file.js';

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
  const connections = new ConnectionTracker(metrics);
  const bodyBytes = new WeakMap<ServerResponse, number>();
  const countBody = (res: ServerResponse, n: number): void => {
    metrics.bytesSent += n;
    bodyBytes.set(res, (bodyBytes.get(res) ?? 0) + n);
  };
  const fileContext: ServeFileContext = { realRoot, cacheControl: opts.cacheControl, countBody };

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

  server.on('connection', (socket: Socket) => connections.opened(socket));

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const socket = req.socket;
    const remote = socket.remoteAddress ?? '-';
    connections.requestStarted(socket);
    if (connections.closing) res.setHeader('Connection', 'close');
    res.once('close', () => {
      const aborted = !res.writableFinished;
      metrics.countResponse(res.statusCode, aborted);
      connections.requestEnded(socket);
      if (log) log(accessLogLine(req, res, remote, bodyBytes.get(res) ?? 0, aborted, performance.now() - started));
    });
    answerRequest(fileContext, metrics, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        sendText(req, res, 500, 'internal server error\n', {}, countBody);
      } else {
        res.destroy(err instanceof Error ? err : undefined);
      }
    });
  });

  await listen(server, host, opts.port ?? 0);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (opts.port ?? 0);
  const url = `http://${isIPv6(host) ? `[${host}]` : host}:${port}/`;

  return {
    url,
    host,
    port,
    root: realRoot,
    metrics: () => metrics.snapshot(),
    close: gracefulClose(server, connections, t.shutdownGraceMs),
  };
}

/** Routes one request: the server's own /health and /metrics, else a file below the root. */
async function answerRequest(ctx: ServeFileContext, metrics: ServerMetrics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(req, res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' }, ctx.countBody);
    return;
  }
  const p = normalizeRequestPath(req.url ?? '');
  if (!p.ok) {
    const text = p.status === 414 ? 'uri too long\n' : p.status === 404 ? 'not found\n' : 'bad request\n';
    sendText(req, res, p.status, text, {}, ctx.countBody);
    return;
  }
  if (p.segments.length === 1 && !p.directory) {
    if (p.segments[0] === 'health') {
      sendBody(req, res, 200, JSON.stringify({ ok: true }) + '\n', 'application/json', {}, ctx.countBody);
      return;
    }
    if (p.segments[0] === 'metrics') {
      sendBody(req, res, 200, metrics.toPrometheus(), 'text/plain; version=0.0.4; charset=utf-8', {}, ctx.countBody);
      return;
    }
  }
  await serveFile(ctx, req, res, p.segments, p.directory);
}

/**
 * Counts each open socket's in-flight responses, so that shutdown can end idle connections
 * at once and busy ones as soon as their last response is done.
 */
class ConnectionTracker {
  /** Set by close(): responses started now say `Connection: close`. */
  closing = false;
  /** Called whenever the last tracked socket closes. */
  onAllClosed: (() => void) | undefined;
  private readonly inFlightBySocket = new Map<Socket, number>();

  constructor(private readonly metrics: ServerMetrics) {}

  get open(): number {
    return this.inFlightBySocket.size;
  }

  opened(socket: Socket): void {
    this.metrics.connections++;
    this.inFlightBySocket.set(socket, 0);
    socket.once('close', () => {
      this.metrics.connections--;
      this.inFlightBySocket.delete(socket);
      if (this.inFlightBySocket.size === 0) this.onAllClosed?.();
    });
  }

  requestStarted(socket: Socket): void {
    this.metrics.inFlight++;
    this.inFlightBySocket.set(socket, (this.inFlightBySocket.get(socket) ?? 0) + 1);
  }

  requestEnded(socket: Socket): void {
    this.metrics.inFlight--;
    const current = this.inFlightBySocket.get(socket);
    // The socket may already be gone (and forgotten) when its response reports 'close'.
    if (current === undefined) return;
    this.inFlightBySocket.set(socket, current - 1);
    // A response that was already running when close() began was sent with keep-alive;
    // end its connection now that it is done so shutdown does not wait for the idle timer.
    if (this.closing && current - 1 === 0) socket.destroySoon();
  }

  /** Connections that have parsed no request yet: neither idle nor in flight to Node. */
  endWaiting(): void {
    for (const [socket, n] of this.inFlightBySocket) if (n === 0) socket.destroySoon();
  }
}

/** StaticServer.close: graceful, idempotent, and a later smaller grace shortens the wait. */
function gracefulClose(
  server: ReturnType<typeof createServer>,
  connections: ConnectionTracker,
  defaultGraceMs: number,
): (o?: { graceMs?: number }) => Promise<void> {
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
  return (o) => {
    scheduleForce(o?.graceMs ?? defaultGraceMs);
    if (closed) return closed;
    connections.closing = true;
    closed = new Promise<void>((resolve) => {
      // Node may call the server's close callback before the sockets' own 'close' events
      // have run; wait for both so metrics and per-response logs are final on resolve.
      let serverClosed = false;
      const settle = (): void => {
        if (!serverClosed || connections.open > 0) return;
        if (forceTimer) clearTimeout(forceTimer);
        resolve();
      };
      connections.onAllClosed = settle;
      server.close(() => {
        serverClosed = true;
        settle();
      });
      server.closeIdleConnections();
      // Waiting connections would otherwise hold shutdown until the headers timeout.
      connections.endWaiting();
    });
    return closed;
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
