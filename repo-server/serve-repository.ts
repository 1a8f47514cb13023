import { startStaticServer, type StaticServerTimeouts } from './static-server.js';
import { startDnsResponder } from './dns-responder.js';
import type { ServerMetricsSnapshot } from './server-metrics.js';
import { isIPv4, isIPv6 } from 'node:net';
import { SwpkgError } from '../catalog/index.js';

export interface ServeRepositoryOptions {
  root: string;
  host?: string;
  port?: number;
  /** Access-log and DNS query lines. */
  log?: (line: string) => void;
  timeouts?: StaticServerTimeouts;
  /** Also answer DNS for one name (the DNS-hosted scenario). */
  dns?: { host?: string; port: number; name: string; addresses: string[]; ttl?: number };
}

export interface ServeRepositoryHandle {
  url: string;
  host: string;
  port: number;
  root: string;
  dns?: { host: string; port: number; name: string; addresses: string[] };
  metrics(): ServerMetricsSnapshot;
  /** Graceful stop of both servers; see StaticServer.close. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/**
 * `swpkg serve`: the static server over ROOT and, when asked, the DNS responder
 * answering one name with the given addresses (IPv4 → A, IPv6 → AAAA).
 * Either both start or neither stays running.
 */
export async function serveRepository(opts: ServeRepositoryOptions): Promise<ServeRepositoryHandle> {
  const dnsOpts = opts.dns;
  if (dnsOpts) {
    if (dnsOpts.addresses.length === 0)
      throw new SwpkgError('E_USAGE', 'the DNS responder needs at least one address to answer with', {
        hint: 'pass --dns-address 10.0.2.2',
      });
    for (const a of dnsOpts.addresses) {
      if (!isIPv4(a) && !isIPv6(a)) throw new SwpkgError('E_USAGE', `not an IP address: ${a}`, { details: { address: a } });
    }
  }
  const http = await startStaticServer({
    root: opts.root,
    ...(opts.host === undefined ? {} : { host: opts.host }),
    ...(opts.port === undefined ? {} : { port: opts.port }),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
  });
  if (!dnsOpts) {
    return {
      url: http.url,
      host: http.host,
      port: http.port,
      root: http.root,
      metrics: () => http.metrics(),
      close: (o?: { graceMs?: number }) => http.close(o),
    };
  }
  let dns;
  try {
    dns = await startDnsResponder({
      host: dnsOpts.host ?? http.host,
      port: dnsOpts.port,
      zone: { [dnsOpts.name]: { A: dnsOpts.addresses.filter((a) => isIPv4(a)), AAAA: dnsOpts.addresses.filter((a) => isIPv6(a)) } },
      ...(dnsOpts.ttl === undefined ? {} : { ttl: dnsOpts.ttl }),
      ...(opts.log ? { log: opts.log } : {}),
    });
  } catch (e) {
    await http.close({ graceMs: 0 });
    throw e;
  }
  const dnsInfo = { host: dns.host, port: dns.port, name: dnsOpts.name, addresses: [...dnsOpts.addresses] };
  return {
    url: http.url,
    host: http.host,
    port: http.port,
    root: http.root,
    dns: dnsInfo,
    metrics: () => http.metrics(),
    async close(o?: { graceMs?: number }): Promise<void> {
      await Promise.all([http.close(o), dns.close()]);
    },
  };
}
