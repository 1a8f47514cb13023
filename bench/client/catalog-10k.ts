/**
 * A signed web root whose catalog lists N synthetic packages (default
 * 10 000; 2 versions of N/2 names, each depending on up to 4 earlier names
 * with caret ranges), for timing `pkg update` and the resolver at scale.
 * Only metadata: the package files are never fetched by these measurements.
 *
 *   npx node bench/client/catalog-10k.ts --out DIR [--n 10000] [--hosted plain|gzip]
 * Writes DIR/www and DIR/repo.json ({fingerprint, last}). With --hosted, the catalog is also
 * published the way `swpkg repo publish` lays it out: `catalogs/VERSION-SHA256.json` named by a
 * `hosted-repo.json`, and with `gzip` its `.gz` sibling (level 9) named there too.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { gzipSync, constants } from 'node:zlib';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createRoot, encodeEnvelope, generateKeyPair, rootFingerprint, signCatalog, type CatalogPackage } from '../../catalog/index.js';
import { buildCatalog } from '../../publishing/index.js';

const o = process.argv.indexOf('--out');
const out = process.argv[o + 1]!;
const hi = process.argv.indexOf('--hosted');
const hosted = hi >= 0 ? process.argv[hi + 1] : undefined;
if (hosted !== undefined && hosted !== 'plain' && hosted !== 'gzip') throw new Error('--hosted takes plain or gzip');
const ni = process.argv.indexOf('--n');
const n = Number(ni >= 0 ? process.argv[ni + 1] : '10000');
const names = Math.max(1, Math.floor(n / 2));

// Deterministic pseudo-random choices (xorshift32) so every run benchmarks the same graph.
let state = 2463534242;
const rand = (k: number): number => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state % k;
};

const packages: CatalogPackage[] = [];
for (let i = 0; i < names; i++) {
  const name = `syn-${String(i).padStart(5, '0')}`;
  for (const minor of [0, 1]) {
    const depends: Record<string, string> = {};
    const k = i === 0 ? 0 : Math.min(i, rand(5));
    for (let d = 0; d < k; d++) depends[`syn-${String(rand(i)).padStart(5, '0')}`] = '^1.0.0';
    const sha256 = createHash('sha256').update(`${name}@1.${minor}.0`).digest('hex');
    packages.push({
      name,
      version: `1.${minor}.0`,
      arch: 'x86_64',
      abi: 'linux-musl-static',
      depends,
      provides: [],
      conflicts: [],
      size: 1000 + rand(100000),
      installedSize: 5000 + rand(500000),
      sha256,
      path: `packages/${name}-1.${minor}.0-x86_64.swpkg`,
      summary: `synthetic package ${i} for catalog benchmarks`,
      license: 'MIT',
    });
  }
}
const key = generateKeyPair();
const now = new Date();
const root = createRoot({ rootKeys: [key], catalogKeys: [key], expires: new Date(now.getTime() + 365 * 86400_000) });
const signed = buildCatalog({ repo: 'syn', packages, now, expiresIn: 30 * 86400 });
// Nothing in this catalog is ever downloaded, so it need not ask for the zstd-reading client
// (format 2): a baseline pkg from before zstd (format 1) accepts it, and the benches compare the two.
signed.compatibility.minClientFormat = 1;
const doc = signCatalog(signed, [key]);
const www = join(out, 'www');
await mkdir(join(www, 'roots'), { recursive: true });
await writeFile(join(www, 'repo-root.pub'), encodeEnvelope(root));
await writeFile(join(www, 'roots', '1.json'), encodeEnvelope(root));
const catalogBytes = encodeEnvelope(doc);
await writeFile(join(www, 'catalog.json'), catalogBytes);
if (hosted !== undefined) {
  const catalog = `catalogs/${doc.signed.version}-${createHash('sha256').update(catalogBytes).digest('hex')}.json`;
  await mkdir(join(www, 'catalogs'));
  await writeFile(join(www, catalog), catalogBytes);
  if (hosted === 'gzip') await writeFile(join(www, `${catalog}.gz`), gzipSync(catalogBytes, { level: constants.Z_BEST_COMPRESSION }));
  const pointer = {
    format: 1,
    name: 'syn',
    catalog,
    rootFingerprint: rootFingerprint(root),
    rootVersion: 1,
    mirrors: [],
    ...(hosted === 'gzip' ? { catalogGzip: `${catalog}.gz` } : {}),
  };
  await writeFile(join(www, 'hosted-repo.json'), JSON.stringify(pointer, null, 2) + '\n');
}
const last = `syn-${String(names - 1).padStart(5, '0')}`;
await writeFile(
  join(out, 'repo.json'),
  JSON.stringify({ fingerprint: rootFingerprint(root), last, packages: packages.length }, null, 2) + '\n',
);
process.stdout.write(`${packages.length} catalog entries; ${catalogBytes.length} bytes\n`);
