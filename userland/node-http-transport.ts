import type { Agent, IncomingMessage, ClientRequest, RequestOptions, request as httpRequest } from 'node:http';
import { SwpkgError } from '../catalog/index.js';
import { MAX_HEADER_BYTES, networkError, requestError, type HttpTransport } from './http-transport.js';

/**
 * The production transport on `node:http`: Node's own HTTP client, built into the binary with its
 * code cache, where undici (the package, or Node's copy behind fetch) is a large bundle
 * compiled on first use plus a WebAssembly parser — about a third of `pkg update`'s CPU on the
 * host and a second or more of it under the guest's TCG. Bounded as the others are: pkg's own
 * header timer and stall rule, the same header limit, and no redirects (the 3xx goes back to
 * download.ts, which decides).
 */
export function nodeHttpTransport(o: { maxSockets?: number } = {}): HttpTransport {
  // Keep-alive: `pkg update` asks one server for root, catalog and siblings in turn, so one
  // connection serves them all. Free sockets are unref'd by the agent, so they never keep pkg alive.
  const opts = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: o.maxSockets ?? 8, scheduling: 'lifo' as const };
  // Both modules load on the first request, not when pkg starts: boot-check and every command
  // that never touches the network skip them (index.ts re-exports this file).
  type Client = { agent: Agent; request: typeof httpRequest };
  let http: Client | undefined;
  let https: Client | undefined;

  function clientFor(url: URL): Client {
    // getBuiltinModule, not import(): an ESM import of node:http builds its module facade by reading
    // every export, and one of them is a getter that loads undici (http.WebSocket and friends).
    if (url.protocol === 'http:') {
      const m = process.getBuiltinModule('node:http');
      return (http ??= { agent: new m.Agent(opts), request: m.request });
    }
    if (url.protocol === 'https:') {
      const m = process.getBuiltinModule('node:https');
      return (https ??= { agent: new m.Agent(opts), request: m.request });
    }
    throw new SwpkgError('E_NETWORK', `${url.href}: the scheme ${url.protocol} is not HTTP`, {
      hint: 'repository URLs are http://, https:// or file://',
      details: { url: url.href, errno: 'EPROTO' },
    });
  }

  return {
    async get(url, req) {
      if (req.signal.aborted && req.signal.reason instanceof SwpkgError) throw req.signal.reason;
      let target: URL;
      try {
        target = new URL(url);
      } catch (e) {
        throw networkError(url, e);
      }
      const client = clientFor(target);
      let creq: ClientRequest | undefined;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        creq?.destroy(req.signal.reason instanceof Error ? req.signal.reason : new Error('aborted'));
      };
      req.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const res = await new Promise<IncomingMessage>((resolve, reject) => {
          const ro: RequestOptions = { method: 'GET', headers: req.headers, agent: client.agent, maxHeaderSize: MAX_HEADER_BYTES };
          creq = client.request(target, ro);
          creq.once('response', resolve);
          creq.once('error', reject);
          timer = setTimeout(() => {
            const err = new SwpkgError('E_STALLED', `${url}: no answer within ${req.headersTimeoutMs} ms`, {
              hint: 'the mirror is too slow or unreachable; retry, or add another mirror',
              details: { url, rule: 'headers', timeoutMs: req.headersTimeoutMs },
            });
            creq?.destroy(err);
            reject(err);
          }, req.headersTimeoutMs);
          creq.end();
        });
        // Errors after the headers surface through the body's iterator; without a listener a late
        // socket error on the request would be an unhandled 'error' event.
        creq!.on('error', () => {});
        return {
          status: res.statusCode ?? 0,
          header: (name) => {
            const v = res.headers[name.toLowerCase()];
            return Array.isArray(v) ? v[0] : v;
          },
          body: res,
          discard: async () => {
            res.on('error', () => {});
            // Destroying the response closes its socket instead of returning it to the pool half-read.
            res.destroy();
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
      for (const c of [http, https]) c?.agent.destroy();
    },
  };
}
