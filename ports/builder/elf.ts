import { open, type FileHandle } from 'node:fs/promises';

/** ELF machine numbers (e_machine) the builder names in its messages. */
export const ELF_MACHINES: Record<number, string> = {
  3: 'i386',
  40: 'arm',
  62: 'x86_64',
  183: 'aarch64',
  243: 'riscv',
};

export function machineName(machine: number): string {
  return ELF_MACHINES[machine] ?? `machine ${machine}`;
}

export type ElfType = 'relocatable' | 'executable' | 'shared' | 'core' | 'other';

/** What packaging needs to know about one ELF file. */
export interface ElfInfo {
  bits: 32 | 64;
  littleEndian: boolean;
  type: ElfType;
  machine: number;
  /** A PT_INTERP segment: the kernel starts a dynamic loader for it. */
  interpreter: boolean;
  /** DT_NEEDED entries: shared libraries it must load. */
  needed: number;
}

const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
/** Bounds against hostile or truncated headers: no real file has more. */
const MAX_PHNUM = 4096;
const MAX_DYNAMIC_BYTES = 1 << 20;

/** True when `head` starts with the ELF magic. */
export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46;
}

/**
 * Parses an ELF header and its program headers from `read` (positional reads,
 * so only the few hundred bytes needed are read, never the whole file).
 * Returns undefined when the bytes are not a well-formed ELF file of a class
 * and byte order it knows; a file that claims to be ELF but is truncated is
 * also undefined (the caller decides whether that is an error).
 */
export async function parseElf(read: (pos: number, len: number) => Promise<Buffer>): Promise<ElfInfo | undefined> {
  const head = await read(0, 64);
  if (!isElf(head) || head.length < 52) return undefined;
  const cls = head[4];
  const data = head[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return undefined;
  const bits = cls === 2 ? 64 : 32;
  const le = data === 1;
  if (bits === 64 && head.length < 64) return undefined;
  const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number): number => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const word = (b: Buffer, o: number): number => (bits === 64 ? u64(b, o) : u32(b, o));
  const eType = u16(head, 16);
  const type: ElfType = eType === 1 ? 'relocatable' : eType === 2 ? 'executable' : eType === 3 ? 'shared' : eType === 4 ? 'core' : 'other';
  const machine = u16(head, 18);
  const phoff = bits === 64 ? u64(head, 32) : u32(head, 28);
  const phentsize = u16(head, bits === 64 ? 54 : 42);
  const phnum = u16(head, bits === 64 ? 56 : 44);
  const info: ElfInfo = { bits, littleEndian: le, type, machine, interpreter: false, needed: 0 };
  const minEnt = bits === 64 ? 56 : 32;
  if (phnum === 0 || phoff === 0) return info;
  if (phnum > MAX_PHNUM || phentsize < minEnt) return undefined;
  const ph = await read(phoff, phentsize * phnum);
  if (ph.length < phentsize * phnum) return undefined;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    const pType = u32(ph, at);
    if (pType === PT_INTERP) info.interpreter = true;
    if (pType !== PT_DYNAMIC) continue;
    const offset = word(ph, at + (bits === 64 ? 8 : 4));
    const size = Math.min(word(ph, at + (bits === 64 ? 32 : 16)), MAX_DYNAMIC_BYTES);
    const dyn = await read(offset, size);
    const entSize = bits === 64 ? 16 : 8;
    for (let d = 0; d + entSize <= dyn.length; d += entSize) {
      const tag = word(dyn, d);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) info.needed++;
    }
  }
  return info;
}

function reader(fh: FileHandle): (pos: number, len: number) => Promise<Buffer> {
  return async (pos, len) => {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    return buf.subarray(0, bytesRead);
  };
}

/** Reads one file's ELF facts; undefined when it is not ELF. */
export async function readElf(path: string): Promise<ElfInfo | undefined> {
  const fh = await open(path, 'r');
  try {
    return await parseElf(reader(fh));
  } finally {
    await fh.close();
  }
}

/** One ELF member of a static archive. */
export interface ArchiveMember {
  name: string;
  elf: ElfInfo;
}

const AR_MAGIC = '!<arch>\n';
const AR_HEADER = 60;

/**
 * Lists the ELF members of a `!<arch>` static archive (GNU or BSD style
 * names are kept as written; the symbol table and name table are skipped).
 * Reads member headers only, so a large archive costs a few reads per member.
 */
export async function readArchiveMembers(path: string): Promise<ArchiveMember[] | undefined> {
  const fh = await open(path, 'r');
  try {
    const read = reader(fh);
    if ((await read(0, 8)).toString('latin1') !== AR_MAGIC) return undefined;
    const { size: total } = await fh.stat();
    const out: ArchiveMember[] = [];
    let pos = 8;
    while (pos + AR_HEADER <= total) {
      const h = await read(pos, AR_HEADER);
      if (h.length < AR_HEADER || h.toString('latin1', 58, 60) !== '`\n') return undefined;
      const name = h.toString('latin1', 0, 16).trimEnd();
      const size = Number(h.toString('latin1', 48, 58).trim());
      if (!Number.isSafeInteger(size) || size < 0) return undefined;
      const body = pos + AR_HEADER;
      if (name !== '/' && name !== '//' && name !== '/SYM64/' && name !== '__.SYMDEF') {
        const elf = await parseElf((p, len) => read(body + p, Math.max(0, Math.min(len, size - p))));
        if (elf) out.push({ name, elf });
      }
      pos = body + size + (size % 2);
    }
    return out;
  } finally {
    await fh.close();
  }
}
