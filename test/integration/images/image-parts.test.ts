/**
 * The image builder's parts with real host tools (cpio, mkfs.ext4, debugfs,
 * QEMU) and no guest boot: the initramfs archive, store disks, artifact
 * verification, the network arguments, and startGuest's refusals, each
 * checked for its error code and for leaving things as they were.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ARTIFACT_FILES,
  GUEST_ARCH_PROFILES,
  baseDiskPathOf,
  chooseAccelerator,
  createStoreImage,
  emulatorFor,
  hostGuestArch,
  kernelAppend,
  netdevArgument,
  findRelayProgram,
  relayCommand,
  normalisePorts,
  parseGuestArch,
  qemuArguments,
  startGuest,
  verifyArtifacts,
  writeCpioNewc,
  type ArtifactManifest,
  type CpioEntry,
} from '../../../images/index.js';

const run = promisify(execFile);
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'swpkg-images-test-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('initramfs archive (newc cpio)', () => {
  const entries: CpioEntry[] = [
    { type: 'file', path: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { type: 'dir', path: 'bin', mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: Buffer.from('x'.repeat(1001)) },
    { type: 'dir', path: 'dev', mode: 0o755 },
    { type: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
  ];

  it('is read by cpio with every entry, parents first, and is the same bytes whatever the input order', async () => {
    const bytes = writeCpioNewc(entries, 1704067200);
    expect(writeCpioNewc([...entries].reverse(), 1704067200).equals(bytes)).toBe(true);
    const archive = join(tmp, 'a.cpio');
    await writeFile(archive, bytes);
    const names = await run('sh', ['-c', `cpio -it < '${archive}'`], { timeout: 30_000 });
    expect(names.stdout.trim().split('\n')).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init']);
    const long = (await run('sh', ['-c', `cpio -itv < '${archive}'`], { timeout: 30_000 })).stdout.trim().split('\n');
    expect(long[2]).toMatch(/^lrwxrwxrwx .* bin\/sh -> busybox$/);
    expect(long[4]).toMatch(/^crw------- .* 5, +1 .* dev\/console$/);
    const out = join(tmp, 'x');
    await mkdir(out);
    await run('sh', ['-c', `cd '${out}' && cpio -id --no-absolute-filenames init bin/busybox < '${archive}'`], { timeout: 30_000 });
    expect(await readFile(join(out, 'init'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect((await readFile(join(out, 'bin', 'busybox'))).length).toBe(1001);
  });

  for (const path of ['../etc/passwd', '/etc/passwd', 'a//b', 'a/./b', '']) {
    it(`refuses the path ${JSON.stringify(path)}`, () => {
      expect(() => writeCpioNewc([{ type: 'dir', path, mode: 0o755 }])).toThrow(expect.objectContaining({ code: 'E_UNSAFE_PATH' }));
    });
  }
});

describe('store disk', () => {
  it('is a journalled ext4 labelled swpkg-store, optionally preseeded from a folder', async () => {
    const seed = join(tmp, 'seed');
    await mkdir(join(seed, 'db'), { recursive: true });
    await writeFile(join(seed, 'db', 'repos.json'), '{"repos":[]}\n');
    const { path } = await createStoreImage({ path: join(tmp, 'store.img'), sizeMiB: 64, seedDir: seed });
    const { stdout } = await run('dumpe2fs', ['-h', path], { timeout: 30_000 });
    expect(stdout).toMatch(/Filesystem volume name:\s+swpkg-store/);
    expect(stdout).toMatch(/Filesystem features:.*has_journal/);
    const cat = await run('debugfs', ['-R', 'cat /db/repos.json', path], { timeout: 30_000 });
    expect(cat.stdout).toBe('{"repos":[]}\n');
    await run('e2fsck', ['-fn', path], { timeout: 30_000 });
  });

  it('refuses to replace an existing file, which stays as it was', async () => {
    const path = join(tmp, 'store.img');
    await writeFile(path, 'precious');
    await expect(createStoreImage({ path, sizeMiB: 64 })).rejects.toMatchObject({ code: 'E_USAGE' });
    expect(await readFile(path, 'utf8')).toBe('precious');
  });

  it('refuses a seed that does not exist and a size too small for ext4', async () => {
    await expect(createStoreImage({ path: join(tmp, 'a.img'), seedDir: join(tmp, 'nope') })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(createStoreImage({ path: join(tmp, 'b.img'), sizeMiB: 1 })).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});

/** An artifact folder whose manifest matches its (tiny, fake) files. */
async function fakeArtifacts(dir: string): Promise<ArtifactManifest> {
  await mkdir(dir, { recursive: true });
  const file = async (name: string, content: string) => {
    await writeFile(join(dir, name), content);
    return { file: name, size: Buffer.byteLength(content), sha256: sha(content) };
  };
  const manifest = {
    format: 1,
    builder: 1,
    outputs: {
      kernel: await file(ARTIFACT_FILES.kernel, 'kernel bytes'),
      initramfs: await file(ARTIFACT_FILES.initramfs, 'initramfs bytes'),
      base: await file(ARTIFACT_FILES.base, 'base bytes'),
      store: await file(ARTIFACT_FILES.store, 'store bytes'),
    },
  } as unknown as ArtifactManifest;
  await writeFile(join(dir, ARTIFACT_FILES.manifest), JSON.stringify(manifest));
  return manifest;
}

describe('artifact verification', () => {
  it('accepts a set that matches its manifest and refuses one whose file changed', async () => {
    const dir = join(tmp, 'art');
    const m = await fakeArtifacts(dir);
    expect((await verifyArtifacts(dir)).outputs.base.sha256).toBe(m.outputs.base.sha256);
    await writeFile(join(dir, ARTIFACT_FILES.base), 'base bytez');
    await expect(verifyArtifacts(dir)).rejects.toMatchObject({
      code: 'E_HASH_MISMATCH',
      details: { expected: m.outputs.base.sha256, actual: sha('base bytez') },
    });
  });

  it('refuses a folder without a manifest', async () => {
    await expect(verifyArtifacts(tmp)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('guest network arguments', () => {
  const relay = { socat: '/opt/bin,1/socat' };

  it('restricted: restrict=on, gateway moved off 10.0.2.2, one relay per forwarded port', () => {
    const arg = netdevArgument('restricted', normalisePorts([8080, { guest: 53, host: 40053 }]), relay);
    expect(arg.split(',').slice(0, 6)).toEqual(['user', 'id=n0', 'net=10.0.2.0/24', 'host=10.0.2.1', 'ipv6=off', 'restrict=on']);
    expect(arg).toContain(`guestfwd=tcp:10.0.2.2:8080-cmd:'/opt/bin,,1/socat' -t 600 -lf /dev/null FD:0,,shut-down TCP:127.0.0.1:8080,`);
    expect(arg).toContain(`guestfwd=tcp:10.0.2.2:53-cmd:'/opt/bin,,1/socat' -t 600 -lf /dev/null FD:0,,shut-down TCP:127.0.0.1:40053`);
  });

  it('host-loopback: no restriction, and no port mapping it cannot honour', () => {
    expect(netdevArgument('host-loopback', normalisePorts([8080]), relay)).toBe('user,id=n0,net=10.0.2.0/24,host=10.0.2.2,ipv6=off');
    expect(() => netdevArgument('host-loopback', normalisePorts([{ guest: 80, host: 8080 }]), relay)).toThrow(
      expect.objectContaining({ code: 'E_USAGE' }),
    );
  });

  it('finds socat on PATH, and names the package when it is missing', () => {
    expect(() => findRelayProgram('/nonexistent-a:/nonexistent-b')).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
    expect(findRelayProgram(`/nonexistent-a:${dirname(findRelayProgram())}`)).toBe(findRelayProgram());
  });

  it('the relay carries a guest connection to the host and passes the host close back', async () => {
    // The host service answers once and closes; the guest must then see the end of the stream,
    // as an HTTP client reading to EOF or a TCP DNS client does.
    const host = createServer((c) => c.once('data', (d) => c.end(`answer:${String(d)}`)));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const hostPort = (host.address() as { port: number }).port;
    // QEMU hands the relay the guest connection as fds 0-2: here, the accepted side of a loopback pair.
    const relaySide = createServer();
    await new Promise<void>((r) => relaySide.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => relaySide.once('connection', r));
    const guest = connect((relaySide.address() as { port: number }).port, '127.0.0.1');
    const fd = await accepted;
    // The command QEMU runs, with QEMU's doubled commas undone and glib's shell quoting dropped.
    const words = relayCommand(findRelayProgram(), hostPort).replace(/,,/g, ',').split(' ');
    const child = spawn(words[0]!.replace(/'/g, ''), words.slice(1), { stdio: [fd, fd, fd] });
    fd.destroy();
    const received: Buffer[] = [];
    guest.on('data', (d: Buffer) => received.push(d));
    guest.write('hello');
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the guest never saw the host close')), 10_000);
      guest.on('end', () => {
        clearTimeout(t);
        resolve();
      });
    });
    expect(Buffer.concat(received).toString()).toBe('answer:hello');
    guest.end();
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(0);
    host.close();
    relaySide.close();
  });

  it('refuses invalid and duplicate ports', () => {
    expect(() => normalisePorts([0])).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(() => normalisePorts([{ guest: 80, host: 70000 }])).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(() => normalisePorts([80, { guest: 80, host: 81 }])).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });

  it('refuses a host name the init could not use', () => {
    expect(kernelAppend('restricted', 'swpkg')).toContain('swpkg.net=restricted swpkg.hostname=swpkg');
    expect(() => kernelAppend('restricted', 'bad name')).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});

describe('per-arch QEMU machine', () => {
  const common = {
    artifactsDir: '/a',
    storeImage: '/s/store.img',
    accel: 'tcg' as const,
    memoryMiB: 512,
    cpus: 1,
    netdev: 'user,id=n0',
    append: 'x',
    rtcBase: 'utc',
  };
  const value = (argv: string[], flag: string): string[] => argv.flatMap((a, i) => (argv[i - 1] === flag ? [a] : []));

  it('x86_64: q35, TCG cpu max, disks on the virtio interface, console ttyS0', () => {
    const argv = qemuArguments({ ...common, profile: GUEST_ARCH_PROFILES.x86_64 });
    expect(value(argv, '-machine')).toEqual(['q35,accel=tcg']);
    expect(value(argv, '-cpu')).toEqual(['max']);
    // bench-boot --cpu: another TCG model; KVM always passes the host CPU through.
    expect(value(qemuArguments({ ...common, tcgCpu: 'Nehalem', profile: GUEST_ARCH_PROFILES.x86_64 }), '-cpu')).toEqual(['Nehalem']);
    expect(value(qemuArguments({ ...common, accel: 'kvm', tcgCpu: 'Nehalem', profile: GUEST_ARCH_PROFILES.x86_64 }), '-cpu')).toEqual([
      'host',
    ]);
    expect(value(argv, '-drive')).toEqual(['file=/a/base.img,if=virtio,format=raw,readonly=on', 'file=/s/store.img,if=virtio,format=raw']);
    expect(kernelAppend('restricted', 'swpkg', GUEST_ARCH_PROFILES.x86_64.console)).toMatch(/^console=ttyS0,115200 /);
  });

  it('aarch64: virt, cortex-a72 under TCG (host under KVM), read-only base and the store as virtio-blk-pci, console ttyAMA0', () => {
    const argv = qemuArguments({ ...common, profile: GUEST_ARCH_PROFILES.aarch64 });
    expect(value(argv, '-machine')).toEqual(['virt,accel=tcg']);
    expect(value(argv, '-cpu')).toEqual(['cortex-a72']);
    expect(value(argv, '-drive')).toEqual([
      'file=/a/base.img,if=none,id=base,format=raw,readonly=on',
      'file=/s/store.img,if=none,id=store,format=raw',
    ]);
    expect(value(argv, '-device')).toEqual(['virtio-blk-pci,drive=base', 'virtio-blk-pci,drive=store', 'virtio-net-pci,netdev=n0']);
    expect(value(qemuArguments({ ...common, accel: 'kvm', profile: GUEST_ARCH_PROFILES.aarch64 }), '-cpu')).toEqual(['host']);
    expect(kernelAppend('restricted', 'swpkg', GUEST_ARCH_PROFILES.aarch64.console)).toMatch(/^console=ttyAMA0,115200 /);
    expect(() => kernelAppend('restricted', 'swpkg', 'ttyAMA0 init=/bin/sh')).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });

  it('parses --arch values and refuses others', () => {
    expect(parseGuestArch('aarch64')).toBe('aarch64');
    expect(() => parseGuestArch('arm64')).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(hostGuestArch('x64')).toBe('x86_64');
    expect(hostGuestArch('arm64')).toBe('aarch64');
    expect(hostGuestArch('riscv64')).toBeNull();
    expect(emulatorFor('aarch64', 'x64')).toEqual(['qemu-aarch64-static']);
    expect(emulatorFor('aarch64', 'arm64')).toEqual([]);
  });
});

describe('base disk layout', () => {
  it('maps host library paths into the /usr disk the guest links /lib and /lib64 to', () => {
    expect(baseDiskPathOf('/lib/x86_64-linux-gnu/libc.so.6')).toBe('lib/x86_64-linux-gnu/libc.so.6');
    expect(baseDiskPathOf('/usr/lib/x86_64-linux-gnu/libstdc++.so.6')).toBe('lib/x86_64-linux-gnu/libstdc++.so.6');
    expect(baseDiskPathOf('/lib64/ld-linux-x86-64.so.2')).toBe('lib64/ld-linux-x86-64.so.2');
    expect(() => baseDiskPathOf('/opt/vendor/lib/libfoo.so')).toThrow(expect.objectContaining({ code: 'E_BUILD' }));
  });

  it('aarch64: libraries into lib/aarch64-linux-gnu, the loader where the initramfs link /lib/ld-linux-aarch64.so.1 points', () => {
    const p = GUEST_ARCH_PROFILES.aarch64;
    expect(baseDiskPathOf('/lib/aarch64-linux-gnu/libc.so.6', p)).toBe('lib/aarch64-linux-gnu/libc.so.6');
    expect(baseDiskPathOf('/usr/lib/aarch64-linux-gnu/libstdc++.so.6', p)).toBe('lib/aarch64-linux-gnu/libstdc++.so.6');
    expect(baseDiskPathOf('/lib/ld-linux-aarch64.so.1', p)).toBe('lib/aarch64-linux-gnu/ld-linux-aarch64.so.1');
    // x86_64 places do not exist on the aarch64 guest.
    expect(() => baseDiskPathOf('/lib64/ld-linux-x86-64.so.2', p)).toThrow(expect.objectContaining({ code: 'E_BUILD' }));
    expect(() => baseDiskPathOf('/lib/x86_64-linux-gnu/libc.so.6', p)).toThrow(expect.objectContaining({ code: 'E_BUILD' }));
  });
});

describe('startGuest refusals (no guest is booted)', () => {
  it('refuses a missing store, a bad clock base and a tampered artifact set before starting QEMU', async () => {
    const dir = join(tmp, 'art');
    await fakeArtifacts(dir);
    const store = join(tmp, 'store.img');
    await expect(startGuest({ artifactsDir: dir, storeImage: join(tmp, 'none.img') })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await writeFile(store, 'store');
    await expect(startGuest({ artifactsDir: dir, storeImage: store, rtcBase: 'yesterday' })).rejects.toMatchObject({ code: 'E_USAGE' });
    // A CPU model is one -cpu value: nothing that would start another QEMU option.
    for (const tcgCpu of ['', 'max -snapshot', '-cpu', 'max,,pauth']) {
      await expect(startGuest({ artifactsDir: dir, storeImage: store, tcgCpu })).rejects.toMatchObject({ code: 'E_USAGE' });
    }
    // A set records its arch (a set without one is x86_64): booting it as another arch is refused.
    await expect(startGuest({ arch: 'aarch64', artifactsDir: dir, storeImage: store })).rejects.toMatchObject({
      code: 'E_USAGE',
      details: { arch: 'x86_64', requested: 'aarch64' },
    });
    await writeFile(join(dir, ARTIFACT_FILES.kernel), 'another kernel');
    await expect(startGuest({ artifactsDir: dir, storeImage: store })).rejects.toMatchObject({ code: 'E_HASH_MISMATCH' });
    expect(await readFile(store, 'utf8')).toBe('store');
  });

  it('reports a QEMU that cannot start the machine, with its stderr, well within the boot limit', async () => {
    const dir = join(tmp, 'art');
    await fakeArtifacts(dir);
    const store = join(tmp, 'store.img');
    await writeFile(store, 'store');
    // The fake kernel is not a bzImage: QEMU refuses it and exits; the wait must end with it.
    const err = await startGuest({ artifactsDir: dir, storeImage: store, timeoutMs: 60_000, accel: 'tcg' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_INTERNAL', details: { qemuStderr: expect.stringMatching(/\S/) } });
    expect((err as Error).message).toContain('guest did not boot');
  }, 90_000);

  it('probes the accelerator and falls back to TCG where KVM does not work', async () => {
    const choice = await chooseAccelerator('qemu-system-x86_64');
    expect(['kvm', 'tcg']).toContain(choice.accel);
    expect(choice.reason.length).toBeGreaterThan(0);
    expect(await chooseAccelerator('qemu-system-x86_64', 'tcg')).toEqual({ accel: 'tcg', reason: 'requested by the caller' });
  });
});
