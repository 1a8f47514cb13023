/**
 * Signing and verifying a Debian-sized catalog (default 65 000 entries), one
 * step per process so each reports its own time and peak RSS. The same file
 * is bundled against the current `catalog/` and against an older commit's
 * (bench-catalog-65k.sh), so it speaks both formats: the DSSE envelope and
 * the first format ({signed, signatures} over canonical JSON).
 *
 *   node catalog-65k.mjs sign   --dir DIR [--n 65000]   writes DIR/catalog.json, DIR/root.json
 *   node catalog-65k.mjs verify --dir DIR               reads them back through verifyCatalog
 *
 * Prints one JSON line: {step, format, packages, bytes, seconds, maxRssKiB}.
 *
 * The package set is Debian-like and deterministic (xorshift32): 65 000
 * names, each with 0-12 dependencies (mean about 3.5), chosen with a strong
 * preference for a small core of libraries (as libc6 and friends are for
 * Debian), caret ranges, a few provides and conflicts, summaries of 40-80
 * characters.
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as core from '../../catalog/index.js';

// Both formats' entry points, looked up at run time (the older commit lacks the envelope functions;
// buildCatalog has since moved from catalog/ to publishing/, which older commits do not have).
const publishing: object = await import('../../publishing/index.js').catch(() => ({}));
const api = { ...core, ...publishing } as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>;
const call = (name: string, ...args: unknown[]): unknown => {
  const f = api[name];
  if (!f) throw new Error(`catalog/ has no ${name}`);
  return f(...args);
};
const envelopes = typeof api['encodeEnvelope'] === 'function';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

let state = 2463534242;
function rand(k: number): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state % k;
}

const WORDS = [
  'library',
  'tools',
  'data',
  'utility',
  'bindings',
  'runtime',
  'documentation',
  'plugin',
  'daemon',
  'headers',
  'client',
  'server',
];

export function debianLikePackages(n: number): core.CatalogPackage[] {
  const name = (i: number): string => `deb-${String(i).padStart(5, '0')}`;
  const out: core.CatalogPackage[] = [];
  for (let i = 0; i < n; i++) {
    const depends: Record<string, string> = {};
    // Mostly few dependencies, sometimes many: 0-12, skewed low.
    const count = i === 0 ? 0 : Math.min(i, Math.floor((rand(1000) / 1000) ** 2 * 13));
    for (let d = 0; d < count; d++) {
      // Half the edges go to a core of 200 packages, the rest anywhere earlier (an acyclic graph).
      const to = rand(2) === 0 ? rand(Math.min(i, 200)) : rand(i);
      depends[name(to)] = `^${1 + (to % 3)}.0.0`;
    }
    const major = 1 + (i % 3);
    const version = `${major}.${rand(20)}.${rand(50)}`;
    const summary = `${WORDS[rand(WORDS.length)]} ${WORDS[rand(WORDS.length)]} for synthetic package ${i}${' of the catalog benchmark'.slice(0, rand(26))}`;
    out.push({
      name: name(i),
      version,
      arch: 'x86_64',
      abi: 'linux-musl-static',
      depends,
      provides: rand(20) === 0 ? [`virtual-${rand(500)}`] : [],
      conflicts: rand(50) === 0 ? [name(rand(n))] : [],
      size: 2_000 + rand(2_000_000),
      installedSize: 8_000 + rand(8_000_000),
      sha256: createHash('sha256').update(`${i}@${version}`).digest('hex'),
      path: `packages/${name(i)}-${version}-x86_64.swpkg`,
      summary,
      license: rand(3) === 0 ? 'GPL-2.0-or-later' : 'MIT',
    });
  }
  return out;
}

function report(step: string, packages: number, bytes: number, seconds: number): void {
  const line = { step, format: envelopes ? 'dsse' : 'canonical-json', packages, bytes, seconds, maxRssKiB: process.resourceUsage().maxRSS };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const step = process.argv[2];
const dir = arg('dir');
const seed = createHash('sha256').update('bench/catalog/catalog-65k').digest();
const key = call('keyPairFromSeed', new Uint8Array(seed)) as core.KeyPair;
const now = new Date('2026-12-01T00:00:00Z');

if (step === 'sign') {
  const n = Number(arg('n', '65000'));
  const packages = debianLikePackages(n);
  const root = call('createRoot', { rootKeys: [key], catalogKeys: [key], expires: new Date(now.getTime() + 365 * 86400_000) });
  await mkdir(dir, { recursive: true });
  // Timed: what `swpkg repo publish` does after indexing: build, sign, serialise, write.
  const t0 = performance.now();
  const signed = call('buildCatalog', { repo: 'bench', packages, now, expiresIn: 30 * 86400 }) as {
    compatibility: { minClientFormat: number };
  };
  // Each tree asks for its own client format (2 since zstd packages); pinned, both trees sign the same bytes.
  signed.compatibility.minClientFormat = 1;
  const doc = call('signCatalog', signed, [key]);
  const bytes = envelopes ? (call('encodeEnvelope', doc) as Buffer) : Buffer.from(JSON.stringify(doc, null, 2) + '\n');
  await writeFile(join(dir, 'catalog.json'), bytes);
  const seconds = (performance.now() - t0) / 1000;
  await writeFile(join(dir, 'root.json'), envelopes ? (call('encodeEnvelope', root) as Buffer) : JSON.stringify(root));
  report('sign', n, bytes.length, seconds);
} else if (step === 'verify') {
  const rootBytes = await readFile(join(dir, 'root.json'));
  const root = envelopes ? call('parseRoot', rootBytes, 'root.json') : call('parseRoot', JSON.parse(rootBytes.toString()), 'root.json');
  // Timed: what `pkg update` does with the bytes it downloaded.
  const t0 = performance.now();
  const bytes = await readFile(join(dir, 'catalog.json'));
  const doc = call('verifyCatalog', bytes, { root, now, client: null, maxBytes: 256 * 1024 * 1024 }) as core.CatalogDocument;
  const seconds = (performance.now() - t0) / 1000;
  report('verify', doc.signed.packages.length, bytes.length, seconds);
} else {
  throw new Error('usage: catalog-65k.mjs sign|verify --dir DIR [--n N]');
}
