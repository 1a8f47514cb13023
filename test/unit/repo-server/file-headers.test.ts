import { describe, expect, it } from 'vitest';
import { contentTypeFor, defaultCacheControl } from '../../../repo-server/index.js';
import { etagFor, ifRangeHolds, noneMatchHits, parseEtagList, IMMUTABLE, REVALIDATE } from '../../../repo-server/file-headers.js';

describe('contentTypeFor', () => {
  it.each([
    ['catalog.json', 'application/json'],
    ['a-1.0.0-x86_64.swpkg', 'application/octet-stream'],
    ['index.html', 'text/html; charset=utf-8'],
    ['repo-root.pub', 'text/plain; charset=utf-8'],
    ['catalog.json.sha256', 'text/plain; charset=utf-8'],
    ['INDEX.HTML', 'text/html; charset=utf-8'],
    ['no-extension', 'application/octet-stream'],
    ['weird.exe', 'application/octet-stream'],
  ])('%s → %s', (name, type) => {
    expect(contentTypeFor(name)).toBe(type);
  });
});

describe('defaultCacheControl (DESIGN.md: catalog short, packages immutable)', () => {
  it.each([
    [['packages', 'a-1.0.0-any.swpkg'], IMMUTABLE],
    [['packages', 'a-1.0.0-any.swpkg.sha256'], IMMUTABLE],
    [['catalog.json'], REVALIDATE],
    [['catalog.json.sha256'], REVALIDATE],
    [['hosted-repo.json'], REVALIDATE],
    [['repo-root.pub'], REVALIDATE],
    [['index.html'], REVALIDATE],
    [['roots', '2.json'], REVALIDATE],
    [['packages'], REVALIDATE],
  ] as Array<[string[], string]>)('%j → %s', (segments, cc) => {
    expect(defaultCacheControl(segments)).toBe(cc);
  });
});

describe('entity tags', () => {
  const tag = etagFor({ size: 1000n, mtimeNs: 1_700_000_000_123_456_789n, ino: 42n });

  it('are strong, quoted, and change with size, mtime or inode', () => {
    expect(tag).toMatch(/^"[0-9a-f-]+"$/);
    expect(etagFor({ size: 1001n, mtimeNs: 1_700_000_000_123_456_789n, ino: 42n })).not.toBe(tag);
    expect(etagFor({ size: 1000n, mtimeNs: 1_700_000_000_123_456_790n, ino: 42n })).not.toBe(tag);
    expect(etagFor({ size: 1000n, mtimeNs: 1_700_000_000_123_456_789n, ino: 43n })).not.toBe(tag);
  });

  it.each([
    ['"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"']],
    ['*', ['*']],
    ['"a,b"', ['"a,b"']],
    ['', []],
    ['garbage', []],
    ['"a", garbage', ['"a"']],
  ])('parseEtagList(%j) → %j', (header, tags) => {
    expect(parseEtagList(header)).toEqual(tags);
  });

  it.each([
    [tag, true],
    [`W/${tag}`, true],
    [`"other", ${tag}`, true],
    ['*', true],
    ['"other"', false],
    ['', false],
  ])('If-None-Match %j hits: %s (weak comparison, RFC 9110 §13.1.2)', (header, hit) => {
    expect(noneMatchHits(header, tag)).toBe(hit);
  });

  const lm = 'Tue, 14 Nov 2023 22:13:20 GMT';
  it.each([
    [tag, true, 'same strong tag'],
    [`W/${tag}`, false, 'weak tags never match If-Range'],
    ['"other"', false, 'stale tag'],
    [lm, true, 'exact Last-Modified'],
    ['Tue, 14 Nov 2023 22:13:21 GMT', false, 'different date'],
    ['not a date', false, 'garbage'],
  ])('If-Range %j holds: %s (%s)', (header, holds) => {
    expect(ifRangeHolds(header, tag, lm)).toBe(holds);
  });
});
