import { describe, expect, it } from 'vitest';
import { checkDependencyClosure, unmetDependencies, type ClosurePackage } from '../../../catalog/index.js';

function p(name: string, version: string, extra: Partial<ClosurePackage> = {}): ClosurePackage {
  return { name, version, arch: 'x86_64', depends: {}, provides: [], ...extra };
}

describe('dependency closure of a set to publish', () => {
  it.each<[string, ClosurePackage[], string[]]>([
    ['met by name and range', [p('curl', '8.0.0', { depends: { zlib: '^1.2.0' } }), p('zlib', '1.3.0')], []],
    ['no such name', [p('curl', '8.0.0', { depends: { zlib: '*' } })], ['curl@8.0.0 requires zlib@*']],
    [
      'only a version outside the range',
      [p('curl', '8.0.0', { depends: { zlib: '^2.0.0' } }), p('zlib', '1.3.0')],
      ['curl@8.0.0 requires zlib@^2.0.0'],
    ],
    ['a bare provide meets *', [p('app', '1.0.0', { depends: { sh: '*' } }), p('busybox', '1.36.0', { provides: ['sh'] })], []],
    [
      'a bare provide does not meet a range',
      [p('app', '1.0.0', { depends: { sh: '>=1' } }), p('busybox', '1.36.0', { provides: ['sh'] })],
      ['app@1.0.0 requires sh@>=1'],
    ],
    [
      'a versioned provide meets its range',
      [p('mailer', '1.0.0', { depends: { mta: '^2.0.0' } }), p('postfix', '3.7.0', { provides: ['mta@2.1.0'] })],
      [],
    ],
    [
      'another arch does not count',
      [p('app', '1.0.0', { depends: { lib: '*' } }), p('lib', '1.0.0', { arch: 'aarch64' })],
      ['app@1.0.0 requires lib@*'],
    ],
    ['arch any counts for every arch', [p('app', '1.0.0', { depends: { data: '*' } }), p('data', '1.0.0', { arch: 'any' })], []],
  ])('%s', (_why, set, unmet) => {
    expect(unmetDependencies(set).map((u) => `${u.package} requires ${u.requires}`)).toEqual(unmet);
  });

  it('refuses with E_RESOLVE listing each, or returns the list when allowed', () => {
    const set = [p('b', '1.0.0', { depends: { y: '*' } }), p('a', '1.0.0', { depends: { x: '^1', y: '*' } })];
    expect(() => checkDependencyClosure(set, false)).toThrow(expect.objectContaining({ code: 'E_RESOLVE' }));
    try {
      checkDependencyClosure(set, false);
    } catch (e) {
      expect((e as { details: { unmet: unknown[] } }).details.unmet).toHaveLength(3);
    }
    expect(checkDependencyClosure(set, true).map((u) => `${u.package} ${u.requires}`)).toEqual([
      'a@1.0.0 x@^1',
      'a@1.0.0 y@*',
      'b@1.0.0 y@*',
    ]);
  });
});
