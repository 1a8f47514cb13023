import { SwpkgError } from './errors.js';
import { canonicalBytes } from './canonical-json.js';
import { bytesToHex, parsePublicKey, type KeyPair, type PublicKey } from './keys.js';
import {
  checkThreshold,
  parseEnvelope,
  payloadSha256,
  signEnvelope,
  PAYLOAD_TYPES,
  encodeEnvelope,
  type Envelope,
  type RoleKeys,
} from './envelope.js';
import { assertKnownFields, isJsonObject, parseStrictJson } from './strict-json.js';

export { checkThreshold, type RoleKeys } from './envelope.js';

/** A signed document: its envelope (the exact payload bytes and signatures) and the payload as parsed. */
export interface Signed<T> extends Envelope {
  signed: T;
}

export interface RootSigned {
  type: 'root';
  version: number;
  expires: string;
  keys: Record<string, PublicKey>;
  /**
   * `release` is optional and absent in roots written before issue 15: it names the keys that sign
   * pinned releases, so a release key can be kept apart from the catalog key.
   */
  roles: { root: RoleKeys; catalog: RoleKeys; release?: RoleKeys };
}

export type RootDocument = Signed<RootSigned>;

function badRoot(source: string, why: string, details: Record<string, unknown> = {}): SwpkgError {
  return new SwpkgError('E_BAD_ROOT', `${source}: ${why}`, { details: { source, ...details } });
}

export function parseTime(value: unknown, field: string, source: string): Date {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) {
    throw badRoot(source, `${field} must be an ISO-8601 UTC time`, { field, value });
  }
  return new Date(value);
}

function parseRole(value: unknown, name: string, keys: Record<string, PublicKey>, source: string): RoleKeys {
  if (!isJsonObject(value) || !Array.isArray(value['keyids']) || typeof value['threshold'] !== 'number') {
    throw badRoot(source, `role ${name} needs keyids and threshold`);
  }
  assertKnownFields(value, ['keyids', 'threshold'], `${source}: role ${name}`);
  const keyids = value['keyids'] as unknown[];
  const threshold = value['threshold'];
  if (!Number.isInteger(threshold) || threshold < 1) throw badRoot(source, `role ${name} threshold must be a positive integer`);
  const ids = keyids.map((k) => {
    // hasOwn, not `in`: "constructor" is in every object.
    if (typeof k !== 'string' || !Object.hasOwn(keys, k))
      throw badRoot(source, `role ${name} names key ${String(k)}, which the root does not list`);
    return k;
  });
  if (new Set(ids).size !== ids.length) throw badRoot(source, `role ${name} lists a key twice`);
  if (threshold > ids.length) throw badRoot(source, `role ${name} threshold ${threshold} exceeds its ${ids.length} keys`);
  return { keyids: ids, threshold };
}

/**
 * Parses a root payload (strict JSON, unknown fields refused). Key ids must
 * equal the SHA-256 of their key bytes, and small-order keys are refused
 * here, at load time.
 */
export function parseRootPayload(payload: Uint8Array, source: string): RootSigned {
  const s = parseStrictJson(payload, `${source} payload`);
  if (!isJsonObject(s)) throw badRoot(source, 'payload is not an object');
  assertKnownFields(s, ['type', 'version', 'expires', 'keys', 'roles'], `${source} payload`);
  if (s['type'] !== 'root') throw badRoot(source, `type is ${JSON.stringify(s['type'])}, expected "root"`);
  const version = s['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw badRoot(source, 'version must be a positive integer');
  parseTime(s['expires'], 'expires', source);
  const rawKeys = s['keys'];
  if (!isJsonObject(rawKeys)) throw badRoot(source, 'keys must be an object');
  const keys: Record<string, PublicKey> = {};
  for (const [keyid, raw] of Object.entries(rawKeys)) {
    if (isJsonObject(raw)) assertKnownFields(raw, ['type', 'public'], `${source} key ${keyid}`);
    const k = parsePublicKey(raw, `${source} key ${keyid}`);
    if (k.keyid !== keyid) throw badRoot(source, `key id ${keyid} is not the SHA-256 of its key`, { keyid });
    keys[keyid] = { type: 'ed25519', public: k.public };
  }
  const roles = s['roles'];
  if (!isJsonObject(roles)) throw badRoot(source, 'roles must be an object');
  assertKnownFields(roles, ['root', 'catalog', 'release'], `${source} roles`);
  const parsedRoles: RootSigned['roles'] = {
    root: parseRole(roles['root'], 'root', keys, source),
    catalog: parseRole(roles['catalog'], 'catalog', keys, source),
  };
  if (Object.hasOwn(roles, 'release')) parsedRoles.release = parseRole(roles['release'], 'release', keys, source);
  return { type: 'root', version, expires: s['expires'] as string, keys, roles: parsedRoles };
}

/**
 * The keys a root authorises to sign releases. A root without a release role authorises none:
 * falling back to the catalog keys would let an old catalog key sign pinned deployments nobody chose.
 */
export function releaseRole(root: RootDocument, source: string): RoleKeys {
  const role = root.signed.roles.release;
  if (!role) {
    throw new SwpkgError('E_UNKNOWN_KEY', `${source}: root v${root.signed.version} names no release keys, so no release can be trusted`, {
      hint: 'the publisher adds release keys with `swpkg repo rotate-root --release-key KEY.pub`',
      details: { source, rootVersion: root.signed.version },
    });
  }
  return role;
}

/**
 * Parses a root envelope and its payload. Signatures are checked by the
 * verify functions, not here: a root's own keys are inside its payload.
 */
export function parseRoot(bytes: Uint8Array, source: string): RootDocument {
  const env = parseEnvelope(bytes, PAYLOAD_TYPES.root, source);
  return { ...env, signed: parseRootPayload(env.payload, source) };
}

export function assertNotExpired(expires: string, now: Date, what: string): void {
  const t = new Date(expires);
  if (!(t.getTime() > now.getTime())) {
    throw new SwpkgError('E_EXPIRED', `${what} expired at ${expires}; this machine's time is ${now.toISOString()}`, {
      hint: 'if the clock is right, the repository is stale or someone is replaying old metadata (freeze attack): ask the publisher to republish; if the clock is wrong, fix it',
      details: { expires, now: now.toISOString() },
    });
  }
}

export interface CreateRootOptions {
  rootKeys: KeyPair[];
  catalogKeys: (KeyPair | PublicKey)[];
  rootThreshold?: number;
  catalogThreshold?: number;
  /** Keys of the optional release role; omitted or empty leaves the role out of the root. */
  releaseKeys?: (KeyPair | PublicKey)[];
  releaseThreshold?: number;
  version?: number;
  expires: Date;
  /** Extra root keys that sign (e.g. the old root's keys during rotation). */
  alsoSignWith?: KeyPair[];
}

function publicOf(k: KeyPair | PublicKey): PublicKey {
  return 'seed' in k ? { type: 'ed25519', public: bytesToHex(k.publicKey) } : { type: 'ed25519', public: k.public };
}

/** Builds and signs a root. Version 1 is self-signed by its root keys. */
export function createRoot(o: CreateRootOptions): RootDocument {
  const keys: Record<string, PublicKey> = {};
  const add = (k: KeyPair | PublicKey): string => {
    const pub = publicOf(k);
    const parsed = parsePublicKey(pub, 'new root key');
    keys[parsed.keyid] = pub;
    return parsed.keyid;
  };
  const rootIds = [...new Set(o.rootKeys.map(add))].sort();
  const catalogIds = [...new Set(o.catalogKeys.map(add))].sort();
  const releaseIds = [...new Set((o.releaseKeys ?? []).map(add))].sort();
  const signed: RootSigned = {
    type: 'root',
    version: o.version ?? 1,
    expires: o.expires.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    keys: Object.fromEntries(Object.entries(keys).sort(([a], [b]) => (a < b ? -1 : 1))),
    roles: {
      root: { keyids: rootIds, threshold: o.rootThreshold ?? 1 },
      catalog: { keyids: catalogIds, threshold: o.catalogThreshold ?? 1 },
      // Left out rather than empty: a root without releases stays byte-identical to one written before the role existed.
      ...(releaseIds.length > 0 && { release: { keyids: releaseIds, threshold: o.releaseThreshold ?? 1 } }),
    },
  };
  // Canonical JSON only makes the payload deterministic; verification reads the bytes as they are.
  const env = signEnvelope(PAYLOAD_TYPES.root, canonicalBytes(signed), [...o.rootKeys, ...(o.alsoSignWith ?? [])]);
  // Round-trip through the parser so a root we write is one we would accept.
  const doc: RootDocument = { ...env, signed: parseRootPayload(env.payload, 'new root') };
  checkThreshold(doc, signed.roles.root, signed.keys, 'new root');
  return doc;
}

/** A release counts only if a threshold of the root's release keys signed it: the same rule as every other role. */
export function checkReleaseThreshold(env: Envelope, root: RootDocument, what: string): void {
  checkThreshold(env, releaseRole(root, what), root.signed.keys, what);
}

/** A root trusted on first use (pinned by file or fingerprint) must carry a threshold of its own root keys. */
export function verifyRootSelfSigned(root: RootDocument, now: Date, source = `root v${root.signed.version}`): void {
  checkThreshold(root, root.signed.roles.root, root.signed.keys, source);
  assertNotExpired(root.signed.expires, now, source);
}

/**
 * TUF-style root rotation: the candidate must be version N+1 and signed by a
 * threshold of the trusted root's root keys AND of its own. Expiry of an
 * intermediate root does not matter; the newest root must be unexpired,
 * which the caller checks after walking (see `assertRootCurrent`).
 */
export function verifyRootUpdate(trusted: RootDocument, candidate: Uint8Array, source = 'next root'): RootDocument {
  const env = parseEnvelope(candidate, PAYLOAD_TYPES.root, source);
  // The keys already trusted vouch for the payload bytes before anything in them is read.
  checkThreshold(env, trusted.signed.roles.root, trusted.signed.keys, `${source} (by the keys of root v${trusted.signed.version})`);
  const next: RootDocument = { ...env, signed: parseRootPayload(env.payload, source) };
  const want = trusted.signed.version + 1;
  if (next.signed.version !== want) {
    throw new SwpkgError(
      next.signed.version < want ? 'E_ROLLBACK' : 'E_BAD_ROOT',
      `${source} has version ${next.signed.version}, expected ${want}`,
      {
        details: { expected: want, actual: next.signed.version },
      },
    );
  }
  checkThreshold(next, next.signed.roles.root, next.signed.keys, `${source} (by its own root keys)`);
  return next;
}

export function assertRootCurrent(root: RootDocument, now: Date): void {
  assertNotExpired(root.signed.expires, now, `root v${root.signed.version}`);
}

export interface RotateRootOptions {
  current: RootDocument;
  oldRootKeys: KeyPair[];
  newRootKeys: KeyPair[];
  catalogKeys?: (KeyPair | PublicKey)[];
  /** Release keys of the new root (default: keep the current ones; an empty list removes the role). */
  releaseKeys?: (KeyPair | PublicKey)[];
  rootThreshold?: number;
  catalogThreshold?: number;
  releaseThreshold?: number;
  expires: Date;
}

/** Version N+1 signed by the old root keys and the new ones, so clients walking roots/N+1.json accept it. */
export function rotateRoot(o: RotateRootOptions): RootDocument {
  const catalogKeys = o.catalogKeys ?? o.current.signed.roles.catalog.keyids.map((id) => o.current.signed.keys[id]!);
  const currentRelease = o.current.signed.roles.release;
  const releaseKeys = o.releaseKeys ?? (currentRelease?.keyids ?? []).map((id) => o.current.signed.keys[id]!);
  const opts: CreateRootOptions = {
    rootKeys: o.newRootKeys,
    catalogKeys,
    releaseKeys,
    version: o.current.signed.version + 1,
    expires: o.expires,
    alsoSignWith: o.oldRootKeys,
  };
  if (o.rootThreshold !== undefined) opts.rootThreshold = o.rootThreshold;
  if (o.catalogThreshold !== undefined) opts.catalogThreshold = o.catalogThreshold;
  const releaseThreshold = o.releaseThreshold ?? (o.releaseKeys === undefined ? currentRelease?.threshold : undefined);
  if (releaseThreshold !== undefined) opts.releaseThreshold = releaseThreshold;
  const next = createRoot(opts);
  verifyRootUpdate(o.current, encodeEnvelope(next), `root v${next.signed.version}`);
  return next;
}

/** A root's fingerprint, the value clients pin: SHA-256 of its exact payload bytes. */
export function rootFingerprint(root: RootDocument): string {
  return payloadSha256(root);
}
