import { describe, expect, it } from 'vitest';
import { normalizeRequestPath, encodePath, MAX_TARGET_LENGTH, type RequestPath } from '../../../repo-server/index.js';

const ok = (segments: string[], directory = false): RequestPath => ({ ok: true, segments, directory });
const no = (status: 400 | 404 | 414, reason: string): RequestPath => ({ ok: false, status, reason }) as RequestPath;

// One row per request target: expected result and why.
const rows: Array<[string, RequestPath, string]> = [
  ['/', ok([], true), 'the root'],
  ['/catalog.json', ok(['catalog.json']), 'a file'],
  ['/packages/a-1.0.0-any.swpkg', ok(['packages', 'a-1.0.0-any.swpkg']), 'nested'],
  ['/packages/', ok(['packages'], true), 'folder with slash'],
  ['/catalog.json?x=1#frag', ok(['catalog.json']), 'query and fragment ignored'],
  ['/a//b', ok(['a', 'b']), 'empty segments dropped'],
  ['/a%20b', ok(['a b']), 'decoded once'],
  ['/caf%C3%A9', ok(['café']), 'UTF-8 decoding'],
  ['/%252e%252e/x', ok(['%2e%2e', 'x']), 'double-encoded dots stay literal: decoded exactly once'],
  ['/a..b', ok(['a..b']), 'dots inside a name are fine'],
  ['http://example.test/catalog.json', ok(['catalog.json']), 'absolute-form (RFC 9112 §3.2.2)'],
  ['HTTP://example.test', ok([], true), 'absolute-form without path'],
  ['/..', no(400, 'dot-segment'), 'parent'],
  ['/../etc/passwd', no(400, 'dot-segment'), 'classic traversal'],
  ['/packages/../../etc/passwd', no(400, 'dot-segment'), 'traversal in the middle'],
  ['/%2e%2e/etc/passwd', no(400, 'dot-segment'), 'encoded dots'],
  ['/%2E%2E/etc/passwd', no(400, 'dot-segment'), 'upper-case encoded dots'],
  ['/.%2e/etc/passwd', no(400, 'dot-segment'), 'half-encoded dots'],
  ['/./catalog.json', no(400, 'dot-segment'), 'single dot segment'],
  ['/%2e/catalog.json', no(400, 'dot-segment'), 'encoded single dot'],
  ['/http://x/../', no(400, 'dot-segment'), 'absolute URL inside the path'],
  ['/..%2Fetc%2Fpasswd', no(400, 'encoded-separator'), 'encoded slash'],
  ['/packages%2f..%2f..%2fsecret', no(400, 'encoded-separator'), 'lower-case encoded slash'],
  ['/..%5C..%5Csecret', no(400, 'encoded-separator'), 'encoded backslash'],
  ['/..\\..\\secret', no(400, 'backslash'), 'literal backslash'],
  ['/catalog.json%00.html', no(400, 'nul'), 'NUL truncation'],
  ['/%00', no(400, 'nul'), 'bare NUL'],
  ['/a%0Ab', no(400, 'control-character'), 'encoded newline (log injection)'],
  ['/a\x1b[31m', no(400, 'control-character'), 'escape sequence'],
  ['/%E0%A4%A', no(400, 'bad-encoding'), 'truncated percent-encoding'],
  ['/%C0%AE%C0%AE/', no(400, 'bad-encoding'), 'overlong UTF-8 dots are invalid UTF-8'],
  ['/%zz', no(400, 'bad-encoding'), 'not hex'],
  ['*', no(400, 'not-origin-form'), 'asterisk-form'],
  ['example.test:80', no(400, 'not-origin-form'), 'authority-form'],
  ['', no(400, 'not-origin-form'), 'empty'],
  ['/.hidden', no(404, 'hidden'), 'dotfile'],
  ['/.git/config', no(404, 'hidden'), 'dot-folder'],
  ['/packages/.tmp-upload', no(404, 'hidden'), 'dotfile below a folder'],
  ['/%2Egit/config', no(404, 'hidden'), 'encoded leading dot'],
  ['/' + 'a'.repeat(MAX_TARGET_LENGTH), no(414, 'too-long'), 'over the length bound'],
];

describe('normalizeRequestPath', () => {
  it.each(rows)('%j → %j (%s)', (target, expected) => {
    expect(normalizeRequestPath(target)).toEqual(expected);
  });

  it('never yields a segment that is empty, a dot segment, hidden, or holds a separator or NUL', () => {
    // Every single-segment target built from bytes that matter for traversal, raw and encoded.
    const alphabet = ['.', '/', '\\', '%2e', '%2E', '%2f', '%5c', '%00', 'a', '%25', '%'];
    const seen: string[] = [];
    for (const a of alphabet) for (const b of alphabet) for (const c of alphabet) seen.push('/' + a + b + c);
    for (const target of seen) {
      const r = normalizeRequestPath(target);
      if (!r.ok) continue;
      for (const s of r.segments) {
        expect(s).not.toBe('');
        expect(s.startsWith('.')).toBe(false);
        expect(s).not.toMatch(/[/\\\0]/);
      }
    }
  });
});

describe('encodePath', () => {
  it.each([
    [[], false, '/'],
    [['packages'], true, '/packages/'],
    [['a b', 'c?d#e'], false, '/a%20b/c%3Fd%23e'],
  ] as Array<[string[], boolean, string]>)('%j (dir %s) → %s', (segments, dir, expected) => {
    expect(encodePath(segments, dir)).toBe(expected);
    // Round trip: what we put in a Location header normalises back to the same segments.
    const back = normalizeRequestPath(expected);
    expect(back).toEqual({ ok: true, segments, directory: segments.length === 0 ? true : dir });
  });
});
