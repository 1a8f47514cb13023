import { SwpkgError } from '../catalog/index.js';

/** One HTTP response as the download code needs it: status, headers, a body stream it can abandon. */
export interface HttpResponse {
  status: number;
  /** Lower-case header names. */
  header(name: string): string | undefined;
  body: AsyncIterable<Uint8Array>;
  /** Stops reading and frees the connection. */
  discard(): Promise<void>;
}

/** Response headers larger than this are refused (E_HEADERS_TOO_LARGE); Node's own HTTP parser default. */
export const MAX_HEADER_BYTES = 16 * 1024;

export interface HttpRequest {
  headers: Record<string, string>;
  signal: AbortSignal;
  /** No response headers within this time is a stall (slow retrieval). */
  headersTimeoutMs: number;
}

/**
 * The network edge of pkg, kept small so tests can swap it: `nodeHttpTransport`
 * (node-http-transport.ts) talks to real servers, as `undiciTransport` can;
 * `fetchTransport` goes through WHATWG fetch, where msw intercepts
 * unit-level edge cases. A transport never follows
 * redirects: it returns the 3xx, and `download.ts` decides which to follow
 * (same origin or another configured server of the repository).
 */
export interface HttpTransport {
  get(url: string, req: HttpRequest): Promise<HttpResponse>;
  close?(): Promise<void>;
}

/** Network failures as coded errors: refused, reset, DNS, TLS all become E_NETWORK with the errno. */
export function networkError(url: string, e: unknown): SwpkgError {
  if (e instanceof SwpkgError) return e;
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.code ?? err?.cause?.code;
  // undici's name and node:http's parser's name for the same refusal.
  if (code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'HPE_HEADER_OVERFLOW') {
    return new SwpkgError('E_HEADERS_TOO_LARGE', `${url}: the server sent response headers larger than ${MAX_HEADER_BYTES} bytes`, {
      hint: 'the server or something in between is broken or hostile; use another mirror',
      details: { url, limit: MAX_HEADER_BYTES, errno: code },
      cause: e,
    });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new SwpkgError('E_STALLED', `${url}: the server stopped answering (${code})`, {
      hint: 'the mirror is too slow or unreachable; retry, or add another mirror with `pkg repo set NAME URL --mirror URL`',
      details: { url, errno: code },
      cause: e,
    });
  }
  return new SwpkgError('E_NETWORK', `${url}: ${err?.cause?.message ?? err?.message ?? String(e)}`, {
    hint: 'check the network and the repository URL; an interrupted download resumes on the next run',
    details: { url, errno: code },
    cause: e,
  });
}

/**
 * Why a request failed, for every transport: the reason pkg aborted it with (a stall or deadline
 * its own timers decided, already coded) when that is what happened, else the network error.
 */
export function requestError(url: string, req: HttpRequest, e: unknown): SwpkgError {
  if (req.signal.aborted && req.signal.reason instanceof SwpkgError) return req.signal.reason;
  return networkError(url, e);
}

/**
 * A transport on the undici package's `request`, with its own bounded timeouts; the production
 * transport before `nodeHttpTransport`, kept so the same download tests run over both.
 * Loaded lazily so commands that never touch the network start fast.
 */
export async function undiciTransport(o: { connectTimeoutMs?: number } = {}): Promise<HttpTransport> {
  const { Agent, request } = await import('undici');
  const agent = new Agent({
    connectTimeout: o.connectTimeoutMs ?? 30_000,
    // pkg measures stalls itself (bytes per window); undici's own timers are the outer bound.
    bodyTimeout: 0,
    headersTimeout: 0,
    keepAliveTimeout: 4_000,
    connections: 8,
    maxHeaderSize: MAX_HEADER_BYTES,
  });
  return {
    async get(url, req) {
      let timer: NodeJS.Timeout | undefined;
      const ctl = new AbortController();
      const onAbort = (): void => ctl.abort(req.signal.reason);
      req.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const pending = request(url, { method: 'GET', headers: req.headers, signal: ctl.signal, dispatcher: agent });
        const res = await new Promise<Awaited<ReturnType<typeof request>>>((resolve, reject) => {
          timer = setTimeout(() => {
            const err = new SwpkgError('E_STALLED', `${url}: no answer within ${req.headersTimeoutMs} ms`, {
              hint: 'the mirror is too slow or unreachable; retry, or add another mirror',
              details: { url, rule: 'headers', timeoutMs: req.headersTimeoutMs },
            });
            ctl.abort(err);
            reject(err);
          }, req.headersTimeoutMs);
          pending.then(resolve, reject);
        });
        return {
          status: res.statusCode,
          header: (name) => {
            const v = res.headers[name.toLowerCase()];
            return Array.isArray(v) ? v[0] : v;
          },
          body: res.body as AsyncIterable<Uint8Array>,
          discard: async () => {
            // Destroying an undici body emits AbortError: nobody reads it any more, so swallow it here.
            res.body.on('error', () => {});
            try {
              res.body.destroy();
            } catch {
              // already closed
            }
          },
        };
      } catch (e) {
        throw requestError(url, req, e);
      } finally {
        if (timer) clearTimeout(timer);
        req.signal.removeEventListener('abort', onAbort);
      }
    },
    async close() {
      await agent.close();
    },
  };
}

/**
 * The transport pkg and swpkg use unless one is injected: `node:http`. Node's HTTP client is part
 * of the binary's start-up snapshot, while undici (the package, or Node's own copy behind fetch)
 * is a large module compiled on first use — in the guest under TCG that was a second or more of
 * every `pkg update`. All transports are bounded the same way: pkg's own header timer and stall
 * rule, not a library's defaults.
 */
export async function defaultTransport(): Promise<HttpTransport> {
  return (await import('./node-http-transport.js')).nodeHttpTransport();
}

/** A transport over WHATWG fetch (globalThis.fetch at call time by default), which msw intercepts in unit tests. */
export function fetchTransport(fetchImpl?: typeof fetch): HttpTransport {
  const fetchFn = (url: string, init: RequestInit): Promise<Response> => (fetchImpl ?? globalThis.fetch)(url, init);
  return {
    async get(url, req) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const res = await new Promise<Response>((resolve, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new SwpkgError('E_STALLED', `${url}: no answer within ${req.headersTimeoutMs} ms`, {
                  details: { url, rule: 'headers', timeoutMs: req.headersTimeoutMs },
                }),
              ),
            req.headersTimeoutMs,
          );
          fetchFn(url, { headers: req.headers, signal: req.signal, redirect: 'manual' }).then(resolve, reject);
        });
        const body = res.body;
        return {
          status: res.status,
          header: (name) => res.headers.get(name) ?? undefined,
          body: (body ?? (async function* () {})()) as AsyncIterable<Uint8Array>,
          discard: async () => {
            await body?.cancel().catch(() => {});
          },
        };
      } catch (e) {
        throw requestError(url, req, e);
      } finally {
        if (timer) clearTimeout(timer);
      }
    },
  };
}
