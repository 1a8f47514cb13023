/**
 * `swpkg pack` with zstd against gzip over the same corpus packages, in one process, in turn
 * (package by package: gzip then zstd, so machine load falls on both alike). Prints the CPU time
 * (user + sys of the whole process, zlib's threads included) and bytes each way, and the ratio.
 *
 *   node pack-compare.mjs --corpus DIR/small [--n 200] [--out DIR]
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { packPackage, type PackageMeta } from '../../catalog/index.js';
import { arg } from '../lib/argv.js';

const corpus = arg('corpus');
const n = Number(arg('n', '200'));
const out = arg('out', join(tmpdir(), `pack-compare-${process.pid}`));
await mkdir(out, { recursive: true });
const names = (await readdir(join(corpus, 'src'))).sort().slice(0, n);
const total = { gzip: { cpu: 0, bytes: 0 }, zstd: { cpu: 0, bytes: 0 } };
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
for (const name of names) {
  const m = JSON.parse(await readFile(join(corpus, 'src', name, 'manifest.json'), 'utf8')) as { name: string; version: string };
  const meta: PackageMeta = { name: m.name, version: m.version, arch: 'any', abi: 'linux-musl-static', summary: name, license: 'MIT' };
  for (const compression of ['gzip', 'zstd'] as const) {
    const file = join(out, `${name}.${compression}.swpkg`);
    const t = cpu();
    const r = await packPackage({ dir: join(corpus, 'src', name, 'payload'), meta, out: file, sourceDateEpoch: 1704067200, compression });
    total[compression].cpu += cpu() - t;
    total[compression].bytes += r.size;
    await rm(file);
  }
}
await rm(out, { recursive: true, force: true });
const f = (x: number): string => x.toFixed(2);
process.stdout.write(
  `${names.length} packages: gzip ${f(total.gzip.cpu)} s CPU, ${total.gzip.bytes} bytes; zstd ${f(total.zstd.cpu)} s CPU, ${total.zstd.bytes} bytes\n` +
    `zstd / gzip: ${f(total.zstd.cpu / total.gzip.cpu)}x CPU, ${(total.zstd.bytes / total.gzip.bytes).toFixed(3)}x bytes\n`,
);
