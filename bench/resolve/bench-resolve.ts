/**
 * Resolver benchmark: resolves over the synthetic 10 000-package catalog
 * (test/unit/resolver/synthetic-catalog.ts) and prints milliseconds per
 * scenario (median of the runs: wall clock and process CPU time) with the
 * search steps each took.
 *
 * Run (Node cannot load the .ts sources directly, so bundle first):
 *   npx esbuild bench/resolve/bench-resolve.ts --bundle --platform=node --format=esm \
 *     --outfile=node_modules/.cache/bench/bench-resolve.mjs && npx node node_modules/.cache/bench/bench-resolve.mjs [RUNS]
 */
import { SwpkgError } from '../../catalog/errors.js';
import { resolve, type InstalledPackage, type ResolveRequest } from '../../catalog/resolver.js';
import { pkgName, syntheticCatalog } from '../../test/unit/resolver/synthetic-catalog.js';

const runs = Number(process.argv[2] ?? 5);
const available = syntheticCatalog({ names: 2500 });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Wall time, and this process's CPU time, which a busy shared machine disturbs less. */
function measure(label: string, make: () => ResolveRequest): void {
  const wall: number[] = [];
  const cpu: number[] = [];
  let outcome = '';
  for (let i = 0; i < runs; i++) {
    const req = make();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      const plan = resolve(req);
      outcome = `${plan.final.length} packages, ${plan.steps.length} steps, ${plan.searchSteps} search steps`;
    } catch (e) {
      if (!(e instanceof SwpkgError)) throw e;
      outcome = `${e.code} after ${String(e.details['searchSteps'])} search steps`;
    }
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  process.stdout.write(
    `${label.padEnd(44)} ${median(wall).toFixed(1).padStart(8)} ms wall ${median(cpu).toFixed(1).padStart(8)} ms cpu  (${outcome})\n`,
  );
}

process.stdout.write(`resolver over ${available.length} candidates, median of ${runs} runs\n`);
measure('install one leaf package', () => ({ available, installed: [], install: [{ name: pkgName(0) }] }));
measure('install a mid package (closure ~100)', () => ({ available, installed: [], install: [{ name: pkgName(500) }] }));
measure('install the top package (closure ~1500)', () => ({ available, installed: [], install: [{ name: pkgName(2499) }] }));
// An old installed set: the same closure resolved while only 1.x versions were published.
const old = resolve({ available: available.filter((c) => c.version.startsWith('1.')), installed: [], install: [{ name: pkgName(1999) }] });
const installed: InstalledPackage[] = old.final.map((p) => ({ ...p }));
measure(`upgrade all (${installed.length} installed, all 1.x)`, () => ({ available, installed, upgrade: 'all' }));
measure('install unsatisfiable (deep missing name)', () => ({
  available: [
    ...available,
    { name: 'top', version: '1.0.0', depends: { [pkgName(2499)]: '*', 'zz-missing': '*' }, provides: [], conflicts: [] },
  ],
  installed: [],
  install: [{ name: 'top' }],
}));
