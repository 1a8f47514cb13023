import * as ed from '@noble/ed25519';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { SwpkgError } from './errors.js';
import { sha256Hex } from './hash.js';

// OpenSSL's SHA-512 instead of a JavaScript one: a catalog signature hashes tens of MB (bench/catalog).
ed.hashes.sha512 = (m) => new Uint8Array(createHash('sha512').update(m).digest());

/** A public key as it appears in roots and `.pub` files. */
export interface PublicKey {
  type: 'ed25519';
  /** 32 bytes, lowercase hex. */
  public: string;
}

/** A private key file's content. Written 0600, never into a web root. */
export interface PrivateKeyFile {
  type: 'ed25519-private';
  keyid: string;
  /** 32-byte seed, lowercase hex. */
  seed: string;
  public: string;
}

export interface PublicKeyFile extends PublicKey {
  keyid: string;
}

export interface KeyPair {
  keyid: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
}

const HEX64 = /^[0-9a-f]{64}$/;

export function hexToBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Key ids are the SHA-256 of the public key bytes (DESIGN.md). */
export function keyIdOf(publicKey: Uint8Array): string {
  return sha256Hex(publicKey);
}

export function generateKeyPair(): KeyPair {
  const seed = Uint8Array.from(randomBytes(32));
  return keyPairFromSeed(seed);
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  const publicKey = ed.getPublicKey(seed);
  return { keyid: keyIdOf(publicKey), seed, publicKey };
}

export function toPrivateKeyFile(k: KeyPair): PrivateKeyFile {
  return { type: 'ed25519-private', keyid: k.keyid, seed: bytesToHex(k.seed), public: bytesToHex(k.publicKey) };
}

export function toPublicKeyFile(k: KeyPair): PublicKeyFile {
  return { type: 'ed25519', keyid: k.keyid, public: bytesToHex(k.publicKey) };
}

/** Parses a private key file; the seed must re-derive the recorded public key. */
export function parsePrivateKeyFile(value: unknown, source: string): KeyPair {
  const v = value as Partial<PrivateKeyFile> | null;
  if (!v || typeof v !== 'object' || v.type !== 'ed25519-private' || typeof v.seed !== 'string' || !HEX64.test(v.seed)) {
    throw new SwpkgError('E_INVALID_KEY', `${source} is not an swpkg private key`, {
      hint: 'create one with `swpkg key generate --out DIR`; pass the file without .pub',
      details: { source },
    });
  }
  const k = keyPairFromSeed(hexToBytes(v.seed));
  if (v.public !== undefined && v.public !== bytesToHex(k.publicKey)) {
    throw new SwpkgError('E_INVALID_KEY', `${source}: public key does not match the seed`, { details: { source } });
  }
  return k;
}

/** Parses and checks a public key (`.pub` file or root entry). Small-order keys are refused. */
export function parsePublicKey(value: unknown, source: string): PublicKeyFile {
  const v = value as Partial<PublicKey> | null;
  if (!v || typeof v !== 'object' || v.type !== 'ed25519' || typeof v.public !== 'string' || !HEX64.test(v.public)) {
    throw new SwpkgError('E_INVALID_KEY', `${source} is not an ed25519 public key`, { details: { source } });
  }
  const bytes = hexToBytes(v.public);
  assertUsablePublicKey(bytes, source);
  return { type: 'ed25519', public: v.public, keyid: keyIdOf(bytes) };
}

/**
 * A small-order (or non-canonical) public key lets anyone forge signatures
 * that verify under it, so such a key is refused when a root is loaded.
 */
export function assertUsablePublicKey(bytes: Uint8Array, source: string): void {
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(bytes, false);
  } catch (e) {
    throw new SwpkgError('E_INVALID_KEY', `${source}: public key is not a valid curve point`, { cause: e, details: { source } });
  }
  if (point.isSmallOrder()) {
    throw new SwpkgError('E_INVALID_KEY', `${source}: public key has small order and cannot be trusted`, {
      details: { source, public: bytesToHex(bytes) },
    });
  }
}

/** One signature of a DSSE envelope. */
export interface Signature {
  /** SHA-256 of the signer's public key bytes, lowercase hex. */
  keyid: string;
  /** 64 bytes, standard base64 with padding (DSSE). */
  sig: string;
}

/** Standard, padded base64 of exactly 64 bytes: the only spelling of a signature accepted. */
const SIG_B64 = /^[A-Za-z0-9+/]{85}[AQgw]==$/;

/** PKCS#8 framing of a raw Ed25519 seed (RFC 8410), so OpenSSL can sign with it. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Ed25519 (RFC 8032, deterministic: the same key and message give the same
 * signature) through OpenSSL, which hashes a tens-of-MB catalog without the
 * two message copies a JavaScript signer makes; the RFC test vectors in the
 * unit tests pin its output. Verification stays with the strict policy below.
 */
export function signBytes(message: Uint8Array, key: KeyPair): Signature {
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, key.seed]);
  const sig = cryptoSign(null, message, createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  return { keyid: key.keyid, sig: sig.toString('base64') };
}

/** SPKI framing of a raw Ed25519 public key (RFC 8410), so OpenSSL can verify with it. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** L, the order of the base point, as 32 little-endian bytes: S must be below it. */
const L_LE = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/**
 * Every encoding of a small-order point with y < p: the eight canonical ones
 * (the 8-torsion subgroup: orders 1, 2, 4, 4, 8, 8, 8, 8) and the two x = 0
 * points with the sign bit set, which strict decoding refuses but a lenient
 * one reads as the identity and (0, -1). libsodium refuses R against a list
 * like this one; with y >= p refused separately, no other R decodes to a
 * point of small order under any decoder.
 */
const SMALL_ORDER_ENCODINGS = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
].map((h) => Buffer.from(h, 'hex'));

/** Little-endian 32-byte S < L. */
function scalarBelowL(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! !== L_LE[i]!) return s[i]! < L_LE[i]!;
  }
  return false;
}

/** y < p = 2^255 - 19 for a point encoding (bit 255 is x's sign): p..2^255-1 are ed..ff ff..ff 7f/ff. */
function canonicalY(b: Uint8Array): boolean {
  if ((b[31]! & 0x7f) !== 0x7f || b[0]! < 0xed) return true;
  for (let i = 1; i < 31; i++) if (b[i] !== 0xff) return true;
  return false;
}

/**
 * Per public key: its OpenSSL handle; false when the strict policy refuses
 * the key itself (not a canonical point encoding, or of small order); null
 * when OpenSSL will not load a key the policy accepts (the JS check decides).
 * Keys come from roots and trust stores, so there are few; the bound only
 * keeps memory flat if a caller ever feeds many.
 */
const verifierKeys = new Map<string, KeyObject | false | null>();
const VERIFIER_KEYS_MAX = 1024;

function verifierKey(publicHex: string): KeyObject | false | null {
  let key = verifierKeys.get(publicHex);
  if (key !== undefined) return key;
  const bytes = hexToBytes(publicHex);
  let usable: boolean;
  try {
    usable = !ed.Point.fromBytes(bytes, false).isSmallOrder();
  } catch {
    usable = false;
  }
  try {
    key = usable ? createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, bytes]), format: 'der', type: 'spki' }) : false;
  } catch {
    key = null;
  }
  if (verifierKeys.size >= VERIFIER_KEYS_MAX) verifierKeys.clear();
  verifierKeys.set(publicHex, key);
  return key;
}

/**
 * The signature policy (docs/design.md): RFC 8032 with strict decoding
 * (`zip215: false`: S < L, canonical encodings of A and R), public keys of
 * small order refused, and R of small order refused too, so no signature
 * verifies by the torsion component alone. Verification is cofactored
 * ([8][S]B = [8]R + [8][k]A, @noble/ed25519's equation), which accepts
 * everything the cofactorless equation does for honestly made signatures.
 * OpenSSL does the work where it can, with the same answers (below).
 */
export function verifyBytes(message: Uint8Array, sigB64: string, publicHex: string): boolean {
  return verifyBytesWith(message, sigB64, publicHex, opensslVerify);
}

function opensslVerify(message: Uint8Array, sig: Buffer, key: KeyObject): boolean {
  return cryptoVerify(null, message, key, sig);
}

/**
 * The policy around a native verifier (OpenSSL in `verifyBytes`; tests pass
 * stand-ins for other builds of it). Why the answers are the policy's
 * exactly (docs/design.md, "Signature policy"): cheap checks on the bytes
 * first refuse what the policy refuses and a native verifier might not: S >= L,
 * R spelled with y >= p or as a point of small order, and a key that is not a
 * canonical encoding or is of small order (decided once per key). What is left
 * has R and A each read as one point by any decoder, neither of small order.
 * If the native verifier accepts, the equation holds for those points:
 * cofactorless [S]B = R + [k]A (OpenSSL recomputes R and compares its
 * canonical encoding with R's bytes) or cofactored, and either implies the
 * cofactored one, so the policy accepts too. The converse fails only when R
 * or A carries a torsion component (a mixed-order key or R, which only the
 * private key's holder can make), and OpenSSL also refuses some inputs the
 * checks above already settle; so whatever the native verifier refuses gets
 * the pure-JS cofactored answer. Valid signatures, the hot path, never reach
 * the JS curve arithmetic, and OpenSSL hashes the message in place where the
 * JS verifier first copies it into one buffer with R and A.
 */
export function verifyBytesWith(
  message: Uint8Array,
  sigB64: string,
  publicHex: string,
  native: (message: Uint8Array, sig: Buffer, key: KeyObject) => boolean,
): boolean {
  if (!SIG_B64.test(sigB64) || !HEX64.test(publicHex)) return false;
  const sig = Buffer.from(sigB64, 'base64');
  const r = sig.subarray(0, 32);
  if (!scalarBelowL(sig.subarray(32)) || !canonicalY(r) || SMALL_ORDER_ENCODINGS.some((e) => e.equals(r))) return false;
  const key = verifierKey(publicHex);
  if (key === false) return false;
  let accepted = false;
  try {
    accepted = key !== null && native(message, sig, key);
  } catch {
    // A native error is no verdict: the JS check gives the policy's answer.
  }
  return accepted || cofactoredVerify(message, sig, publicHex);
}

/** The pure-JS strict cofactored check (the policy itself), for whatever OpenSSL refuses. */
function cofactoredVerify(message: Uint8Array, sig: Buffer, publicHex: string): boolean {
  try {
    if (ed.Point.fromBytes(sig.subarray(0, 32), false).isSmallOrder()) return false;
    return ed.verify(sig, message, hexToBytes(publicHex), { zip215: false });
  } catch {
    return false;
  }
}
