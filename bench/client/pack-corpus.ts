/**
 * Packs the anchor benchmark corpus (../shared/bench/gen-corpus.mjs) as
 * .swpkg files and publishes them as a signed static web root, with the
 * same content the pacman and dpkg anchors install.
 *
 *   npx node bench/client/pack-corpus.ts --corpus DIR/small --out DIR [--jobs 2] [--compression zstd|gzip]
 *
 * Writes OUT/in/*.swpkg (signed with the repository's catalog key, so a
 * local-file install trusts them once the repository is added), OUT/www (the
 * web root) and OUT/repo.json ({name, fingerprint, names, packages, payloadBytes}).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, packPackage, type PackageMeta } from '../../catalog/index.js';
import { publishRepository } from '../../publishing/index.js';
import { arg } from '../lib/argv.js';

interface CorpusManifest {
  name: string;
  version: string;
  description: string;
  depends: string[];
}

const corpus = arg('corpus');
const out = arg('out');
const jobs = Number(arg('jobs', '2'));
const compressionArg = arg('compression', 'zstd');
if (compressionArg !== 'zstd' && compressionArg !== 'gzip') throw new Error('--compression is zstd or gzip');
const compression: 'zstd' | 'gzip' = compressionArg;
const key = generateKeyPair();
const inDir = join(out, 'in');
await mkdir(inDir, { recursive: true });

const names = (await readdir(join(corpus, 'src'))).sort();
let next = 0;
let payloadBytes = 0;
async function worker(): Promise<void> {
  while (next < names.length) {
    const name = names[next++]!;
    const m = JSON.parse(await readFile(join(corpus, 'src', name, 'manifest.json'), 'utf8')) as CorpusManifest;
    const meta: PackageMeta = {
      name: m.name,
      version: m.version,
      arch: 'any',
      abi: 'linux-musl-static',
      summary: m.description,
      license: 'MIT',
      depends: Object.fromEntries(m.depends.map((d) => [d, '*'])),
    };
    const r = await packPackage({
      dir: join(corpus, 'src', name, 'payload'),
      meta,
      out: join(inDir, `${m.name}-${m.version}-any.swpkg`),
      key,
      sourceDateEpoch: 1704067200,
      compression,
    });
    payloadBytes += r.manifest.installedSize;
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
const r = await publishRepository({ packagesDir: inDir, out: join(out, 'www'), key, name: 'swbench', expiresIn: 30 * 86400 });
await writeFile(
  join(out, 'repo.json'),
  JSON.stringify(
    { name: r.name, fingerprint: r.rootFingerprint, names: r.packages.map((p) => p.name), packages: r.packages.length, payloadBytes },
    null,
    2,
  ) + '\n',
);
process.stdout.write(
  `packed ${r.packages.length} packages (${payloadBytes} payload bytes); catalog v${r.catalogVersion}; fingerprint ${r.rootFingerprint}\n`,
);
