/**
 * zstd against gzip for package payloads, in one process on the same bytes (Node 24's node:zlib
 * has both): each `.swpkg` given is decompressed (zstd or gzip) to its tar stream, then that stream is compressed
 * with gzip at level 6 (what `swpkg pack` writes) and with zstd at its default level 3, and each
 * result decompressed again (what `repo index` and `pkg install` do). Times are CPU-bound and
 * single-threaded, run back to back per file so load drifts hit both alike; ratios are zstd/gzip.
 *
 *   node bench/catalog/zstd-vs-gzip.mjs FILE.swpkg...      (e.g. a packed corpus: DIR/*.swpkg)
 *
 * Prints one JSON line: bytes of tar, gzip and zstd output, seconds for each step, ratios.
 */
import { readFileSync } from 'node:fs';
import { constants, gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: zstd-vs-gzip.mjs FILE.swpkg...');
const t = { gzip: 0, zstd: 0, gunzip: 0, unzstd: 0 };
const bytes = { tar: 0, gzip: 0, zstd: 0 };
const time = (k, f) => {
  const s = process.hrtime.bigint();
  const r = f();
  t[k] += Number(process.hrtime.bigint() - s) / 1e9;
  return r;
};
for (const f of files) {
  const raw = readFileSync(f);
  // Packages are zstd since 2026-12-03; older ones gzip: either way, the tar stream inside.
  const tar = raw.readUInt32BE(0) === 0x28b52ffd ? zstdDecompressSync(raw) : gunzipSync(raw);
  bytes.tar += tar.length;
  const gz = time('gzip', () => gzipSync(tar, { level: 6 }));
  const zs = time('zstd', () => zstdCompressSync(tar, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }));
  bytes.gzip += gz.length;
  bytes.zstd += zs.length;
  if (!time('gunzip', () => gunzipSync(gz)).equals(tar)) throw new Error(`${f}: gzip round trip differs`);
  if (!time('unzstd', () => zstdDecompressSync(zs)).equals(tar)) throw new Error(`${f}: zstd round trip differs`);
}
const r = (a, b) => Number((a / b).toFixed(3));
process.stdout.write(
  `${JSON.stringify({
    files: files.length,
    bytes,
    seconds: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Number(v.toFixed(3))])),
    ratio: { size: r(bytes.zstd, bytes.gzip), compress: r(t.zstd, t.gzip), decompress: r(t.unzstd, t.gunzip) },
  })}\n`,
);
