import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import type { GptPartition } from '../userland/index.js';

/**
 * A GUID Partition Table written and read without root, loop devices or
 * sgdisk: the UEFI 2.10 §5.3 layout (protective MBR, primary header and
 * 128 entries at LBA 1–33, the backup copies at the end), 512-byte sectors,
 * partitions aligned to 1 MiB.
 */

const SECTOR = 512;
const ENTRY_SIZE = 128;
const ENTRY_COUNT = 128;
const ENTRIES_SECTORS = (ENTRY_SIZE * ENTRY_COUNT) / SECTOR; // 32
const MIB = 1 << 20;
const ALIGN_SECTORS = MIB / SECTOR;
const SIGNATURE = 'EFI PART';

/** Partition type GUIDs (UEFI spec; Discoverable Partitions Specification). */
export const GPT_TYPES = {
  esp: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  linuxData: '0fc63daf-8483-4772-8e79-3d69d8477de4',
} as const;

export interface GptPartitionSpec {
  /** The partition name (UTF-16LE, at most 36 units); the guest finds slots by it (sysfs PARTNAME). */
  name: string;
  type: string;
  sizeMiB: number;
  /** Copied to the start of the partition; must fit. Streamed, never read whole. */
  source?: string;
}

export { readGptDisk, type GptPartition } from '../userland/index.js';

export interface GptDiskOptions {
  out: string;
  partitions: readonly GptPartitionSpec[];
  /** Disk GUID and partition GUIDs are derived from it when given, for reproducible disks. */
  seed?: string;
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** GUIDs are stored mixed-endian: the first three fields little-endian. */
function guidToBytes(guid: string): Buffer {
  if (!GUID_RE.test(guid)) throw new SwpkgError('E_USAGE', `not a GUID: ${JSON.stringify(guid)}`, { details: { guid } });
  const h = guid.replace(/-/g, '');
  const b = Buffer.from(h, 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

function derivedGuid(seed: string | undefined, what: string): string {
  if (seed === undefined) return randomUUID();
  const h = createHash('sha256').update(`${seed}\0${what}`).digest('hex');
  // Version 4 / variant 1 bits, so the GUID is well-formed.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] ?? '0', 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function header(o: {
  myLba: bigint;
  altLba: bigint;
  firstUsable: bigint;
  lastUsable: bigint;
  diskGuid: string;
  entriesLba: bigint;
  entriesCrc: number;
}): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write(SIGNATURE, 0, 'ascii');
  h.writeUInt32LE(0x00010000, 8);
  h.writeUInt32LE(92, 12);
  h.writeBigUInt64LE(o.myLba, 24);
  h.writeBigUInt64LE(o.altLba, 32);
  h.writeBigUInt64LE(o.firstUsable, 40);
  h.writeBigUInt64LE(o.lastUsable, 48);
  guidToBytes(o.diskGuid).copy(h, 56);
  h.writeBigUInt64LE(o.entriesLba, 72);
  h.writeUInt32LE(ENTRY_COUNT, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(o.entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

async function copyInto(fh: FileHandle, source: string, offset: number, limit: number): Promise<void> {
  let pos = offset;
  for await (const chunk of createReadStream(source, { highWaterMark: MIB })) {
    const b = chunk as Buffer;
    if (pos + b.length > offset + limit) {
      throw new SwpkgError('E_TOO_LARGE', `${source} does not fit its ${limit}-byte partition`, { details: { path: source, limit } });
    }
    await fh.write(b, 0, b.length, pos);
    pos += b.length;
  }
}

/**
 * Writes a sparse GPT disk image: partitions in the order given, each 1 MiB
 * aligned, each `source` copied in. The file appears under its name only when
 * complete (a crash leaves no half disk behind).
 */
export async function writeGptDisk(o: GptDiskOptions): Promise<GptPartition[]> {
  if (o.partitions.length === 0 || o.partitions.length > ENTRY_COUNT) {
    throw new SwpkgError('E_USAGE', `a GPT disk needs 1 to ${ENTRY_COUNT} partitions, got ${o.partitions.length}`);
  }
  const layout: GptPartition[] = [];
  let next = ALIGN_SECTORS; // LBA 2048: the usual first partition start
  for (const [i, p] of o.partitions.entries()) {
    if (!Number.isInteger(p.sizeMiB) || p.sizeMiB < 1) {
      throw new SwpkgError('E_USAGE', `partition ${p.name}: size must be a whole number of MiB, got ${p.sizeMiB}`);
    }
    if (p.name.length === 0 || p.name.length > 36 || !/^[A-Za-z0-9._-]+$/.test(p.name)) {
      throw new SwpkgError('E_USAGE', `partition name ${JSON.stringify(p.name)} is not 1–36 plain characters`);
    }
    if (p.source !== undefined) {
      const size = (await stat(p.source).catch((e: unknown) => Promise.reject(fromFsError(e, p.source ?? '')))).size;
      if (size > p.sizeMiB * MIB) {
        throw new SwpkgError('E_TOO_LARGE', `${p.source} (${size} bytes) does not fit partition ${p.name} (${p.sizeMiB} MiB)`, {
          details: { path: p.source, size, limit: p.sizeMiB * MIB },
        });
      }
    }
    layout.push({
      index: i + 1,
      name: p.name,
      type: p.type,
      guid: derivedGuid(o.seed, `part${i + 1}`),
      offset: next * SECTOR,
      size: p.sizeMiB * MIB,
    });
    next += p.sizeMiB * ALIGN_SECTORS;
  }
  // Room after the last partition for the backup entries and header, rounded to a whole MiB.
  const totalSectors = next + ALIGN_SECTORS;
  const lastLba = BigInt(totalSectors - 1);
  const firstUsable = BigInt(2 + ENTRIES_SECTORS);
  const lastUsable = lastLba - BigInt(ENTRIES_SECTORS) - 1n;

  const entries = Buffer.alloc(ENTRY_SIZE * ENTRY_COUNT);
  for (const p of layout) {
    const e = entries.subarray((p.index - 1) * ENTRY_SIZE, p.index * ENTRY_SIZE);
    guidToBytes(p.type).copy(e, 0);
    guidToBytes(p.guid).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.offset / SECTOR), 32);
    e.writeBigUInt64LE(BigInt((p.offset + p.size) / SECTOR - 1), 40);
    e.write(p.name, 56, 72, 'utf16le');
  }
  const entriesCrc = crc32(entries);
  const diskGuid = derivedGuid(o.seed, 'disk');

  // Protective MBR: one 0xEE partition covering the disk (capped at 2^32-1 sectors).
  const mbr = Buffer.alloc(SECTOR);
  mbr[446 + 4] = 0xee;
  mbr.writeUInt32LE(1, 446 + 8);
  mbr.writeUInt32LE(Math.min(totalSectors - 1, 0xffffffff), 446 + 12);
  mbr[446 + 2] = 0x02; // CHS start 0/0/2, as every partitioning tool writes it
  mbr.fill(0xff, 446 + 5, 446 + 8);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;

  const primary = header({ myLba: 1n, altLba: lastLba, firstUsable, lastUsable, diskGuid, entriesLba: 2n, entriesCrc });
  const backup = header({
    myLba: lastLba,
    altLba: 1n,
    firstUsable,
    lastUsable,
    diskGuid,
    entriesLba: lastLba - BigInt(ENTRIES_SECTORS),
    entriesCrc,
  });

  const tmp = `${o.out}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w').catch((e: unknown) => Promise.reject(fromFsError(e, tmp)));
  try {
    await fh.truncate(totalSectors * SECTOR);
    await fh.write(mbr, 0, SECTOR, 0);
    await fh.write(primary, 0, SECTOR, SECTOR);
    await fh.write(entries, 0, entries.length, 2 * SECTOR);
    for (const [i, p] of o.partitions.entries()) {
      const l = layout[i];
      if (p.source !== undefined && l !== undefined) await copyInto(fh, p.source, l.offset, l.size);
    }
    await fh.write(entries, 0, entries.length, Number(lastLba - BigInt(ENTRIES_SECTORS)) * SECTOR);
    await fh.write(backup, 0, SECTOR, Number(lastLba) * SECTOR);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, o.out);
  return layout;
}
