import { describe, expect, it } from 'vitest';
import { mkdir, writeFile, symlink, readFile, chmod, readdir, stat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as zlibConstants, createZstdCompress, gzipSync, gunzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import {
  packPackage,
  verifyPackageFile,
  extractPackage,
  readPackageHeader,
  verifyPackageSignature,
  generateKeyPair,
  toPublicKeyFile,
  sha256File,
  tarHeader,
  padding,
  TAR_END,
  canonicalBytes,
  sha256Hex,
  type PackageMeta,
  type PackageManifest,
} from '../../../catalog/index.js';
import { expectPackageRefused, tempDir, treeHash } from '../../helpers/tmp.js';

const meta: PackageMeta = {
  name: 'hello',
  version: '1.0.0',
  arch: 'x86_64',
  abi: 'linux-musl-static',
  summary: 'says hello',
  license: 'MIT',
};

async function payload(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await mkdir(join(dir, 'share/doc/hello'), { recursive: true });
  await writeFile(join(dir, 'bin/hello'), '#!/bin/sh\necho hello\n');
  await chmod(join(dir, 'bin/hello'), 0o755);
  await writeFile(join(dir, 'share/doc/hello/README'), 'read me\n');
  await symlink('hello', join(dir, 'bin/hi'));
  await writeFile(join(dir, 'share/doc/hello/' + 'x'.repeat(150)), 'long name\n');
}

/** Writes a raw .swpkg from hand-made entries: for malformed input our writer refuses to produce. */
async function rawPackage(
  out: string,
  manifest: unknown,
  entries: { path: string; type: 'file' | 'dir' | 'symlink'; mode?: number; data?: Buffer; target?: string; typeflag?: string }[],
): Promise<void> {
  const parts: Buffer[] = [];
  const m = Buffer.from(canonicalBytes(manifest));
  parts.push(tarHeader({ path: '.SWPKG/manifest.json', type: 'file', mode: 0o644, size: m.length, mtime: 0 }), m, padding(m.length));
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h = tarHeader({
      path: e.path,
      type: e.type,
      mode: e.mode ?? 0o644,
      size: data.length,
      mtime: 0,
      ...(e.target ? { linkTarget: e.target } : {}),
    });
    if (e.typeflag) {
      h.write(e.typeflag, 156, 1, 'ascii');
      let sum = 0;
      h.fill(' ', 148, 156);
      for (const b of h.subarray(0, 512)) sum += b;
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
    }
    parts.push(h, data, padding(data.length));
  }
  parts.push(TAR_END);
  await writeFile(out, gzipSync(Buffer.concat(parts)));
}

function manifestFor(files: PackageManifest['files']): PackageManifest {
  return {
    format: 1,
    ...meta,
    depends: {},
    provides: [],
    conflicts: [],
    installedSize: files.reduce((n, f) => n + (f.size ?? 0), 0),
    files,
  };
}

describe('.swpkg writer and reader', () => {
  it('packs, verifies and extracts a package with its files, links and long names', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'hello.swpkg') });
    expect(r.manifest.files.map((f) => f.path)).toContain('bin/hi');
    expect((await sha256File(r.path)).sha256).toBe(r.sha256);
    const v = await verifyPackageFile(r.path);
    expect(v.sha256).toBe(r.sha256);
    expect(v.manifest).toEqual(r.manifest);
    await extractPackage(r.path, join(d, 'out'), { expectedSha256: r.sha256 });
    expect(await treeHash(join(d, 'out'))).toBe(await treeHash(join(d, 'src')));
    expect((await stat(join(d, 'out/bin/hello'))).mode & 0o777).toBe(0o755);
  });

  for (const compression of ['zstd', 'gzip'] as const) {
    it(`is reproducible as ${compression}: same inputs give the same bytes`, async () => {
      const d = await tempDir();
      await payload(join(d, 'src'));
      // Larger than one read chunk and one zstd block, so chunking could show if it changed the output.
      await writeFile(join(d, 'src/share/blob'), Buffer.from(randomBytes(3 * 1024 * 1024).toString('hex')));
      const a = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'a.swpkg'), sourceDateEpoch: 1700000000, compression });
      await chmod(join(d, 'src/share/doc/hello/README'), 0o600); // umask noise is normalised away
      const b = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'b.swpkg'), sourceDateEpoch: 1700000000, compression });
      expect(b.sha256).toBe(a.sha256);
      expect(await readFile(a.path)).toEqual(await readFile(b.path));
    });
  }

  it('writes zstd unless told gzip, and reads both to the same tree', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const z = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'z.swpkg') });
    const g = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'g.swpkg'), compression: 'gzip' });
    expect((await readFile(z.path)).subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect((await readFile(g.path)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    // The same tar inside: only the compression differs.
    expect(zstdDecompressSync(await readFile(z.path))).toEqual(gunzipSync(await readFile(g.path)));
    expect(z.manifest).toEqual(g.manifest);
    for (const r of [z, g]) {
      expect((await verifyPackageFile(r.path)).sha256).toBe(r.sha256);
      await extractPackage(r.path, join(d, `out-${r.sha256}`), { expectedSha256: r.sha256 });
      expect(await treeHash(join(d, `out-${r.sha256}`))).toBe(await treeHash(join(d, 'src')));
    }
  });

  it('signs the manifest and verifies against trusted keys only', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const key = generateKeyPair();
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'hello.swpkg'), key });
    const header = await readPackageHeader(r.path);
    expect(verifyPackageSignature(header, [toPublicKeyFile(key)]).keyid).toBe(key.keyid);
    expect(() => verifyPackageSignature(header, [toPublicKeyFile(generateKeyPair())])).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_KEY' }),
    );
    // The signature covers the manifest entry's bytes: other bytes (here the same manifest re-spaced) do not verify.
    const tampered = { ...header, manifestBytes: Buffer.from(JSON.stringify(header.manifest, null, 1)) };
    expect(() => verifyPackageSignature(tampered, [toPublicKeyFile(key)])).toThrow(expect.objectContaining({ code: 'E_SIGNATURE' }));
    const unsigned = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'u.swpkg') });
    const unsignedHeader = await readPackageHeader(unsigned.path);
    expect(() => verifyPackageSignature(unsignedHeader, [toPublicKeyFile(key)])).toThrow(expect.objectContaining({ code: 'E_UNTRUSTED' }));
  });

  it('reads only the header of a package larger than one read chunk, repeatedly, without touching a finished hash', async () => {
    // Regression: a read chunk still in flight after the early stop used to update the digested package hash
    // and kill the process with ERR_CRYPTO_HASH_FINALIZED (seen as a pkg install dying before extraction).
    const d = await tempDir();
    await mkdir(join(d, 'src/share'), { recursive: true });
    await writeFile(join(d, 'src/share/blob.bin'), randomBytes(6 * 1024 * 1024));
    const key = generateKeyPair();
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'big.swpkg'), key });
    for (let i = 0; i < 40; i++) {
      const header = await readPackageHeader(r.path);
      expect(header.manifest.files.map((f) => f.path)).toContain('share/blob.bin');
      expect(header.signature?.signatures.map((x) => x.keyid)).toEqual([key.keyid]);
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // a late chunk would throw here, outside the awaits
    expect((await verifyPackageFile(r.path)).sha256).toBe(r.sha256);
  });

  it('refuses to pack setuid files and leaves no output', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    await chmod(join(d, 'src/bin/hello'), 0o4755);
    await expect(packPackage({ dir: join(d, 'src'), meta, out: join(d, 'x.swpkg') })).rejects.toMatchObject({ code: 'E_UNSAFE_PATH' });
    expect(await readdir(d)).toEqual(['src']);
  });

  it('refuses bad metadata with the field named', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    await expect(packPackage({ dir: join(d, 'src'), meta: { ...meta, version: 'v1' }, out: join(d, 'x.swpkg') })).rejects.toMatchObject({
      code: 'E_INVALID_VERSION',
      details: { field: 'version' },
    });
    await expect(packPackage({ dir: join(d, 'src'), meta: { ...meta, name: 'Bad Name' }, out: join(d, 'x.swpkg') })).rejects.toMatchObject({
      code: 'E_INVALID_MANIFEST',
      details: { field: 'name' },
    });
    await expect(
      packPackage({ dir: join(d, 'src'), meta: { ...meta, depends: { zlib: 'not a range!' } }, out: join(d, 'x.swpkg') }),
    ).rejects.toMatchObject({ code: 'E_INVALID_RANGE' });
    expect(await readdir(d)).toEqual(['src']);
  });

  const data = Buffer.from('payload\n');
  const fileEntry = (path: string) => ({ path, type: 'file' as const, mode: 0o644, size: data.length, sha256: sha256Hex(data) });
  const cases: { name: string; code: string; build: (out: string) => Promise<void> }[] = [
    {
      name: '.. in a path',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, { ...manifestFor([fileEntry('../evil')]) }, [{ path: '../evil', type: 'file', data }]),
    },
    {
      name: 'an absolute path',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([fileEntry('/etc/evil')]), [{ path: '/etc/evil', type: 'file', data }]),
    },
    {
      name: 'a path the manifest does not list',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([fileEntry('a')]), [{ path: '../a', type: 'file', data }]),
    },
    {
      name: 'duplicate paths',
      code: 'E_BAD_MANIFEST',
      build: (o) =>
        rawPackage(o, manifestFor([fileEntry('a'), fileEntry('a')]), [
          { path: 'a', type: 'file', data },
          { path: 'a', type: 'file', data },
        ]),
    },
    {
      name: 'a symlink escaping the package',
      code: 'E_UNSAFE_PATH',
      build: (o) =>
        rawPackage(o, manifestFor([{ path: 'x', type: 'symlink', mode: 0o777, target: '../../etc/passwd' }]), [
          { path: 'x', type: 'symlink', mode: 0o777, target: '../../etc/passwd' },
        ]),
    },
    {
      name: 'an absolute symlink',
      code: 'E_UNSAFE_PATH',
      build: (o) =>
        rawPackage(o, manifestFor([{ path: 'x', type: 'symlink', mode: 0o777, target: '/etc/passwd' }]), [
          { path: 'x', type: 'symlink', mode: 0o777, target: '/etc/passwd' },
        ]),
    },
    {
      name: 'a file below a symlink',
      code: 'E_UNSAFE_PATH',
      build: (o) =>
        rawPackage(o, manifestFor([{ path: 'l', type: 'symlink', mode: 0o777, target: '.' }, fileEntry('l/x')]), [
          { path: 'l', type: 'symlink', mode: 0o777, target: '.' },
          { path: 'l/x', type: 'file', data },
        ]),
    },
    {
      name: 'a setuid file',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([{ ...fileEntry('s'), mode: 0o4755 }]), [{ path: 's', type: 'file', mode: 0o4755, data }]),
    },
    {
      name: 'a hardlink entry',
      code: 'E_UNSAFE_PATH',
      build: (o) =>
        rawPackage(o, manifestFor([fileEntry('a')]), [{ path: 'a', type: 'file', data: Buffer.alloc(0), typeflag: '1', target: 'b' }]),
    },
    {
      name: 'a device node',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([fileEntry('a')]), [{ path: 'a', type: 'file', data: Buffer.alloc(0), typeflag: '3' }]),
    },
    {
      name: 'content that does not match its hash',
      code: 'E_HASH_MISMATCH',
      build: (o) => rawPackage(o, manifestFor([fileEntry('a')]), [{ path: 'a', type: 'file', data: Buffer.from('PAYLOAD\n') }]),
    },
    {
      name: 'a size that differs from the manifest',
      code: 'E_HASH_MISMATCH',
      build: (o) => rawPackage(o, manifestFor([fileEntry('a')]), [{ path: 'a', type: 'file', data: Buffer.from('payload!!\n') }]),
    },
    {
      name: 'a missing file',
      code: 'E_CORRUPT',
      build: (o) => rawPackage(o, manifestFor([fileEntry('a'), fileEntry('b')]), [{ path: 'a', type: 'file', data }]),
    },
    { name: 'an unknown manifest field', code: 'E_BAD_MANIFEST', build: (o) => rawPackage(o, { ...manifestFor([]), evil: true }, []) },
    { name: 'a non-semver version', code: 'E_BAD_MANIFEST', build: (o) => rawPackage(o, { ...manifestFor([]), version: '1.0' }, []) },
    {
      name: 'a sticky folder',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([{ path: 'tmp', type: 'dir', mode: 0o1777 }]), [{ path: 'tmp', type: 'dir', mode: 0o1777 }]),
    },
    {
      name: 'a sticky file',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([{ ...fileEntry('s'), mode: 0o1644 }]), [{ path: 's', type: 'file', mode: 0o1644, data }]),
    },
    {
      name: 'a world-writable file',
      code: 'E_BAD_MANIFEST',
      build: (o) => rawPackage(o, manifestFor([{ ...fileEntry('w'), mode: 0o666 }]), [{ path: 'w', type: 'file', mode: 0o666, data }]),
    },
    {
      name: 'a folder nobody may enter',
      code: 'E_BAD_MANIFEST',
      build: (o) =>
        rawPackage(o, manifestFor([{ path: 'd', type: 'dir', mode: 0o000 }, fileEntry('d/x')]), [
          { path: 'd', type: 'dir', mode: 0o000 },
          { path: 'd/x', type: 'file', data },
        ]),
    },
    {
      name: 'a path longer than 1024 bytes',
      code: 'E_UNSAFE_PATH',
      build: (o) => {
        const long = Array.from({ length: 6 }, (_, i) => `${i}`.repeat(200)).join('/');
        return rawPackage(o, manifestFor([fileEntry(long)]), [{ path: long, type: 'file', data }]);
      },
    },
    {
      name: 'a path more than 32 folders deep',
      code: 'E_UNSAFE_PATH',
      build: (o) => {
        const deep = Array.from({ length: 33 }, () => 'd').join('/');
        return rawPackage(o, manifestFor([fileEntry(deep)]), [{ path: deep, type: 'file', data }]);
      },
    },
    {
      name: 'a path with a terminal escape',
      code: 'E_UNSAFE_PATH',
      build: (o) => rawPackage(o, manifestFor([fileEntry('a\u001b[2Jb')]), [{ path: 'a\u001b[2Jb', type: 'file', data }]),
    },
    {
      name: 'a symlink target longer than 1024 bytes',
      code: 'E_UNSAFE_PATH',
      build: (o) => {
        const target = 'x/'.repeat(600);
        return rawPackage(o, manifestFor([{ path: 'l', type: 'symlink', mode: 0o777, target }]), [
          { path: 'l', type: 'symlink', mode: 0o777, target },
        ]);
      },
    },
    {
      name: 'more than 32 768 entries',
      code: 'E_BAD_MANIFEST',
      build: (o) =>
        rawPackage(
          o,
          manifestFor(Array.from({ length: 32_769 }, (_, i) => ({ path: `d${String(i).padStart(5, '0')}`, type: 'dir', mode: 0o755 }))),
          [],
        ),
    },
    {
      name: 'a tar metadata record over 16 KiB',
      code: 'E_TOO_LARGE',
      build: (o) => {
        const huge = `${'d/'.repeat(10_000)}x`;
        return rawPackage(o, manifestFor([fileEntry('x')]), [{ path: huge, type: 'file', data }]);
      },
    },
    {
      name: 'a manifest over 8 MiB (whitespace padding)',
      code: 'E_TOO_LARGE',
      build: async (o) => {
        const m = Buffer.concat([Buffer.from(canonicalBytes(manifestFor([]))), Buffer.alloc(8 * 1024 * 1024, ' ')]);
        await writeFile(
          o,
          gzipSync(
            Buffer.concat([
              tarHeader({ path: '.SWPKG/manifest.json', type: 'file', mode: 0o644, size: m.length, mtime: 0 }),
              m,
              padding(m.length),
              TAR_END,
            ]),
          ),
        );
      },
    },
    {
      name: 'a wrong installedSize',
      code: 'E_BAD_MANIFEST',
      build: (o) => rawPackage(o, { ...manifestFor([]), installedSize: 5 }, []),
    },
    {
      name: 'no manifest first',
      code: 'E_CORRUPT',
      build: (o) =>
        writeFile(o, gzipSync(Buffer.concat([tarHeader({ path: 'a', type: 'file', mode: 0o644, size: 0, mtime: 0 }), TAR_END]))),
    },
    { name: 'neither zstd nor gzip', code: 'E_CORRUPT', build: (o) => writeFile(o, 'hello, I am not a package') },
  ];
  // Every case in both formats: built as gzip, then the same tar recompressed as zstd (what pack writes now).
  for (const c of cases) {
    for (const compression of ['gzip', 'zstd'] as const) {
      it(`refuses ${c.name} (${c.code}) as ${compression} and extracts nothing`, async () => {
        const d = await tempDir();
        const file = join(d, 'bad.swpkg');
        await c.build(file);
        if (compression === 'zstd') await recompressZstd(file);
        await expectPackageRefused(d, file, c.code);
      });
    }
  }

  it('stops before the payload when the manifest declares another installed size than the catalog', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'ok.swpkg') });
    const before = await treeHash(d);
    const less = r.manifest.installedSize - 1;
    await expect(extractPackage(r.path, join(d, 'out'), { installedSize: less })).rejects.toMatchObject({
      code: 'E_TOO_LARGE',
      details: { declared: less, manifest: r.manifest.installedSize },
    });
    await expect(extractPackage(r.path, join(d, 'out'), { installedSize: r.manifest.installedSize + 1 })).rejects.toMatchObject({
      code: 'E_CORRUPT',
    });
    expect(await treeHash(d)).toBe(before);
    await extractPackage(r.path, join(d, 'out'), { installedSize: r.manifest.installedSize });
  });

  for (const compression of ['zstd', 'gzip'] as const) {
    it(`refuses truncated ${compression}, one flipped byte, and a size over the cap`, async () => {
      const d = await tempDir();
      await payload(join(d, 'src'));
      const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'ok.swpkg'), compression });
      const bytes = await readFile(r.path);
      await writeFile(join(d, 'trunc.swpkg'), bytes.subarray(0, bytes.length - 40));
      await expect(verifyPackageFile(join(d, 'trunc.swpkg'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
      // Flip one byte inside the payload (after decompression) and recompress: the per-file hash catches it.
      const tar = compression === 'zstd' ? zstdDecompressSync(bytes) : gunzipSync(bytes);
      const at = tar.indexOf('read me');
      tar[at] = 'R'.charCodeAt(0);
      await writeFile(join(d, 'flip.swpkg'), compression === 'zstd' ? zstdCompressSync(tar) : gzipSync(tar));
      await expect(verifyPackageFile(join(d, 'flip.swpkg'))).rejects.toMatchObject({ code: 'E_HASH_MISMATCH' });
      await expect(verifyPackageFile(r.path, { expectedSha256: '0'.repeat(64) })).rejects.toMatchObject({ code: 'E_HASH_MISMATCH' });
      await expect(verifyPackageFile(r.path, { maxBytes: 100 })).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    });
  }

  it('refuses a zstd package cut anywhere (E_CORRUPT) and extracts nothing', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'ok.swpkg') });
    const bytes = await readFile(r.path);
    const before = await treeHash(d);
    // Inside the magic, right after the frame header, mid-block, one byte short of the end.
    for (const keep of [0, 2, 6, 40, Math.floor(bytes.length / 2), bytes.length - 1]) {
      const cut = join(d, `cut-${keep}.swpkg`);
      await writeFile(cut, bytes.subarray(0, keep));
      await expect(verifyPackageFile(cut)).rejects.toMatchObject({ code: 'E_CORRUPT' });
      await expect(extractPackage(cut, join(d, 'out'))).rejects.toMatchObject({ code: 'E_CORRUPT' });
      await rm(cut);
    }
    expect(await treeHash(d)).toBe(before);
  });

  it('refuses a zstd frame that asks for a window over 8 MiB before decoding it (E_CORRUPT)', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'ok.swpkg') });
    const tar = zstdDecompressSync(await readFile(r.path));
    // Streamed, so the frame carries no content size and declares the whole 2^27 window.
    const z = createZstdCompress({ params: { [zlibConstants.ZSTD_c_windowLog]: 27 } });
    const chunks: Buffer[] = [];
    z.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => z.on('end', resolve));
    z.end(tar);
    await ended;
    const file = join(d, 'wide.swpkg');
    await writeFile(file, Buffer.concat(chunks));
    await expectPackageRefused(d, file, 'E_CORRUPT');
  });
});

/** Rewrites a gzip test package as zstd with the same tar inside (anything else is left as it is). */
async function recompressZstd(file: string): Promise<void> {
  const bytes = await readFile(file);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return;
  await writeFile(file, zstdCompressSync(gunzipSync(bytes)));
}
