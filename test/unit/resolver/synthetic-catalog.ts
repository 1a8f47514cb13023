/**
 * A large, deterministic, solvable catalog for scale tests and the resolver
 * benchmark. Shape: `names` packages p00000…, each in versions 1.0.0, 1.1.0,
 * 2.0.0 and 2.1.0; package i depends on up to three lower-numbered packages
 * (so the closure of the last one is large), some through virtual names; every
 * 50th package's 2.1.0 needs a name nobody provides and every 131st package's
 * 2.x conflicts with 2.1.0 of a neighbour, so the search must step back to
 * older versions. Every package at 2.0.0 is a valid installed set, so a
 * request for any package is solvable.
 */
import type { Candidate } from '../../../catalog/resolver.js';

const VERSIONS = ['1.0.0', '1.1.0', '2.0.0', '2.1.0'] as const;

/** mulberry32: a tiny seeded PRNG, so the catalog is the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pkgName(i: number): string {
  return `p${String(i).padStart(5, '0')}`;
}

export function syntheticCatalog(o: { names: number; seed?: number }): Candidate[] {
  const rand = prng(o.seed ?? 1);
  const out: Candidate[] = [];
  for (let i = 0; i < o.names; i++) {
    const name = pkgName(i);
    const depCount = i === 0 ? 0 : Math.min(i, 1 + (i % 3));
    const targets = new Set<number>();
    for (let k = 0; k < depCount; k++) targets.add(Math.max(0, i - 1 - Math.floor(rand() * Math.min(i, 200))));
    for (const version of VERSIONS) {
      const major = version[0];
      const depends: Record<string, string> = {};
      for (const t of targets) {
        // Every tenth package provides a virtual name; depend on that instead of the real one sometimes.
        const target = t % 10 === 0 && rand() < 0.5 ? `virt-${t}` : pkgName(t);
        depends[target] = major === '1' ? (rand() < 0.5 ? '^1.0.0' : '*') : rand() < 0.5 ? '^2.0.0' : '>=1.1.0';
      }
      if (version === '2.1.0' && i % 50 === 49) depends['nobody-provides-this'] = '*';
      const provides = i % 10 === 0 ? [`virt-${i}@${version}`] : [];
      const conflicts = i % 131 === 130 && major === '2' ? [`${pkgName(i - 3)}@>=2.1.0`] : [];
      out.push({ name, version, depends, provides, conflicts, repo: 'synthetic' });
    }
  }
  return out;
}
