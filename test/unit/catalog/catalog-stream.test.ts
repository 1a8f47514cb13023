import { describe, expect, it } from 'vitest';
import {
  catalogPayload,
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  pae,
  parseCatalogPayload,
  parseEnvelope,
  parseEnvelopeInPlace,
  parseStrictJsonBytes,
  payloadWithPaeRoom,
  signCatalog,
  signEnvelope,
  signedMessage,
  verifyCatalog,
  verifyCatalogStream,
  RawJsonString,
  StreamedJsonArray,
  PAYLOAD_TYPES,
  type CatalogPackage,
  type CatalogSigned,
} from '../../../catalog/index.js';
import { catalogPackage, catalogSigned } from '../../helpers/catalog-fixture.js';

/**
 * The streaming forms pkg update uses (verifyCatalogStream, the byte-level parser's hooks, the
 * payload decoded in place) against the whole-document forms: the same entries, and for every
 * bad input the same refusal code, in the same precedence.
 */
const NOW = new Date('2026-11-24T12:00:00Z');
const catKey = generateKeyPair();
const root = createRoot({ rootKeys: [generateKeyPair()], catalogKeys: [catKey], expires: new Date(NOW.getTime() + 365 * 86400000) });
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The payload bytes as the first writer made them: JSON.stringify of the whole ordered document. */
function referencePayload(s: CatalogSigned): Buffer {
  const sorted = (d: Record<string, string>): Record<string, string> =>
    Object.fromEntries(Object.entries(d).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(
    JSON.stringify({
      type: s.type,
      format: s.format,
      repo: s.repo,
      version: s.version,
      generated: s.generated,
      expires: s.expires,
      compatibility: { arch: s.compatibility.arch, abi: s.compatibility.abi, minClientFormat: s.compatibility.minClientFormat },
      packages: s.packages.map((p) => ({ ...p, depends: sorted(p.depends), path: p.path, summary: p.summary, license: p.license })),
    }),
  );
}

/** Enough entries (with dependencies out of order and non-ASCII summaries) to cross the writer's batches and the decoder's slices. */
function manyPackages(n: number): CatalogPackage[] {
  return Array.from({ length: n }, (_, i) => {
    const depends: Record<string, string> = i % 3 === 0 ? { zlib: '^1', alpha: '>=2.0.0', [`p${i >> 1}`]: '^1.0.0' } : { alpha: '^1' };
    const summary = i % 7 === 0 ? `naïve façade № ${i} — ✓ 𝄞` : `package ${i} ${'x'.repeat(i % 200)}`;
    return { ...catalogPackage(`p${i}`), depends, summary };
  });
}

/** Signs raw payload bytes as a catalog: for payloads our writer never produces. */
function signedRaw(payload: string): Buffer {
  return encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, utf8(payload), [catKey]));
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('catalogPayload', () => {
  it('writes the bytes JSON.stringify of the ordered document writes, across batches and with non-ASCII text', () => {
    const s = catalogSigned(NOW, 3, { packages: manyPackages(9000) });
    const payload = catalogPayload(s);
    expect(payload.length).toBeGreaterThan(2 * 1024 * 1024);
    expect(payload.equals(referencePayload(s))).toBe(true);
    // Entries far larger than the writer sets aside: the buffer grows, and the bytes are the same.
    const wide = catalogSigned(NOW, 4, { packages: manyPackages(50).map((p, i) => ({ ...p, summary: `${i}é`.repeat(3000) })) });
    expect(catalogPayload(wide).equals(referencePayload(wide))).toBe(true);
    const empty = catalogSigned(NOW, 1, { packages: [] });
    expect(catalogPayload(empty).equals(referencePayload(empty))).toBe(true);
  });

  it('leaves room for PAE before the payload, so signing reads it in place', () => {
    const payload = catalogPayload(catalogSigned(NOW, 1));
    const message = signedMessage(PAYLOAD_TYPES.catalog, payload);
    expect(message.buffer).toBe(payload.buffer);
    expect(Buffer.from(message).equals(Buffer.from(pae(PAYLOAD_TYPES.catalog, payload)))).toBe(true);
  });
});

describe('signedMessage', () => {
  it('is PAE whatever precedes the payload: in place after a true head, a copy otherwise', () => {
    const room = payloadWithPaeRoom('t', 5);
    room.write('hello');
    const inPlace = signedMessage('t', room);
    expect(inPlace.buffer).toBe(room.buffer);
    expect(Buffer.from(inPlace).toString()).toBe('DSSEv1 1 t 5 hello');
    // The same head bytes for another length or type are not this payload's PAE.
    expect(Buffer.from(signedMessage('u', room)).toString()).toBe('DSSEv1 1 u 5 hello');
    expect(Buffer.from(signedMessage('t', room.subarray(0, 4))).toString()).toBe('DSSEv1 1 t 4 hell');
    const plain = utf8('XXXXXXXXXXXXXXXXXXXXhello').subarray(20);
    expect(Buffer.from(signedMessage('t', plain)).toString()).toBe('DSSEv1 1 t 5 hello');
  });
});

describe('parseEnvelope reads the payload in place', () => {
  const big = Buffer.alloc(5 * 1024 * 1024 + 7);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 8)) & 0xff;
  const b64 = big.toString('base64');
  const envelope = (payload: string): Buffer => utf8(`{"payloadType":"${PAYLOAD_TYPES.catalog}","payload":"${payload}","signatures":[]}`);

  it('decodes base64 spanning several slices to the same bytes', () => {
    const env = parseEnvelope(envelope(b64), PAYLOAD_TYPES.catalog, 'c');
    expect(Buffer.from(env.payload).equals(big)).toBe(true);
    expect(signedMessage(env.payloadType, env.payload).buffer).toBe(env.payload.buffer);
  });

  it('still accepts a payload spelled with JSON escapes (as the string parser did)', () => {
    const escaped = 'aGVsbG8='.replace('G', '\\u0047').replace('=', '\\u003d');
    expect(Buffer.from(parseEnvelope(envelope(escaped), PAYLOAD_TYPES.catalog, 'c').payload).toString()).toBe('hello');
  });

  const refusals: { name: string; payload: string; code: string }[] = [
    {
      name: "'=' inside a later slice",
      payload: `${b64.slice(0, 4 * 1024 * 1024 + 8)}QQ==${b64.slice(4 * 1024 * 1024 + 8)}`,
      code: 'E_MALFORMED',
    },
    { name: 'a non-ASCII character', payload: `${b64.slice(0, 4)}é${b64.slice(5)}`, code: 'E_MALFORMED' },
    { name: 'a length not a multiple of 4', payload: b64.slice(1), code: 'E_MALFORMED' },
    { name: 'non-zero padding bits (QR==)', payload: 'QR==', code: 'E_MALFORMED' },
    { name: 'whitespace inside', payload: `${b64.slice(0, 8)} ${b64.slice(9)}`, code: 'E_MALFORMED' },
    { name: 'a raw control character (a JSON syntax error)', payload: `${b64.slice(0, 8)}\t${b64.slice(9)}`, code: 'E_MALFORMED' },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name} with ${c.code}`, () => {
      expect(codeOf(() => parseEnvelope(envelope(c.payload), PAYLOAD_TYPES.catalog, 'c'))).toBe(c.code);
    });
  }

  it('checks the payload type before the payload (E_PAYLOAD_TYPE for a bad payload of the wrong type)', () => {
    const bytes = utf8(`{"payloadType":"x","payload":"QR==","signatures":[]}`);
    expect(codeOf(() => parseEnvelope(bytes, PAYLOAD_TYPES.catalog, 'c'))).toBe('E_PAYLOAD_TYPE');
    expect(codeOf(() => parseEnvelopeInPlace(bytes, PAYLOAD_TYPES.catalog, 'c'))).toBe('E_PAYLOAD_TYPE');
  });
});

describe('parseEnvelopeInPlace decodes inside the bytes it is given and gives them back', () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 2);
  for (let i = 0; i < big.length; i++) big[i] = (i * 167 + (i >> 9)) & 0xff;
  const b64 = big.toString('base64');
  // Both field orders: the payload after payloadType (what encodeEnvelope writes) and first (less room before it than PAE's head).
  const framings: { name: string; bytes: (payload: string) => Buffer }[] = [
    { name: 'payload last', bytes: (p) => utf8(`{"payloadType":"${PAYLOAD_TYPES.catalog}","payload":"${p}","signatures":[]}\n`) },
    { name: 'payload first', bytes: (p) => utf8(`{"payload":"${p}","payloadType":"${PAYLOAD_TYPES.catalog}","signatures":[]}`) },
  ];
  for (const f of framings) {
    it(`${f.name}: the payload parseEnvelope gives, PAE in place, in the same memory, and the original bytes back`, () => {
      const bytes = f.bytes(b64);
      const copy = Buffer.from(bytes);
      const env = parseEnvelopeInPlace(bytes, PAYLOAD_TYPES.catalog, 'c');
      expect(Buffer.from(env.payload).equals(big)).toBe(true);
      // Inside the bytes' own memory (not merely the same pool): the offsets, not only the ArrayBuffer.
      expect(env.payload.buffer).toBe(bytes.buffer);
      expect(env.payload.byteOffset - bytes.byteOffset).toBeGreaterThanOrEqual(0);
      expect(env.payload.byteOffset + env.payload.length).toBeLessThanOrEqual(bytes.byteOffset + bytes.length);
      expect(signedMessage(env.payloadType, env.payload).buffer).toBe(bytes.buffer);
      expect(bytes.equals(copy)).toBe(false);
      expect(Buffer.concat([...env.originalBytes()]).equals(copy)).toBe(true);
    });
  }

  it("a payload too short for PAE's head to fit before it in place gets a buffer of its own, the bytes untouched", () => {
    const bytes = framings[1]!.bytes('aGk=');
    const copy = Buffer.from(bytes);
    const env = parseEnvelopeInPlace(bytes, PAYLOAD_TYPES.catalog, 'c');
    expect(Buffer.from(env.payload).toString()).toBe('hi');
    expect(signedMessage(env.payloadType, env.payload)).toEqual(pae(PAYLOAD_TYPES.catalog, utf8('hi')));
    expect(bytes.equals(copy)).toBe(true);
    expect(Buffer.concat([...env.originalBytes()]).equals(copy)).toBe(true);
  });

  it('a payload spelled with JSON escapes is decoded apart and the bytes come back as they were', () => {
    const bytes = utf8(`{"payloadType":"${PAYLOAD_TYPES.catalog}","payload":"aGVsbG8\\u003d","signatures":[]}`);
    const copy = Buffer.from(bytes);
    const env = parseEnvelopeInPlace(bytes, PAYLOAD_TYPES.catalog, 'c');
    expect(Buffer.from(env.payload).toString()).toBe('hello');
    expect(bytes.equals(copy)).toBe(true);
    expect(Buffer.concat([...env.originalBytes()]).equals(copy)).toBe(true);
  });

  const refusals: { name: string; payload: string }[] = [
    { name: "'=' inside a later slice", payload: `${b64.slice(0, 2 * 1024 * 1024 + 8)}QQ==${b64.slice(2 * 1024 * 1024 + 8)}` },
    { name: 'a non-base64 character in a later slice', payload: `${b64.slice(0, 3 * 1024 * 1024)}*${b64.slice(3 * 1024 * 1024 + 1)}` },
    { name: 'non-zero padding bits at the end', payload: `${b64.slice(0, -4)}QR==` },
    { name: 'a length not a multiple of 4', payload: b64.slice(1) },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name} with parseEnvelope's code (E_MALFORMED)`, () => {
      expect(codeOf(() => parseEnvelope(framings[0]!.bytes(c.payload), PAYLOAD_TYPES.catalog, 'c'))).toBe('E_MALFORMED');
      expect(codeOf(() => parseEnvelopeInPlace(framings[0]!.bytes(c.payload), PAYLOAD_TYPES.catalog, 'c'))).toBe('E_MALFORMED');
    });
  }
});

describe('parseStrictJsonBytes hooks', () => {
  it('hands the top-level array over element by element and keeps nothing; elsewhere the key is an ordinary value', () => {
    const seen: unknown[] = [];
    const v = parseStrictJsonBytes(utf8('{"a":{"packages":[1]},"packages":[{"x":1},2,"é"]}'), 'd', {
      streamArray: { key: 'packages', onElement: (e, i) => seen.push([i, e]) },
      rawString: 'a',
    }) as Record<string, unknown>;
    expect(seen).toEqual([
      [0, { x: 1 }],
      [1, 2],
      [2, 'é'],
    ]);
    expect(v['packages']).toBeInstanceOf(StreamedJsonArray);
    expect((v['packages'] as StreamedJsonArray).length).toBe(3);
    expect(v['a']).toEqual({ packages: [1] });
  });

  it('gives a raw string as its byte range, and an escaped one decoded', () => {
    const bytes = utf8('{"p":"abé","q":"a\\nb"}');
    const raw = parseStrictJsonBytes(bytes, 'd', { rawString: 'p' }) as Record<string, unknown>;
    expect(raw['p']).toBeInstanceOf(RawJsonString);
    const r = raw['p'] as RawJsonString;
    expect(Buffer.from(bytes.subarray(r.start, r.end)).toString()).toBe('abé');
    expect((parseStrictJsonBytes(bytes, 'd', { rawString: 'q' }) as Record<string, unknown>)['q']).toBe('a\nb');
  });

  it('refuses under the hooks exactly as without them', () => {
    const hooks = { rawString: 'p', streamArray: { key: 'packages', onElement: () => undefined } };
    for (const [doc, code] of [
      ['{"packages":[],"packages":[]}', 'E_DUPLICATE_KEY'],
      ['{"packages":[{"a":1,"a":2}]}', 'E_DUPLICATE_KEY'],
      ['{"packages":[1,]}', 'E_MALFORMED'],
      ['{"packages":[1.5]}', 'E_UNSAFE_NUMBER'],
      ['{"p":"\\ud800"}', 'E_ENCODING'],
      ['{"p":"a', 'E_MALFORMED'],
      ['{"packages":[{"__proto__":1}]}', 'E_RESERVED_KEY'],
    ] as const) {
      expect(
        codeOf(() => parseStrictJsonBytes(utf8(doc), 'd', hooks)),
        doc,
      ).toBe(code);
      expect(
        codeOf(() => parseStrictJsonBytes(utf8(doc), 'd')),
        doc,
      ).toBe(code);
    }
  });

  it('a cached short string is never handed back for other bytes', () => {
    // Many distinct short strings through a small cache: any mix-up would show as a wrong value.
    const names = Array.from({ length: 20000 }, (_, i) => `n${i.toString(36)}`);
    expect(parseStrictJsonBytes(utf8(JSON.stringify(names)), 'd')).toEqual(names);
    expect(parseStrictJsonBytes(utf8(JSON.stringify(Object.fromEntries(names.map((n) => [n, n])))), 'd')).toEqual(
      Object.fromEntries(names.map((n) => [n, n])),
    );
  });
});

describe('verifyCatalogStream', () => {
  it('hands over the entries verifyCatalog returns, in order, and the same summary', () => {
    const s = catalogSigned(NOW, 7, { packages: manyPackages(3000) });
    const bytes = encodeEnvelope(signCatalog(s, [catKey]));
    const whole = verifyCatalog(bytes, { root, now: NOW });
    const got: CatalogPackage[] = [];
    const summary = verifyCatalogStream(bytes, { root, now: NOW }, (p, i) => {
      expect(i).toBe(got.length);
      got.push(p);
    });
    expect(got).toEqual(whole.signed.packages);
    expect(summary.packages).toBe(3000);
    const { packages, ...head } = whole.signed;
    expect(summary.signed).toEqual(head);
    expect(packages).toHaveLength(3000);
    expect(parseCatalogPayload(whole.payload)).toEqual(whole.signed);
  });

  it('in place: the same entries and summary, the bytes spent, and originalBytes gives them back exactly', () => {
    const s = catalogSigned(NOW, 7, { packages: manyPackages(3000) });
    const bytes = encodeEnvelope(signCatalog(s, [catKey]));
    const copy = Buffer.from(bytes);
    const whole = verifyCatalog(copy, { root, now: NOW });
    const got: CatalogPackage[] = [];
    const summary = verifyCatalogStream(bytes, { root, now: NOW }, (p) => got.push(p), { inPlace: true });
    expect(got).toEqual(whole.signed.packages);
    expect(summary.payloadSha256).toBe(verifyCatalogStream(copy, { root, now: NOW }, () => undefined).payloadSha256);
    expect(bytes.equals(copy)).toBe(false);
    expect(Buffer.concat([...summary.originalBytes()]).equals(copy)).toBe(true);
  });

  const head = `"type":"catalog","format":1,"repo":"main","version":5,"generated":"${NOW.toISOString()}","expires":"2026-12-01T00:00:00.000Z","compatibility":{"arch":["x86_64"],"abi":["linux-musl-static"],"minClientFormat":1}`;
  const entry = (name: string, over: Record<string, unknown> = {}): string => JSON.stringify({ ...catalogPackage(name), ...over });
  // Each row: a payload that breaks two rules; the refusal is the one the whole-document parse gave first.
  const cases: { name: string; payload: string; code: string }[] = [
    {
      name: 'a bad entry, then a syntax error later on',
      payload: `{${head},"packages":[${entry('a', { size: -1 })},${entry('b')},]}`,
      code: 'E_MALFORMED',
    },
    {
      name: 'a bad entry path, then an unknown top-level field',
      payload: `{${head},"packages":[${entry('a', { path: '../x' })}],"extra":1}`,
      code: 'E_UNKNOWN_FIELD',
    },
    {
      name: 'entries before the header fields, one unsafe, and a wrong type',
      payload: `{"packages":[${entry('a', { path: '../x' })}],${head.replace('"catalog"', '"root"')}}`,
      code: 'E_BAD_CATALOG',
    },
    {
      name: 'a duplicate, then an entry with an unknown field',
      payload: `{${head},"packages":[${entry('a')},${entry('a')},${entry('c', { x: 1 })}]}`,
      code: 'E_UNKNOWN_FIELD',
    },
    {
      name: 'a duplicate, then an unsafe path',
      payload: `{${head},"packages":[${entry('a')},${entry('a')},${entry('c', { path: '/etc/x' })}]}`,
      code: 'E_UNSAFE_PATH',
    },
    { name: 'a duplicate alone', payload: `{${head},"packages":[${entry('a')},${entry('b')},${entry('a')}]}`, code: 'E_BAD_CATALOG' },
    { name: 'packages twice', payload: `{${head},"packages":[${entry('a')}],"packages":[]}`, code: 'E_DUPLICATE_KEY' },
    { name: 'packages not an array', payload: `{${head},"packages":{"a":${entry('a')}}}`, code: 'E_BAD_CATALOG' },
    { name: 'no packages', payload: `{${head}}`, code: 'E_BAD_CATALOG' },
    {
      name: 'a bad version (a usage error elsewhere, the server’s fault here)',
      payload: `{${head},"packages":[${entry('a', { version: '1.0' })}]}`,
      code: 'E_BAD_CATALOG',
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.name} with ${c.code}, as verifyCatalog does`, () => {
      const bytes = signedRaw(c.payload);
      expect(codeOf(() => verifyCatalog(bytes, { root, now: NOW }))).toBe(c.code);
      expect(codeOf(() => verifyCatalogStream(bytes, { root, now: NOW }, () => undefined))).toBe(c.code);
    });
  }

  it('accepts a payload our writer would not produce (other key order, whitespace) with the same entries', () => {
    const a = catalogPackage('a');
    const reordered = `{\n  "packages": [ ${JSON.stringify(Object.fromEntries(Object.entries(a).reverse()))} ],\n  ${head}\n}`;
    const got: CatalogPackage[] = [];
    const summary = verifyCatalogStream(signedRaw(reordered), { root, now: NOW }, (p) => got.push(p));
    expect(got).toEqual([a]);
    expect(summary.signed.version).toBe(5);
  });
});
