import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet } from 'dns-packet';
import { startDnsResponder, type DnsResponder } from '../../../repo-server/index.js';

let dns: DnsResponder;
let client: Socket;
type Reply = DecodedPacket & { rcode?: string };
const inbox: Reply[] = [];
let nextId = 1;

beforeAll(async () => {
  dns = await startDnsResponder({
    zone: { 'repo.test': { A: ['10.0.2.2'], AAAA: ['fd00::2'] }, 'Mirror.Test.': { A: ['10.0.2.2', '10.0.2.3'] } },
    ttl: 30,
  });
  client = createSocket('udp4');
  client.on('message', (m) => inbox.push(dnsPacket.decode(m)));
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
});

afterAll(async () => {
  client?.close();
  await dns?.close();
});

/** Sends raw bytes and waits (bounded) for the reply carrying `id`. */
async function exchange(bytes: Buffer, id: number): Promise<Reply> {
  client.send(bytes, dns.port, '127.0.0.1');
  const deadline = Date.now() + 5000;
  for (;;) {
    const i = inbox.findIndex((p) => p.id === id);
    if (i >= 0) return inbox.splice(i, 1)[0] as Reply;
    if (Date.now() > deadline) throw new Error(`no DNS reply for id ${id}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function query(name: string, type: string, extra: Partial<Packet> = {}): { bytes: Buffer; id: number } {
  const id = nextId++;
  const bytes = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as 'A' }],
    ...extra,
  });
  return { bytes, id };
}

async function ask(name: string, type: string): Promise<Reply> {
  const q = query(name, type);
  return exchange(q.bytes, q.id);
}

describe('DNS responder', () => {
  it('answers A for a zone name, authoritative, with the TTL and the question echoed', async () => {
    const r = await ask('repo.test', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.flag_qr).toBe(true);
    expect(r.flag_aa).toBe(true);
    expect(r.flag_ra).toBe(false);
    expect(r.questions).toEqual([{ name: 'repo.test', type: 'A', class: 'IN' }]);
    expect(r.answers).toEqual([{ name: 'repo.test', type: 'A', ttl: 30, class: 'IN', flush: false, data: '10.0.2.2' }]);
  });

  it('answers AAAA', async () => {
    const r = await ask('repo.test', 'AAAA');
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers?.map((a) => (a as { data: string }).data)).toEqual(['fd00::2']);
  });

  it("matches names case-insensitively (zone keys too) and keeps the asker's spelling", async () => {
    const r = await ask('MIRROR.test', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.questions?.[0]?.name).toBe('MIRROR.test');
    expect(r.answers?.map((a) => (a as { data: string }).data)).toEqual(['10.0.2.2', '10.0.2.3']);
  });

  it('NXDOMAIN for names outside the zone, including subdomains and the real world', async () => {
    for (const name of ['example.com', 'sub.repo.test', 'test', 'registry.npmjs.org']) {
      const r = await ask(name, 'A');
      expect(r.rcode).toBe('NXDOMAIN');
      expect(r.answers).toEqual([]);
    }
  });

  it('NOERROR with no data for other types of a known name', async () => {
    for (const type of ['MX', 'TXT', 'CNAME', 'SOA']) {
      const r = await ask('repo.test', type);
      expect(r.rcode).toBe('NOERROR');
      expect(r.answers).toEqual([]);
    }
    const aaaaLess = await ask('mirror.test', 'AAAA');
    expect(aaaaLess.rcode).toBe('NOERROR');
    expect(aaaaLess.answers).toEqual([]);
  });

  it('FORMERR for a query without exactly one question', async () => {
    const id = nextId++;
    const none = await exchange(dnsPacket.encode({ type: 'query', id, questions: [] }), id);
    expect(none.rcode).toBe('FORMERR');
    const id2 = nextId++;
    const two = await exchange(
      dnsPacket.encode({
        type: 'query',
        id: id2,
        questions: [
          { name: 'repo.test', type: 'A' },
          { name: 'repo.test', type: 'AAAA' },
        ],
      }),
      id2,
    );
    expect(two.rcode).toBe('FORMERR');
  });

  it('drops malformed packets and responses, then still answers a valid query', async () => {
    const before = dns.stats();
    const garbage = [
      Buffer.alloc(0),
      Buffer.from([1, 2, 3]),
      Buffer.from('this is not dns at all, just bytes'),
      // header claiming 65535 questions with no question bytes
      Buffer.from([0xbe, 0xef, 0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0]),
      // a question whose name is a compression pointer to itself
      Buffer.from([0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]),
      // a response: never answered (two responders must not ping-pong)
      dnsPacket.encode({ type: 'response', id: 0xbeef, questions: [{ name: 'repo.test', type: 'A' }], answers: [] }),
    ];
    for (const g of garbage) client.send(g, dns.port, '127.0.0.1');
    const q = query('repo.test', 'A');
    const r = await exchange(q.bytes, q.id);
    expect(r.answers?.map((a) => (a as { data: string }).data)).toEqual(['10.0.2.2']);
    // Datagrams on loopback arrive in order, so every garbage packet was seen before the answer.
    const after = dns.stats();
    // A zero-length datagram may not be delivered as a message by every kernel, hence ≥ length-1.
    expect(after.dropped - before.dropped).toBeGreaterThanOrEqual(garbage.length - 1);
    expect(inbox.filter((p) => p.id === 0xbeef)).toEqual([]);
  });

  it('answers queries carrying an EDNS OPT record', async () => {
    const q = query('repo.test', 'A', {
      additionals: [
        { type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
      ],
    });
    const r = await exchange(q.bytes, q.id);
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers).toHaveLength(1);
  });

  it('refuses an invalid zone with E_USAGE', async () => {
    await expect(startDnsResponder({ zone: { 'repo.test': { A: ['not-an-ip'] } } })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(startDnsResponder({ zone: { 'repo.test': { AAAA: ['10.0.2.2'] } } })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(startDnsResponder({ zone: { 'bad name!': { A: ['10.0.2.2'] } } })).rejects.toMatchObject({ code: 'E_USAGE' });
  });

  it('refuses a port in use with E_USAGE and keeps answering on the first', async () => {
    await expect(startDnsResponder({ port: dns.port, zone: { 'x.test': { A: ['10.0.2.2'] } } })).rejects.toMatchObject({ code: 'E_USAGE' });
    expect((await ask('repo.test', 'A')).rcode).toBe('NOERROR');
  });

  it('listens on ::1 too', async () => {
    const d6 = await startDnsResponder({ host: '::1', zone: { 'repo.test': { A: ['10.0.2.2'] } } });
    const c6 = createSocket('udp6');
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = new Promise<DecodedPacket>((resolve) => c6.once('message', (m) => resolve(dnsPacket.decode(m))));
      const q = query('repo.test', 'A');
      c6.send(q.bytes, d6.port, '::1');
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no reply on ::1')), 5000);
      });
      const r = await Promise.race([reply, timeout]);
      expect(r.answers).toHaveLength(1);
    } finally {
      clearTimeout(timer);
      c6.close();
      await d6.close();
    }
  });
});

describe('DNS over TCP (for guests whose network drops UDP)', () => {
  it('answers a length-prefixed query on the same port and survives a bad length', async () => {
    const { createConnection } = await import('node:net');
    const dnsPacketMod = (await import('dns-packet')).default;
    const { startDnsResponder } = await import('../../../repo-server/index.js');
    const r = await startDnsResponder({ zone: { 'repo.test': { A: ['10.0.2.2'] } } });
    try {
      const ask = (payload: Buffer): Promise<Buffer | undefined> =>
        new Promise((resolve, reject) => {
          const c = createConnection({ host: '127.0.0.1', port: r.port });
          const timer = setTimeout(() => {
            c.destroy();
            reject(new Error('timeout'));
          }, 5000);
          let got = Buffer.alloc(0);
          c.on('data', (d) => {
            got = Buffer.concat([got, d]);
            if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
              clearTimeout(timer);
              c.destroy();
              resolve(got.subarray(2));
            }
          });
          c.on('close', () => {
            clearTimeout(timer);
            resolve(got.length ? got.subarray(2) : undefined);
          });
          c.on('error', () => undefined);
          c.write(payload);
        });
      const q = dnsPacketMod.encode({
        type: 'query',
        id: 7,
        flags: dnsPacketMod.RECURSION_DESIRED,
        questions: [{ type: 'A', name: 'repo.test' }],
      });
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      const bad = await ask(Buffer.from([0, 3, 1, 2, 3]));
      expect(bad).toBeUndefined();
      const reply = await ask(Buffer.concat([len, q]));
      const decoded = dnsPacketMod.decode(reply!);
      expect(decoded.id).toBe(7);
      expect(decoded.answers?.[0]).toMatchObject({ type: 'A', data: '10.0.2.2' });
    } finally {
      await r.close();
    }
  });
});
