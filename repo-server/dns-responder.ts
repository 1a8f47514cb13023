import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, isIP, isIPv4, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, Question, StringAnswer } from 'dns-packet';
import { SwpkgError } from '../catalog/index.js';

/** Addresses of one name in the test zone. */
export interface DnsZoneEntry {
  A?: string[];
  AAAA?: string[];
}

export interface DnsResponderOptions {
  /** Address to bind (127.0.0.1 by default; QEMU user networking maps the guest's 10.0.2.2 here). */
  host?: string;
  /** 0 picks a free port; the guest scenario uses 53. */
  port?: number;
  /** name → addresses; names compare case-insensitively, a trailing dot is ignored. */
  zone: Record<string, DnsZoneEntry>;
  /** TTL of answers in seconds. Default 60. */
  ttl?: number;
  /** Receives one line per answered query. */
  log?: (line: string) => void;
}

export interface DnsResponder {
  host: string;
  port: number;
  /** Queries answered and packets dropped as malformed, since start. */
  stats(): { answered: number; dropped: number };
  close(): Promise<void>;
}

// RFC 1035 §4.2.1: without EDNS a UDP answer is at most 512 bytes; over TCP (§4.2.2) a 2-byte length prefix allows 65535.
const MAX_UDP = 512;
const MAX_TCP = 65535;
const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 64;
const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Starts an authoritative UDP DNS responder for a small fixed zone, for the
 * DNS-hosted scenario (the guest resolves the repository's host name).
 *
 * Contract: A/AAAA queries for a zone name get its addresses; other types (and class
 * ANY/IN mismatches) for a zone name get NOERROR with no answer; names outside the zone
 * get NXDOMAIN; non-QUERY opcodes get NOTIMP; a query without exactly one question gets
 * FORMERR. Responses and packets that do not decode are dropped without reply. It never
 * recurses or forwards: it has no upstream. Messages are encoded and decoded with
 * `dns-packet`. Throws E_USAGE for an invalid zone or an address it cannot bind.
 */
export async function startDnsResponder(opts: DnsResponderOptions): Promise<DnsResponder> {
  const host = opts.host ?? '127.0.0.1';
  const ttl = opts.ttl ?? 60;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 2147483647) {
    throw new SwpkgError('E_USAGE', `invalid DNS TTL: ${ttl}`, { details: { ttl } });
  }
  const zone = normalizeZone(opts.zone);
  if (!isIP(host)) throw new SwpkgError('E_USAGE', `not an IP address to bind the DNS responder to: ${host}`, { details: { host } });
  let answered = 0;
  let dropped = 0;
  const serveUdp = (socket: Socket): void => {
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      let reply: Buffer | undefined;
      try {
        reply = answer(msg, zone, ttl, opts.log, rinfo, MAX_UDP);
      } catch {
        reply = undefined;
      }
      if (!reply) {
        dropped++;
        return;
      }
      answered++;
      socket.send(reply, rinfo.port, rinfo.address, () => {
        // Send errors (an ICMP-unreachable peer) concern one client only.
      });
    });
  };
  const serveTcp = (msg: Buffer, peer: { address: string; port: number }): Buffer | undefined => {
    let reply: Buffer | undefined;
    try {
      reply = answer(msg, zone, ttl, opts.log, peer, MAX_TCP);
    } catch {
      reply = undefined;
    }
    if (reply) answered++;
    else dropped++;
    return reply;
  };

  // UDP and TCP on one port. With port 0 the kernel picks the UDP port, and another process may
  // hold the same number for TCP: pick again, a bounded number of times.
  const attempts = (opts.port ?? 0) === 0 ? 10 : 1;
  let socket: Socket | undefined;
  let tcp: Server | undefined;
  let port = 0;
  for (let attempt = 1; tcp === undefined; attempt++) {
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    serveUdp(udp);
    await bind(udp, host, opts.port ?? 0);
    // After bind, socket errors are per-datagram (e.g. ECONNREFUSED echoes); they must not crash the host process.
    udp.on('error', () => {});
    port = udp.address().port;
    try {
      // The same zone over TCP on the same port: a guest whose network drops all UDP (QEMU
      // `restrict=on`) resolves with `options use-vc`, i.e. over TCP.
      tcp = await listenTcp(host, port, serveTcp);
      socket = udp;
    } catch (e) {
      udp.close();
      const inUse = e instanceof SwpkgError && e.details['errno'] === 'EADDRINUSE';
      if (!inUse || attempt >= attempts) throw e;
    }
  }
  const udpSocket = socket!;
  const tcpServer = tcp;

  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    stats: () => ({ answered, dropped }),
    close(): Promise<void> {
      closed ??= Promise.all([
        new Promise<void>((resolve) => udpSocket.close(() => resolve())),
        new Promise<void>((resolve) => tcpServer.close(() => resolve())),
      ]).then(() => undefined);
      return closed;
    },
  };
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function normalizeZone(zone: Record<string, DnsZoneEntry>): Map<string, { A: string[]; AAAA: string[] }> {
  const out = new Map<string, { A: string[]; AAAA: string[] }>();
  for (const [rawName, entry] of Object.entries(zone)) {
    const name = normalizeName(rawName);
    if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => LABEL.test(l))) {
      throw new SwpkgError('E_USAGE', `invalid DNS name in the zone: ${rawName}`, {
        hint: 'use a name such as repo.test',
        details: { name: rawName },
      });
    }
    const A = entry.A ?? [];
    const AAAA = entry.AAAA ?? [];
    for (const a of A)
      if (!isIPv4(a))
        throw new SwpkgError('E_USAGE', `not an IPv4 address for ${rawName}: ${a}`, { details: { name: rawName, address: a } });
    for (const a of AAAA)
      if (!isIPv6(a))
        throw new SwpkgError('E_USAGE', `not an IPv6 address for ${rawName}: ${a}`, { details: { name: rawName, address: a } });
    const prev = out.get(name);
    out.set(name, { A: [...(prev?.A ?? []), ...A], AAAA: [...(prev?.AAAA ?? []), ...AAAA] });
  }
  return out;
}

/** Builds the reply to one datagram, or undefined to drop it. Input is attacker-controlled. */
function answer(
  msg: Buffer,
  zone: Map<string, { A: string[]; AAAA: string[] }>,
  ttl: number,
  log: ((line: string) => void) | undefined,
  rinfo: Pick<RemoteInfo, 'address' | 'port'>,
  maxSize: number,
): Buffer | undefined {
  // The fixed header is 12 bytes; anything shorter has no id to answer to.
  if (msg.length < 12) return undefined;
  let query: DecodedPacket;
  try {
    query = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  // Never answer answers: two responders pointed at each other would loop.
  if (query.type === 'response' || query.flag_qr) return undefined;
  const id = query.id ?? 0;
  const rd = query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0;
  const questions = query.questions ?? [];
  const opcode = (query as DecodedPacket & { opcode?: string }).opcode;

  const reply = (rcode: number, qs: Question[], answers: StringAnswer[]): Buffer => {
    const packet: Packet = { type: 'response', id, flags: dnsPacket.AUTHORITATIVE_ANSWER | rd | rcode, questions: qs, answers };
    const buf = dnsPacket.encode(packet);
    if (buf.length <= maxSize) return buf;
    return dnsPacket.encode({ ...packet, flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
  };

  if (opcode !== undefined && opcode !== 'QUERY') return reply(RCODE.NOTIMP, [], []);
  const q = questions[0];
  if (questions.length !== 1 || q === undefined) return reply(RCODE.FORMERR, [], []);

  const name = normalizeName(q.name);
  const entry = zone.get(name);
  const qclass = q.class ?? 'IN';
  let rcode: number = RCODE.NOERROR;
  const answers: StringAnswer[] = [];
  if (!entry) {
    rcode = RCODE.NXDOMAIN;
  } else if (qclass === 'IN' || qclass === 'ANY') {
    // `ANY` arrives as a type string dns-packet knows but its typings omit.
    const type = q.type as string;
    if (type === 'A' || type === 'ANY') for (const a of entry.A) answers.push({ type: 'A', name: q.name, ttl, class: 'IN', data: a });
    if (type === 'AAAA' || type === 'ANY')
      for (const a of entry.AAAA) answers.push({ type: 'AAAA', name: q.name, ttl, class: 'IN', data: a });
  }
  log?.(
    `dns ${rinfo.address}:${rinfo.port} ${q.type} ${logSafe(q.name)} -> ${rcode === RCODE.NXDOMAIN ? 'NXDOMAIN' : answers.map((a) => a.data).join(',') || 'NOERROR (no data)'}`,
  );
  // The question is echoed as received (case preserved) so 0x20-randomising resolvers accept it.
  return reply(rcode, [{ name: q.name, type: q.type, class: q.class ?? 'IN' }], answers);
}

function logSafe(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * DNS over TCP: each message is preceded by its 2-byte length. Connections are
 * bounded in number and idle time; a bad length or message closes the connection.
 */
function listenTcp(
  host: string,
  port: number,
  respond: (msg: Buffer, peer: { address: string; port: number }) => Buffer | undefined,
): Promise<Server> {
  const connections = new Set<TcpSocket>();
  const server = createServer((conn) => {
    if (connections.size >= MAX_TCP_CONNECTIONS) {
      conn.destroy();
      return;
    }
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
    conn.on('error', () => conn.destroy());
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    let buf = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len < 12) {
          conn.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const reply = respond(Buffer.from(msg), { address: conn.remoteAddress ?? '?', port: conn.remotePort ?? 0 });
        if (!reply) {
          conn.destroy();
          return;
        }
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        conn.write(Buffer.concat([prefix, reply]));
      }
    });
  });
  const origClose = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    for (const c of connections) c.destroy();
    return origClose(cb);
  };
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new SwpkgError('E_USAGE', `cannot bind the DNS responder (TCP) to ${host}:${port}: ${e.code ?? e.message}`, {
          details: { host, port, errno: e.code },
          cause: e,
        }),
      ),
    );
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

function bind(socket: Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      socket.close();
      const hint =
        e.code === 'EADDRINUSE'
          ? 'another process answers DNS on this port: choose another with --dns-port'
          : e.code === 'EACCES'
            ? 'port 53 needs root (or CAP_NET_BIND_SERVICE): run as root or choose a port ≥ 1024'
            : 'use 127.0.0.1 or ::1';
      reject(
        new SwpkgError('E_USAGE', `cannot bind the DNS responder to ${host}:${port}: ${e.code ?? e.message}`, {
          hint,
          details: { host, port, errno: e.code },
          cause: e,
        }),
      );
    };
    socket.once('error', onError);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}
