import * as ed from '@noble/ed25519';
import { createHash, createPrivateKey, randomBytes, sign as cryptoSign } from 'node:crypto';
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

/**
 * The signature policy (docs/design.md): RFC 8032 with strict decoding
 * (`zip215: false`: S < L, canonical encodings of A and R), public keys of
 * small order refused, and R of small order refused too, so no signature
 * verifies by the torsion component alone. Verification is cofactored
 * ([8][S]B = [8]R + [8][k]A, @noble/ed25519's equation), which accepts
 * everything the cofactorless equation does for honestly made signatures.
 */
export function verifyBytes(message: Uint8Array, sigB64: string, publicHex: string): boolean {
  if (!SIG_B64.test(sigB64) || !HEX64.test(publicHex)) return false;
  const sig = Buffer.from(sigB64, 'base64');
  try {
    if (ed.Point.fromBytes(sig.subarray(0, 32), false).isSmallOrder()) return false;
    return ed.verify(sig, message, hexToBytes(publicHex), { zip215: false });
  } catch {
    return false;
  }
}
