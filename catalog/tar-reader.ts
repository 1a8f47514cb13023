/**
 * A strict, synchronous push parser for exactly the tar layout `tar-writer.ts` writes:
 * ustar headers (magic "ustar\0", version "00", empty prefix, octal fields), typeflags
 * '0' file, '5' folder, '2' symlink, a PAX 'x' record set (path, linkpath, size) before
 * an entry whose field does not fit, and two zero blocks at the end.
 *
 * Why our own and not a general tar library: a package reader needs one layout, not every
 * tar dialect, and every feature it does not parse is one an attacker cannot use (GNU long
 * names, global headers, sparse files, base-256 numbers, a prefix field). It also costs no
 * object or stream per entry: data reaches the sink as subarrays of the decompressed chunk.
 *
 * Entry types tar defines but a package may not hold (hardlink, devices, fifo, contiguous,
 * the pre-POSIX '\0' file) are parsed and handed on as type 'other' so that the caller refuses
 * them by name; anything else that is not the layout above throws E_CORRUPT (E_TOO_LARGE for a
 * PAX record set over 16 KiB).
 */
import { SwpkgError } from './errors.js';
import { paddingLength, TAR_BLOCK } from './tar-writer.js';

const BLOCK = TAR_BLOCK;
/** The PAX record set before one entry is held whole: ours hold a path and a link target (1 KiB each at most). */
export const MAX_TAR_META_BYTES = 16 * 1024;

export type TarReadType = 'file' | 'dir' | 'symlink' | 'other';

export interface TarReadHeader {
  /** The entry's path as stored (a folder's ends with '/'), the PAX path when there is one. */
  path: string;
  type: TarReadType;
  /** The raw typeflag character, for messages about an 'other' entry. */
  typeflag: string;
  mode: number;
  size: number;
  /** A symlink's or hardlink's target; undefined for other types. */
  linkpath: string | undefined;
}

/** Where the parser's output goes, in order: entry, data slices (subarrays valid until the call returns and after), entryEnd. */
export interface TarReadSink {
  entry(header: TarReadHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
  /** Once true the parser stops at the next header and drops the rest of the chunk. */
  readonly stopped: boolean;
}

// Typeflags tar defines for entries a package may not hold: parsed, then refused by the caller by name.
const OTHER_TYPES = new Set(['1', '3', '4', '6', '7', '\0']);
// PAX keys that only carry times and owners: ignored, as the writer's own header fields are.
const IGNORED_PAX_KEYS = new Set(['mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname', 'comment']);
const USTAR_MAGIC = Buffer.from('ustar\x0000', 'latin1');

/** Where the parser is: a header block next, an entry's data, a PAX record set, block padding, the second end block, past the end. */
type State = 'header' | 'data' | 'pax' | 'padding' | 'second-zero' | 'trailer';

export class TarReader {
  private state: State = 'header';
  // A header split across chunks is copied here; whole ones are parsed in place.
  private readonly scratch = Buffer.alloc(BLOCK);
  private scratchFill = 0;
  private remaining = 0;
  private padding = 0;
  private paxParts: Buffer[] = [];
  private pax: { path?: string; linkpath?: string; size?: number } | undefined;
  private entries = 0;

  constructor(
    private readonly source: string,
    private readonly sink: TarReadSink,
  ) {}

  /** True once both end blocks have been read. */
  get finished(): boolean {
    return this.state === 'trailer';
  }

  /** Feeds decompressed bytes; throws a SwpkgError on the first thing that is not the layout. */
  write(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case 'header':
        case 'second-zero': {
          if (this.sink.stopped) return;
          let block: Buffer;
          if (this.scratchFill === 0 && len - pos >= BLOCK) {
            block = chunk.subarray(pos, pos + BLOCK);
            pos += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.scratchFill, len - pos);
            chunk.copy(this.scratch, this.scratchFill, pos, pos + n);
            this.scratchFill += n;
            pos += n;
            if (this.scratchFill < BLOCK) return;
            this.scratchFill = 0;
            block = this.scratch;
          }
          this.onBlock(block);
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          this.sink.data(chunk.subarray(pos, pos + n));
          pos += n;
          if (this.remaining === 0) this.finishEntry();
          break;
        }
        case 'pax': {
          const n = Math.min(this.remaining, len - pos);
          // Copied: the parts outlive this chunk until the record set is complete.
          this.paxParts.push(Buffer.from(chunk.subarray(pos, pos + n)));
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) {
            this.pax = this.parsePax(Buffer.concat(this.paxParts));
            this.paxParts = [];
            this.state = this.padding > 0 ? 'padding' : 'header';
          }
          break;
        }
        case 'padding': {
          const n = Math.min(this.padding, len - pos);
          this.padding -= n;
          pos += n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
        case 'trailer': {
          // Only zero bytes (a record's padding) may follow the end: anything else was hidden past it.
          for (let i = pos; i < len; i++) if (chunk[i] !== 0) throw this.corrupt('data after the end of the archive');
          return;
        }
      }
    }
  }

  /** The decompressed stream ended: anything but a complete archive is a truncated one. */
  end(): void {
    if (this.state !== 'trailer') throw this.corrupt('the archive is truncated');
  }

  private onBlock(block: Buffer): void {
    // A real header's name never starts with NUL: the full zero test runs only for end blocks.
    if (block[0] === 0 && isZero(block)) {
      if (this.pax !== undefined) throw this.corrupt('a PAX header is followed by no entry');
      this.state = this.state === 'second-zero' ? 'trailer' : 'second-zero';
      return;
    }
    if (this.state === 'second-zero') throw this.corrupt('one zero block where the end needs two');
    this.onHeader(block);
  }

  private onHeader(h: Buffer): void {
    if (!h.subarray(257, 265).equals(USTAR_MAGIC)) throw this.corrupt('a header without the ustar magic');
    const sum = this.octal(h, 148, 8, 'checksum');
    if (sum !== checksum(h)) throw this.corrupt('a header checksum does not match');
    for (let i = 345; i < 500; i++) if (h[i] !== 0) throw this.corrupt('a header uses the ustar prefix field');
    const mode = this.octal(h, 100, 8, 'mode');
    this.octal(h, 108, 8, 'uid');
    this.octal(h, 116, 8, 'gid');
    let size = this.octal(h, 124, 12, 'size');
    this.octal(h, 136, 12, 'mtime');
    const typeflag = String.fromCharCode(h[156]!);

    if (typeflag === 'x') {
      if (this.pax !== undefined) throw this.corrupt('two PAX headers in a row');
      if (size > MAX_TAR_META_BYTES) {
        throw new SwpkgError('E_TOO_LARGE', `${this.source}: a tar metadata record of ${size} bytes is larger than ${MAX_TAR_META_BYTES}`, {
          details: { path: this.source, limit: MAX_TAR_META_BYTES, size },
        });
      }
      if (size === 0) throw this.corrupt('an empty PAX header');
      this.remaining = size;
      this.padding = paddingLength(size);
      this.state = 'pax';
      return;
    }

    const type: TarReadType | undefined =
      typeflag === '0' ? 'file' : typeflag === '5' ? 'dir' : typeflag === '2' ? 'symlink' : OTHER_TYPES.has(typeflag) ? 'other' : undefined;
    if (type === undefined) throw this.corrupt(`tar entry type ${JSON.stringify(typeflag)} is not one .swpkg uses`);

    const pax = this.pax;
    this.pax = undefined;
    const path = pax?.path ?? cString(h, 0, 100);
    let linkpath: string | undefined = pax?.linkpath ?? cString(h, 157, 100);
    if (pax?.size !== undefined) size = pax.size;
    if (path === '') throw this.corrupt('an entry without a path');
    const isLink = typeflag === '1' || typeflag === '2';
    if (isLink && linkpath === '') throw this.corrupt(`link ${JSON.stringify(path)} has no target`);
    if (!isLink) {
      if (linkpath !== '') throw this.corrupt(`${JSON.stringify(path)} is no link but names a link target`);
      linkpath = undefined;
    }
    // A folder or link has no data: a size there would make the parser skip bytes nobody checks.
    if (size !== 0 && type !== 'file' && type !== 'other') throw this.corrupt(`${JSON.stringify(path)} has data but is no file`);

    this.entries++;
    this.sink.entry({ path, type, typeflag, mode, size, linkpath });
    this.remaining = size;
    this.padding = paddingLength(size);
    if (size === 0) this.finishEntry();
    else this.state = 'data';
  }

  private finishEntry(): void {
    this.sink.entryEnd();
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  /** An octal field as the writer writes it: digits, then NUL or space to the field's end. */
  private octal(h: Buffer, off: number, len: number, field: string): number {
    let v = 0;
    let i = off;
    const end = off + len;
    for (; i < end; i++) {
      const c = h[i]!;
      if (c < 0x30 || c > 0x37) break;
      v = v * 8 + (c - 0x30);
    }
    if (i === off) throw this.corrupt(`the header's ${field} field is not an octal number`);
    for (; i < end; i++) {
      const c = h[i];
      if (c !== 0 && c !== 0x20) throw this.corrupt(`the header's ${field} field is not an octal number`);
    }
    return v;
  }

  /** PAX records, "LEN key=value\n" where LEN counts the whole record: only the keys the writer uses (and harmless ones). */
  private parsePax(body: Buffer): { path?: string; linkpath?: string; size?: number } {
    const out: { path?: string; linkpath?: string; size?: number } = {};
    let pos = 0;
    while (pos < body.length) {
      const space = body.indexOf(0x20, pos);
      const digits = space < 0 ? '' : body.toString('latin1', pos, space);
      if (!/^[1-9][0-9]{0,5}$/.test(digits)) throw this.corrupt('a PAX record does not start with its length');
      const end = pos + Number(digits);
      if (end > body.length || body[end - 1] !== 0x0a) throw this.corrupt('a PAX record length does not match the record');
      const eq = body.indexOf(0x3d, space + 1);
      if (eq < 0 || eq >= end - 1 || eq === space + 1) throw this.corrupt('a PAX record is not key=value');
      const key = body.toString('utf8', space + 1, eq);
      const value = body.toString('utf8', eq + 1, end - 1);
      if (key === 'path' || key === 'linkpath') {
        if (value === '' || value.includes('\0')) throw this.corrupt(`the PAX ${key} is empty or holds a NUL`);
        out[key] = value;
      } else if (key === 'size') {
        if (!/^(0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(Number(value)))
          throw this.corrupt('the PAX size is not a number');
        out.size = Number(value);
      } else if (!IGNORED_PAX_KEYS.has(key)) {
        throw this.corrupt(`PAX key ${JSON.stringify(key)} is not one .swpkg uses`);
      }
      pos = end;
    }
    return out;
  }

  private corrupt(why: string): SwpkgError {
    return corruptPackage(this.source, `tar: ${why} (after ${this.entries} entries)`);
  }
}

/** A package file that is not a `.swpkg` (E_CORRUPT): the one refusal for the tar layout and for the package reader above it. */
export function corruptPackage(path: string, why: string, cause?: unknown): SwpkgError {
  return new SwpkgError('E_CORRUPT', `${path} is not a valid .swpkg: ${why}`, {
    hint: 'download or build the package again; if it keeps failing the publisher shipped a broken file',
    details: { path },
    cause,
  });
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** The ustar checksum: every header byte summed, the checksum field counted as spaces. */
function checksum(h: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < BLOCK; i++) sum += h[i]!;
  return sum;
}

function cString(h: Buffer, off: number, len: number): string {
  let end = h.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return h.toString('utf8', off, end);
}
