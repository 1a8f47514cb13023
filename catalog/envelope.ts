import { SwpkgError } from './errors.js';
import { sha256Hex } from './hash.js';
import { signBytes, verifyBytes, type KeyPair, type PublicKey, type Signature } from './keys.js';
import { assertKnownFields, isJsonObject, parseStrictJson, parseStrictJsonBytes, RawJsonString } from './strict-json.js';

/**
 * Every signed swpkg document is a DSSE envelope (github.com/secure-systems-lab/dsse):
 *
 *   {"payloadType": TYPE, "payload": BASE64(PAYLOAD), "signatures": [{"keyid": HEX, "sig": BASE64}]}
 *
 * and each signature is Ed25519 over PAE(TYPE, PAYLOAD) =
 * "DSSEv1" SP LEN(TYPE) SP TYPE SP LEN(PAYLOAD) SP PAYLOAD (lengths in ASCII
 * decimal). The signature covers the exact payload bytes and their type, so
 * verification never re-serialises anything, and a payload of one type can
 * never pass as another. A package signature is the same envelope with the
 * payload detached: `.SWPKG/signature.json` omits `payload`, which is the
 * exact bytes of `.SWPKG/manifest.json`.
 */

export const PAYLOAD_TYPES = {
  root: 'application/vnd.swpkg.root+json;version=2',
  catalog: 'application/vnd.swpkg.catalog+json;version=2',
  manifest: 'application/vnd.swpkg.manifest+json;version=2',
  release: 'application/vnd.swpkg.release+json;version=1',
  system: 'application/vnd.swpkg.system+json;version=1',
} as const;
export type PayloadType = (typeof PAYLOAD_TYPES)[keyof typeof PAYLOAD_TYPES];

/** An envelope whose framing parsed; its signatures are not checked yet. */
export interface Envelope {
  payloadType: string;
  /** The exact bytes that were signed. */
  payload: Uint8Array;
  signatures: Signature[];
}

/** Keys a role trusts and how many of them must sign. */
export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

const encoder = new TextEncoder();
// A plain character class, not a grouped repetition: the payload is tens of MB and must not meet a backtracking regex.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const KEYID = /^[0-9a-f]{64}$/;
/**
 * Base64 is encoded and decoded this many payload bytes at a time (a multiple of 3: whole
 * quanta). Small enough that each slice's string stays on V8's young heap, collected at once,
 * where strings over about 1 MB would be external memory freed only by a full collection.
 */
const BASE64_SLICE = 48 * 1024;
const BASE64_BODY = /^[A-Za-z0-9+/]*$/;
/** The first format (canonical JSON under `signed`); recognised only to refuse it clearly. */
export const LEGACY_FORMAT = 'swpkg 1 ({signed, signatures} over RFC 8785 canonical JSON)';

/**
 * Standard padded base64 with one spelling per byte string: unused trailing
 * bits must be zero (`QQ==`, never `QR==`), which re-encoding the last
 * quantum checks.
 */
export function decodeStrictBase64(s: string, what: string): Buffer {
  const last = s.slice(-4);
  if (s.length % 4 !== 0 || !BASE64_CHARS.test(s) || (s.length > 0 && Buffer.from(last, 'base64').toString('base64') !== last)) {
    throw new SwpkgError('E_MALFORMED', `${what} is not canonical standard base64`, { details: { what } });
  }
  return Buffer.from(s, 'base64');
}

/** DSSE's pre-authentication encoding: what each signature covers. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const head = paeHead(payloadType, payload.length);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** PAE's bytes before the payload. */
export function paeHead(payloadType: string, payloadLength: number): Buffer {
  return Buffer.from(`DSSEv1 ${encoder.encode(payloadType).length} ${payloadType} ${payloadLength} `);
}

/**
 * A payload of `length` bytes with room for its PAE head before it: fill `payload`, and signing
 * or verifying it reads the PAE in place (signedMessage) instead of copying tens of MB.
 */
export function payloadWithPaeRoom(payloadType: string, length: number): Buffer {
  const head = paeHead(payloadType, length);
  const buf = Buffer.allocUnsafe(head.length + length);
  head.copy(buf, 0);
  return buf.subarray(head.length);
}

/**
 * PAE(type, payload): a view over the payload's own memory when the bytes just before it are the
 * PAE head (a payload from payloadWithPaeRoom or parseEnvelope), else a copy. The view is chosen
 * by comparing the bytes, never by where the payload came from, so it is PAE either way.
 */
export function signedMessage(payloadType: string, payload: Uint8Array): Uint8Array {
  const head = paeHead(payloadType, payload.length);
  if (payload.byteOffset >= head.length) {
    const start = payload.byteOffset - head.length;
    if (head.equals(new Uint8Array(payload.buffer, start, head.length)))
      return new Uint8Array(payload.buffer, start, head.length + payload.length);
  }
  return pae(payloadType, payload);
}

/** Signs `payload` as `payloadType` with each key; signatures sorted by key id, so the same input gives the same bytes. */
export function signEnvelope(payloadType: string, payload: Uint8Array, keys: KeyPair[]): Envelope {
  const message = signedMessage(payloadType, payload);
  const byId = new Map(keys.map((k) => [k.keyid, k]));
  const signatures = [...byId.values()].map((k) => signBytes(message, k)).sort((a, b) => (a.keyid < b.keyid ? -1 : 1));
  return { payloadType, payload, signatures };
}

/** Adds (or replaces) one key's signature, keeping the payload bytes as they are. */
export function addSignature(env: Envelope, key: KeyPair): Envelope {
  const mine = signBytes(signedMessage(env.payloadType, env.payload), key);
  const signatures = [...env.signatures.filter((s) => s.keyid !== key.keyid), mine].sort((a, b) => (a.keyid < b.keyid ? -1 : 1));
  return { payloadType: env.payloadType, payload: env.payload, signatures };
}

/** The envelope as written to disk: indented JSON, fields in DSSE's order, one trailing newline. */
export function encodeEnvelope(env: Envelope): Buffer {
  const sigs = env.signatures.map((s) => `    {"keyid": ${JSON.stringify(s.keyid)}, "sig": ${JSON.stringify(s.sig)}}`).join(',\n');
  const head = Buffer.from(`{\n  "payloadType": ${JSON.stringify(env.payloadType)},\n  "payload": "`);
  const tail = Buffer.from(`",\n  "signatures": [${sigs ? `\n${sigs}\n  ` : ''}]\n}\n`);
  const payload = Buffer.from(env.payload.buffer, env.payload.byteOffset, env.payload.byteLength);
  const b64Length = 4 * Math.ceil(payload.length / 3);
  // Written straight into the output a slice at a time: a catalog's base64 is tens of MB, and neither it nor a second copy is held whole.
  const out = Buffer.allocUnsafe(head.length + b64Length + tail.length);
  head.copy(out, 0);
  let at = head.length;
  for (let i = 0; i < payload.length; i += BASE64_SLICE)
    at += out.write(payload.toString('base64', i, Math.min(i + BASE64_SLICE, payload.length)), at, 'latin1');
  tail.copy(out, at);
  return out;
}

function legacy(what: string): SwpkgError {
  return new SwpkgError('E_INCOMPATIBLE', `${what} is in the old swpkg format, ${LEGACY_FORMAT}, which this version no longer reads`, {
    hint: 'the publisher must republish with a current swpkg (`swpkg repo publish` into a fresh folder, or re-pack and re-sign the package); clients then pin the new root',
    details: { what, format: 'swpkg-1' },
  });
}

function parseSignatureList(value: unknown, what: string): Signature[] {
  if (!Array.isArray(value)) throw new SwpkgError('E_MALFORMED', `${what}: signatures must be an array`, { details: { what } });
  return value.map((s: unknown, i) => {
    if (!isJsonObject(s)) throw new SwpkgError('E_MALFORMED', `${what}: signatures[${i}] must be an object`, { details: { what } });
    assertKnownFields(s, ['keyid', 'sig'], `${what}: signatures[${i}]`);
    const { keyid, sig } = s;
    if (typeof keyid !== 'string' || !KEYID.test(keyid) || typeof sig !== 'string' || sig.length > 1024) {
      throw new SwpkgError('E_MALFORMED', `${what}: signatures[${i}] needs a hex keyid and a base64 sig`, { details: { what, index: i } });
    }
    return { keyid, sig };
  });
}

function assertType(actual: unknown, expected: PayloadType, what: string): void {
  if (actual !== expected) {
    throw new SwpkgError('E_PAYLOAD_TYPE', `${what} has payload type ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`, {
      hint: 'a document of another kind (or another format version) was served in its place',
      details: { what, expected, actual },
    });
  }
}

/**
 * Parses an envelope's framing strictly and checks its payload type; the
 * payload stays bytes until its signatures have been checked.
 */
export function parseEnvelope(bytes: Uint8Array, expected: PayloadType, what: string): Envelope {
  const { payload, signatures } = parseFraming(bytes, expected, what);
  const decoded =
    typeof payload === 'string'
      ? decodeStrictBase64(payload, `${what}: payload`)
      : decodeStrictBase64Range(bytes, payload, expected, `${what}: payload`, false);
  return { payloadType: expected, payload: decoded, signatures };
}

/** An envelope parsed by parseEnvelopeInPlace: the bytes it was read from are given back on demand. */
export interface InPlaceEnvelope extends Envelope {
  /**
   * The envelope's bytes exactly as they arrived, in slices: the framing kept aside and the
   * payload encoded again (canonical base64 has one spelling per byte string, so it is the same text).
   */
  originalBytes: () => Generator<Uint8Array>;
}

/**
 * parseEnvelope that decodes the payload inside `bytes` itself, for a document of tens of MB
 * (a catalog) whose fetched bytes and decoded payload would otherwise both be held: the
 * caller must read nothing from `bytes` afterwards, whether this returns or throws, only from
 * `originalBytes()`. A payload
 * holding an escape (never written by swpkg) is decoded into a buffer of its own, `bytes` untouched.
 */
export function parseEnvelopeInPlace(bytes: Uint8Array, expected: PayloadType, what: string): InPlaceEnvelope {
  const { payload, signatures } = parseFraming(bytes, expected, what);
  if (typeof payload === 'string') {
    const decoded = decodeStrictBase64(payload, `${what}: payload`);
    return {
      payloadType: expected,
      payload: decoded,
      signatures,
      originalBytes: function* () {
        yield bytes;
      },
    };
  }
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Copied before the decoding writes over the framing before the payload.
  const before = Buffer.from(src.subarray(0, payload.start));
  const after = src.subarray(payload.end);
  const decoded = decodeStrictBase64Range(bytes, payload, expected, `${what}: payload`, true);
  return {
    payloadType: expected,
    payload: decoded,
    signatures,
    originalBytes: function* () {
      yield before;
      for (let i = 0; i < decoded.length; i += BASE64_SLICE)
        yield Buffer.from(decoded.toString('base64', i, Math.min(i + BASE64_SLICE, decoded.length)), 'latin1');
      yield after;
    },
  };
}

/** The envelope's JSON, checked: its known fields, payload type and signature list; the payload still base64. */
function parseFraming(
  bytes: Uint8Array,
  expected: PayloadType,
  what: string,
): { payload: string | RawJsonString; signatures: Signature[] } {
  // The payload's base64 stays in `bytes` (no copy as a string) unless it holds an escape.
  const v = parseStrictJsonBytes(bytes, what, { rawString: 'payload' });
  if (!isJsonObject(v)) throw new SwpkgError('E_MALFORMED', `${what} is not a signed envelope`, { details: { what } });
  if ('signed' in v && !('payload' in v)) throw legacy(what);
  assertKnownFields(v, ['payloadType', 'payload', 'signatures'], what);
  assertType(v['payloadType'], expected, what);
  const payload = v['payload'];
  if (typeof payload !== 'string' && !(payload instanceof RawJsonString))
    throw new SwpkgError('E_MALFORMED', `${what}: payload must be a base64 string`, { details: { what } });
  return { payload, signatures: parseSignatureList(v['signatures'], what) };
}

/**
 * decodeStrictBase64 over base64 left in the envelope's bytes (escape-free, so those bytes are
 * the string), decoded a slice at a time with PAE's head before it: the signature check then
 * reads the payload where it is. Into a buffer of its own (payloadWithPaeRoom), or, `inPlace`,
 * into `bytes` from its first byte: each slice is read into a string before its bytes are
 * written, and what it writes (3 bytes per 4 characters, after the head) never reaches past
 * the slice, so nothing is overwritten before it is read. Only an envelope whose first slice
 * is too short for the head to fit that way (a payload of a few dozen bytes) gets a buffer of its own.
 */
function decodeStrictBase64Range(bytes: Uint8Array, range: RawJsonString, payloadType: string, what: string, inPlace: boolean): Buffer {
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { start, end } = range;
  const refuse = (): SwpkgError => new SwpkgError('E_MALFORMED', `${what} is not canonical standard base64`, { details: { what } });
  const length = end - start;
  if (length % 4 !== 0) throw refuse();
  const last = src.toString('latin1', end - 4, end);
  if (length > 0 && Buffer.from(last, 'base64').toString('base64') !== last) throw refuse();
  const pad = length === 0 ? 0 : last.endsWith('==') ? 2 : last.endsWith('=') ? 1 : 0;
  const size = (length / 4) * 3 - pad;
  const slice = (BASE64_SLICE / 3) * 4;
  const head = paeHead(payloadType, size);
  // The first slice writes head.length + 3/4 of its characters from byte 0 and must end before the second slice begins.
  const here = inPlace && head.length <= start + Math.min(slice, length) / 4;
  const out = here ? src.subarray(head.length, head.length + size) : payloadWithPaeRoom(payloadType, size);
  let at = 0;
  for (let i = start; i < end; i += slice) {
    const e = Math.min(i + slice, end);
    const text = src.toString('latin1', i, e);
    // Buffer's decoder skips what is not base64, so every character is checked first; '=' only at the very end.
    if (!(e === end ? BASE64_CHARS : BASE64_BODY).test(text)) throw refuse();
    at += out.write(text, at, 'base64');
  }
  if (at !== out.length) throw refuse();
  if (here) head.copy(src, 0);
  return out;
}

/** A package's `.SWPKG/signature.json`: a DSSE envelope whose payload is the manifest entry, kept detached. */
export interface DetachedSignature {
  payloadType: string;
  signatures: Signature[];
}

export function parseDetachedSignature(bytes: Uint8Array, what: string): DetachedSignature {
  const v = parseStrictJson(bytes, what);
  if (!isJsonObject(v)) throw new SwpkgError('E_MALFORMED', `${what} is not a signature envelope`, { details: { what } });
  if ('sig' in v && 'keyid' in v && !('signatures' in v)) throw legacy(what);
  assertKnownFields(v, ['payloadType', 'signatures'], what);
  assertType(v['payloadType'], PAYLOAD_TYPES.manifest, what);
  return { payloadType: PAYLOAD_TYPES.manifest, signatures: parseSignatureList(v['signatures'], what) };
}

export function encodeDetachedSignature(s: DetachedSignature): Buffer {
  const sigs = s.signatures.map((x) => `{"keyid":${JSON.stringify(x.keyid)},"sig":${JSON.stringify(x.sig)}}`).join(',');
  return Buffer.from(`{"payloadType":${JSON.stringify(s.payloadType)},"signatures":[${sigs}]}`);
}

/** SHA-256 of the payload bytes: what equivocation and root fingerprints compare, whatever the framing. */
export function payloadSha256(env: Envelope): string {
  return sha256Hex(env.payload);
}

/**
 * Counts distinct role keys whose signature over PAE(type, payload)
 * verifies. A signature by a key outside the role does not count; a bad
 * signature by a role key is reported as E_SIGNATURE when the threshold is
 * not met.
 */
export function checkThreshold(env: Envelope, role: RoleKeys, keys: Record<string, PublicKey>, what: string): void {
  const message = signedMessage(env.payloadType, env.payload);
  const good = new Set<string>();
  let badByRoleKey = 0;
  let unknown = 0;
  for (const sig of env.signatures) {
    if (!role.keyids.includes(sig.keyid)) {
      unknown++;
      continue;
    }
    if (good.has(sig.keyid)) continue;
    const key = Object.hasOwn(keys, sig.keyid) ? keys[sig.keyid] : undefined;
    if (key && verifyBytes(message, sig.sig, key.public)) good.add(sig.keyid);
    else badByRoleKey++;
  }
  if (good.size >= role.threshold) return;
  const details = { need: role.threshold, valid: good.size, invalid: badByRoleKey, unknownKeys: unknown, trustedKeyids: role.keyids };
  if (badByRoleKey > 0) {
    throw new SwpkgError('E_SIGNATURE', `${what}: a signature does not verify (the document was altered or signed wrongly)`, {
      hint: 'do not use this copy; fetch it again from a trusted source, and tell the publisher if it persists',
      details,
    });
  }
  if (good.size === 0 && unknown > 0) {
    throw new SwpkgError('E_UNKNOWN_KEY', `${what}: signed only by keys the trusted root does not list`, {
      hint: 'the repository may have rotated its keys without publishing a new root, or this is not the repository you pinned',
      details: { ...details, signedBy: env.signatures.map((s) => s.keyid) },
    });
  }
  throw new SwpkgError('E_THRESHOLD', `${what}: ${good.size} valid signature(s), ${role.threshold} required`, {
    hint: 'the publisher must sign with more of the role keys',
    details,
  });
}
