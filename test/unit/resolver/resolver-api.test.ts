import { describe, expect, it } from 'vitest';
import type { SwpkgError } from '../../../catalog/errors.js';
import { didYouMean, findReverseDependencies, orphans, parseRequirement, resolve, type Candidate } from '../../../catalog/resolver.js';
import { candidate, installedPkg } from './resolver-helpers.js';
import { thrown } from '../../helpers/failure.js';

describe('findReverseDependencies', () => {
  const installed = [
    installedPkg({ name: 'app', version: '1.0.0', depends: { lib: '^1.0.0', sh: '*' }, explicit: true }),
    installedPkg({ name: 'tool', version: '1.0.0', depends: { lib: '*' }, explicit: true }),
    installedPkg({ name: 'lib', version: '1.2.0' }),
    installedPkg({ name: 'busybox', version: '1.36.0', provides: ['sh'] }),
    installedPkg({ name: 'dash', version: '0.5.12', provides: ['sh'] }),
    installedPkg({ name: 'mailer', version: '1.0.0', depends: { mta: '^2.0.0' }, explicit: true }),
    installedPkg({ name: 'postfix', version: '3.7.0', provides: ['mta@2.1.0'] }),
  ];

  it('names every installed package that only the removed one satisfies', () => {
    expect(findReverseDependencies(installed, 'lib')).toEqual(['app', 'tool']);
  });

  it('counts a versioned provide as satisfying', () => {
    expect(findReverseDependencies(installed, 'postfix')).toEqual(['mailer']);
  });

  it('does not count a dependency another installed provider still meets', () => {
    expect(findReverseDependencies(installed, 'busybox')).toEqual([]);
    expect(findReverseDependencies(installed, ['busybox', 'dash'])).toEqual(['app']);
  });

  it('leaves out dependents that are removed together', () => {
    expect(findReverseDependencies(installed, ['lib', 'tool'])).toEqual(['app']);
  });

  it('is empty for a package nothing needs', () => {
    expect(findReverseDependencies(installed, 'app')).toEqual([]);
  });
});

describe('orphans', () => {
  const installed = [
    installedPkg({ name: 'app', version: '1.0.0', depends: { lib: '*', mta: '*' }, explicit: true }),
    installedPkg({ name: 'lib', version: '1.0.0', depends: { base: '^1.0.0' } }),
    installedPkg({ name: 'base', version: '1.1.0' }),
    installedPkg({ name: 'postfix', version: '3.7.0', provides: ['mta'] }),
    installedPkg({ name: 'old', version: '1.0.0', depends: { oldlib: '*' } }),
    installedPkg({ name: 'oldlib', version: '1.0.0' }),
    installedPkg({ name: 'a', version: '1.0.0', depends: { b: '*' } }),
    installedPkg({ name: 'b', version: '1.0.0', depends: { a: '*' } }),
  ];

  it('lists what no world name needs, through provides and chains', () => {
    expect(orphans(installed, ['app'])).toEqual(['a', 'b', 'old', 'oldlib']);
  });

  it('keeps a dependency cycle reachable from the world', () => {
    expect(orphans(installed, ['app', 'a'])).toEqual(['old', 'oldlib']);
  });

  it('is everything when the world is empty', () => {
    expect(orphans(installed, [])).toEqual(installed.map((p) => p.name).sort());
  });

  it('does not keep a dependency whose installed version is outside the range', () => {
    const set = [
      installedPkg({ name: 'x', version: '1.0.0', depends: { y: '^2.0.0' }, explicit: true }),
      installedPkg({ name: 'y', version: '1.0.0' }),
    ];
    expect(orphans(set, ['x'])).toEqual(['y']);
  });
});

describe('parseRequirement', () => {
  it('parses a name and an optional range', () => {
    expect(parseRequirement('curl')).toEqual({ name: 'curl', range: '*' });
    expect(parseRequirement('curl@^8.0.0')).toEqual({ name: 'curl', range: '^8.0.0' });
    expect(parseRequirement('lua@>=5.4 <6')).toEqual({ name: 'lua', range: '>=5.4 <6' });
  });

  it('refuses a bad name or range with their codes', () => {
    expect(thrown(() => parseRequirement('Curl')).code).toBe('E_USAGE');
    expect(thrown(() => parseRequirement('@^1')).code).toBe('E_USAGE');
    expect(thrown(() => parseRequirement('curl@banana')).code).toBe('E_INVALID_RANGE');
  });
});

describe('didYouMean', () => {
  it('suggests the closest name within a small distance', () => {
    expect(didYouMean('foo', ['food', 'bar'])).toBe('food');
    expect(didYouMean('ngnix', ['nginx', 'apache'])).toBe('nginx');
    expect(didYouMean('zzz', ['nginx', 'apache'])).toBeUndefined();
  });
});

describe('resolve', () => {
  it('hands back the caller’s own catalog objects, extra fields included', () => {
    interface RepoCandidate extends Candidate {
      sha256: string;
      path: string;
    }
    const available: RepoCandidate[] = [
      {
        ...candidate({ name: 'hello', version: '1.0.0', repo: 'main' }),
        sha256: 'a'.repeat(64),
        path: 'packages/hello-1.0.0-x86_64.swpkg',
      },
    ];
    const plan = resolve({ available, installed: [], install: [{ name: 'hello' }] });
    expect(plan.steps[0]?.candidate).toBe(available[0]);
    expect(plan.steps[0]?.candidate?.path).toBe('packages/hello-1.0.0-x86_64.swpkg');
    expect(plan.final[0]?.candidate).toBe(available[0]);
  });

  it('gives kept packages their installed record and no candidate', () => {
    const installed = [installedPkg({ name: 'foo', version: '1.0.0', explicit: true })];
    const plan = resolve({
      available: [candidate({ name: 'foo', version: '1.0.0' }), candidate({ name: 'bar', version: '1.0.0' })],
      installed,
      install: [{ name: 'bar' }],
    });
    const foo = plan.final.find((p) => p.name === 'foo');
    expect(foo?.installed).toBe(installed[0]);
    expect(foo?.candidate).toBeUndefined();
  });

  it('keeps a package that left the catalog while it is still installed', () => {
    const installed = [installedPkg({ name: 'gone', version: '1.0.0', explicit: true })];
    const plan = resolve({ available: [candidate({ name: 'new', version: '1.0.0' })], installed, install: [{ name: 'new' }] });
    expect(plan.final.map((p) => p.name)).toEqual(['gone', 'new']);
  });

  it('is a no-op with an empty request', () => {
    const installed = [installedPkg({ name: 'foo', version: '1.0.0', explicit: true })];
    const plan = resolve({ available: [candidate({ name: 'foo', version: '2.0.0' })], installed });
    expect(plan.steps).toEqual([]);
    expect(plan.world).toEqual(['foo']);
  });

  it('refuses malformed data with its code and leaves the input untouched', () => {
    const installed = [installedPkg({ name: 'foo', version: '1.0.0' }), installedPkg({ name: 'foo', version: '2.0.0' })];
    const snapshot = structuredClone(installed);
    expect(thrown(() => resolve({ available: [], installed })).code).toBe('E_STORE');
    expect(installed).toEqual(snapshot);
    const bad = [candidate({ name: 'foo', version: 'v1' })];
    expect(thrown(() => resolve({ available: bad, installed: [], install: [{ name: 'foo' }] })).code).toBe('E_INVALID_VERSION');
    const badRange = [candidate({ name: 'foo', version: '1.0.0', depends: { bar: 'not-a-range' } })];
    expect(thrown(() => resolve({ available: badRange, installed: [], install: [{ name: 'foo' }] })).code).toBe('E_INVALID_RANGE');
    expect(thrown(() => resolve({ available: [], installed: [], install: [{ name: 'Bad Name' }] })).code).toBe('E_USAGE');
    const one = [installedPkg({ name: 'foo', version: '1.0.0', explicit: true })];
    expect(thrown(() => resolve({ available: [], installed: one, install: [{ name: 'foo' }], remove: ['foo'] })).code).toBe('E_USAGE');
  });

  it('names the removal blockers in details and a hint that fixes it', () => {
    const installed = [
      installedPkg({ name: 'app', version: '1.0.0', depends: { lib: '*' }, explicit: true }),
      installedPkg({ name: 'lib', version: '1.0.0', explicit: true }),
    ];
    let err: SwpkgError | undefined;
    try {
      resolve({ available: [], installed, remove: ['lib'] });
    } catch (e) {
      err = e as SwpkgError;
    }
    expect(err?.code).toBe('E_NEEDED');
    expect(err?.details['dependents']).toEqual(['app']);
    expect(err?.hint).toContain('pkg remove lib app');
    // Removing both together is fine.
    const plan = resolve({ available: [], installed, remove: ['lib', 'app'] });
    expect(plan.final).toEqual([]);
    expect(plan.world).toEqual([]);
  });
});
