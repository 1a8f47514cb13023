import { describe, expect, it } from 'vitest';
import { ERROR_CODES, parseStrictJson, assertKnownFields } from '../../../catalog/index.js';

/**
 * The strict parser, one row per rule (I-JSON, RFC 7493, plus what swpkg adds):
 * input bytes, the refusal code or the parsed value. Every refusal is exit 3.
 */
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

const refusals: { name: string; input: Uint8Array; code: string; source: string }[] = [
  { name: 'a duplicate key at the top', input: utf8('{"a":1,"a":1}'), code: 'E_DUPLICATE_KEY', source: 'RFC 7493 §2.3' },
  { name: 'a duplicate key, forged value first', input: utf8('{"v":"evil","v":"good"}'), code: 'E_DUPLICATE_KEY', source: 'issue 10' },
  { name: 'a duplicate key, forged value second', input: utf8('{"v":"good","v":"evil"}'), code: 'E_DUPLICATE_KEY', source: 'issue 10' },
  { name: 'a duplicate key deep inside', input: utf8('{"a":[{"b":{"c":1,"c":2}}]}'), code: 'E_DUPLICATE_KEY', source: 'RFC 7493 §2.3' },
  { name: 'a duplicate spelled with an escape', input: utf8('{"ab":1,"\\u0061b":2}'), code: 'E_DUPLICATE_KEY', source: 'RFC 8259 §7' },
  {
    name: 'invalid UTF-8',
    input: bytes(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d),
    code: 'E_ENCODING',
    source: 'RFC 7493 §2.1',
  },
  { name: 'an overlong UTF-8 encoding', input: bytes(0x22, 0xc0, 0xaf, 0x22), code: 'E_ENCODING', source: 'RFC 3629 §3' },
  { name: 'a UTF-8 encoded surrogate (CESU)', input: bytes(0x22, 0xed, 0xa0, 0x80, 0x22), code: 'E_ENCODING', source: 'RFC 3629 §3' },
  { name: 'a byte order mark', input: bytes(0xef, 0xbb, 0xbf, 0x7b, 0x7d), code: 'E_ENCODING', source: 'RFC 8259 §8.1' },
  { name: 'an escaped lone high surrogate', input: utf8('{"a":"\\ud800"}'), code: 'E_ENCODING', source: 'RFC 7493 §2.1' },
  { name: 'an escaped lone low surrogate', input: utf8('{"a":"x\\udc00y"}'), code: 'E_ENCODING', source: 'RFC 7493 §2.1' },
  {
    name: 'a high surrogate before a non-surrogate escape',
    input: utf8('["\\ud800\\u0041"]'),
    code: 'E_ENCODING',
    source: 'RFC 7493 §2.1',
  },
  { name: 'a lone surrogate in a key', input: utf8('{"\\udfff":1}'), code: 'E_ENCODING', source: 'RFC 7493 §2.1' },
  { name: '1e400', input: utf8('{"n":1e400}'), code: 'E_UNSAFE_NUMBER', source: 'RFC 7493 §2.2' },
  { name: '9007199254740993 (2^53+1)', input: utf8('{"n":9007199254740993}'), code: 'E_UNSAFE_NUMBER', source: 'RFC 7493 §2.2' },
  { name: '-9007199254740992', input: utf8('[-9007199254740992]'), code: 'E_UNSAFE_NUMBER', source: 'RFC 7493 §2.2' },
  { name: 'a fraction', input: utf8('[1.5]'), code: 'E_UNSAFE_NUMBER', source: 'no schema has one' },
  { name: 'an exponent on an integer', input: utf8('[1e2]'), code: 'E_UNSAFE_NUMBER', source: 'one spelling per value' },
  { name: 'a __proto__ key', input: utf8('{"__proto__":{"polluted":true}}'), code: 'E_RESERVED_KEY', source: 'prototype pollution' },
  { name: 'a nested __proto__ key', input: utf8('{"a":{"__proto__":[]}}'), code: 'E_RESERVED_KEY', source: 'prototype pollution' },
  { name: 'truncated input', input: utf8('{"signed": '), code: 'E_MALFORMED', source: 'RFC 8259' },
  { name: 'a trailing comma', input: utf8('[1,]'), code: 'E_MALFORMED', source: 'RFC 8259' },
  { name: 'a leading zero', input: utf8('[01]'), code: 'E_MALFORMED', source: 'RFC 8259 §6' },
  { name: 'a raw control character in a string', input: utf8('["a\tb"]'), code: 'E_MALFORMED', source: 'RFC 8259 §7' },
  { name: 'data after the value', input: utf8('{} {}'), code: 'E_MALFORMED', source: 'RFC 8259 §2' },
  { name: 'NaN', input: utf8('[NaN]'), code: 'E_MALFORMED', source: 'RFC 8259 §6' },
  { name: 'nesting past 32 levels', input: utf8('['.repeat(40) + ']'.repeat(40)), code: 'E_MALFORMED', source: 'bounded recursion' },
  { name: 'an empty document', input: utf8(''), code: 'E_MALFORMED', source: 'RFC 8259 §2' },
];

describe('parseStrictJson refuses', () => {
  for (const c of refusals) {
    it(`${c.name} with ${c.code} (${c.source})`, () => {
      let caught: unknown;
      try {
        parseStrictJson(c.input, 'doc');
      } catch (e) {
        caught = e;
      }
      expect(caught).toMatchObject({ code: c.code });
      expect(ERROR_CODES[(caught as { code: keyof typeof ERROR_CODES }).code]).toBe(3);
    });
  }
});

describe('parseStrictJson accepts', () => {
  it('what JSON.parse reads the same way, for everything the formats use', () => {
    const text =
      '{ "s": "a\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00", "n": [0, -1, 9007199254740991, -9007199254740991], "l": [true, false, null], "o": {}, "a": [], "u": "é😀" }';
    expect(parseStrictJson(utf8(text), 'doc')).toEqual(JSON.parse(text));
  });

  it('keys named like Object.prototype members as own properties, with no prototype effect', () => {
    const v = parseStrictJson(utf8('{"constructor":"x","toString":1,"hasOwnProperty":[]}'), 'doc') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['constructor', 'toString', 'hasOwnProperty']);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(v['constructor']).toBe('x');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('-0 as the integer 0', () => {
    expect(Object.is((parseStrictJson(utf8('[-0]'), 'doc') as number[])[0], 0)).toBe(true);
  });
});

describe('assertKnownFields', () => {
  it('refuses a field outside the schema with E_UNKNOWN_FIELD, naming it', () => {
    expect(() => assertKnownFields({ a: 1, constructor: 2 }, ['a'], 'doc')).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_FIELD', details: expect.objectContaining({ field: 'constructor' }) }),
    );
    expect(() => assertKnownFields({ a: 1 }, ['a', 'b'], 'doc')).not.toThrow();
  });
});
