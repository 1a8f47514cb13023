import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { SwpkgError, ERROR_CODES, ExitCode, fromFsError, type Reporter } from '../catalog/index.js';
import { networkError, type HttpResponse, type HttpTransport } from './http-transport.js';
import { fileTransport } from './file-transport.js';
import { crashPoint } from './crash-point.js';

/**
 * Bounds every transfer in time (slow-retrieval attacks); the size caps
 * (endless data) come from the signed metadata. Each failure is E_STALLED
 * with `details.rule` naming which bound: `window`, `rate` or `deadline`.
 */
export interface TransferLimits {
  /** A window with fewer than `minBytes` bytes received is a stall; also the wait for response headers. */
  stallMs: number;
  minBytes: number;
  /**
   * Minimum average rate since the body began, checked at the end of every
   * window: a server dripping a byte every few seconds passes the window
   * rule but not this one. 0 turns it off.
   */
  minBytesPerSecond: number;
  /** One file from one server, resumes included, must be complete within this. 0 turns it off. */
  deadlineMs: number;
}

export const DEFAULT_LIMITS: TransferLimits = { stallMs: 30_000, minBytes: 1, minBytesPerSecond: 1024, deadlineMs: 30 * 60_000 };

/** When the transfer of one file must be done by (epoch ms), from its limits. */
export function deadlineFrom(limits: TransferLimits, start = Date.now()): number {
  return limits.deadlineMs > 0 ? start + limits.deadlineMs : Infinity;
}

function deadlineError(url: string, limits: TransferLimits, received: number): SwpkgError {
  return new SwpkgError(
    'E_STALLED',
    `${url}: not complete within the deadline of ${limits.deadlineMs / 1000} s (${received} bytes received)`,
    {
      hint: 'the mirror is too slow for this file (slow mirror or slow-retrieval attack); rerun to resume, add a mirror, or raise --fetch-deadline',
      details: { url, rule: 'deadline', deadlineMs: limits.deadlineMs, received },
    },
  );
}

/** Error codes that mean "this mirror failed, another may work". Anything else (disk full) stops at once. */
function isMirrorFailure(e: unknown): boolean {
  if (!(e instanceof SwpkgError)) return false;
  const exit = ERROR_CODES[e.code];
  return exit === ExitCode.NETWORK || exit === ExitCode.VERIFICATION || e.code === 'E_INVALID_JSON';
}

/** Failures that say the server is unreachable (no answer at all), not that one file is bad. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

export function isUnreachable(e: unknown): boolean {
  if (!(e instanceof SwpkgError) || (e.code !== 'E_NETWORK' && e.code !== 'E_STALLED')) return false;
  // No response headers within the stall window counts too: a server that accepts and never answers is as dead.
  return UNREACHABLE.has(String(e.details['errno'])) || e.details['rule'] === 'headers';
}

/**
 * The servers one command has met: a server that did not answer at all is
 * tried last for the rest of the command, so a dead mirror costs one
 * connect (or header) timeout per command, not one per file. Kept per
 * transport, which lives exactly as long as the command's context.
 */
export class MirrorSet {
  private readonly down = new Map<string, SwpkgError>();
  /** Every URL asked in this command (a base or a file under one), its last outcome, oldest first. */
  private readonly outcomes = new Map<string, { ok: boolean; code?: string; message?: string }>();

  private static key(url: string): string {
    try {
      return new URL(url).origin;
    } catch {
      return url;
    }
  }

  /** Servers not known to be down first, in their configured order; the down ones after, as a last resort. */
  order(urls: string[]): string[] {
    return [...urls.filter((u) => !this.down.has(MirrorSet.key(u))), ...urls.filter((u) => this.down.has(MirrorSet.key(u)))];
  }

  isDown(url: string): boolean {
    return this.down.has(MirrorSet.key(url));
  }

  failed(url: string, e: SwpkgError): void {
    if (isUnreachable(e)) this.down.set(MirrorSet.key(url), e);
    this.outcomes.delete(url);
    this.outcomes.set(url, { ok: false, code: e.code, message: e.message });
  }

  answered(url: string): void {
    this.down.delete(MirrorSet.key(url));
    this.outcomes.delete(url);
    this.outcomes.set(url, { ok: true });
  }

  /** The last outcome of anything asked under a base URL in this command; undefined when nothing was. */
  outcomeUnder(base: string): { ok: boolean; code?: string; message?: string } | undefined {
    const prefix = base.endsWith('/') ? base : `${base}/`;
    let last: { ok: boolean; code?: string; message?: string } | undefined;
    for (const [url, o] of this.outcomes) if (url === base || url.startsWith(prefix)) last = o;
    return last;
  }

  /** The servers this command found unreachable, with the error each gave. */
  errors(): { origin: string; code: string; message: string }[] {
    return [...this.down].map(([origin, e]) => ({ origin, code: e.code, message: e.message }));
  }
}

const mirrorSets = new WeakMap<object, MirrorSet>();

/** The MirrorSet of one command, found through its transport (one per PkgContext). */
export function mirrorSetOf(transport: object): MirrorSet {
  let m = mirrorSets.get(transport);
  if (!m) mirrorSets.set(transport, (m = new MirrorSet()));
  return m;
}

/**
 * Runs `attempt` against each base URL in order until one succeeds (mirror
 * failover); with a MirrorSet, servers found unreachable earlier in the
 * command go last. When all fail, the error reported is a verification
 * failure if any mirror produced one (a refused file says more than a
 * refused connection), else the last; `details.mirrors` lists every attempt.
 */
export async function tryMirrors<T>(
  bases: string[],
  attempt: (base: string) => Promise<T>,
  reporter?: Reporter,
  mirrors?: MirrorSet,
): Promise<T> {
  const failures: { base: string; error: SwpkgError }[] = [];
  const ordered = mirrors ? mirrors.order(bases) : bases;
  for (const base of ordered) {
    try {
      const r = await attempt(base);
      mirrors?.answered(base);
      return r;
    } catch (e) {
      if (!isMirrorFailure(e)) throw e;
      const err = e as SwpkgError;
      mirrors?.failed(base, err);
      failures.push({ base, error: err });
      if (ordered.length > 1 && base !== ordered[ordered.length - 1])
        reporter?.warn(`${base}: ${err.code} ${err.message}; trying the next mirror`);
    }
  }
  const verification = failures.find((f) => ERROR_CODES[f.error.code] === ExitCode.VERIFICATION);
  const chosen = (verification ?? failures[failures.length - 1])!.error;
  if (failures.length > 1) {
    chosen.details['mirrors'] = failures.map((f) => ({ url: f.base, code: f.error.code, message: f.error.message }));
  }
  throw chosen;
}

// Moved to the core (one rule for every reader of server bytes); kept importable from here for userland's modules.
export { refusedFromServer } from '../catalog/index.js';

/** Joins a repository base URL and a relative path; the base is treated as a folder. */
export function joinUrl(base: string, path: string): string {
  return new URL(path, base.endsWith('/') ? base : `${base}/`).toString();
}

function httpError(url: string, status: number): SwpkgError {
  return new SwpkgError('E_HTTP', `${url} answered HTTP ${status}`, {
    hint:
      status === 404
        ? 'the file is not on this server: check the repository URL, or run `pkg update` if the catalog is old'
        : 'the server failed; retry later or use another mirror',
    details: { url, status },
  });
}

function tooLarge(url: string, limit: number, seen: number): SwpkgError {
  return new SwpkgError('E_TOO_LARGE', `${url} sent more than the ${limit} bytes it may have`, {
    hint: 'the server sends more data than the signed metadata declares (endless-data attack or a broken mirror); use another mirror',
    details: { url, limit, received: seen },
  });
}

/**
 * Reads a body while enforcing the time bounds: every `stallMs` at least
 * `minBytes` must have arrived (window), the average since the body began
 * must stay at `minBytesPerSecond` (rate), and the body must end before
 * `deadlineAt` (deadline); otherwise the transfer is aborted with E_STALLED.
 */
async function* guarded(
  url: string,
  res: HttpResponse,
  limits: TransferLimits,
  ctl: AbortController,
  deadlineAt: number,
): AsyncGenerator<Uint8Array> {
  let window = 0;
  let total = 0;
  const began = Date.now();
  let stalled: SwpkgError | undefined;
  const stop = (e: SwpkgError): void => {
    stalled ??= e;
    ctl.abort(stalled);
    void res.discard();
  };
  const timer = setInterval(() => {
    const elapsed = Date.now() - began;
    const rate = total / (elapsed / 1000);
    if (window < limits.minBytes) {
      stop(
        new SwpkgError('E_STALLED', `${url}: fewer than ${limits.minBytes} bytes in ${limits.stallMs} ms`, {
          hint: 'the transfer stalled (slow mirror or slow-retrieval attack); rerun to resume, or add a mirror',
          details: { url, rule: 'window', stallMs: limits.stallMs, minBytes: limits.minBytes },
        }),
      );
    } else if (limits.minBytesPerSecond > 0 && rate < limits.minBytesPerSecond) {
      stop(
        new SwpkgError(
          'E_STALLED',
          `${url}: ${total} bytes in ${(elapsed / 1000).toFixed(1)} s is ${Math.floor(rate)} B/s, below the minimum average of ${limits.minBytesPerSecond} B/s`,
          {
            hint: 'the mirror is too slow (slow mirror or slow-retrieval attack); rerun to resume, add a mirror, or lower --min-rate',
            details: {
              url,
              rule: 'rate',
              minBytesPerSecond: limits.minBytesPerSecond,
              bytesPerSecond: Math.floor(rate),
              received: total,
              elapsedMs: elapsed,
            },
          },
        ),
      );
    }
    window = 0;
  }, limits.stallMs);
  const remaining = deadlineAt - Date.now();
  // Past 2^31-1 ms Node fires a timer at once; a deadline that far away is no deadline.
  const deadline = remaining < 2 ** 31 - 1 ? setTimeout(() => stop(deadlineError(url, limits, total)), Math.max(0, remaining)) : undefined;
  try {
    for await (const chunk of res.body) {
      if (stalled) throw stalled;
      window += chunk.length;
      total += chunk.length;
      yield chunk;
    }
    if (stalled) throw stalled;
  } catch (e) {
    if (stalled) throw stalled;
    throw networkError(url, e);
  } finally {
    clearInterval(timer);
    if (deadline) clearTimeout(deadline);
  }
}

/** The wait for response headers: one stall window, and never past the file's deadline. */
function headersTimeout(url: string, limits: TransferLimits, deadlineAt: number): number {
  const remaining = deadlineAt - Date.now();
  if (remaining <= 0) throw deadlineError(url, limits, 0);
  return Math.max(1, Math.min(limits.stallMs, remaining));
}

/** Redirect hops followed for one request; static hosts and CDNs need one or two. */
export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** The origins (scheme, host, port) of a repository's servers: where a redirect may lead. */
export function originsOf(urls: string[]): string[] {
  const out = new Set<string>();
  for (const u of urls) {
    try {
      out.add(new URL(u).origin);
    } catch {
      // not a URL: it allows nothing
    }
  }
  return [...out];
}

/**
 * GETs `url` and follows redirects itself (transports never do): only to
 * http(s) URLs on one of `origins` (the repository's own servers, the
 * primary and its configured mirrors), never to a URL already visited, at
 * most MAX_REDIRECTS hops. Anything else is refused with a coded error
 * before a byte of the other location is read. A redirect to another host
 * would let whoever controls one server make pkg talk to any host (in the
 * guest: anything reachable from 10.0.2.2), so it is refused, not followed.
 */
async function getFollowing(
  transport: HttpTransport,
  url: string,
  o: { headers: Record<string, string>; signal: AbortSignal; origins: string[]; limits: TransferLimits; deadlineAt: number },
): Promise<HttpResponse> {
  const visited = [url];
  let at = url;
  for (;;) {
    // The one place a scheme picks the transport: file:// is read from disk, everything else goes to the network.
    const res = await (at.startsWith('file:') ? fileTransport : transport).get(at, {
      headers: o.headers,
      signal: o.signal,
      headersTimeoutMs: headersTimeout(at, o.limits, o.deadlineAt),
    });
    if (!REDIRECT_STATUSES.has(res.status)) return res;
    const location = res.header('location');
    await res.discard();
    let next: URL;
    try {
      if (location === undefined || location === '') throw new Error('no Location');
      next = new URL(location, at);
    } catch {
      throw new SwpkgError('E_HTTP', `${at} answered HTTP ${res.status} without a usable Location`, {
        hint: 'the server is misconfigured; use another mirror',
        details: { url: at, status: res.status, location },
      });
    }
    const target = next.toString();
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new SwpkgError('E_REDIRECT', `${at} redirects to ${next.protocol}// URL ${target}; pkg only follows http and https`, {
        hint: 'a repository server may only redirect to itself or to a configured mirror; use another mirror',
        details: { url, from: at, to: target, reason: 'scheme' },
      });
    }
    if (!o.origins.includes(next.origin)) {
      throw new SwpkgError('E_REDIRECT', `${at} redirects to ${next.origin}, which is not one of this repository's servers`, {
        hint: `pkg follows redirects only within ${o.origins.join(', ')}; if the other host is a real mirror, add it with \`pkg repo set NAME URL --mirror ${next.origin}/\``,
        details: { url, from: at, to: target, reason: 'origin', allowed: o.origins },
      });
    }
    if (visited.includes(target)) {
      throw new SwpkgError('E_REDIRECT_LOOP', `${url} redirects in a loop (${[...visited, target].join(' -> ')})`, {
        hint: 'the server is misconfigured; use another mirror or tell the publisher',
        details: { url, chain: [...visited, target] },
      });
    }
    visited.push(target);
    if (visited.length > MAX_REDIRECTS + 1) {
      throw new SwpkgError('E_REDIRECT_LOOP', `${url} redirects more than ${MAX_REDIRECTS} times`, {
        hint: 'the server is misconfigured; use another mirror or tell the publisher',
        details: { url, chain: visited },
      });
    }
    at = target;
  }
}

export interface FetchBytesOptions {
  transport: HttpTransport;
  maxBytes: number;
  limits: TransferLimits;
  /** Origins a redirect may lead to (the repository's servers); default the URL's own. */
  origins?: string[];
  /**
   * The body is a gzip file (a catalog's `.gz` sibling): it is inflated as it arrives and the
   * inflated bytes are returned, `maxBytes` capping them too (a gzip bomb stops at the cap:
   * E_TOO_LARGE). A stream that is not gzip or ends early is E_CORRUPT.
   */
  gunzip?: boolean;
}

/**
 * GETs a small document (catalog, root, hosted-repo.json) into memory,
 * refusing more than `maxBytes`. Non-200 answers are E_HTTP with
 * `details.status`, so callers can tell 404 (e.g. the end of a root walk).
 */
export async function fetchBytes(url: string, o: FetchBytesOptions): Promise<Uint8Array> {
  const ctl = new AbortController();
  const deadlineAt = deadlineFrom(o.limits);
  const res = await getFollowing(o.transport, url, {
    headers: { 'accept-encoding': 'identity' },
    signal: ctl.signal,
    origins: o.origins ?? originsOf([url]),
    limits: o.limits,
    deadlineAt,
  });
  if (res.status !== 200) {
    await res.discard();
    throw httpError(url, res.status);
  }
  const declared = Number(res.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > o.maxBytes) {
    await res.discard();
    throw tooLarge(url, o.maxBytes, declared);
  }
  const body = guarded(url, res, o.limits, ctl, deadlineAt);
  if (o.gunzip === true) return inflateBody(url, res, body, o.maxBytes);
  // With a declared length the bytes land in one buffer as they arrive: a 34 MB catalog is not
  // held twice (its chunks, then their concatenation). A body longer than declared goes on in chunks.
  const into = Number.isSafeInteger(declared) && declared >= 0 ? Buffer.allocUnsafe(declared) : undefined;
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body) {
    if (n + chunk.length > o.maxBytes) {
      await res.discard();
      throw tooLarge(url, o.maxBytes, n + chunk.length);
    }
    if (into && chunks.length === 0 && n + chunk.length <= into.length) into.set(chunk, n);
    else {
      if (into && chunks.length === 0) chunks.push(into.subarray(0, n));
      chunks.push(chunk);
    }
    n += chunk.length;
  }
  if (chunks.length === 0) return into ? into.subarray(0, n) : Buffer.alloc(0);
  return Buffer.concat(chunks, n);
}

/**
 * Inflates a gzip body chunk by chunk, holding at most `maxBytes` of output: the compressed
 * bytes are counted against the same cap, and each chunk is written only once the one before
 * was inflated, so a bomb is stopped one chunk past the cap, never inflated whole.
 */
async function inflateBody(url: string, res: HttpResponse, body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const { createGunzip } = await import('node:zlib');
  const { finished } = await import('node:stream/promises');
  // The default 16 KiB output chunk costs a main-thread round trip each; a catalog inflates to tens of MiB.
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const out: Buffer[] = [];
  let inflated = 0;
  let compressed = 0;
  let failure: SwpkgError | undefined;
  const fail = (e: SwpkgError): void => {
    failure ??= e;
    gunzip.destroy();
  };
  const corrupt = (e: Error): SwpkgError =>
    new SwpkgError('E_CORRUPT', `${url} is not a whole gzip file: ${e.message}`, {
      hint: 'the server sent a damaged compressed catalog; use another mirror, or tell the publisher',
      details: { url, check: 'gzip' },
      cause: e,
    });
  gunzip.on('data', (c: Buffer) => {
    inflated += c.length;
    if (inflated > maxBytes) fail(tooLarge(url, maxBytes, inflated));
    else out.push(c);
  });
  gunzip.on('error', (e) => fail(corrupt(e)));
  const done = finished(gunzip).catch((e: Error) => fail(corrupt(e)));
  try {
    for await (const chunk of body) {
      compressed += chunk.length;
      if (compressed > maxBytes) fail(tooLarge(url, maxBytes, compressed));
      if (failure) break;
      // zlib never calls a write's callback when that chunk fails (not gzip): the stream's close ends the wait too.
      await new Promise<void>((resolve) => {
        gunzip.once('close', resolve);
        gunzip.write(chunk, () => {
          gunzip.off('close', resolve);
          resolve();
        });
      });
    }
    if (!failure) gunzip.end();
    await done;
  } finally {
    if (failure) await res.discard();
  }
  if (failure) throw failure;
  return Buffer.concat(out, inflated);
}

export interface DownloadOptions {
  transport: HttpTransport;
  /** Final location; bytes land in `dest + '.part'` first and move only when verified. */
  dest: string;
  /** Exact size the signed catalog declares; more is E_TOO_LARGE. */
  size: number;
  sha256: string;
  limits: TransferLimits;
  /** Resume attempts on the same mirror after a reset or stall (default 2). */
  retries?: number;
  reporter?: Reporter;
  label?: string;
  /** Origins a redirect may lead to; default the origins of every URL given (the primary and its mirrors). */
  origins?: string[];
}

export interface DownloadResult {
  path: string;
  /** Bytes transferred in this run (0 when the cache already held the file). */
  transferred: number;
  /** Where the successful attempt resumed (bytes already in `.part` from an interrupted run or attempt); 0 for a fresh download. */
  resumedFrom: number;
  cached: boolean;
}

async function hashPrefix(path: string, hash: Hash): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/**
 * Downloads one package file with resume, a size cap, a stall rule and
 * SHA-256 computed while streaming. Order of trust: nothing under `dest` is
 * ever unverified; `.part` holds unverified bytes and is either resumed
 * (its bytes re-hashed first), completed and verified, or deleted when the
 * server is proven wrong (too large, wrong hash).
 *
 * Crash safety: a kill at any instant leaves at most a `.part` (resumed
 * next time) or a verified `dest` (renamed after fsync).
 */
export async function downloadFile(urls: string[], o: DownloadOptions): Promise<DownloadResult> {
  const cachedSize = await sizeOf(o.dest);
  if (cachedSize !== undefined) {
    const h = createHash('sha256');
    await hashPrefix(o.dest, h);
    if (cachedSize === o.size && h.digest('hex') === o.sha256) return { path: o.dest, transferred: 0, resumedFrom: 0, cached: true };
    await rm(o.dest, { force: true });
  }
  let transferred = 0;
  let resumedFrom = 0;
  const result = await tryMirrors(
    urls,
    async (url) => {
      const retries = o.retries ?? 2;
      let restarted = false;
      // One deadline per file per server: resuming after a stall does not start the clock again.
      const deadlineAt = deadlineFrom(o.limits);
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await downloadOnce(url, o, deadlineAt, o.origins ?? originsOf(urls));
          transferred += r.transferred;
          resumedFrom = r.resumedFrom;
          return r;
        } catch (e) {
          if (e instanceof SwpkgError && e.details['transferred'] !== undefined) transferred += Number(e.details['transferred']);
          // A resumed part that ends with the wrong hash may be a torn write from a crash: start over once.
          if (e instanceof SwpkgError && e.code === 'E_HASH_MISMATCH' && Number(e.details['resumedFrom']) > 0 && !restarted) {
            restarted = true;
            o.reporter?.warn(`${url}: the resumed download did not verify; downloading it again from the start`);
            continue;
          }
          // A server that never answered gets no resume attempts: the next mirror is faster than another timeout.
          const retryable =
            e instanceof SwpkgError &&
            !isUnreachable(e) &&
            (e.code === 'E_NETWORK' || (e.code === 'E_STALLED' && e.details['rule'] !== 'deadline'));
          if (!retryable || attempt >= retries) throw e;
          o.reporter?.warn(`${url}: ${e.message}; resuming (attempt ${attempt + 2} of ${retries + 1})`);
        }
      }
    },
    o.reporter,
    mirrorSetOf(o.transport),
  );
  return { path: result.path, transferred, resumedFrom, cached: false };
}

async function downloadOnce(url: string, o: DownloadOptions, deadlineAt: number, origins: string[]): Promise<DownloadResult> {
  const part = `${o.dest}.part`;
  let have = (await sizeOf(part)) ?? 0;
  if (have > o.size) {
    // More than the catalog allows can never become the right file.
    await rm(part, { force: true });
    have = 0;
  }
  let hash = createHash('sha256');
  if (have > 0) {
    const hashed = await hashPrefix(part, hash);
    have = hashed;
  }
  const resumedFrom = have;
  const ctl = new AbortController();
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (have > 0) headers['range'] = `bytes=${have}-`;
  crashPoint('download.request');
  const res = await getFollowing(o.transport, url, { headers, signal: ctl.signal, origins, limits: o.limits, deadlineAt });
  if (have > 0 && res.status === 416) {
    await res.discard();
    // The server has nothing past our part: either the part is complete, or it is garbage.
    if (have === o.size && hash.copy().digest('hex') === o.sha256) return finish(part, o, 0, resumedFrom);
    await rm(part, { force: true });
    throw new SwpkgError('E_NETWORK', `${url}: the server refused to resume; the partial download was discarded`, {
      hint: 'rerun to download it again from the start',
      details: { url, resumedFrom },
    });
  }
  if (res.status === 200 && have > 0) {
    // The server ignored Range and sends the whole file: start over.
    have = 0;
    hash = createHash('sha256');
    await truncate(part, 0).catch(() => {});
  } else if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.header('content-range') ?? '');
    if (!m || Number(m[1]) !== have) {
      await res.discard();
      await rm(part, { force: true });
      throw new SwpkgError(
        'E_NETWORK',
        `${url}: the server answered a resume with the wrong range (${res.header('content-range') ?? 'none'})`,
        {
          details: { url, asked: have, contentRange: res.header('content-range') },
        },
      );
    }
  } else if (res.status !== 200) {
    await res.discard();
    throw httpError(url, res.status);
  }
  const declared = Number(res.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && have + declared > o.size) {
    await res.discard();
    await rm(part, { force: true });
    throw tooLarge(url, o.size, have + declared);
  }

  let fh;
  try {
    fh = await open(part, have > 0 ? 'a' : 'w', 0o644);
  } catch (e) {
    await res.discard();
    throw fromFsError(e, `opening ${part}`);
  }
  let got = 0;
  let closed = false;
  try {
    for await (const chunk of guarded(url, res, o.limits, ctl, deadlineAt)) {
      if (have + got + chunk.length > o.size) {
        await res.discard();
        await fh.close();
        closed = true;
        await rm(part, { force: true });
        throw tooLarge(url, o.size, have + got + chunk.length);
      }
      hash.update(chunk);
      try {
        await fh.write(chunk);
      } catch (e) {
        throw fromFsError(e, `writing ${part}`);
      }
      got += chunk.length;
      o.reporter?.progress(o.label ?? url, have + got, o.size);
    }
    crashPoint('download.received');
  } catch (e) {
    if (!closed) await fh.close().catch(() => {});
    closed = true;
    if (e instanceof SwpkgError && (e.code === 'E_DISK_FULL' || e.code === 'E_READ_ONLY')) {
      // Do not leave a part that filled the disk: the store must be as before.
      await rm(part, { force: true });
    }
    if (e instanceof SwpkgError) {
      e.details['transferred'] = got;
      e.details['resumedFrom'] = resumedFrom;
    }
    throw e;
  } finally {
    if (!closed) await fh.close().catch(() => {});
  }
  const total = have + got;
  const digest = hash.digest('hex');
  if (total !== o.size || digest !== o.sha256) {
    await rm(part, { force: true });
    throw new SwpkgError('E_HASH_MISMATCH', `${url} is not the file the catalog signed (${total} bytes, SHA-256 ${digest})`, {
      hint: 'the mirror serves different bytes than the signed catalog names (tampering or a broken mirror); use another mirror or tell the publisher',
      details: { url, expectedSha256: o.sha256, actualSha256: digest, expectedSize: o.size, actualSize: total, resumedFrom },
    });
  }
  return finish(part, o, got, resumedFrom);
}

async function finish(part: string, o: DownloadOptions, transferred: number, resumedFrom: number): Promise<DownloadResult> {
  crashPoint('download.verified');
  // No fsync: a cached file is only ever used after it hashes right again (and re-extracted bytes are
  // checked file by file), so a copy torn by power loss is downloaded again, never trusted.
  try {
    await rename(part, o.dest);
  } catch (e) {
    throw fromFsError(e, `moving ${part} into place`);
  }
  crashPoint('download.renamed');
  return { path: o.dest, transferred, resumedFrom, cached: false };
}
