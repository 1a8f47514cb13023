/**
 * Golden explanations (STYLE 18): the whole text a person reads for a resolver refusal, so a
 * repeated message, a wrong cause or raw JSON cannot hide behind a right keyword.
 */
import { describe, expect, it } from 'vitest';
import { resolve, SwpkgError, type ResolveRequest } from '../../../catalog/index.js';
import { errorEnvelope, renderError } from '../../../edge/index.js';
import { candidate, installedPkg } from '../resolver/resolver-helpers.js';

function refusal(req: Partial<ResolveRequest>): SwpkgError {
  try {
    resolve({ available: [], installed: [], ...req });
  } catch (e) {
    if (e instanceof SwpkgError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('resolver explanations on a terminal', () => {
  it('one missing name: the message says it once, no raw problem records', () => {
    const e = refusal({ available: [candidate({ name: 'hello', version: '1.0.0' })], install: [{ name: 'helo' }] });
    expect(renderError(e)).toBe(
      [
        'error E_RESOLVE: cannot resolve: nothing provides "helo" (no package or provides named helo; did you mean "hello"?)',
        '  fix: check the name (pkg search TERM) and refresh the catalogs (pkg update)',
        '',
      ].join('\n'),
    );
  });

  it('several problems: the first in the message, the others once each under why', () => {
    const e = refusal({
      available: [
        candidate({ name: 'app', version: '2.0.0', depends: { ssl: '^3.0.0' } }),
        candidate({ name: 'app', version: '1.0.0', conflicts: ['old'] }),
        candidate({ name: 'ssl', version: '1.1.1' }),
        candidate({ name: 'old', version: '1.0.0' }),
      ],
      installed: [installedPkg({ name: 'old', version: '1.0.0', explicit: true })],
      install: [{ name: 'app' }],
    });
    expect(renderError(e)).toBe(
      [
        'error E_RESOLVE: cannot resolve: requested app, but app@1.0.0 conflicts with old@1.0.0 (installed) (and 1 more problem)',
        '  fix: ask for other versions (NAME@RANGE), refresh the catalogs (pkg update), or remove what holds an old version',
        '  why:',
        '    app@2.0.0 requires ssl@^3.0.0, but the only available ssl versions are 1.1.1 (does not satisfy ^3.0.0)',
        '',
      ].join('\n'),
    );
  });

  it('E_NEEDED lists who needs what', () => {
    const e = refusal({
      installed: [
        installedPkg({ name: 'app', version: '1.0.0', depends: { lib: '^1.0.0' }, explicit: true }),
        installedPkg({ name: 'lib', version: '1.2.0', explicit: true }),
      ],
      remove: ['lib'],
    });
    expect(renderError(e)).toBe(
      [
        'error E_NEEDED: cannot remove lib: needed by app',
        '  fix: remove the dependents as well (pkg remove lib app) or keep lib',
        '  why:',
        '    app@1.0.0 requires lib@^1.0.0, which only lib provides',
        '  remove:',
        '    lib',
        '  dependents:',
        '    app',
        '',
      ].join('\n'),
    );
  });

  it('under --json the structured explanation passes through whole', () => {
    const e = refusal({ install: [{ name: 'helo' }] });
    expect(errorEnvelope(e).error.details).toMatchObject({
      explanation: [expect.stringContaining('nothing provides "helo"')],
      problems: [{ requirement: 'requested helo', kind: 'missing' }],
      searchSteps: expect.any(Number),
      gaveUp: false,
    });
  });
});
