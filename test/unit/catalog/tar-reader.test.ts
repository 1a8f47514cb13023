import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import {
  canonicalBytes,
  extractPackage,
  padding,
  sha256Hex,
  tarHeader,
  TAR_END,
  verifyPackageFile,
  type PackageManifest,
} from '../../../catalog/index.js';
import { TarReader, type TarReadHeader } from '../../../catalog/tar-reader.js';
import { expectPackageRefused, tempDir, treeHash } from '../../helpers/tmp.js';

/** Sets a header's checksum field for its current bytes, as the writer does. */
function reChecksum(h: Buffer): Buffer {
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h.subarray(0, 512)) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** A hand-made PAX header + record set: for record sets the writer refuses to produce. */
function paxBlock(body: string, typeflag = 'x'): Buffer {
  const b = Buffer.from(body, 'utf8');
  const h = tarHeader({ path: 'PaxHeader', type: 'file', mode: 0o644, size: b.length, mtime: 0 });
  h.write(typeflag, 156, 1, 'ascii');
  return Buffer.concat([reChecksum(h), b, padding(b.length)]);
}

function entry(path: string, data: Buffer): Buffer {
  return Buffer.concat([tarHeader({ path, type: 'file', mode: 0o644, size: data.length, mtime: 0 }), data, padding(data.length)]);
}

interface Seen {
  headers: TarReadHeader[];
  bodies: string[];
}

/** Runs the reader over `tar` cut into `step`-byte chunks and records what it reported. */
function read(tar: Buffer, step: number): Seen {
  const seen: Seen = { headers: [], bodies: [] };
  let body: Buffer[] = [];
  const reader = new TarReader('t.tar', {
    stopped: false,
    entry: (h) => {
      seen.headers.push(h);
      body = [];
    },
    data: (c) => body.push(Buffer.from(c)),
    entryEnd: () => seen.bodies.push(Buffer.concat(body).toString('utf8')),
  });
  for (let i = 0; i < tar.length; i += step) reader.write(tar.subarray(i, i + step));
  reader.end();
  return seen;
}

describe('TarReader', () => {
  const long = `share/${'x'.repeat(150)}`;
  const target = `../${'t'.repeat(120)}`;
  const good = Buffer.concat([
    entry('a', Buffer.from('hello\n')),
    tarHeader({ path: 'd', type: 'dir', mode: 0o755, size: 0, mtime: 0 }),
    tarHeader({ path: 'l', type: 'symlink', mode: 0o777, size: 0, mtime: 0, linkTarget: target }),
    entry(long, Buffer.alloc(1500, 'z')),
    TAR_END,
  ]);

  // Every chunking gives the same entries: headers and PAX records split anywhere are reassembled.
  for (const step of [1, 7, 511, 512, 513, 4096, good.length]) {
    it(`reads the writer's layout fed in ${step}-byte chunks`, () => {
      const seen = read(good, step);
      expect(seen.headers.map((h) => [h.path, h.type, h.mode, h.size, h.linkpath])).toEqual([
        ['a', 'file', 0o644, 6, undefined],
        ['d/', 'dir', 0o755, 0, undefined],
        ['l', 'symlink', 0o777, 0, target],
        [long, 'file', 0o644, 1500, undefined],
      ]);
      expect(seen.bodies).toEqual(['hello\n', '', '', 'z'.repeat(1500)]);
    });
  }

  it('accepts zero bytes after the end blocks and refuses anything else there', () => {
    expect(read(Buffer.concat([good, Buffer.alloc(10240)]), 999).headers).toHaveLength(4);
    expect(() => read(Buffer.concat([good, Buffer.from('x')]), 999)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
  });

  it('refuses an archive cut anywhere, even at an entry boundary or between the end blocks', () => {
    for (const keep of [100, 512, 1024, good.length - 1024, good.length - 512, good.length - 1]) {
      expect(() => read(good.subarray(0, keep), 64)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
    }
  });
});

const data = Buffer.from('payload\n');
function manifest(files: PackageManifest['files']): PackageManifest {
  return {
    format: 1,
    name: 'hello',
    version: '1.0.0',
    arch: 'x86_64',
    abi: 'linux-musl-static',
    summary: 'says hello',
    license: 'MIT',
    depends: {},
    provides: [],
    conflicts: [],
    installedSize: files.reduce((n, f) => n + (f.size ?? 0), 0),
    files,
  };
}
const oneFile = manifest([{ path: 'a', type: 'file', mode: 0o644, size: data.length, sha256: sha256Hex(data) }]);
const manifestEntry = (): Buffer => entry('.SWPKG/manifest.json', Buffer.from(canonicalBytes(oneFile)));

/** The header of payload entry `a` with one edit applied (checksum fixed afterwards unless told not to). */
function editedA(edit: (h: Buffer) => void, fix = true): Buffer {
  const h = tarHeader({ path: 'a', type: 'file', mode: 0o644, size: data.length, mtime: 0 });
  edit(h);
  return Buffer.concat([fix ? reChecksum(h) : h, data, padding(data.length)]);
}

// Each is a package whose manifest is valid and lists `a`; only the tar around it is off.
const hostile: { name: string; code: string; tar: () => Buffer }[] = [
  { name: 'a bad header checksum', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('b', 0, 'ascii'), false) },
  { name: 'a size field that is not octal', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('9', 134, 'ascii')) },
  { name: 'a base-256 size', code: 'E_CORRUPT', tar: () => editedA((h) => (h[124] = 0x80)) },
  { name: 'a mode field with junk after the digits', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('x', 107, 'ascii')) },
  { name: 'no ustar magic', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('gnutar', 257, 'ascii')) },
  { name: 'a ustar prefix field', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('evil', 345, 'ascii')) },
  { name: 'a GNU long name (L)', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('a\0', 'L'), entry('a', data)]) },
  { name: 'a GNU long link (K)', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('b\0', 'K'), entry('a', data)]) },
  { name: 'a PAX global header (g)', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('10 path=a\n', 'g'), entry('a', data)]) },
  { name: 'an unknown typeflag', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('S', 156, 'ascii')) },
  { name: 'a PAX record with a wrong length', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('11 path=a\n'), entry('a', data)]) },
  { name: 'a PAX record without a length', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('path=a\n'), entry('a', data)]) },
  { name: 'a PAX record without =', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('8 patha\n'), entry('a', data)]) },
  { name: 'a PAX size that is not a number', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('11 size=x8\n'), entry('a', data)]) },
  { name: 'a PAX sparse-file key', code: 'E_CORRUPT', tar: () => Buffer.concat([paxBlock('22 GNU.sparse.major=1\n'), entry('a', data)]) },
  { name: 'a PAX header followed by the end', code: 'E_CORRUPT', tar: () => paxBlock('10 path=a\n') },
  {
    name: 'two PAX headers in a row',
    code: 'E_CORRUPT',
    tar: () => Buffer.concat([paxBlock('10 path=a\n'), paxBlock('10 path=a\n'), entry('a', data)]),
  },
  {
    name: 'a folder with data',
    code: 'E_CORRUPT',
    tar: () => editedA((h) => h.write('5', 156, 'ascii')),
  },
  { name: 'a file naming a link target', code: 'E_CORRUPT', tar: () => editedA((h) => h.write('b', 157, 'ascii')) },
  { name: 'one zero block, then an entry', code: 'E_CORRUPT', tar: () => Buffer.concat([Buffer.alloc(512), entry('a', data)]) },
  { name: 'a FIFO', code: 'E_UNSAFE_PATH', tar: () => editedA((h) => h.write('6', 156, 'ascii')) },
];

describe('a package whose tar is not the layout swpkg pack writes', () => {
  for (const c of hostile) {
    for (const compression of ['gzip', 'zstd'] as const) {
      it(`refuses ${c.name} (${c.code}) as ${compression} and extracts nothing`, async () => {
        const d = await tempDir();
        const file = join(d, 'bad.swpkg');
        const tar = Buffer.concat([manifestEntry(), c.tar(), TAR_END]);
        await writeFile(file, compression === 'gzip' ? gzipSync(tar) : zstdCompressSync(tar));
        await expectPackageRefused(d, file, c.code);
      });
    }
  }

  it('refuses a tar cut inside a header, or missing its end blocks, though the compression is whole (E_CORRUPT)', async () => {
    const d = await tempDir();
    const whole = Buffer.concat([manifestEntry(), entry('a', data)]);
    for (const tar of [whole.subarray(0, whole.length - data.length - 512 - 300), whole, Buffer.concat([whole, Buffer.alloc(512)])]) {
      const file = join(d, 'cut.swpkg');
      await writeFile(file, zstdCompressSync(tar));
      const before = await treeHash(d);
      await expect(extractPackage(file, join(d, 'out'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
      expect(await treeHash(d)).toBe(before);
    }
  });

  it('refuses bytes hidden after the end blocks (E_CORRUPT) but reads zero padding there', async () => {
    const d = await tempDir();
    const tar = Buffer.concat([manifestEntry(), entry('a', data), TAR_END]);
    await writeFile(join(d, 'padded.swpkg'), zstdCompressSync(Buffer.concat([tar, Buffer.alloc(9216)])));
    expect((await verifyPackageFile(join(d, 'padded.swpkg'))).manifest.files.map((f) => f.path)).toEqual(['a']);
    await writeFile(join(d, 'hidden.swpkg'), zstdCompressSync(Buffer.concat([tar, entry('b', data), TAR_END])));
    const before = await treeHash(d);
    await expect(extractPackage(join(d, 'hidden.swpkg'), join(d, 'out'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(await treeHash(d)).toBe(before);
  });
});
