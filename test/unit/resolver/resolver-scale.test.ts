import { describe, expect, it } from 'vitest';
import { SwpkgError } from '../../../catalog/errors.js';
import { resolve } from '../../../catalog/resolver.js';
import { planProblems } from './resolver-helpers.js';
import { pkgName, syntheticCatalog } from './synthetic-catalog.js';

// Seconds at most on a loaded 2-core machine; the bound only keeps a regression from hanging the suite.
describe('resolver at catalog scale', { timeout: 30_000 }, () => {
  const available = syntheticCatalog({ names: 2500 });

  it('resolves one install over a 10 000-package catalog', () => {
    expect(available).toHaveLength(10_000);
    const plan = resolve({ available, installed: [], install: [{ name: pkgName(2499) }] });
    expect(planProblems(plan, [])).toEqual([]);
    expect(plan.world).toEqual([pkgName(2499)]);
    // The closure of the last package is large: the test exercises the search, not a trivial lookup.
    expect(plan.final.length).toBeGreaterThan(500);
    expect(plan.steps.every((s) => s.action === 'install')).toBe(true);
    // The 2.1.0 of every 50th package needs a missing name, so the search settled below it.
    const p49 = plan.final.find((p) => p.name === pkgName(49));
    if (p49) expect(p49.version).not.toBe('2.1.0');
  });

  it('upgrades everything over the same catalog from an old installed set', () => {
    // The installed set as it was when only 1.x versions were published.
    const old = resolve({
      available: available.filter((c) => c.version.startsWith('1.')),
      installed: [],
      install: [{ name: pkgName(1999) }],
    });
    const installed = old.final.map((p) => ({ ...p }));
    expect(installed.every((p) => p.version.startsWith('1.'))).toBe(true);
    const plan = resolve({ available, installed, upgrade: 'all' });
    expect(planProblems(plan, installed)).toEqual([]);
    expect(plan.final.find((p) => p.name === pkgName(1999))?.version.startsWith('2.')).toBe(true);
    expect(plan.steps.filter((s) => s.action === 'upgrade').length).toBeGreaterThan(100);
  });

  it('explains a failure deep in a large catalog without searching forever', () => {
    const broken = [
      ...available,
      { name: 'top', version: '1.0.0', depends: { [pkgName(2499)]: '*', 'deep-missing': '^1.0.0' }, provides: [], conflicts: [] },
    ];
    let caught: unknown;
    try {
      resolve({ available: broken, installed: [], install: [{ name: 'top' }] });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SwpkgError);
    const err = caught as SwpkgError;
    expect(err.code).toBe('E_RESOLVE');
    expect(err.details['gaveUp']).toBe(false);
    expect(
      (err.details['explanation'] as string[]).some((l) =>
        l.includes('top@1.0.0 requires deep-missing@^1.0.0, but nothing provides "deep-missing"'),
      ),
    ).toBe(true);
  });
});
