/**
 * Boots the real guest under QEMU (TCG on machines without KVM) and checks the
 * contract the acceptance suite relies on: the boot marker, Node and pkg on the
 * base disk, /pkg as writable ext4, no default route, HTTP and DNS (over TCP)
 * to the host through the restricted network and nothing else, a clean reboot
 * and poweroff that leave a clean store with the data on it.
 *
 * Slow by nature (tens of seconds). Needs the pinned kernel in the source
 * mirror or `.cache/debs` (no network: apt is not allowed here). Set
 * SWPKG_TEST_PKG_BUNDLE=FILE to boot with a ready pkg bundle instead of
 * bundling userland/cli/main.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages, createStoreImage, startGuest, type BuildImagesResult, type GuestHandle } from '../../../images/index.js';

const run = promisify(execFile);

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A DNS responder on TCP (RFC 1035 4.2.2 framing): answers A queries for one name with 10.0.2.2. */
function tcpDnsServer(name: string, seen: string[]): TcpServer {
  return createTcpServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const q = dnsPacket.decode(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        const questions = q.questions ?? [];
        for (const x of questions) seen.push(`${x.name}/${x.type}`);
        const known = questions.some((x) => x.name === name);
        const answers = questions
          .filter((x) => x.name === name && x.type === 'A')
          .map((x) => ({ type: 'A' as const, name: x.name, ttl: 60, data: '10.0.2.2' }));
        sock.write(
          dnsPacket.streamEncode({
            type: 'response',
            id: q.id ?? 0,
            flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3) /* NXDOMAIN */,
            questions,
            answers,
          }),
        );
      }
    });
  });
}

describe('guest image boots under QEMU', () => {
  let tmp = '';
  let built: BuildImagesResult;
  let guest: GuestHandle | undefined;
  const http = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.end(`${token}\n`);
  });
  const requests: string[] = [];
  const dnsQueries: string[] = [];
  const token = randomBytes(8).toString('hex');
  const dns = tcpDnsServer('repo.swpkg.test', dnsQueries);
  let httpPort = 0;
  let dnsPort = 0;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swpkg-boot-test-'));
    const bundle = process.env.SWPKG_TEST_PKG_BUNDLE;
    built = await buildImages({ allowApt: false, pkg: bundle ? { bundleFile: bundle } : 'auto' });
    httpPort = await listen(http);
    dnsPort = await listen(dns);
  }, 300_000);

  afterAll(async () => {
    if (guest && !guest.exited) await guest.kill();
    http.close();
    dns.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('keeps the initramfs small and records every artifact with its hash', () => {
    const m = built.manifest;
    // DESIGN.md: unpacking the initramfs dominates boot, so Node must not be in it.
    expect(m.outputs.initramfs.size).toBeLessThan(4 * 1024 * 1024);
    expect(m.outputs.base.size).toBeGreaterThan(m.node.size);
    for (const o of Object.values(m.outputs)) expect(o.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.kernel.loadOrder.indexOf('virtio_ring')).toBeLessThan(m.kernel.loadOrder.indexOf('virtio'));
    expect(m.kernel.loadOrder.indexOf('virtio')).toBeLessThan(m.kernel.loadOrder.indexOf('virtio_net'));
    expect(m.node.version).toMatch(/^v24\./);
  });

  it('boots, runs Node and pkg, reaches only the forwarded host ports, reboots and powers off cleanly', async () => {
    const store = (await createStoreImage({ path: join(tmp, 'store.img'), sizeMiB: 256 })).path;
    guest = await startGuest({
      storeImage: store,
      hostPorts: [
        { guest: 8080, host: httpPort },
        { guest: 53, host: dnsPort },
      ],
      serialLog: join(tmp, 'serial.log'),
      timeoutMs: 180_000,
    });
    const con = guest.console;
    expect(guest.commandLine).toContain('restrict=on');
    expect(guest.boot.uptime).toBeGreaterThan(0);
    expect(Object.keys(guest.boot.steps)).toEqual(['init', 'modules', 'disks', 'generations', 'network']);

    const two = await con.run(`node -e 'console.log(1+1)'`, 120_000);
    expect(two).toMatchObject({ exitCode: 0, output: '2\n' });

    if (built.manifest.pkgClient) {
      const v = await con.run('pkg --version', 120_000);
      expect(v.exitCode).toBe(0);
      expect(v.output).toContain(built.manifest.pkgClient.version);
      // The init seeded /run with the cache the image build made; Node rewrites a cache it rejects.
      const cache = await con.run(
        'cd /usr/lib/pkg/compile-cache && find . -type f | sort | xargs sha256sum; echo --; cd /run/pkg-compile-cache && find . -type f | sort | xargs sha256sum',
      );
      const [shipped, used] = cache.output.split('--').map((x) => x.trim());
      expect(shipped).toMatch(/^[0-9a-f]{64} {2}\.\/v24\./);
      expect(used).toBe(shipped);
    } else {
      const v = await con.run('node --version', 60_000);
      expect(v).toMatchObject({ exitCode: 0, output: `${built.manifest.node.version}\n` });
    }

    const mounts = await con.run(`grep ' /pkg ' /proc/mounts`);
    expect(mounts.exitCode).toBe(0);
    expect(mounts.output).toMatch(/^\/dev\/vd[a-z] \/pkg ext4 rw[, ]/);
    expect((await con.run(`grep ' /usr ' /proc/mounts`)).output).toMatch(/ \/usr ext4 ro[, ]/);
    expect((await con.run('echo kept > /pkg/marker && sync')).exitCode).toBe(0);
    expect((await con.run('touch /usr/x')).exitCode).not.toBe(0);

    const routes = await con.run('ip route; ip -6 route');
    expect(routes.exitCode).toBe(0);
    const lines = routes.output.split('\n').filter((l) => l.trim() !== '');
    expect(lines.filter((l) => !l.startsWith('::1') && !l.startsWith('fe80'))).toEqual(['10.0.2.0/24 dev eth0 scope link  src 10.0.2.15 ']);
    expect(routes.output).not.toContain('default');

    const fetched = await con.run('wget -qO- http://10.0.2.2:8080/hello', 60_000);
    expect(fetched).toMatchObject({ exitCode: 0, output: `${token}\n` });
    expect(requests).toContain('/hello');

    // Unforwarded host port and an outside address: restrict=on and the missing route stop both.
    expect((await con.run('wget -T 5 -qO- http://10.0.2.2:9/ >/dev/null 2>&1', 60_000)).exitCode).not.toBe(0);
    expect((await con.run('wget -T 5 -qO- http://192.0.2.1/ >/dev/null 2>&1', 60_000)).exitCode).not.toBe(0);

    // DNS through the forwarded TCP port (restricted mode drops UDP; resolv.conf says use-vc).
    const lookup = await con.run(
      `node -e "require('dns').lookup('repo.swpkg.test', 4, (e, a) => { console.log(e ? e.code : a); process.exitCode = e ? 1 : 0; })"`,
      120_000,
    );
    expect(lookup).toMatchObject({ exitCode: 0, output: '10.0.2.2\n' });
    expect(dnsQueries).toContain('repo.swpkg.test/A');
    const byName = await con.run(
      `node -e "fetch('http://repo.swpkg.test:8080/by-name').then(r => r.text()).then(t => process.stdout.write(t))"`,
      120_000,
    );
    expect(byName).toMatchObject({ exitCode: 0, output: `${token}\n` });

    // Exit statuses, a long command (uploaded as a script) and state kept between commands.
    expect((await con.run(`sh -c 'exit 7'`)).exitCode).toBe(7);
    const long = `x=${'a'.repeat(3000)}; echo \${#x}`;
    expect(await con.run(long)).toMatchObject({ exitCode: 0, output: '3000\n' });
    expect(await con.run('cd /pkg && pwd')).toMatchObject({ exitCode: 0, output: '/pkg\n' });
    expect(await con.run('cat marker')).toMatchObject({ exitCode: 0, output: 'kept\n' });

    const again = await guest.reboot();
    expect(again.store).toBe('clean');
    expect(await con.run('cat /pkg/marker')).toMatchObject({ exitCode: 0, output: 'kept\n' });

    const stopped = await guest.stop({ timeoutMs: 90_000 });
    expect(stopped).toMatchObject({ clean: true, store: 'clean', exitCode: 0 });
    expect(guest.exited).toBe(true);

    // The store on the host: a clean ext4 with the file written in the guest.
    await run('e2fsck', ['-fn', store], { timeout: 60_000 });
    const { stdout } = await run('debugfs', ['-R', 'cat /marker', store], { timeout: 60_000 });
    expect(stdout).toBe('kept\n');
    const log = await readFile(join(tmp, 'serial.log'), 'utf8');
    expect(log.match(/SWPKG-BOOT-OK/g)).toHaveLength(2);
  }, 420_000);
});
