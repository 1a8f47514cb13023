import { SwpkgError } from '../catalog/index.js';

/** One entry of an initramfs. Paths are relative, `/`-separated, without `.` or `..`. */
export type CpioEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; data: Uint8Array }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new SwpkgError('E_INTERNAL', `cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/**
 * Writes a `newc` cpio archive, the format the kernel unpacks into its initial
 * rootfs. Reproducible by construction: entries sorted by path (parents first),
 * inode numbers assigned in that order, uid/gid 0 and one fixed mtime, so the
 * same entries always give the same bytes. Device nodes are written as headers
 * only, so building needs no privileges.
 */
export function writeCpioNewc(entries: readonly CpioEntry[], mtime = 0): Buffer {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.path === '' || e.path.startsWith('/') || e.path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new SwpkgError('E_UNSAFE_PATH', `initramfs path ${JSON.stringify(e.path)} is not a plain relative path`, {
        details: { path: e.path },
      });
    }
    if (seen.has(e.path)) throw new SwpkgError('E_INTERNAL', `initramfs path ${e.path} listed twice`, { details: { path: e.path } });
    seen.add(e.path);
  }
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (name: string, mode: number, nlink: number, data: Uint8Array, rdevMajor = 0, rdevMinor = 0): void => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const header =
      '070701' +
      hex8(name === 'TRAILER!!!' ? 0 : ino++) +
      hex8(mode) +
      hex8(0) +
      hex8(0) +
      hex8(nlink) +
      hex8(mtime) +
      hex8(data.byteLength) +
      hex8(0) +
      hex8(0) +
      hex8(rdevMajor) +
      hex8(rdevMinor) +
      hex8(nameBytes.length) +
      hex8(0);
    parts.push(Buffer.from(header, 'ascii'), nameBytes, Buffer.alloc(pad4(110 + nameBytes.length)));
    if (data.byteLength > 0) parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.byteLength)));
  };
  for (const e of sorted) {
    switch (e.type) {
      case 'dir':
        push(e.path, S_IFDIR | (e.mode & 0o7777), 2, new Uint8Array());
        break;
      case 'file':
        push(e.path, S_IFREG | (e.mode & 0o7777), 1, e.data);
        break;
      case 'symlink':
        push(e.path, S_IFLNK | 0o777, 1, Buffer.from(e.target, 'utf8'));
        break;
      case 'char':
        push(e.path, S_IFCHR | (e.mode & 0o7777), 1, new Uint8Array(), e.major, e.minor);
        break;
    }
  }
  push('TRAILER!!!', 0, 1, new Uint8Array());
  return Buffer.concat(parts);
}
