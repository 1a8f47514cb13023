/**
 * The search is checked against brute force on many small random universes:
 * whenever some installed set meets every requirement, resolve() must find
 * one (completeness: backjumping and learned nogoods must never cut a
 * solution away), and whatever it returns must be a valid set (soundness).
 */
import { describe, expect, it } from 'vitest';
import { SwpkgError } from '../../../catalog/errors.js';
import { resolve, type Candidate, type InstalledPackage, type Requirement, type ResolveRequest } from '../../../catalog/resolver.js';
import { inconsistencies, meets } from './resolver-helpers.js';
import { prng } from './synthetic-catalog.js';

const NAMES = ['a', 'b', 'c', 'd', 'e'];
const VIRTUALS = ['v', 'w'];
const VERSIONS = ['1.0.0', '1.1.0', '2.0.0'];
const RANGES = ['*', '^1.0.0', '^2.0.0', '>=1.1.0', '~1.0.0'];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

function universe(seed: number): { req: ResolveRequest; available: Candidate[] } {
  const rand = prng(seed);
  const available: Candidate[] = [];
  for (const name of NAMES) {
    const versions = VERSIONS.filter(() => rand() < 0.7);
    for (const version of versions) {
      const depends: Record<string, string> = {};
      const n = Math.floor(rand() * 3);
      for (let i = 0; i < n; i++) {
        const target = pick(rand, [...NAMES, ...VIRTUALS]);
        if (target !== name) depends[target] = pick(rand, RANGES);
      }
      const provides = rand() < 0.25 ? [rand() < 0.5 ? pick(rand, VIRTUALS) : `${pick(rand, VIRTUALS)}@${pick(rand, VERSIONS)}`] : [];
      const conflicts =
        rand() < 0.2 ? [rand() < 0.5 ? pick(rand, [...NAMES, ...VIRTUALS]) : `${pick(rand, NAMES)}@${pick(rand, RANGES)}`] : [];
      available.push({ name, version, depends, provides, conflicts });
    }
  }
  const installed: InstalledPackage[] = [];
  for (const name of NAMES) {
    const versions = available.filter((c) => c.name === name);
    if (versions.length > 0 && rand() < 0.3) installed.push({ ...pick(rand, versions), explicit: rand() < 0.6 });
  }
  const install: Requirement[] = [];
  const installs = 1 + Math.floor(rand() * 2);
  for (let i = 0; i < installs; i++) install.push({ name: pick(rand, [...NAMES, ...VIRTUALS]), range: pick(rand, RANGES) });
  const req: ResolveRequest = { available, installed, install };
  const explicit = installed.filter((p) => p.explicit && !install.some((r) => r.name === p.name));
  if (explicit.length > 0 && rand() < 0.2) req.remove = [pick(rand, explicit).name];
  if (installed.length > 0 && rand() < 0.3) req.upgrade = 'all';
  return { req, available };
}

/** Every assignment of absent-or-one-version to each name; true when one meets every rule. */
function bruteForceSolvable(req: ResolveRequest): boolean {
  const options = new Map<string, (Candidate | InstalledPackage | null)[]>();
  for (const name of NAMES) {
    const seen = new Map<string, Candidate | InstalledPackage>();
    for (const p of req.installed) if (p.name === name) seen.set(p.version, p);
    for (const c of req.available) if (c.name === name && !seen.has(c.version)) seen.set(c.version, c);
    options.set(name, [null, ...(req.remove?.includes(name) ? [] : [...seen.values()])]);
  }
  const world = req.installed.filter((p) => p.explicit && !req.remove?.includes(p.name)).map((p) => p.name);
  const chosen: (Candidate | InstalledPackage)[] = [];
  const walk = (i: number): boolean => {
    if (i === NAMES.length) {
      if (inconsistencies(chosen).length > 0) return false;
      if (!world.every((w) => chosen.some((p) => p.name === w))) return false;
      return (req.install ?? []).every((r) => chosen.some((p) => meets(p, r.name, r.range ?? '*')));
    }
    for (const o of options.get(NAMES[i]!)!) {
      if (o) chosen.push(o);
      if (walk(i + 1)) return true;
      if (o) chosen.pop();
    }
    return false;
  };
  return walk(0);
}

describe('resolver against brute force', { timeout: 30_000 }, () => {
  it('finds a valid set exactly when one exists (600 random universes)', () => {
    let solvable = 0;
    let unsolvable = 0;
    let refusedRemovals = 0;
    for (let seed = 1; seed <= 600; seed++) {
      const { req } = universe(seed);
      const expected = bruteForceSolvable(req);
      let plan;
      try {
        plan = resolve(req);
      } catch (e) {
        if (!(e instanceof SwpkgError)) throw e;
        // Removal refusal is policy (a staying package needs it), not unsolvability.
        if (e.code === 'E_NEEDED') {
          refusedRemovals++;
          continue;
        }
        expect(['E_RESOLVE', 'E_CONFLICT'], `seed ${seed}: ${e.message}`).toContain(e.code);
        expect(e.details['gaveUp'], `seed ${seed}`).toBe(false);
        expect((e.details['explanation'] as string[]).length, `seed ${seed}`).toBeGreaterThan(0);
        expect(expected, `seed ${seed}: resolve failed (${e.message}) but a solution exists`).toBe(false);
        unsolvable++;
        continue;
      }
      expect(expected, `seed ${seed}: resolve found a plan brute force says is impossible`).toBe(true);
      expect(inconsistencies(plan.final), `seed ${seed}`).toEqual([]);
      for (const r of req.install ?? [])
        expect(
          plan.final.some((p) => meets(p, r.name, r.range ?? '*')),
          `seed ${seed}: ${r.name}`,
        ).toBe(true);
      for (const name of req.remove ?? []) expect(plan.final.some((p) => p.name === name)).toBe(false);
      for (const p of req.installed.filter((x) => x.explicit && !req.remove?.includes(x.name))) {
        expect(plan.world, `seed ${seed}`).toContain(p.name);
      }
      solvable++;
    }
    // The generator must produce both outcomes in quantity, or the comparison proves little.
    expect(solvable).toBeGreaterThan(150);
    expect(unsolvable).toBeGreaterThan(100);
    expect(refusedRemovals).toBeLessThan(100);
  });

  it('keeps installed versions that still fit when not upgrading', () => {
    for (let seed = 1000; seed < 1300; seed++) {
      const { req } = universe(seed);
      delete req.upgrade;
      let plan;
      try {
        plan = resolve(req);
      } catch {
        continue;
      }
      for (const step of plan.steps) {
        if (step.action !== 'upgrade' && step.action !== 'downgrade') continue;
        // A changed version must be forced: the old one would break some requirement of the final set.
        const old = req.installed.find((p) => p.name === step.name)!;
        const others = plan.final.filter((p) => p.name !== step.name);
        const withOld = [...others, { ...old }];
        const requestBlocks = !(req.install ?? []).every((r) => withOld.some((p) => meets(p, r.name, r.range ?? '*')));
        expect(
          requestBlocks || inconsistencies(withOld).length > 0,
          `seed ${seed}: ${step.name} ${step.from} -> ${step.to} was not needed`,
        ).toBe(true);
      }
    }
  });
});
