/**
 * A minimal, deterministic ustar writer (with PAX records for long paths).
 * Written by hand rather than through node-tar so every header byte is ours:
 * uid/gid 0, no user names, fixed mtime — the basis of reproducible packages.
 */

/** The tar block: headers are one, and every entry's data is padded to a whole number of them. */
export const TAR_BLOCK = 512;
const BLOCK = TAR_BLOCK;

export type TarEntryType = 'file' | 'dir' | 'symlink';

export interface TarHeader {
  path: string;
  type: TarEntryType;
  mode: number;
  size: number;
  mtime: number;
  linkTarget?: string;
}

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'utf8');
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  const s = value.toString(8).padStart(length - 1, '0');
  buf.write(s + '\0', offset, length, 'ascii');
}

function paxRecord(key: string, value: string): string {
  // Each record is "LEN key=value\n" where LEN counts itself.
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  let total = len + String(len).length;
  if (String(total).length !== String(len).length) total = len + String(total).length;
  len = total;
  return `${len}${body}`;
}

function rawHeader(name: string, typeflag: string, mode: number, size: number, mtime: number, linkname: string): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h.fill(' ', 148, 156);
  h.write(typeflag, 156, 1, 'ascii');
  writeString(h, 157, 100, linkname);
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

const MAX_OCTAL_SIZE = 0o77777777777;

/** Returns the header block(s) for one entry: a PAX header first when a field does not fit ustar. */
export function tarHeader(e: TarHeader): Buffer {
  const name = e.type === 'dir' ? `${e.path}/` : e.path;
  const link = e.linkTarget ?? '';
  const records: string[] = [];
  if (Buffer.byteLength(name) > 100) records.push(paxRecord('path', name));
  if (Buffer.byteLength(link) > 100) records.push(paxRecord('linkpath', link));
  if (e.size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(e.size)));
  const typeflag = e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2';
  const main = rawHeader(
    records.length ? name.slice(0, 99) : name,
    typeflag,
    e.mode,
    e.size > MAX_OCTAL_SIZE ? 0 : e.size,
    e.mtime,
    Buffer.byteLength(link) > 100 ? link.slice(0, 99) : link,
  );
  if (records.length === 0) return main;
  const body = Buffer.from(records.join(''), 'utf8');
  const pax = rawHeader('PaxHeader', 'x', 0o644, body.length, e.mtime, '');
  return Buffer.concat([pax, body, padding(body.length), main]);
}

/** How many zero bytes follow `size` bytes of data to end them on a block boundary. */
export function paddingLength(size: number): number {
  const rem = size % BLOCK;
  return rem === 0 ? 0 : BLOCK - rem;
}

export function padding(size: number): Buffer {
  return Buffer.alloc(paddingLength(size), 0);
}

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2, 0);
