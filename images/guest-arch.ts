import { join } from 'node:path';
import { SwpkgError } from '../catalog/index.js';
import { GUEST_ARCHES, type GuestArch } from '../kernel/index.js';

/**
 * Everything that differs between the guest architectures, in one table, so the
 * image builder, the runner and the acceptance suite never branch on the arch
 * name themselves. The guest's /init, its module list and its network are the
 * same on both: aarch64 uses virtio-pci devices on `-M virt` (a PCIe host
 * bridge is built into the kernel), so the same virtio_pci/virtio_blk/virtio_net
 * modules come up in the same order as on x86_64's q35.
 */
export interface GuestArchProfile {
  arch: GuestArch;
  /** Debian's name for it (the pins' `arch`). */
  debianArch: 'amd64' | 'arm64';
  /** Node's `process.arch` for it. */
  nodeArch: 'x64' | 'arm64';
  /** ELF e_machine of its programs. */
  elfMachine: number;
  /** The package target the seed ports are built for. */
  portTarget: string;
  qemuSystem: string;
  /** Runs one of its static programs on a host of the other architecture. */
  qemuUser: string;
  machine: string;
  /**
   * TCG CPU model. x86_64: `max` (V8 takes its SSE4/AVX paths). aarch64: `cortex-a72`, a real
   * ARMv8.0 core: `max` adds pointer authentication, which TCG emulates with the QARMA cipher on
   * every signed return (a busybox initramfs reached its marker at 19.6 s with `max`, 4.7 s with
   * `max,pauth-impdef=on`, 2.6 s with cortex-a72); Node and the musl ports need nothing past v8.0.
   */
  tcgCpu: string;
  /** The serial console the kernel and the guest's shell use. */
  console: string;
  /** Debian's multiarch triplet: where its shared libraries live. */
  multiarch: string;
  /**
   * Links in the initramfs that make the library paths baked into Node (its interpreter and the
   * loader's default search path) resolve into the base disk, which the guest mounts on /usr.
   */
  libraryLinks: Array<{ path: string; target: string }>;
  /** Base-disk folders (relative) other than `lib/<multiarch>` that may hold the loader. */
  loaderDirs: string[];
  /** Default artifact folders (relative to the checkout); per arch so two sets never share a file. */
  imagesDir: string;
  kernelDir: string;
}

export const GUEST_ARCH_PROFILES: Readonly<Record<GuestArch, GuestArchProfile>> = {
  x86_64: {
    arch: 'x86_64',
    debianArch: 'amd64',
    nodeArch: 'x64',
    elfMachine: 62,
    portTarget: 'x86_64-linux-musl',
    qemuSystem: 'qemu-system-x86_64',
    qemuUser: 'qemu-x86_64-static',
    machine: 'q35',
    tcgCpu: 'max',
    console: 'ttyS0',
    multiarch: 'x86_64-linux-gnu',
    libraryLinks: [
      { path: 'lib/x86_64-linux-gnu', target: '/usr/lib/x86_64-linux-gnu' },
      { path: 'lib64', target: 'usr/lib64' },
    ],
    loaderDirs: ['lib64'],
    imagesDir: join('build', 'images'),
    kernelDir: join('build', 'kernel'),
  },
  aarch64: {
    arch: 'aarch64',
    debianArch: 'arm64',
    nodeArch: 'arm64',
    elfMachine: 183,
    portTarget: 'aarch64-linux-musl',
    qemuSystem: 'qemu-system-aarch64',
    qemuUser: 'qemu-aarch64-static',
    machine: 'virt',
    tcgCpu: 'cortex-a72',
    console: 'ttyAMA0',
    multiarch: 'aarch64-linux-gnu',
    libraryLinks: [
      { path: 'lib/aarch64-linux-gnu', target: '/usr/lib/aarch64-linux-gnu' },
      // Node's interpreter is /lib/ld-linux-aarch64.so.1; Debian ships it as this same relative link.
      { path: 'lib/ld-linux-aarch64.so.1', target: 'aarch64-linux-gnu/ld-linux-aarch64.so.1' },
    ],
    loaderDirs: [],
    imagesDir: join('build', 'images-aarch64'),
    kernelDir: join('build', 'kernel-aarch64'),
  },
};

/** Parses a user-given arch (`--arch`), refusing anything but the guest architectures. */
export function parseGuestArch(value: string): GuestArch {
  if ((GUEST_ARCHES as readonly string[]).includes(value)) return value as GuestArch;
  throw new SwpkgError('E_USAGE', `--arch is ${GUEST_ARCHES.join(' or ')}, not ${JSON.stringify(value)}`, {
    details: { arch: value, known: [...GUEST_ARCHES] },
  });
}

/** The guest architecture this host runs natively, or null when it is neither. */
export function hostGuestArch(nodeArch: string = process.arch): GuestArch | null {
  for (const p of Object.values(GUEST_ARCH_PROFILES)) if (p.nodeArch === nodeArch) return p.arch;
  return null;
}

/** The profile whose Debian arch is `debianArch` (a pin's `arch`), or null. */
export function profileOfDebianArch(debianArch: string): GuestArchProfile | null {
  return Object.values(GUEST_ARCH_PROFILES).find((p) => p.debianArch === debianArch) ?? null;
}

/**
 * argv prefix that runs a static program of `arch` on this host: nothing when
 * the host runs it natively, else its qemu-user emulator (called explicitly:
 * binfmt_misc may not be registered).
 */
export function emulatorFor(arch: GuestArch, nodeArch: string = process.arch): string[] {
  return hostGuestArch(nodeArch) === arch ? [] : [GUEST_ARCH_PROFILES[arch].qemuUser];
}
