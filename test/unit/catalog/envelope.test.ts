import { describe, expect, it } from 'vitest';
import * as ed from '@noble/ed25519';
import { createHash } from 'node:crypto';
import {
  bytesToHex,
  checkThreshold,
  encodeDetachedSignature,
  encodeEnvelope,
  generateKeyPair,
  hexToBytes,
  keyPairFromSeed,
  pae,
  parseDetachedSignature,
  parseEnvelope,
  signBytes,
  signEnvelope,
  verifyBytes,
  PAYLOAD_TYPES,
} from '../../../catalog/index.js';

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('DSSE envelope', () => {
  it('PAE matches the DSSE specification example', () => {
    // github.com/secure-systems-lab/dsse protocol.md, "PAE" test vector.
    expect(Buffer.from(pae('http://example.com/HelloWorld', utf8('hello world'))).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
    // Lengths count bytes, not characters.
    expect(Buffer.from(pae('t', utf8('é'))).toString()).toBe('DSSEv1 1 t 2 é');
  });

  it('round-trips exact payload bytes, and signing is deterministic', () => {
    const k = generateKeyPair();
    const payload = utf8('{"z":1,  "a":2}\n');
    const a = encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, payload, [k]));
    const b = encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, payload, [k]));
    expect(a.equals(b)).toBe(true);
    const env = parseEnvelope(a, PAYLOAD_TYPES.catalog, 'c');
    expect(Buffer.from(env.payload).equals(payload)).toBe(true);
    expect(() =>
      checkThreshold(env, { keyids: [k.keyid], threshold: 1 }, { [k.keyid]: { type: 'ed25519', public: bytesToHex(k.publicKey) } }, 'c'),
    ).not.toThrow();
  });

  const k = generateKeyPair();
  const good = JSON.parse(encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, utf8('{}'), [k])).toString()) as Record<string, unknown>;
  const framing: { name: string; bytes: () => Uint8Array; code: string }[] = [
    {
      name: 'another payload type',
      code: 'E_PAYLOAD_TYPE',
      bytes: () => utf8(JSON.stringify({ ...good, payloadType: PAYLOAD_TYPES.root })),
    },
    { name: 'an unknown envelope field', code: 'E_UNKNOWN_FIELD', bytes: () => utf8(JSON.stringify({ ...good, extra: 1 })) },
    {
      name: 'an unknown field in a signature',
      code: 'E_UNKNOWN_FIELD',
      bytes: () => utf8(JSON.stringify({ ...good, signatures: [{ ...(good['signatures'] as object[])[0], note: 'x' }] })),
    },
    { name: 'a payload that is not base64', code: 'E_MALFORMED', bytes: () => utf8(JSON.stringify({ ...good, payload: 'e30*' })) },
    {
      name: 'non-canonical base64 (unused bits set)',
      code: 'E_MALFORMED',
      bytes: () => utf8(JSON.stringify({ ...good, payload: 'e31=' })),
    },
    {
      name: 'two payload fields (forged first)',
      code: 'E_DUPLICATE_KEY',
      bytes: () =>
        utf8(`{"payload":"e30=","payloadType":"${PAYLOAD_TYPES.catalog}","payload":"${good['payload'] as string}","signatures":[]}`),
    },
    {
      name: 'the first format ({signed, signatures})',
      code: 'E_INCOMPATIBLE',
      bytes: () => utf8(JSON.stringify({ signed: { type: 'catalog' }, signatures: [{ keyid: 'a'.repeat(64), sig: 'b'.repeat(128) }] })),
    },
  ];
  for (const c of framing) {
    it(`refuses ${c.name} with ${c.code}`, () => {
      expect(() => parseEnvelope(c.bytes(), PAYLOAD_TYPES.catalog, 'c')).toThrow(expect.objectContaining({ code: c.code }));
    });
  }

  it('a detached package signature: wrong type, old format and unknown fields are refused', () => {
    const env = signEnvelope(PAYLOAD_TYPES.manifest, utf8('{}'), [k]);
    const ok = encodeDetachedSignature(env);
    expect(parseDetachedSignature(ok, 's').signatures).toEqual(env.signatures);
    const obj = JSON.parse(ok.toString()) as Record<string, unknown>;
    expect(() => parseDetachedSignature(utf8(JSON.stringify({ ...obj, payloadType: PAYLOAD_TYPES.catalog })), 's')).toThrow(
      expect.objectContaining({ code: 'E_PAYLOAD_TYPE' }),
    );
    expect(() => parseDetachedSignature(utf8(JSON.stringify({ ...obj, payload: 'e30=' })), 's')).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_FIELD' }),
    );
    expect(() => parseDetachedSignature(utf8(JSON.stringify({ keyid: k.keyid, sig: 'ab'.repeat(64) })), 's')).toThrow(
      expect.objectContaining({ code: 'E_INCOMPATIBLE' }),
    );
  });
});

describe('Ed25519 policy', () => {
  // RFC 8032 §7.1, TEST 1-3: secret key, public key, message, signature.
  const vectors = [
    {
      seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
      msg: '',
      sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    },
    {
      seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
      pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
      msg: '72',
      sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
    },
    {
      seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
      pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
      msg: 'af82',
      sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
    },
  ];
  for (const [i, v] of vectors.entries()) {
    it(`signs and verifies RFC 8032 test ${i + 1}`, () => {
      const key = keyPairFromSeed(hexToBytes(v.seed));
      expect(bytesToHex(key.publicKey)).toBe(v.pub);
      const sig = signBytes(hexToBytes(v.msg), key);
      expect(Buffer.from(sig.sig, 'base64').toString('hex')).toBe(v.sig);
      expect(verifyBytes(hexToBytes(v.msg), sig.sig, v.pub)).toBe(true);
      expect(verifyBytes(hexToBytes(`${v.msg}00`), sig.sig, v.pub)).toBe(false);
    });
  }

  it('refuses a signature in any spelling but padded standard base64 of 64 bytes', () => {
    const v = vectors[0]!;
    const b64 = Buffer.from(v.sig, 'hex').toString('base64');
    expect(verifyBytes(new Uint8Array(), b64, v.pub)).toBe(true);
    expect(verifyBytes(new Uint8Array(), v.sig, v.pub)).toBe(false); // hex, the first format
    expect(verifyBytes(new Uint8Array(), b64.replace(/=+$/, ''), v.pub)).toBe(false);
    expect(verifyBytes(new Uint8Array(), Buffer.from(v.sig, 'hex').toString('base64url'), v.pub)).toBe(false);
  });

  // Small-order points: the identity (order 1), (0, -1) (order 2), and a point of order 8.
  const smallOrder = [
    '0100000000000000000000000000000000000000000000000000000000000000',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  ];
  for (const r of smallOrder) {
    it(`refuses a signature whose R is the small-order point ${r.slice(0, 8)}…, which plain cofactored verification accepts`, () => {
      const R = ed.Point.fromHex(r);
      expect(R.isSmallOrder()).toBe(true);
      const key = generateKeyPair();
      const { scalar } = ed.utils.getExtendedPublicKey(key.seed);
      const msg = utf8('a catalog');
      // S = k·a: then [8]SB = [8]kA = [8]R + [8]kA because [8]R is the identity.
      const L = 2n ** 252n + 27742317777372353535851937790883648493n;
      const h = createHash('sha512').update(R.toBytes()).update(key.publicKey).update(msg).digest();
      const k = BigInt(`0x${Buffer.from(h).reverse().toString('hex')}`) % L;
      const S = (k * scalar) % L;
      const sBytes = Buffer.from(S.toString(16).padStart(64, '0'), 'hex').reverse();
      const sig = Buffer.concat([Buffer.from(R.toBytes()), sBytes]);
      expect(ed.verify(sig, msg, key.publicKey, { zip215: false })).toBe(true);
      expect(verifyBytes(msg, sig.toString('base64'), bytesToHex(key.publicKey))).toBe(false);
    });
  }
});
