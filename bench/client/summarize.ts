/**
 * Summarises the hyperfine JSON files of bench/client/bench.sh into a
 * Markdown table with the ratios that matter (pkg vs its baseline from the
 * same run). Missing measurements are reported as not run.
 *
 *   node summarize.mjs RESULTS_DIR
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.';
interface Result {
  command: string;
  mean: number;
  user: number;
  system: number;
  stddev: number | null;
  min: number;
  max: number;
}
const results = new Map<string, Result>();
for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
  const j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { results?: Result[] };
  for (const r of j.results ?? []) results.set(r.command, r);
}
const fmt = (s: number): string => (s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`);
const lines: string[] = ['| measurement | mean wall | ± | min | max | CPU (user+sys) |', '|---|---|---|---|---|---|'];
const cpu = (r: Result): number => r.user + r.system;
for (const [id, r] of [...results].sort(([a], [b]) => (a < b ? -1 : 1))) {
  lines.push(`| ${id} | ${fmt(r.mean)} | ${r.stddev === null ? '-' : fmt(r.stddev)} | ${fmt(r.min)} | ${fmt(r.max)} | ${fmt(cpu(r))} |`);
}
// Wall time on a shared machine swings with other load; CPU time (user+sys) is the steadier figure.
const ratio = (a: string, b: string, what: string): void => {
  const x = results.get(a);
  const y = results.get(b);
  lines.push(
    x && y
      ? `- ${what}: **${(x.mean / y.mean).toFixed(2)}×** wall (${fmt(x.mean)} vs ${fmt(y.mean)}), **${(cpu(x) / cpu(y)).toFixed(2)}×** CPU (${fmt(cpu(x))} vs ${fmt(cpu(y))})`
      : `- ${what}: not run`,
  );
};
lines.push('', 'Ratios (pkg ÷ baseline, same run; below 1 means pkg is faster):');
ratio(
  'install-pkg-repo',
  'install-pacman',
  'install from the repository (download, verify, extract, generation) vs pacman -U of local files',
);
ratio('install-pkg-repo', 'install-dpkg', 'install from the repository vs dpkg -i of local files');
ratio('install-pkg-files', 'install-pacman', 'install of local .swpkg files vs pacman -U');
ratio('install-pkg-files', 'install-dpkg', 'install of local .swpkg files vs dpkg -i');
ratio('install-large-pkg', 'install-large-raw', 'one large package from a loopback server vs curl | tee >(sha256sum) | tar -xz');
ratio('pkg-version-bundle', 'node-e-0', 'pkg --version (bundle) vs node -e 0');
ratio('pkg-version-dist', 'node-e-0', 'pkg --version (tsc build) vs node -e 0');
const rss = join(dir, 'install-large-pkg.maxrss-kib');
if (existsSync(rss)) {
  const kib = Number(readFileSync(rss, 'utf8').trim());
  lines.push(`- peak RSS of pkg installing the large package: **${(kib / 1024).toFixed(1)} MiB** (limit 150 MiB)`);
}
for (const id of ['catalog-update-10k', 'catalog-resolve-10k', 'catalog-search-10k']) {
  const r = results.get(id);
  lines.push(`- ${id}: ${r ? `**${(r.mean * 1000).toFixed(0)} ms** (process start included)` : 'not run'}`);
}
process.stdout.write(lines.join('\n') + '\n');
