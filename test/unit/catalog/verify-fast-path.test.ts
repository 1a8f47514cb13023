import { describe, expect, it } from 'vitest';
import * as ed from '@noble/ed25519';
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bytesToHex, hexToBytes, keyPairFromSeed, signBytes, verifyBytes, verifyBytesWith, type KeyPair } from '../../../catalog/index.js';

// verifyBytes runs OpenSSL's Ed25519 first and the pure-JS cofactored check only when OpenSSL
// refuses. These tests hold it to the policy as it was before that fast path: the reference below
// is the previous verifyBytes, kept verbatim, and every input here must get the same answer from
// both. OpenSSL builds differ (3.5 refuses small-order R and A itself, 3.0 does not), so the same
// inputs also go through verifyBytesWith with two stand-ins for the native verifier that check
// nothing but an equation, and one that always throws: the checks on bytes and the JS fallback
// must hold the policy whatever the native verifier does.
const SIG_B64 = /^[A-Za-z0-9+/]{85}[AQgw]==$/;
const HEX64 = /^[0-9a-f]{64}$/;
function referenceVerify(message: Uint8Array, sigB64: string, publicHex: string): boolean {
  if (!SIG_B64.test(sigB64) || !HEX64.test(publicHex)) return false;
  const sig = Buffer.from(sigB64, 'base64');
  try {
    if (ed.Point.fromBytes(sig.subarray(0, 32), false).isSmallOrder()) return false;
    return ed.verify(sig, message, hexToBytes(publicHex), { zip215: false });
  } catch {
    return false;
  }
}

const spkiOf = (publicKey: Uint8Array): KeyObject =>
  createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]), format: 'der', type: 'spki' });
const rawOf = (key: KeyObject): Buffer => key.export({ format: 'der', type: 'spki' }).subarray(12);

type Native = (message: Uint8Array, sig: Buffer, key: KeyObject) => boolean;
/** This build's OpenSSL alone. */
const openssl: Native = (message, sig, key) => cryptoVerify(null, message, key, sig);
/**
 * RFC 8032's cofactorless check as OpenSSL 1.1.1-3.0 do it and nothing more: A decoded leniently,
 * R' = [S]B - [k]A, accepted when R' encodes to R's bytes.
 */
const cofactorless: Native = (message, sig, key) => {
  try {
    const pub = rawOf(key);
    const A = ed.Point.fromBytes(pub, true);
    const k = challenge(sig.subarray(0, 32), pub, message);
    const s = leToBig(sig.subarray(32)) % L;
    const R = (s === 0n ? ed.Point.ZERO : ed.Point.BASE.multiply(s)).subtract(k === 0n ? ed.Point.ZERO : A.multiply(k));
    return Buffer.from(R.toBytes()).equals(sig.subarray(0, 32));
  } catch {
    return false;
  }
};
/** The most lenient: cofactored with ZIP 215 decoding (any y below 2^255, small-order A and R). */
const lenient: Native = (message, sig, key) => ed.verify(sig, message, rawOf(key), { zip215: true });
/** A native verifier that fails outright: no verdict, so every answer is the JS check's. */
const broken: Native = () => {
  throw new Error('native verifier unavailable');
};
const natives = { openssl, cofactorless, lenient, broken };

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse();
const leToBig = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
const challenge = (r: Uint8Array, a: Uint8Array, msg: Uint8Array): bigint =>
  leToBig(createHash('sha512').update(r).update(a).update(msg).digest()) % L;
const b64 = (sig: Uint8Array): string => Buffer.from(sig).toString('base64');

/** A deterministic byte stream (SHA-256 in counter mode), so a failing case can be replayed. */
function prng(seed: string): (n: number) => Buffer {
  let counter = 0;
  return (n) => {
    const out: Buffer[] = [];
    for (let len = 0; len < n; len += 32) out.push(createHash('sha256').update(`${seed}/${counter++}`).digest());
    return Buffer.concat(out).subarray(0, n);
  };
}

/** The eight points of small order, from a point of order 8. */
const P8 = ed.Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
const torsion: ed.Point[] = [];
for (let i = 0, q = ed.Point.ZERO; i < 8; i++, q = q.add(P8)) torsion.push(q);

interface Case {
  msg: Uint8Array;
  sig: Uint8Array;
  pub: Uint8Array;
}

/** Signs with the key's scalar under arbitrary R and A bytes: S = r + k·a, k over the given bytes. */
function craft(key: KeyPair, rScalar: bigint, rBytes: Uint8Array, aBytes: Uint8Array, msg: Uint8Array): Case {
  const { scalar } = ed.utils.getExtendedPublicKey(key.seed);
  const s = (rScalar + challenge(rBytes, aBytes, msg) * scalar) % L;
  return { msg, sig: Buffer.concat([rBytes, le(s)]), pub: aBytes };
}

/** Asserts verifyBytes and verifyBytesWith over every stand-in give the reference's answer. */
function expectSame(c: Case, only?: Native): boolean {
  const args = [c.msg, b64(c.sig), bytesToHex(c.pub)] as const;
  const want = referenceVerify(...args);
  const what = `sig ${bytesToHex(c.sig)} key ${bytesToHex(c.pub)}`;
  expect(verifyBytes(...args), what).toBe(want);
  for (const [name, native] of Object.entries(natives)) {
    if (only && native !== only) continue;
    expect(verifyBytesWith(...args, native), `${name}: ${what}`).toBe(want);
  }
  return want;
}

/** Whether a native verifier alone accepts (no policy checks): shows which inputs need them. */
const nativeAccepts = (native: Native, c: Case): boolean => {
  try {
    return native(c.msg, Buffer.from(c.sig), spkiOf(c.pub));
  } catch {
    return false;
  }
};

const key = keyPairFromSeed(Buffer.alloc(32, 7));
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('Ed25519 fast path: the same answers as the pure-JS strict policy', () => {
  it('agrees on every Wycheproof Ed25519 vector, and the policy gives the Wycheproof verdict on each', () => {
    const file = fileURLToPath(new URL('../../fixtures/wycheproof/ed25519_test.json', import.meta.url));
    const suite = JSON.parse(readFileSync(file, 'utf8')) as {
      numberOfTests: number;
      testGroups: { publicKey: { pk: string }; tests: { tcId: number; msg: string; sig: string; result: string }[] }[];
    };
    let n = 0;
    let valid = 0;
    for (const group of suite.testGroups) {
      for (const t of group.tests) {
        n++;
        const c = { msg: hexToBytes(t.msg), sig: hexToBytes(t.sig), pub: hexToBytes(group.publicKey.pk) };
        const want = expectSame(c);
        expect(want, `tcId ${t.tcId}`).toBe(t.result === 'valid');
        if (want) valid++;
      }
    }
    expect(n).toBe(suite.numberOfTests);
    expect(valid).toBeGreaterThan(80);
  });

  it('agrees on the RFC 8032 section 7.1 vectors and refuses them altered', () => {
    const vectors = [
      [
        'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
        '',
        'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
      ],
      [
        '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
        '72',
        '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      ],
      [
        'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
        'af82',
        '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
      ],
    ] as const;
    for (const [pub, msg, sig] of vectors) {
      const c = { msg: hexToBytes(msg), sig: hexToBytes(sig), pub: hexToBytes(pub) };
      expect(nativeAccepts(openssl, c)).toBe(true);
      expect(expectSame(c)).toBe(true);
      expect(expectSame({ ...c, msg: hexToBytes(`${msg}00`) })).toBe(false);
    }
  });

  it('refuses S + L, which a verifier that reduces S would accept', () => {
    const msg = utf8('a catalog');
    const sig = Buffer.from(signBytes(msg, key).sig, 'base64');
    const big = le(leToBig(sig.subarray(32)) + L);
    expect(big.length).toBe(32);
    const c = { msg, sig: Buffer.concat([sig.subarray(0, 32), big]), pub: key.publicKey };
    expect(nativeAccepts(cofactorless, c)).toBe(true);
    expect(expectSame(c)).toBe(false);
  });

  it('refuses R of each small order, spelled canonically or with x = 0 and the sign bit', () => {
    // S = k·a: the cofactored equation holds for any R of small order ([8]R is the identity).
    const spellings = [...torsion.map((t) => t.toBytes()), hexToBytes(`01${'00'.repeat(30)}80`), hexToBytes(`ec${'ff'.repeat(31)}`)];
    for (const [i, r] of spellings.entries()) {
      const c = craft(key, 0n, r, key.publicKey, utf8(`R of small order ${i}`));
      expect(nativeAccepts(lenient, c), `R ${i}`).toBe(true);
      expect(expectSame(c)).toBe(false);
    }
  });

  it('refuses a small-order R that a mixed-order key lets the cofactorless equation accept', () => {
    // A' = A + P8 and S = k·a give [S]B - [k]A' = -[k]P8, a small-order point: where R's bytes are
    // that point, [S]B = R + [k]A' holds exactly. Only the small-order-R refusal stops it.
    const aMixed = ed.Point.fromBytes(key.publicKey).add(P8).toBytes();
    const seen = new Set<number>();
    for (let m = 0; seen.size < 8 && m < 2000; m++) {
      const msg = utf8(`mixed key ${m}`);
      for (const [i, T] of torsion.entries()) {
        if (seen.has(i) || (8n - (challenge(T.toBytes(), aMixed, msg) % 8n)) % 8n !== BigInt(i)) continue;
        const c = craft(key, 0n, T.toBytes(), aMixed, msg);
        expect(nativeAccepts(cofactorless, c), `R = torsion ${i}`).toBe(true);
        expect(expectSame(c)).toBe(false);
        seen.add(i);
      }
    }
    expect(seen.size).toBe(8);
  });

  it('refuses a small-order key, canonical or not, that native verifiers accept', () => {
    // With A of small order, R = [S]B satisfies the cofactored equation for any message, and the
    // cofactorless one too when A is the identity.
    const s = 12345n;
    const R = ed.Point.BASE.multiply(s).toBytes();
    const identity = [`01${'00'.repeat(31)}`, `ee${'ff'.repeat(30)}7f`, `01${'00'.repeat(30)}80`]; // y = 1, y = p + 1, x = 0 with the sign bit
    for (const a of identity) {
      const c = { msg: utf8('anything'), sig: Buffer.concat([R, le(s)]), pub: hexToBytes(a) };
      expect(nativeAccepts(cofactorless, c), a).toBe(true);
      expect(expectSame(c)).toBe(false);
    }
    // Every other small-order key, and (0, 0)'s order-4 point spelled y = p.
    for (const a of [...torsion.slice(1).map((t) => t.toBytes()), le(2n ** 255n - 19n)]) {
      const c = { msg: utf8('anything'), sig: Buffer.concat([R, le(s)]), pub: a };
      expect(nativeAccepts(lenient, c), bytesToHex(a)).toBe(true);
      expect(expectSame(c)).toBe(false);
    }
  });

  it('refuses a non-canonical R (y + p) that a lenient decoder accepts', () => {
    // The identity spelled y = p + 1, S = k·a over those exact bytes; and an honest R whose
    // y is below 19, respelled y + p, with S recomputed over the new bytes.
    const c = craft(key, 0n, hexToBytes(`ee${'ff'.repeat(30)}7f`), key.publicKey, utf8('non-canonical R'));
    expect(nativeAccepts(lenient, c)).toBe(true);
    expect(expectSame(c)).toBe(false);
    for (let y = 2n; y < 19n; y++) {
      const spelled = le(y + 2n ** 255n - 19n);
      try {
        ed.Point.fromBytes(spelled, true);
      } catch {
        continue; // no point has this y
      }
      const garbage = { msg: utf8(`y = ${y}`), sig: Buffer.concat([spelled, le(1n)]), pub: key.publicKey };
      expect(expectSame(garbage)).toBe(false);
    }
  });

  it('accepts, like the cofactored policy, a mixed-order key or R that OpenSSL refuses', () => {
    let viaFallback = 0;
    for (let m = 0; m < 16; m++) {
      const msg = utf8(`mixed ${m}`);
      const r = 1000n + BigInt(m);
      const T = torsion[1 + (m % 7)]!;
      // A' = A + T: [S]B = R + [k]A' - [k]T, so the cofactorless check fails unless k·T = 0.
      const aMixed = ed.Point.fromBytes(key.publicKey).add(T).toBytes();
      const c1 = craft(key, r, ed.Point.BASE.multiply(r).toBytes(), aMixed, msg);
      if (!nativeAccepts(openssl, c1)) viaFallback++;
      expect(expectSame(c1)).toBe(true);
      // R' = rB + T: the cofactorless check always fails, the cofactored one holds.
      const c2 = craft(key, r, ed.Point.BASE.multiply(r).add(T).toBytes(), key.publicKey, msg);
      expect(nativeAccepts(openssl, c2)).toBe(false);
      expect(expectSame(c2)).toBe(true);
    }
    expect(viaFallback).toBeGreaterThan(8);
  });

  it('agrees on random keys and messages, honest, with mixed-order parts, and with a bit flipped', () => {
    const rand = prng('verify-fast-path');
    const byte = (): number => rand(1)[0]!;
    const flip = (b: Uint8Array): Buffer => {
      const out = Buffer.from(b);
      if (out.length > 0) {
        const bit = Number(leToBig(rand(4)) % BigInt(out.length * 8));
        out[bit >> 3]! ^= 1 << (bit & 7);
      }
      return out;
    };
    let accepted = 0;
    let checked = 0;
    for (let i = 0; i < 200; i++) {
      const k = keyPairFromSeed(rand(32));
      const msg = rand(byte() % 64);
      const cases: Case[] = [{ msg, sig: Buffer.from(signBytes(msg, k).sig, 'base64'), pub: k.publicKey }];
      if (i % 4 === 0) {
        const T = torsion[byte() % 8]!;
        const r = (leToBig(rand(32)) % (L - 1n)) + 1n;
        const mixedA = ed.Point.fromBytes(k.publicKey).add(T).toBytes();
        cases.push(craft(k, r, ed.Point.BASE.multiply(r).add(T).toBytes(), mixedA, msg));
      }
      for (const base of [...cases]) {
        for (let f = 0; f < 2; f++) {
          const which = byte() % 3;
          cases.push(
            which === 0
              ? { ...base, sig: flip(base.sig) }
              : which === 1
                ? { ...base, pub: flip(base.pub) }
                : { ...base, msg: flip(base.msg) },
          );
        }
      }
      // The pure-JS stand-ins are slow: every eighth round only.
      for (const c of cases) {
        if (expectSame(c, i % 8 === 0 ? undefined : openssl)) accepted++;
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(700);
    expect(accepted).toBeGreaterThanOrEqual(250);
  });

  it('verifies a 16 MiB message and refuses it with its last byte changed', () => {
    const msg = Buffer.alloc(16 << 20, 0x61);
    const sig = signBytes(msg, key).sig;
    expect(verifyBytes(msg, sig, bytesToHex(key.publicKey))).toBe(true);
    msg[msg.length - 1] = 0x62;
    expect(verifyBytes(msg, sig, bytesToHex(key.publicKey))).toBe(false);
  });
});
