#!/usr/bin/env node
// Packs the anchor kit's small corpus as .swpkg, in one process, with the built
// product's `packPackage` (dist/, so it is the same code `swpkg pack` runs).
//
//   node_modules/.bin/node bench/catalog/pack-corpus.mjs CORPUS_SMALL_DIR OUT_DIR
//
// CORPUS_SMALL_DIR is `$BENCH_DIR/corpus/small` from gen-corpus.mjs. Each
// src/NAME/manifest.json gives name, version, description, depends (a list of
// names); the corpus pins no versions, so every dependency becomes range `*`.
// mtime is the corpus's own epoch, as build-formats.sh uses for the anchors.
// Prints one JSON line: packages, payload bytes, archive bytes, seconds.
import { readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [corpus, out] = process.argv.slice(2);
if (!corpus || !out) {
  console.error('usage: pack-corpus.mjs CORPUS_SMALL_DIR OUT_DIR');
  process.exit(2);
}
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const { packPackage } = await import(join(repoRoot, 'dist/catalog/index.js'));

const EPOCH = 1704067200;
const src = join(corpus, 'src');
const names = readdirSync(src).sort();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

let payload = 0;
let archives = 0;
const t0 = process.hrtime.bigint();
for (const dir of names) {
  const m = JSON.parse(readFileSync(join(src, dir, 'manifest.json'), 'utf8'));
  const meta = {
    name: m.name,
    version: m.version,
    arch: 'any',
    abi: 'linux-musl-static',
    summary: m.description,
    license: 'MIT',
    depends: Object.fromEntries(m.depends.map((d) => [d, '*'])),
  };
  // Any name ending in .swpkg: `repo index` names each entry after its content.
  const file = `${meta.name}-${meta.version}-${meta.arch}.swpkg`;
  const r = await packPackage({ dir: join(src, dir, 'payload'), meta, out: join(out, file), sourceDateEpoch: EPOCH });
  payload += r.manifest.installedSize;
  archives += r.size;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ packages: names.length, payloadBytes: payload, archiveBytes: archives, seconds }));
