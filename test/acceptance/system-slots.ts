import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { generateKeyPair, toPublicKeyFile, type KeyPair } from '../../catalog/index.js';
import { ARTIFACT_FILES, buildSystemDiskFromArtifacts, writeCpioNewc, type CpioEntry } from '../../images/index.js';
import { publishSystemRelease, rotatePublishedRoot, type PublishSystemReleaseResult } from '../../publishing/index.js';
import type { Fixture } from './fixture.js';

/**
 * The A/B system scenarios' host side (issue 14): the product calls a
 * publisher makes for `pkg system update` (rotatePublishedRoot to authorise
 * a release key, publishSystemRelease, the system disk builder), plus the
 * two broken-but-signed releases the fallback scenario serves.
 */

const DAY_S = 86_400;

/** Per fixture: the release key the main root authorises, made once (kept in memory only, like every key of a run). */
const releaseKeys = new WeakMap<Fixture, KeyPair>();

/**
 * Gives the main repository's root a release role (a new root version signed
 * by the same root key, so the guest's `pkg update` walks to it) the first
 * time a system scenario runs; later calls return the same key.
 */
export async function ensureReleaseKey(f: Fixture): Promise<{ key: KeyPair; rotated: boolean }> {
  const have = releaseKeys.get(f);
  if (have) return { key: have, rotated: false };
  const key = generateKeyPair();
  await rotatePublishedRoot({
    out: f.www.main,
    oldRootKeys: [f.keys.root],
    newRootKeys: [f.keys.root],
    catalogKeys: [toPublicKeyFile(f.keys.catalog)],
    releaseKeys: [toPublicKeyFile(key)],
    expiresIn: 365 * DAY_S,
  });
  releaseKeys.set(f, key);
  return { key, rotated: true };
}

export interface SystemFiles {
  kernel: string;
  initramfs: string;
  base: string;
}

/** The artifact set the guest booted from, as a system release's three files. */
export function artifactSystemFiles(artifactsDir: string): SystemFiles {
  return {
    kernel: join(artifactsDir, ARTIFACT_FILES.kernel),
    initramfs: join(artifactsDir, ARTIFACT_FILES.initramfs),
    base: join(artifactsDir, ARTIFACT_FILES.base),
  };
}

/** Signs and publishes the next system release of the main repository for the guest's arch. */
export async function publishSystem(f: Fixture, files: SystemFiles, record?: SystemDeployment): Promise<PublishSystemReleaseResult> {
  const { key } = await ensureReleaseKey(f);
  const r = await publishSystemRelease({ out: f.www.main, keys: [key], arch: f.arch, files, expiresIn: 30 * DAY_S });
  record?.releases.push({ version: r.version, artifacts: r.artifacts });
  return r;
}

/** The A/B system disk for this run: slot A holds the artifact set the suite built, slot B is empty. */
export async function buildRunSystemDisk(artifactsDir: string, out: string): Promise<string> {
  return (await buildSystemDiskFromArtifacts({ out, artifactsDir })).path;
}

/**
 * An initramfs that is the artifact set's one plus a second gzip'd cpio
 * member: the kernel unpacks concatenated archives in order, so `entries`
 * are added to (or replace files of) the guest's root file system without
 * rebuilding the image. Streamed: the original is copied, not read whole.
 */
export async function extendedInitramfs(artifactsDir: string, out: string, entries: CpioEntry[]): Promise<string> {
  await mkdir(join(out, '..'), { recursive: true });
  await copyFile(join(artifactsDir, ARTIFACT_FILES.initramfs), out);
  const extra = join(out, '..', 'extra.cpio');
  await writeFile(extra, writeCpioNewc(entries));
  await pipeline(createReadStream(extra), createGzip(), createWriteStream(out, { flags: 'a' }));
  return out;
}

/**
 * A system release whose required system health check fails: the guest's
 * init boots it fully, `pkg health` (which runs /etc/pkg/health.d) fails and
 * the trial is abandoned.
 */
export async function healthFailingFiles(artifactsDir: string, dir: string): Promise<SystemFiles> {
  const check = '#!/bin/sh\necho "system release check: this release is broken on purpose"\nexit 1\n';
  const initramfs = await extendedInitramfs(artifactsDir, join(dir, 'initramfs-health-fails.cpio.gz'), [
    { type: 'dir', path: 'etc', mode: 0o755 },
    { type: 'dir', path: 'etc/pkg', mode: 0o755 },
    { type: 'dir', path: 'etc/pkg/health.d', mode: 0o755 },
    { type: 'file', path: 'etc/pkg/health.d/release-check', mode: 0o755, data: Buffer.from(check) },
  ]);
  return { ...artifactSystemFiles(artifactsDir), initramfs };
}

/**
 * A correctly signed system release whose base image is not a file system
 * (1 MiB of zeros over the slot's superblock): the init fails at its disks
 * step, before any check can run, and reboots out of the trial.
 */
export async function initFailingFiles(artifactsDir: string, dir: string): Promise<SystemFiles> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, 'base-not-ext4.img');
  await writeFile(base, Buffer.alloc(1024 * 1024));
  return { ...artifactSystemFiles(artifactsDir), base };
}

/** What the system scenarios leave in manifest.txt: both slots as the guest reports them, and what each holds. */
export interface SystemDeployment {
  disk: string;
  /** `pkg system status --json` at the last look. */
  status: {
    active: string;
    nextBoot: string | null;
    slots: Array<{ slot: string; state: string; entry: string | null; version: string | null; triesLeft: number | null }>;
    lastFailure: { slot: string; version: string | null; triesDone: number | null } | null;
  } | null;
  /** SHA-256 of each slot's kernel and initramfs as read back from the ESP in the guest. */
  espFiles: Record<string, { kernel: string | null; initramfs: string | null }>;
  /** Every system release published this run, as signed. */
  releases: Array<Pick<PublishSystemReleaseResult, 'version' | 'artifacts'>>;
  /** Slot A as the disk was built: the artifact set's base image hash prefix is its version. */
  installed: { version: string; kernel: string; initramfs: string; base: string } | null;
}

export function renderSystemDeployment(d: SystemDeployment | undefined): string[] {
  if (!d) return ['  (no system scenario ran: the guest booted with -kernel only)'];
  const L = [`  system disk     ${d.disk}`];
  const st = d.status;
  if (st) {
    L.push(`  active slot     ${st.active}; next boot ${st.nextBoot ?? 'none'}`);
    for (const s of st.slots) {
      const esp = d.espFiles[s.slot];
      L.push(
        `  slot ${s.slot.toUpperCase()}          ${s.state}${s.triesLeft !== null ? ` (${s.triesLeft} tries left)` : ''}, version ${s.version ?? '-'}, entry ${s.entry ?? 'none'}`,
      );
      if (esp)
        L.push(`                  on the ESP: vmlinuz sha256 ${esp.kernel ?? 'missing'}, initramfs sha256 ${esp.initramfs ?? 'missing'}`);
      const rel = d.releases.find((r) => String(r.version) === s.version);
      if (rel)
        L.push(
          `                  release ${rel.version} signed base sha256 ${rel.artifacts.base.sha256} (${rel.artifacts.base.size} bytes)`,
        );
      else if (d.installed && s.version === d.installed.version)
        L.push(`                  installed artifact set: base sha256 ${d.installed.base}`);
    }
    L.push(
      `  last failure    ${st.lastFailure ? `slot ${st.lastFailure.slot} version ${st.lastFailure.version ?? '?'} after ${st.lastFailure.triesDone ?? '?'} tries` : 'none'}`,
    );
    const fallback = st.slots.find((s) => s.slot !== st.active && s.state === 'good');
    L.push(
      `  rollback set    ${fallback ? `slot ${fallback.slot} (version ${fallback.version ?? '?'}): pkg system rollback` : 'none (no other good slot)'}`,
    );
  } else {
    L.push('  (the guest never reported pkg system status)');
  }
  for (const r of d.releases)
    L.push(
      `  published       release ${r.version}: kernel ${r.artifacts.kernel.sha256}, initramfs ${r.artifacts.initramfs.sha256}, base ${r.artifacts.base.sha256}`,
    );
  return L;
}
