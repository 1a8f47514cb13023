import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, statfs, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  SwpkgError,
  fromFsError,
  payloadSha256,
  silentReporter,
  verifySystemRelease,
  type Reporter,
  type RootDocument,
  type SystemArtifact,
  type SystemReleaseDocument,
} from '../catalog/index.js';
import { crashPoint } from './crash-point.js';

/**
 * A/B system slots on a UEFI system disk booted by systemd-boot (issue 14).
 * The loader's state is file names on the ESP: `loader/entries/slotA.conf`
 * is a good entry, `slotB+2-1.conf` one being tried (2 tries left, 1 done),
 * `slotB+0-3.conf` one that used its tries up, which systemd-boot sorts last
 * by itself: that is the automatic fallback. `slotB+0.conf` (no tries left,
 * none done) is a slot set aside by `pkg system rollback`: the loader treats
 * it like a bad one, but no boot of it failed. Among entries that are not bad,
 * the lower `sort-key` boots first; a release's key falls as its version
 * rises, so a newly staged slot comes first without the active slot's entry
 * being touched.
 */

export type SlotName = 'a' | 'b';
export const SLOT_NAMES: readonly SlotName[] = ['a', 'b'];
export const DEFAULT_TRIES = 3;

export function otherSlot(s: SlotName): SlotName {
  return s === 'a' ? 'b' : 'a';
}

export interface EntryName {
  slot: SlotName;
  /** Boot Assessment tries left; undefined = a good entry (no counter). */
  triesLeft?: number;
  triesDone?: number;
}

/** ESP paths of a slot's files (absolute on the ESP, as loader entries name them). */
export function slotPaths(slot: SlotName): { dir: string; kernel: string; initramfs: string } {
  const d = `/slot${slot.toUpperCase()}`;
  return { dir: d, kernel: `${d}/vmlinuz`, initramfs: `${d}/initramfs.cpio.gz` };
}

export function entryFileName(e: EntryName): string {
  const base = `slot${e.slot.toUpperCase()}`;
  if (e.triesLeft === undefined) return `${base}.conf`;
  return `${base}+${e.triesLeft}${e.triesDone ? `-${e.triesDone}` : ''}.conf`;
}

const ENTRY_NAME = /^slot([AB])(?:\+(\d{1,4})(?:-(\d{1,4}))?)?\.conf$/;

/** Parses an entry file name back; null for files that are not slot entries. */
export function parseEntryFileName(name: string): EntryName | null {
  const m = ENTRY_NAME.exec(name);
  if (!m?.[1]) return null;
  const out: EntryName = { slot: m[1].toLowerCase() as SlotName };
  if (m[2] !== undefined) out.triesLeft = Number(m[2]);
  if (m[3] !== undefined) out.triesDone = Number(m[3]);
  return out;
}

/** Lower boots first; a higher release version gives a lower key. Version 0 is an installed, unpublished system. */
export function sortKeyFor(releaseVersion: number): string {
  return `swpkg-${String(1_000_000_000 - releaseVersion).padStart(10, '0')}`;
}

/** A loader entry. Kernel options are fixed when the entry is written, as on a real disk. */
export function entryText(o: { slot: SlotName; version: string; release: number; options: string }): string {
  const p = slotPaths(o.slot);
  return [
    `title swpkg ${o.version} (slot ${o.slot.toUpperCase()})`,
    `version ${o.version}`,
    `sort-key ${sortKeyFor(o.release)}`,
    `linux ${p.kernel}`,
    `initrd ${p.initramfs}`,
    `options ${o.options} swpkg.slot=${o.slot}`,
    '',
  ].join('\n');
}

export interface SlotStatus {
  slot: SlotName;
  active: boolean;
  /**
   * empty: no entry (never installed, or cleared while being written); good; trying (tries left);
   * bad (failed boots used its tries up); set-aside (`pkg system rollback` moved off it; no boot failed).
   */
  state: 'empty' | 'good' | 'trying' | 'bad' | 'set-aside';
  entry: string | null;
  version: string | null;
  triesLeft: number | null;
  triesDone: number | null;
}

export interface SystemStatus {
  active: SlotName;
  slots: SlotStatus[];
  /** The slot systemd-boot will start next (its first entry that is not bad), or null if none is. */
  nextBoot: SlotName | null;
  /** A slot whose tries ran out: the loader fell back from it. */
  lastFailure: { slot: SlotName; version: string | null; triesDone: number | null } | null;
}

export interface SystemLayout {
  /** The mounted ESP (in the guest, /boot/efi; in host tests, a folder). */
  esp: string;
  /** Each slot's base partition: a block device or a disk image file, and the slot's byte range in it. */
  slots: Record<SlotName, { path: string; offset: number; size: number }>;
  /** The slot this system booted from (`swpkg.slot=` on the kernel command line). */
  active: SlotName;
}

const entriesDir = (esp: string): string => join(esp, 'loader', 'entries');

async function readEntries(esp: string): Promise<Array<{ file: string; name: EntryName; text: string }>> {
  let names: string[];
  try {
    names = await readdir(entriesDir(esp));
  } catch (e) {
    throw new SwpkgError('E_NOT_FOUND', `${entriesDir(esp)} is not readable: is the ESP mounted?`, {
      details: { path: entriesDir(esp) },
      cause: e,
    });
  }
  const out = [];
  for (const file of names.sort()) {
    const name = parseEntryFileName(file);
    if (name) out.push({ file, name, text: await readFile(join(entriesDir(esp), file), 'utf8') });
  }
  return out;
}

const field = (text: string, key: string): string | null => new RegExp(`^${key} +(.+)$`, 'm').exec(text)?.[1]?.trim() ?? null;

/** The slots as the loader sees them, and what it will boot next. */
export async function readSystemStatus(layout: Pick<SystemLayout, 'esp' | 'active'>): Promise<SystemStatus> {
  const entries = await readEntries(layout.esp);
  const slots = SLOT_NAMES.map((slot): SlotStatus => {
    const e = entries.find((x) => x.name.slot === slot);
    if (!e) return { slot, active: slot === layout.active, state: 'empty', entry: null, version: null, triesLeft: null, triesDone: null };
    const left = e.name.triesLeft;
    const done = e.name.triesDone ?? 0;
    return {
      slot,
      active: slot === layout.active,
      state: left === undefined ? 'good' : left > 0 ? 'trying' : done > 0 ? 'bad' : 'set-aside',
      entry: e.file,
      version: field(e.text, 'version'),
      triesLeft: left ?? null,
      triesDone: e.name.triesDone ?? (left === undefined ? null : 0),
    };
  });
  // systemd-boot's order: entries with no tries left last, then by sort-key.
  const bootable = entries
    .filter((e) => e.name.triesLeft !== 0)
    .sort((x, y) => (field(x.text, 'sort-key') ?? '~').localeCompare(field(y.text, 'sort-key') ?? '~') || x.file.localeCompare(y.file));
  const bad = slots.find((s) => s.state === 'bad');
  return {
    active: layout.active,
    slots,
    nextBoot: bootable[0]?.name.slot ?? null,
    lastFailure: bad ? { slot: bad.slot, version: bad.version, triesDone: bad.triesDone } : null,
  };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Renames an entry; the rename is the whole state change, so a crash leaves the old name or the new one. */
async function renameEntry(esp: string, from: string, to: string): Promise<void> {
  await rename(join(entriesDir(esp), from), join(entriesDir(esp), to));
  await fsyncDir(entriesDir(esp));
}

/** `pkg system mark-good`: the booted slot passed its checks; drop its counter (what systemd-bless-boot does). */
export async function markSlotGood(
  layout: Pick<SystemLayout, 'esp' | 'active'>,
): Promise<{ slot: SlotName; changed: boolean; entry: string }> {
  const entries = await readEntries(layout.esp);
  const e = entries.find((x) => x.name.slot === layout.active);
  if (!e) {
    throw new SwpkgError('E_NOT_FOUND', `slot ${layout.active.toUpperCase()} has no loader entry`, {
      hint: 'the running slot was not booted from this ESP',
      details: { slot: layout.active },
    });
  }
  const good = entryFileName({ slot: layout.active });
  if (e.file === good) return { slot: layout.active, changed: false, entry: good };
  await renameEntry(layout.esp, e.file, good);
  return { slot: layout.active, changed: true, entry: good };
}

/**
 * `pkg system rollback`: the next boot starts the other slot. The running
 * slot's entry is marked as having no tries left and none done (`+0`), which
 * systemd-boot sorts after every other entry and status reports as set aside
 * rather than failed; nothing of the other slot is written.
 */
export async function rollbackSlot(layout: Pick<SystemLayout, 'esp' | 'active'>): Promise<{ from: SlotName; to: SlotName }> {
  const status = await readSystemStatus(layout);
  const to = otherSlot(layout.active);
  const target = status.slots.find((s) => s.slot === to);
  if (!target || target.state === 'empty' || target.state === 'bad' || target.state === 'set-aside') {
    throw new SwpkgError(
      'E_NOT_FOUND',
      `slot ${to.toUpperCase()} holds no bootable system to roll back to (it is ${target?.state ?? 'empty'})`,
      {
        details: { slot: to, state: target?.state ?? 'empty' },
      },
    );
  }
  const mine = status.slots.find((s) => s.slot === layout.active);
  if (mine?.entry) await renameEntry(layout.esp, mine.entry, entryFileName({ slot: layout.active, triesLeft: 0 }));
  return { from: layout.active, to };
}

/**
 * Where a system release's artifacts come from: `fetch` puts the artifact at
 * `dest` only if it has exactly the declared size and SHA-256 (else it throws
 * and leaves nothing at `dest`), and never reads more than the declared size.
 */
export interface SystemArtifactSource {
  fetch(a: SystemArtifact, dest: string): Promise<void>;
}

/** Artifacts from a folder laid out like the web root (a mounted medium, or a test). */
export function folderArtifactSource(dir: string): SystemArtifactSource {
  return { fetch: (a, dest) => download(() => Promise.resolve(createReadStream(join(dir, a.path))), a, dest) };
}

export interface StageSystemUpdateOptions {
  layout: SystemLayout;
  /** The system release document's bytes, as fetched. */
  releaseBytes: Uint8Array;
  root: RootDocument;
  now: Date;
  arch: string;
  repo?: string;
  lastAccepted?: { version: number; payloadSha256: string };
  source: SystemArtifactSource;
  /** Verified downloads wait here (on the store disk) until all three are good; removed afterwards. */
  stagingDir: string;
  /** Kernel command line for the new entry (without swpkg.slot). */
  options: string;
  tries?: number;
  reporter?: Reporter;
}

export interface StageSystemUpdateResult {
  slot: SlotName;
  version: number;
  entry: string;
  payloadSha256: string;
  bytes: number;
}

/** Downloads one artifact into `dest`, hashing as it streams; more bytes than declared stop the download at once. */
async function download(openStream: () => Promise<Readable>, a: SystemArtifact, dest: string): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(dest, { mode: 0o600 });
  try {
    const input = await openStream();
    for await (const chunk of input) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > a.size) {
        input.destroy();
        throw new SwpkgError('E_TOO_LARGE', `${a.path} is larger than the ${a.size} bytes its release declares`, {
          details: { path: a.path, declared: a.size },
        });
      }
      hash.update(b);
      if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  } catch (e) {
    out.destroy();
    await rm(dest, { force: true });
    throw e;
  }
  const sha256 = hash.digest('hex');
  if (size !== a.size || sha256 !== a.sha256) {
    await rm(dest, { force: true });
    throw new SwpkgError('E_HASH_MISMATCH', `${a.path} does not match its release (got ${size} bytes, sha256 ${sha256})`, {
      hint: 'the mirror served other bytes than the publisher signed; nothing was written to the inactive slot',
      details: { path: a.path, expected: { size: a.size, sha256: a.sha256 }, actual: { size, sha256 } },
    });
  }
}

async function copyFileSynced(src: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 })) await fh.write(chunk as Buffer);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
}

/** Writes `src` into the slot's byte range (a partition or a range of a disk image), then syncs it. */
async function writeSlot(src: string, target: { path: string; offset: number; size: number }): Promise<void> {
  const fh = await open(target.path, 'r+');
  try {
    let pos = target.offset;
    for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 })) {
      const b = chunk as Buffer;
      await fh.write(b, 0, b.length, pos);
      pos += b.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Verifies a system release for this machine and checks that it fits the
 * inactive slot and the ESP; reads only (the plan `pkg system update` shows).
 */
export async function planSystemUpdate(
  o: Pick<StageSystemUpdateOptions, 'layout' | 'releaseBytes' | 'root' | 'now' | 'arch' | 'repo' | 'lastAccepted' | 'tries'>,
): Promise<{ doc: SystemReleaseDocument; slot: SlotName; target: SystemLayout['slots'][SlotName] }> {
  const tries = o.tries ?? DEFAULT_TRIES;
  if (!Number.isInteger(tries) || tries < 1 || tries > 9) throw new SwpkgError('E_USAGE', `tries must be 1 to 9, not ${tries}`);
  const doc: SystemReleaseDocument = verifySystemRelease(o.releaseBytes, {
    root: o.root,
    now: o.now,
    arch: o.arch,
    ...(o.repo !== undefined ? { repo: o.repo } : {}),
    ...(o.lastAccepted ? { lastAccepted: o.lastAccepted } : {}),
  });
  const rel = doc.signed;
  const slot = otherSlot(o.layout.active);
  const target = o.layout.slots[slot];
  if (rel.artifacts.base.size > target.size) {
    throw new SwpkgError(
      'E_DISK_FULL',
      `the base image (${rel.artifacts.base.size} bytes) does not fit slot ${slot.toUpperCase()} (${target.size} bytes)`,
      {
        hint: 'the system disk needs larger slots for this release; the active slot is unchanged',
        details: { slot, need: rel.artifacts.base.size, have: target.size },
      },
    );
  }
  const p = slotPaths(slot);
  let reclaimable = 0;
  for (const f of [p.kernel, p.initramfs]) reclaimable += (await stat(join(o.layout.esp, f)).catch(() => ({ size: 0 }))).size;
  const fs = await statfs(o.layout.esp);
  const espNeed = rel.artifacts.kernel.size + rel.artifacts.initramfs.size + 64 * 1024;
  if (fs.bavail * fs.bsize + reclaimable < espNeed) {
    throw new SwpkgError(
      'E_DISK_FULL',
      `the ESP has no room for slot ${slot.toUpperCase()}'s kernel and initramfs (${espNeed} bytes needed)`,
      {
        hint: 'the active slot is unchanged',
        details: { slot, need: espNeed, free: fs.bavail * fs.bsize + reclaimable },
      },
    );
  }
  return { doc, slot, target };
}

/**
 * `pkg system update`'s apply step. Order, and the crash each step survives:
 * 1. verify the release (root's release role, expiry, version, arch) and the
 *    room in the inactive slot and on the ESP: nothing written;
 * 2. download all three artifacts to the staging folder, each capped at its
 *    declared size and hashed while streaming: the inactive slot untouched;
 * 3. remove the inactive slot's entry, so the loader cannot start it while it
 *    is half written (a power cut from here on boots the active slot, and
 *    the update can be rerun: the same release is accepted again);
 * 4. write its kernel, initramfs (temp + rename) and base partition, synced;
 * 5. write its entry with `tries` tries and a sort-key before the active
 *    slot's (temp + rename): the commit point.
 * The active slot's files, partition and entry are never written.
 */
export async function stageSystemUpdate(o: StageSystemUpdateOptions): Promise<StageSystemUpdateResult> {
  const reporter = o.reporter ?? silentReporter;
  const tries = o.tries ?? DEFAULT_TRIES;
  const { doc, slot, target } = await planSystemUpdate(o);
  const rel = doc.signed;
  const p = slotPaths(slot);
  const slotDir = join(o.layout.esp, p.dir);

  await mkdir(o.stagingDir, { recursive: true });
  const staged = {
    kernel: join(o.stagingDir, 'vmlinuz'),
    initramfs: join(o.stagingDir, 'initramfs.cpio.gz'),
    base: join(o.stagingDir, 'base.img'),
  };
  try {
    for (const name of ['kernel', 'initramfs', 'base'] as const) {
      reporter.info(`downloading ${rel.artifacts[name].path}`);
      await o.source.fetch(rel.artifacts[name], staged[name]);
    }
    for (const e of await readEntries(o.layout.esp)) {
      if (e.name.slot === slot) await rm(join(entriesDir(o.layout.esp), e.file));
    }
    await fsyncDir(entriesDir(o.layout.esp));
    await mkdir(slotDir, { recursive: true });
    reporter.info(`writing slot ${slot.toUpperCase()}`);
    await copyFileSynced(staged.kernel, join(o.layout.esp, p.kernel));
    await copyFileSynced(staged.initramfs, join(o.layout.esp, p.initramfs));
    // Kernel and initramfs written, the base image and the loader entry not: a half-written slot
    // (the acceptance's system-power-cut pauses here and cuts the power).
    crashPoint('system.slot-half-written');
    await writeSlot(staged.base, target);
    await fsyncDir(slotDir);
    const entry = entryFileName({ slot, triesLeft: tries });
    const tmp = join(entriesDir(o.layout.esp), `${entry}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(entryText({ slot, version: String(rel.version), release: rel.version, options: o.options }));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(entriesDir(o.layout.esp), entry));
    await fsyncDir(entriesDir(o.layout.esp));
    return {
      slot,
      version: rel.version,
      entry,
      payloadSha256: payloadSha256(doc),
      bytes: rel.artifacts.kernel.size + rel.artifacts.initramfs.size + rel.artifacts.base.size,
    };
  } catch (e) {
    if (e instanceof SwpkgError) throw e;
    throw fromFsError(e, `staging the system update into slot ${slot.toUpperCase()}`);
  } finally {
    await rm(o.stagingDir, { recursive: true, force: true });
  }
}
