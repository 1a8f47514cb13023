import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface DnsTcpRelay {
  port: number;
  /** Queries relayed and answers returned, since start. */
  stats(): { queries: number; answers: number };
  close(): Promise<void>;
}

/**
 * DNS over TCP (RFC 1035 4.2.2: each message behind a two-byte length) on
 * 127.0.0.1, relayed message by message to a UDP responder.
 *
 * Why it exists: the guest's restricted QEMU network drops every UDP
 * datagram, so its resolver uses TCP (`options use-vc`, see
 * images/guest-network.ts), while the repository server's DNS responder
 * (repo-server/dns-responder.ts) answers on UDP only. The relay adds no
 * answers of its own: every reply is the responder's bytes.
 */
export async function startDnsTcpRelay(upstream: { host: string; port: number }, log?: (line: string) => void): Promise<DnsTcpRelay> {
  let queries = 0;
  let answers = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((sock) => {
    open.add(sock);
    let buf = Buffer.alloc(0);
    const udp = createSocket(upstream.host.includes(':') ? 'udp6' : 'udp4');
    udp.on('error', () => sock.destroy());
    udp.on('message', (msg: Buffer) => {
      answers++;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([len, msg]));
    });
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('close', () => {
      open.delete(sock);
      udp.close();
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        queries++;
        log?.(`dns-relay: ${n}-byte query from the guest to ${upstream.host}:${upstream.port}/udp`);
        udp.send(msg, upstream.port, upstream.host);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    stats: () => ({ queries, answers }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
