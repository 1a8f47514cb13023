import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwpkgError, fromFsError, silentReporter, type Reporter } from '../catalog/index.js';
import type { DebianPackagePin, GuestArch } from '../kernel/index.js';
import { makeEspImage, type EspFile } from './esp-image.js';
import { SLOT_NAMES, entryFileName, entryText, slotPaths } from '../userland/index.js';
import { GPT_TYPES, writeGptDisk, type GptPartition } from './gpt-disk.js';
import { ARTIFACT_FILES, verifyArtifacts } from './build-images.js';
import { GUEST_ARCH_PROFILES } from './guest-arch.js';
import { defaultDownloadCache, findRepoRoot, obtainDeb } from './kernel-packages.js';
import { runTool } from './host-tools.js';
import { kernelAppend } from './run-guest.js';

/**
 * The guest's system disk for UEFI boot: a GPT disk with an EFI system
 * partition (systemd-boot, one kernel + initramfs per slot, one loader entry
 * per slot) and two base-image partitions, swpkg-base-a and swpkg-base-b.
 * The guest init mounts the slot its entry names (`swpkg.slot=a|b` on the
 * kernel command line), found by GPT partition name, never by position.
 */

/** GPT partition names; the guest init and `pkg system` find slots by these. */
export const SYSTEM_PARTITIONS = { esp: 'swpkg-esp', base: { a: 'swpkg-base-a', b: 'swpkg-base-b' } } as const;

/** Where each arch's firmware and loader live (Debian packages ovmf, qemu-efi-aarch64, systemd-boot-efi). */
export const UEFI_FILES: Record<GuestArch, { code: string; vars: string; loader: string; removablePath: string }> = {
  x86_64: {
    code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
    vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
    loader: '/usr/lib/systemd/boot/efi/systemd-bootx64.efi',
    removablePath: '/EFI/BOOT/BOOTX64.EFI',
  },
  aarch64: {
    code: '/usr/share/AAVMF/AAVMF_CODE.fd',
    vars: '/usr/share/AAVMF/AAVMF_VARS.fd',
    loader: '/usr/lib/systemd/boot/efi/systemd-bootaa64.efi',
    removablePath: '/EFI/BOOT/BOOTAA64.EFI',
  },
};

/**
 * systemd-boot for the aarch64 guest. An x86_64 host cannot install the arm64
 * `systemd-boot-efi` next to its own (same file paths), so the package is
 * fetched like the kernel pins (source mirror, download cache, else
 * `apt-get download systemd-boot-efi:arm64=VERSION`), accepted only with this
 * SHA-256, and unpacked with `dpkg-deb -x` into the download cache.
 */
export const LOADER_PINS: Partial<Record<GuestArch, DebianPackagePin & { member: string }>> = {
  aarch64: {
    package: 'systemd-boot-efi',
    version: '252.39-1~deb12u2',
    arch: 'arm64',
    sha256: 'd75fbbfa90d37d409e7e65f1149afd770bc17daa3f15f49ef651f608fe7e1dbc',
    member: 'usr/lib/systemd/boot/efi/systemd-bootaa64.efi',
  },
};

/**
 * The loader binary for `arch`: the host's own when it is installed, else
 * the pinned Debian package's (see LOADER_PINS), unpacked once per hash.
 */
export async function resolveLoader(
  arch: GuestArch,
  o: { cacheDir?: string; mirrorDir?: string; allowApt?: boolean; reporter?: Reporter } = {},
): Promise<string> {
  const installed = UEFI_FILES[arch].loader;
  if (existsSync(installed)) return installed;
  const pin = LOADER_PINS[arch];
  if (!pin) {
    throw new SwpkgError('E_BUILD', `systemd-boot is not installed (${installed})`, {
      hint: 'install the Debian package systemd-boot-efi (scripts/setup.sh does)',
      details: { path: installed },
    });
  }
  const cacheDir = o.cacheDir ?? defaultDownloadCache();
  const dir = join(cacheDir, `${pin.package}-${pin.arch}-${pin.sha256.slice(0, 16)}`);
  const loader = join(dir, pin.member);
  if (existsSync(loader)) return loader;
  const mirrorDir = o.mirrorDir ?? process.env.SWPKG_SOURCE_MIRROR ?? join(findRepoRoot(), '..', 'shared', 'sources');
  const deb = await obtainDeb(pin, { mirrorDir, cacheDir, allowApt: o.allowApt ?? true, reporter: o.reporter ?? silentReporter });
  // Unpacked beside and renamed into place: a run cut short never leaves a half-unpacked loader that looks complete.
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    await runTool('dpkg-deb', ['-x', deb.path, tmp], { timeoutMs: 120_000, what: `unpacking ${pin.package}:${pin.arch}` });
    if (!existsSync(join(tmp, pin.member))) {
      throw new SwpkgError('E_BUILD', `${pin.package}:${pin.arch}=${pin.version} has no ${pin.member}`, { details: { deb: deb.path } });
    }
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return loader;
}

export interface SlotContents {
  kernel: string;
  initramfs: string;
  base: string;
  /** The system release version the slot holds (entry `version`, shown by `pkg system status`). */
  version: string;
  /** The system release version (its sort-key); default 0 for slot A, and one less than A's for slot B, so A boots first. */
  release?: number;
}

export interface UefiDiskOptions {
  out: string;
  arch: GuestArch;
  /** Slot A is required and is the first choice; slot B may start empty. */
  slots: { a: SlotContents; b?: SlotContents };
  /** Kernel command line (without swpkg.slot, which each entry adds). */
  options: string;
  /** Tries for slot A's entry; default none (installed good). */
  triesA?: number;
  espSizeMiB?: number;
  /** Size of each base slot; default the larger base image + 64 MiB, at least 256. */
  slotSizeMiB?: number;
  loader?: string;
  seed?: string;
}

export interface UefiDiskResult {
  path: string;
  partitions: GptPartition[];
  espSizeMiB: number;
  slotSizeMiB: number;
}

async function sizeOf(p: string): Promise<number> {
  try {
    return (await stat(p)).size;
  } catch (e) {
    throw fromFsError(e, p);
  }
}

/** Builds the system disk (sparse) from slot contents on the host; see the module comment. */
export async function buildUefiDisk(o: UefiDiskOptions): Promise<UefiDiskResult> {
  const files = UEFI_FILES[o.arch];
  const loader = o.loader ?? (await resolveLoader(o.arch));
  if (!existsSync(loader)) {
    throw new SwpkgError('E_BUILD', `systemd-boot is not installed (${loader})`, {
      hint: 'install the Debian package systemd-boot-efi (scripts/setup.sh does)',
      details: { path: loader },
    });
  }
  const mib = 1 << 20;
  const bases = [o.slots.a.base, ...(o.slots.b ? [o.slots.b.base] : [])];
  let largest = 0;
  for (const b of bases) largest = Math.max(largest, await sizeOf(b));
  const slotSizeMiB = o.slotSizeMiB ?? Math.max(256, Math.ceil(largest / mib) + 64);
  const espSizeMiB = o.espSizeMiB ?? 128;

  const espFiles: EspFile[] = [
    { dest: files.removablePath, source: loader },
    // timeout 0: no menu, the first entry boots; `editor no`: nobody edits the kernel command line at the console.
    { dest: '/loader/loader.conf', text: 'timeout 0\neditor no\n' },
  ];
  for (const slot of SLOT_NAMES) {
    const c = o.slots[slot];
    if (!c) continue;
    const p = slotPaths(slot);
    espFiles.push({ dest: p.kernel, source: c.kernel }, { dest: p.initramfs, source: c.initramfs });
    const name = entryFileName({ slot, ...(slot === 'a' && o.triesA !== undefined ? { triesLeft: o.triesA } : {}) });
    const releaseA = o.slots.a.release ?? 0;
    const release = slot === 'a' ? releaseA : (c.release ?? releaseA - 1);
    espFiles.push({ dest: `/loader/entries/${name}`, text: entryText({ slot, version: c.version, release, options: o.options }) });
  }
  await mkdir(dirname(o.out), { recursive: true });
  const work = await mkdtemp(join(dirname(o.out), '.uefi-disk-'));
  try {
    const esp = join(work, 'esp.img');
    await makeEspImage({ out: esp, sizeMiB: espSizeMiB, files: espFiles, volumeId: '5a0b0001' });
    const partitions = await writeGptDisk({
      out: o.out,
      ...(o.seed === undefined ? {} : { seed: o.seed }),
      partitions: [
        { name: SYSTEM_PARTITIONS.esp, type: GPT_TYPES.esp, sizeMiB: espSizeMiB, source: esp },
        { name: SYSTEM_PARTITIONS.base.a, type: GPT_TYPES.linuxData, sizeMiB: slotSizeMiB, source: o.slots.a.base },
        {
          name: SYSTEM_PARTITIONS.base.b,
          type: GPT_TYPES.linuxData,
          sizeMiB: slotSizeMiB,
          ...(o.slots.b ? { source: o.slots.b.base } : {}),
        },
      ],
    });
    return { path: o.out, partitions, espSizeMiB, slotSizeMiB };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * A guest's own copy of the firmware variable store (boot order, and the
 * loader's LoaderEntryOneShot and friends), made once beside its disk.
 */
export async function ensureEfiVars(arch: GuestArch, path: string): Promise<string> {
  if (!existsSync(path)) {
    const src = UEFI_FILES[arch].vars;
    if (!existsSync(src)) {
      throw new SwpkgError('E_BUILD', `UEFI firmware is not installed (${src})`, {
        hint: arch === 'x86_64' ? 'install the Debian package ovmf' : 'install the Debian package qemu-efi-aarch64',
        details: { path: src },
      });
    }
    await copyFile(src, path);
  }
  return path;
}

export interface SystemDiskFromArtifactsOptions {
  out: string;
  /** Artifact set folder; default the x86_64 set (build/images). */
  artifactsDir?: string;
  network?: 'restricted' | 'host-loopback';
  hostname?: string;
  /** Tries for slot A's entry; default none (installed good). */
  triesA?: number;
}

/**
 * `swpkg image system-disk`: an A/B system disk whose slot A holds a verified
 * artifact set (its version the base image's hash prefix) and slot B is empty.
 */
export async function buildSystemDiskFromArtifacts(o: SystemDiskFromArtifactsOptions): Promise<UefiDiskResult> {
  const dir = resolve(o.artifactsDir ?? join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), GUEST_ARCH_PROFILES.x86_64.imagesDir));
  const manifest = await verifyArtifacts(dir);
  const arch = manifest.arch ?? 'x86_64';
  return buildUefiDisk({
    out: o.out,
    arch,
    slots: {
      a: {
        kernel: join(dir, ARTIFACT_FILES.kernel),
        initramfs: join(dir, ARTIFACT_FILES.initramfs),
        base: join(dir, ARTIFACT_FILES.base),
        version: manifest.outputs.base.sha256.slice(0, 12),
      },
    },
    options: kernelAppend(o.network ?? 'restricted', o.hostname ?? 'swpkg', GUEST_ARCH_PROFILES[arch].console),
    ...(o.triesA !== undefined ? { triesA: o.triesA } : {}),
  });
}
