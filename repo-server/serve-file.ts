import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as fsc, type BigIntStats } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { join, relative, sep, isAbsolute } from 'node:path';
import { encodePath } from './normalize-request-path.js';
import { parseRange } from './parse-range.js';
import { contentTypeFor, defaultCacheControl, etagFor, noneMatchHits, ifRangeHolds } from './file-headers.js';
import { sendFileRange } from './send-file-range.js';

/** What serving one file needs from the server around it. */
export interface ServeFileContext {
  /** The realpath of the served folder; nothing outside it is ever opened. */
  realRoot: string;
  /** Overrides Cache-Control for a path below the root; undefined falls back to the default. */
  cacheControl?: ((path: string) => string | undefined) | undefined;
  /** Told every body byte written, for metrics and the access log. */
  countBody?: ((res: ServerResponse, n: number) => void) | undefined;
}

/**
 * Answers a GET or HEAD for `segments` (a path already normalized by normalizeRequestPath)
 * from below `ctx.realRoot`: 404 for anything missing, outside the root, dot-named or not a
 * regular file; 301 to the slash-terminated URL for a folder, then its index.html; 304 for a
 * matching If-None-Match/If-Modified-Since; 206/416 for a single byte range. The body is
 * streamed from the descriptor that was checked, which is always closed on return.
 */
export function serveFile(
  ctx: ServeFileContext,
  req: IncomingMessage,
  res: ServerResponse,
  segments: string[],
  directory: boolean,
): Promise<void> {
  return serveEntry(ctx, req, res, segments, directory, false);
}

async function serveEntry(
  ctx: ServeFileContext,
  req: IncomingMessage,
  res: ServerResponse,
  segments: string[],
  directory: boolean,
  isIndex: boolean,
): Promise<void> {
  const fh = await openInsideRoot(ctx.realRoot, segments);
  if (!fh) {
    sendText(req, res, 404, 'not found\n', {}, ctx.countBody);
    return;
  }
  let folder = false;
  try {
    const st = await fh.stat({ bigint: true });
    if (st.isDirectory() && !isIndex) {
      if (!directory && segments.length > 0) {
        // Relative links in a folder's index.html only work from the slash-terminated URL.
        sendText(req, res, 301, 'moved\n', { Location: encodePath(segments, true) }, ctx.countBody);
        return;
      }
      folder = true;
    } else if (!st.isFile()) {
      sendText(req, res, 404, 'not found\n', {}, ctx.countBody);
    } else {
      await sendOpenFile(ctx, req, res, fh, st, segments);
    }
  } finally {
    await fh.close().catch(() => {});
  }
  // The folder's descriptor is closed first; index.html is opened and checked like any
  // other path (a folder named index.html is not a regular file: 404).
  if (folder) await serveEntry(ctx, req, res, [...segments, 'index.html'], false, true);
}

async function sendOpenFile(
  ctx: ServeFileContext,
  req: IncomingMessage,
  res: ServerResponse,
  fh: FileHandle,
  st: BigIntStats,
  segments: string[],
): Promise<void> {
  const size = Number(st.size);
  const etag = etagFor(st);
  const lastModified = new Date(Number(st.mtimeMs)).toUTCString();
  const headers: Record<string, string | number> = {
    ETag: etag,
    'Last-Modified': lastModified,
    'Cache-Control': ctx.cacheControl?.(segments.join('/')) ?? defaultCacheControl(segments),
    'Accept-Ranges': 'bytes',
    'X-Content-Type-Options': 'nosniff',
  };

  if (notModified(req, etag, st.mtimeMs)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }

  headers['Content-Type'] = contentTypeFor(segments[segments.length - 1] ?? '');
  const span = chooseSpan(req, size, etag, lastModified);
  if (span === 'unsatisfiable') {
    sendText(
      req,
      res,
      416,
      'range not satisfiable\n',
      { 'Content-Range': `bytes */${size}`, ETag: etag, 'Accept-Ranges': 'bytes' },
      ctx.countBody,
    );
    return;
  }
  const { status, start, end } = span;
  if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  headers['Content-Length'] = end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || end < start) {
    res.end();
    return;
  }
  // A client that goes away or a failed read ends this early; the server's 'close' handler
  // then logs the response as aborted, and the caller closes the descriptor.
  await sendFileRange(fh, res, start, end, (n) => ctx.countBody?.(res, n));
}

/** The bytes to send: the whole file (200) or one honoured byte range (206). */
function chooseSpan(
  req: IncomingMessage,
  size: number,
  etag: string,
  lastModified: string,
): { status: 200 | 206; start: number; end: number } | 'unsatisfiable' {
  const whole = { status: 200, start: 0, end: size - 1 } as const;
  // RFC 9110 §14.2: range handling is defined for GET only; HEAD gets the full length.
  if (req.method !== 'GET') return whole;
  const ifRange = singleHeader(req.headers['if-range']);
  if (ifRange !== undefined && !ifRangeHolds(ifRange, etag, lastModified)) return whole;
  const range = parseRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') return 'unsatisfiable';
  if (range.kind === 'range') return { status: 206, start: range.start, end: range.end };
  return whole;
}

/** A small generated body (errors, /health, /metrics): never cached, counted like file bodies. */
export function sendBody(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  text: string,
  type: string,
  extra: Record<string, string> = {},
  countBody?: (res: ServerResponse, n: number) => void,
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
  countBody?.(res, body.length);
  res.end(body);
}

export function sendText(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
  countBody?: (res: ServerResponse, n: number) => void,
): void {
  sendBody(req, res, status, text, 'text/plain; charset=utf-8', extra, countBody);
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
