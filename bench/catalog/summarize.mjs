#!/usr/bin/env node
// Markdown table from bench-catalog.sh results.   node summarize.mjs RESULTS_DIR
// Every row is a ratio between swpkg and a baseline measured in the same run:
// absolute times on a shared 2-core machine are noise, ratios are the result.
// Hyperfine rows use the median of the runs. MB = 10^6 bytes, MiB = 2^20.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir || !existsSync(dir)) {
  console.error('usage: summarize.mjs RESULTS_DIR');
  process.exit(2);
}
const load = (name) => (existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), 'utf8')) : undefined);
const hf = (id) => load(`${id}.json`)?.results[0];
const meta = load('meta.json') ?? {};
const mem = load('mem.json') ?? {};
const f = (x, d = 2) => (x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d));
const rows = [];
// ratio = swpkg time / baseline time: below 1 swpkg is faster, above 1 slower.
const ratio = (a, b) => `${f(a / b)}x`;
const span = (r) => `${f(r.median, 2)} s, ${r.times.length > 1 ? `${f(r.min, 2)}–${f(r.max, 2)}` : '1 run'}`;

const idx = hf('index-swpkg');
const n = meta.packages;
if (idx && n) {
  const rate = (r) => `${f(n / r.median, 1)} pkg/s (${span(r)})`;
  // CPU: hyperfine's mean user + system of the process tree (worker threads included).
  const cpu = (r) => `${f(r.user + r.system, 2)} s CPU`;
  const ftp = hf('index-apt-ftparchive');
  const one = hf('index-swpkg-jobs1');
  const load = meta.indexLoad ? `, load ${meta.indexLoad}` : '';
  if (ftp) {
    const what = `\`apt-ftparchive packages\` (.deb, gzip; one thread), runs in turn${load}`;
    rows.push([`\`swpkg repo index\`, ${n} packages (a worker per core)`, rate(idx), what, rate(ftp), ratio(idx.median, ftp.median)]);
    rows.push([
      `\`swpkg repo index\`, ${n} packages: CPU`,
      cpu(idx),
      '`apt-ftparchive packages`: CPU',
      cpu(ftp),
      ratio(idx.user + idx.system, ftp.user + ftp.system),
    ]);
    if (one) {
      rows.push([
        `\`swpkg repo index --jobs 1\`, ${n} packages`,
        rate(one),
        '`apt-ftparchive packages`',
        rate(ftp),
        ratio(one.median, ftp.median),
      ]);
      rows.push([
        `\`swpkg repo index --jobs 1\`: CPU`,
        cpu(one),
        '`apt-ftparchive packages`: CPU',
        cpu(ftp),
        ratio(one.user + one.system, ftp.user + ftp.system),
      ]);
    }
  }
  for (const [id, what] of [
    ['index-repo-add', 'pacman `repo-add` (.pkg.tar.zst)'],
    ['index-dpkg-scanpackages', '`dpkg-scanpackages` (.deb, gzip)'],
    ['index-floor', 'floor: `sha256sum` + `gzip -dc \\| sha256sum` of the same .swpkg'],
  ]) {
    const b = hf(id);
    if (b) rows.push([`\`swpkg repo index\`, ${n} packages`, rate(idx), what, rate(b), ratio(idx.median, b.median)]);
  }
}
const p = hf('pack200-swpkg');
const t = hf('pack200-tar');
if (p && t && meta.pack200) {
  const mbs = (r) => `${f(meta.pack200.payloadBytes / r.median / 1e6, 1)} MB/s (${span(r)})`;
  rows.push([`pack ${meta.pack200.mib} MiB folder`, mbs(p), '`tar -c \\| zstd -3`', mbs(t), ratio(p.median, t.median)]);
  rows.push([
    `pack ${meta.pack200.mib} MiB: output size`,
    `${meta.pack200.swpkgBytes} B`,
    '`tar -c \\| zstd -3` output',
    `${meta.pack200.tarBytes} B`,
    `${(meta.pack200.swpkgBytes / meta.pack200.tarBytes).toFixed(4)}x`,
  ]);
}
const mib = (k) => `${f(k / 1024, 1)} MiB`;
const el = (s) => `${f(s, 2)} s`;
for (const [id, base, what, bWhat] of [
  ['pack-1g', 'pack-tiny', 'swpkg pack, 1 GiB payload', '`swpkg pack` of one small corpus package'],
  ['verify-1g', 'verify-tiny', 'swpkg verify, 1 GiB package', '`swpkg verify` of one small corpus package'],
]) {
  const a = mem[id];
  const b = mem[base];
  if (!a || !b) continue;
  const flat = a.maxRssKiB < 200 * 1024 ? 'flat' : 'NOT flat (>= 200 MiB)';
  rows.push([`${what}: peak RSS`, `${mib(a.maxRssKiB)} (${flat})`, bWhat, mib(b.maxRssKiB), `${f(a.maxRssKiB / b.maxRssKiB)}x`]);
}
for (const [id, base, what, bWhat] of [
  ['pack-1g', 'tar-1g', 'swpkg pack, 1 GiB payload: time', '`tar -c \\| zstd -3` of the same folder'],
  ['verify-1g', 'unpack-1g', 'swpkg verify, 1 GiB package: time', '`sha256sum` + `zstd -dc \\| sha256sum` of it'],
]) {
  const a = mem[id];
  const b = mem[base];
  if (a && b)
    rows.push([
      what,
      `${el(a.elapsedS)}, ${mib(a.maxRssKiB)} RSS`,
      bWhat,
      `${el(b.elapsedS)}, ${mib(b.maxRssKiB)} RSS`,
      ratio(a.elapsedS, b.elapsedS),
    ]);
}

console.log('| measure | swpkg | baseline | baseline value | ratio swpkg/baseline |');
console.log('|---|---:|---|---:|---:|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
console.log(
  '\nTime ratios below 1: swpkg faster; above 1: slower.' +
    (mem['pack-1g']
      ? ' RSS ratio: the 1 GiB run over a small-package run of the same command (holding the payload in memory would put it above 1 GiB, ~13x).'
      : ''),
);
if (meta.packCorpus) {
  const c = meta.packCorpus;
  console.log(
    `Packing the corpus in-process (packPackage): ${c.packages} packages in ${f(c.seconds, 1)} s = ${f(c.packages / c.seconds, 1)} pkg/s; ${f(c.payloadBytes / 1048576, 1)} MiB payload -> ${f(c.archiveBytes / 1048576, 1)} MiB .swpkg.`,
  );
}
