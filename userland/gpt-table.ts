import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { SwpkgError, fromFsError } from '../catalog/index.js';

/**
 * Reads a GUID Partition Table (UEFI 2.10 §5.3), 512-byte sectors: how
 * `pkg system update` finds the slots on the system disk (a block device in
 * the guest, an image file in host tests). The writer is images/gpt-disk.ts.
 */

const SECTOR = 512;
const ENTRY_SIZE = 128;
const ENTRY_COUNT = 128;
const ENTRIES_SECTORS = (ENTRY_SIZE * ENTRY_COUNT) / SECTOR;
const SIGNATURE = 'EFI PART';

export interface GptPartition {
  /** 1-based, as the kernel numbers them (vda1 …). */
  index: number;
  name: string;
  type: string;
  guid: string;
  /** Byte offset and length inside the disk. */
  offset: number;
  size: number;
}

function bytesToGuid(b: Buffer): string {
  const h = Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8, 16),
  ]).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Reads the partition table of a disk image (or block device). Both CRCs of
 * the primary header are checked; a disk without a valid primary GPT is
 * E_CORRUPT (this reader never guesses from the backup).
 */
export async function readGptDisk(path: string): Promise<GptPartition[]> {
  const fh = await open(path, 'r').catch((e: unknown) => Promise.reject(fromFsError(e, path)));
  try {
    const head = Buffer.alloc(SECTOR * (2 + ENTRIES_SECTORS));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const bad = (why: string): SwpkgError => new SwpkgError('E_CORRUPT', `${path} has no valid GPT: ${why}`, { details: { path } });
    if (bytesRead < head.length) throw bad('shorter than a partition table');
    const h = head.subarray(SECTOR, 2 * SECTOR);
    if (h.toString('ascii', 0, 8) !== SIGNATURE) throw bad('no EFI PART signature');
    const hsize = h.readUInt32LE(12);
    if (hsize < 92 || hsize > SECTOR) throw bad(`header size ${hsize}`);
    const hcopy = Buffer.from(h.subarray(0, hsize));
    hcopy.writeUInt32LE(0, 16);
    if (crc32(hcopy) !== h.readUInt32LE(16)) throw bad('header CRC mismatch');
    const count = h.readUInt32LE(80);
    const esize = h.readUInt32LE(84);
    const entriesLba = Number(h.readBigUInt64LE(72));
    if (esize !== ENTRY_SIZE || count > ENTRY_COUNT || entriesLba !== 2) throw bad('unsupported entry layout');
    const entries = head.subarray(2 * SECTOR, 2 * SECTOR + count * esize);
    if (crc32(entries) !== h.readUInt32LE(88)) throw bad('partition entries CRC mismatch');
    const out: GptPartition[] = [];
    for (let i = 0; i < count; i++) {
      const e = entries.subarray(i * esize, (i + 1) * esize);
      if (e.subarray(0, 16).every((x) => x === 0)) continue;
      const first = Number(e.readBigUInt64LE(32));
      const last = Number(e.readBigUInt64LE(40));
      const raw = e.toString('utf16le', 56, 128);
      const nul = raw.indexOf('\0');
      out.push({
        index: i + 1,
        name: nul === -1 ? raw : raw.slice(0, nul),
        type: bytesToGuid(e.subarray(0, 16)),
        guid: bytesToGuid(e.subarray(16, 32)),
        offset: first * SECTOR,
        size: (last - first + 1) * SECTOR,
      });
    }
    return out;
  } finally {
    await fh.close();
  }
}
