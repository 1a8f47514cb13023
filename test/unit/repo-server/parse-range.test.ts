import { describe, expect, it } from 'vitest';
import { parseRange, type RangeRequest } from '../../../repo-server/index.js';

// One row per case: header, file size, expected outcome, source.
const rows: Array<[string | undefined, number, RangeRequest, string]> = [
  [undefined, 100, { kind: 'none', reason: 'absent' }, 'no header'],
  ['bytes=0-9', 100, { kind: 'range', start: 0, end: 9 }, 'RFC 9110 §14.1.2 first-last'],
  ['bytes=10-', 100, { kind: 'range', start: 10, end: 99 }, 'open-ended'],
  ['bytes=-10', 100, { kind: 'range', start: 90, end: 99 }, 'suffix'],
  ['bytes=-1000', 100, { kind: 'range', start: 0, end: 99 }, 'suffix longer than the file: whole file'],
  ['bytes=0-999', 100, { kind: 'range', start: 0, end: 99 }, 'last-pos beyond the end is clamped (§14.1.2)'],
  ['bytes=99-99', 100, { kind: 'range', start: 99, end: 99 }, 'last byte'],
  ['bytes=0-0', 1, { kind: 'range', start: 0, end: 0 }, 'one-byte file'],
  ['Bytes=1-2', 100, { kind: 'range', start: 1, end: 2 }, 'range unit is case-insensitive'],
  [' bytes = 1-2 ', 100, { kind: 'range', start: 1, end: 2 }, 'optional whitespace'],
  ['bytes=007-008', 100, { kind: 'range', start: 7, end: 8 }, 'leading zeros are digits'],
  ['bytes=100-', 100, { kind: 'unsatisfiable' }, 'first-pos at the end (§15.5.17)'],
  ['bytes=100-200', 100, { kind: 'unsatisfiable' }, 'first-pos beyond the end'],
  ['bytes=999999999999-', 100, { kind: 'unsatisfiable' }, 'absurd first-pos'],
  ['bytes=99999999999999999999999999999999-', 100, { kind: 'unsatisfiable' }, 'first-pos beyond 2^53'],
  ['bytes=0-99999999999999999999999999999999', 100, { kind: 'range', start: 0, end: 99 }, 'last-pos beyond 2^53 is clamped'],
  ['bytes=-0', 100, { kind: 'unsatisfiable' }, 'zero-length suffix'],
  ['bytes=-5', 0, { kind: 'unsatisfiable' }, 'suffix of an empty file'],
  ['bytes=0-', 0, { kind: 'unsatisfiable' }, 'any range of an empty file'],
  ['bytes=5-2', 100, { kind: 'none', reason: 'malformed' }, 'last < first is invalid: ignore (§14.1.1)'],
  ['bytes=abc', 100, { kind: 'none', reason: 'malformed' }, 'not a range'],
  ['bytes=-', 100, { kind: 'none', reason: 'malformed' }, 'empty spec'],
  ['bytes=', 100, { kind: 'none', reason: 'malformed' }, 'empty set'],
  ['bytes=1-2-3', 100, { kind: 'none', reason: 'malformed' }, 'extra dash'],
  ['bytes=1.5-2', 100, { kind: 'none', reason: 'malformed' }, 'not an integer'],
  ['bytes=+1-2', 100, { kind: 'none', reason: 'malformed' }, 'sign'],
  ['bytes=0x10-0x20', 100, { kind: 'none', reason: 'malformed' }, 'hex'],
  ['bytes 0-1', 100, { kind: 'none', reason: 'malformed' }, 'no equals sign'],
  ['items=0-1', 100, { kind: 'none', reason: 'unit' }, 'unknown unit'],
  ['bytes=0-1,2-3', 100, { kind: 'none', reason: 'multiple' }, 'multi-range is not honoured (200 full)'],
  ['bytes=0-1,', 100, { kind: 'none', reason: 'multiple' }, 'trailing comma'],
  ['bytes=0-0,-1', 100, { kind: 'none', reason: 'multiple' }, 'first and last byte'],
];

describe('parseRange', () => {
  it.each(rows)('%j of %d bytes → %j (%s)', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});
