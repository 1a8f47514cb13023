import { describe, expect, it } from 'vitest';
import { parseRecipe, assertTarget, parseDependency, type Recipe } from '../../../ports/index.js';
import type { SwpkgError } from '../../../catalog/index.js';
import { thrown } from '../../helpers/failure.js';

const SHA = 'a'.repeat(64);

function valid(): Record<string, unknown> {
  return {
    name: 'hello',
    version: '1.2.3',
    summary: 'says hello',
    license: 'MIT',
    sourceDateEpoch: 1700000000,
    sources: [
      { url: 'https://example.invalid/hello-1.2.3.tar.gz', sha256: SHA, debian: { package: 'hello', file: 'hello_1.2.3.orig.tar.gz' } },
    ],
    targets: ['x86_64-linux-musl'],
    build: { system: 'make' },
    smoke: 'smoke.sh',
  };
}

function codeOf(fn: () => unknown): { code: string; field: unknown } {
  const e = thrown(fn);
  return { code: e.code, field: e.details['field'] };
}

describe('parseRecipe', () => {
  it('accepts a minimal recipe and fills defaults', () => {
    const r: Recipe = parseRecipe(valid(), 'hello/recipe.json');
    expect(r.upstreamVersion).toBe('1.2.3');
    expect(r.sources[0]!.strip).toBe(1);
    expect(r.patches).toEqual([]);
    expect(r.depends).toEqual([]);
    expect(r.build.configureArgs).toEqual([]);
  });

  // One row per required field: removing it is E_INVALID_RECIPE naming the field.
  const required = ['name', 'version', 'summary', 'license', 'sourceDateEpoch', 'sources', 'targets', 'build', 'smoke'];
  for (const field of required) {
    it(`refuses a recipe without ${field}`, () => {
      const v = valid();
      delete v[field];
      const { code, field: f } = codeOf(() => parseRecipe(v, 'x'));
      expect(code).toBe('E_INVALID_RECIPE');
      expect(String(f)).toContain(field);
    });
  }

  // Unknown fields at every level: a typo must never drop a pin silently.
  const unknown: [string, (v: Record<string, unknown>) => void, string][] = [
    ['top level', (v) => (v['sha256'] = SHA), 'sha256'],
    ['a source', (v) => ((v['sources'] as Record<string, unknown>[])[0]!['sah256'] = SHA), 'sources[0].sah256'],
    [
      'debian',
      (v) => (((v['sources'] as Record<string, unknown>[])[0]!['debian'] as Record<string, unknown>)['version'] = '1'),
      'sources[0].debian.version',
    ],
    ['build', (v) => ((v['build'] as Record<string, unknown>)['configure'] = []), 'build.configure'],
  ];
  for (const [where, mutate, field] of unknown) {
    it(`refuses an unknown field in ${where}`, () => {
      const v = valid();
      mutate(v);
      const r = codeOf(() => parseRecipe(v, 'x'));
      expect(r).toEqual({ code: 'E_INVALID_RECIPE', field });
    });
  }

  const badValues: [string, (v: Record<string, unknown>) => void, string][] = [
    ['a short sha256', (v) => ((v['sources'] as Record<string, unknown>[])[0]!['sha256'] = 'abc'), 'sources[0].sha256'],
    ['an upper-case sha256', (v) => ((v['sources'] as Record<string, unknown>[])[0]!['sha256'] = 'A'.repeat(64)), 'sources[0].sha256'],
    ['a non-http url', (v) => ((v['sources'] as Record<string, unknown>[])[0]!['url'] = 'ftp://x/y'), 'sources[0].url'],
    ['a loose version', (v) => (v['version'] = '2026b'), 'version'],
    ['a name with capitals', (v) => (v['name'] = 'Hello'), 'name'],
    ['an unknown build system', (v) => ((v['build'] as Record<string, unknown>)['system'] = 'meson'), 'build.system'],
    ['a custom build without script', (v) => (v['build'] = { system: 'custom' }), 'build.script'],
    ['a script for a make build', (v) => (v['build'] = { system: 'make', script: 'b.sh' }), 'build.script'],
    ['a patch climbing out of the folder', (v) => (v['patches'] = ['../evil.patch']), 'patches[0]'],
    ['an epoch before 1980', (v) => (v['sourceDateEpoch'] = 0), 'sourceDateEpoch'],
    ['an unknown target', (v) => (v['targets'] = ['riscv64-linux-musl']), 'targets[0]'],
    ['a bad dependency range', (v) => (v['depends'] = ['zlib@not a range']), 'depends[0]'],
    ['a self dependency', (v) => (v['buildDepends'] = ['hello']), 'buildDepends'],
    ['a duplicated dependency', (v) => (v['buildDepends'] = ['zlib', 'zlib']), 'buildDepends'],
    ['an arch other than any', (v) => (v['arch'] = 'x86_64'), 'arch'],
    ['a lower-case env name', (v) => (v['build'] = { system: 'make', env: { path: '/x' } }), 'build.env.path'],
  ];
  for (const [what, mutate, field] of badValues) {
    it(`refuses ${what}`, () => {
      const v = valid();
      mutate(v);
      expect(codeOf(() => parseRecipe(v, 'x'))).toEqual({ code: 'E_INVALID_RECIPE', field });
    });
  }

  it('refuses a recipe that is not an object', () => {
    expect(codeOf(() => parseRecipe([], 'x')).code).toBe('E_INVALID_RECIPE');
    expect(codeOf(() => parseRecipe(null, 'x')).code).toBe('E_INVALID_RECIPE');
  });
});

describe('targets and dependencies', () => {
  it('refuses a target the recipe does not list, naming the ones it does', () => {
    const r = parseRecipe(valid(), 'x');
    expect(assertTarget(r, 'x86_64-linux-musl')).toBe('x86_64-linux-musl');
    try {
      assertTarget(r, 'aarch64-linux-musl');
      throw new Error('expected an error');
    } catch (e) {
      expect((e as SwpkgError).code).toBe('E_UNSUPPORTED_TARGET');
      expect((e as SwpkgError).details['target']).toBe('aarch64-linux-musl');
    }
  });

  it('splits name@range with * as the default range', () => {
    expect(parseDependency('zlib')).toEqual({ name: 'zlib', range: '*' });
    expect(parseDependency('ca-certificates@>=20230311.0.0')).toEqual({ name: 'ca-certificates', range: '>=20230311.0.0' });
  });
});
