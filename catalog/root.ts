import { SwpkgError } from './errors.js';
import { canonicalBytes } from './canonical-json.js';
import { bytesToHex, parsePublicKey, signBytes, verifyBytes, fingerprintOf, type KeyPair, type PublicKey, type Signature } from './keys.js';

export interface Signed<T> {
  signed: T;
  signatures: Signature[];
}

export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

export interface RootSigned {
  type: 'root';
  version: number;
  expires: string;
  keys: Record<string, PublicKey>;
  roles: { root: RoleKeys; catalog: RoleKeys };
}

export type RootDocument = Signed<RootSigned>;

function badRoot(source: string, why: string, details: Record<string, unknown> = {}): SwpkgError {
  return new SwpkgError('E_BAD_ROOT', `${source}: ${why}`, { details: { source, ...details } });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseTime(value: unknown, field: string, source: string): Date {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) {
    throw badRoot(source, `${field} must be an ISO-8601 UTC time`, { field, value });
  }
  return new Date(value);
}

function parseRole(value: unknown, name: string, keys: Record<string, PublicKey>, source: string): RoleKeys {
  if (!isRecord(value) || !Array.isArray(value['keyids']) || typeof value['threshold'] !== 'number') {
    throw badRoot(source, `role ${name} needs keyids and threshold`);
  }
  const keyids = value['keyids'] as unknown[];
  const threshold = value['threshold'];
  if (!Number.isInteger(threshold) || threshold < 1) throw badRoot(source, `role ${name} threshold must be a positive integer`);
  const ids = keyids.map((k) => {
    if (typeof k !== 'string' || !(k in keys)) throw badRoot(source, `role ${name} names key ${String(k)}, which the root does not list`);
    return k;
  });
  if (new Set(ids).size !== ids.length) throw badRoot(source, `role ${name} lists a key twice`);
  if (threshold > ids.length) throw badRoot(source, `role ${name} threshold ${threshold} exceeds its ${ids.length} keys`);
  return { keyids: ids, threshold };
}

/**
 * Parses a root document from untrusted JSON. Key ids must equal the SHA-256
 * of their key bytes, and small-order keys are refused here, at load time.
 * Signatures are checked by the verify functions, not here.
 */
export function parseRoot(value: unknown, source: string): RootDocument {
  if (!isRecord(value) || !isRecord(value['signed']) || !Array.isArray(value['signatures'])) {
    throw badRoot(source, 'is not a root document ({signed, signatures})');
  }
  const s = value['signed'];
  if (s['type'] !== 'root') throw badRoot(source, `type is ${JSON.stringify(s['type'])}, expected "root"`);
  const version = s['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw badRoot(source, 'version must be a positive integer');
  parseTime(s['expires'], 'expires', source);
  if (!isRecord(s['keys'])) throw badRoot(source, 'keys must be an object');
  const keys: Record<string, PublicKey> = {};
  for (const [keyid, raw] of Object.entries(s['keys'])) {
    const k = parsePublicKey(raw, `${source} key ${keyid}`);
    if (k.keyid !== keyid) throw badRoot(source, `key id ${keyid} is not the SHA-256 of its key`, { keyid });
    keys[keyid] = { type: 'ed25519', public: k.public };
  }
  if (!isRecord(s['roles'])) throw badRoot(source, 'roles must be an object');
  const roles = {
    root: parseRole(s['roles']['root'], 'root', keys, source),
    catalog: parseRole(s['roles']['catalog'], 'catalog', keys, source),
  };
  const signatures = parseSignatures(value['signatures'], source);
  return { signed: { type: 'root', version, expires: s['expires'] as string, keys, roles }, signatures };
}

export function parseSignatures(value: unknown, source: string): Signature[] {
  if (!Array.isArray(value)) throw new SwpkgError('E_SIGNATURE', `${source}: signatures must be an array`, { details: { source } });
  return value.map((sig: unknown) => {
    if (!isRecord(sig) || typeof sig['keyid'] !== 'string' || typeof sig['sig'] !== 'string') {
      throw new SwpkgError('E_SIGNATURE', `${source}: a signature entry is malformed`, { details: { source } });
    }
    return { keyid: sig['keyid'], sig: sig['sig'] };
  });
}

/**
 * Counts distinct role keys whose signature over `signed` verifies. A
 * signature by a key outside the role does not count; a bad signature by a
 * role key is reported as E_SIGNATURE when the threshold is not met.
 */
export function checkThreshold(
  signed: unknown,
  signatures: Signature[],
  role: RoleKeys,
  keys: Record<string, PublicKey>,
  what: string,
): void {
  const message = canonicalBytes(signed);
  const good = new Set<string>();
  let badByRoleKey = 0;
  let unknown = 0;
  for (const sig of signatures) {
    if (!role.keyids.includes(sig.keyid)) {
      unknown++;
      continue;
    }
    const key = keys[sig.keyid];
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
      details: { ...details, signedBy: signatures.map((s) => s.keyid) },
    });
  }
  throw new SwpkgError('E_THRESHOLD', `${what}: ${good.size} valid signature(s), ${role.threshold} required`, {
    hint: 'the publisher must sign with more of the role keys',
    details,
  });
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
  const signed: RootSigned = {
    type: 'root',
    version: o.version ?? 1,
    expires: o.expires.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    keys: Object.fromEntries(Object.entries(keys).sort(([a], [b]) => (a < b ? -1 : 1))),
    roles: {
      root: { keyids: rootIds, threshold: o.rootThreshold ?? 1 },
      catalog: { keyids: catalogIds, threshold: o.catalogThreshold ?? 1 },
    },
  };
  const message = canonicalBytes(signed);
  const signers = new Map<string, KeyPair>();
  for (const k of [...o.rootKeys, ...(o.alsoSignWith ?? [])]) signers.set(k.keyid, k);
  const signatures = [...signers.values()].map((k) => signBytes(message, k)).sort((a, b) => (a.keyid < b.keyid ? -1 : 1));
  const doc = { signed, signatures };
  // Round-trip through the parser so a root we write is one we would accept.
  parseRoot(doc, 'new root');
  checkThreshold(signed, signatures, signed.roles.root, signed.keys, 'new root');
  return doc;
}

/** A root trusted on first use (pinned by file or fingerprint) must carry a threshold of its own root keys. */
export function verifyRootSelfSigned(root: RootDocument, now: Date, source = `root v${root.signed.version}`): void {
  checkThreshold(root.signed, root.signatures, root.signed.roles.root, root.signed.keys, source);
  assertNotExpired(root.signed.expires, now, source);
}

/**
 * TUF-style root rotation: the candidate must be version N+1 and signed by a
 * threshold of the trusted root's root keys AND of its own. Expiry of an
 * intermediate root does not matter; the newest root must be unexpired,
 * which the caller checks after walking (see `assertRootCurrent`).
 */
export function verifyRootUpdate(trusted: RootDocument, candidate: unknown, source = 'next root'): RootDocument {
  const next = parseRoot(candidate, source);
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
  checkThreshold(
    next.signed,
    next.signatures,
    trusted.signed.roles.root,
    trusted.signed.keys,
    `${source} (by the keys of root v${trusted.signed.version})`,
  );
  checkThreshold(next.signed, next.signatures, next.signed.roles.root, next.signed.keys, `${source} (by its own root keys)`);
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
  rootThreshold?: number;
  catalogThreshold?: number;
  expires: Date;
}

/** Version N+1 signed by the old root keys and the new ones, so clients walking roots/N+1.json accept it. */
export function rotateRoot(o: RotateRootOptions): RootDocument {
  const catalogKeys = o.catalogKeys ?? o.current.signed.roles.catalog.keyids.map((id) => o.current.signed.keys[id]!);
  const opts: CreateRootOptions = {
    rootKeys: o.newRootKeys,
    catalogKeys,
    version: o.current.signed.version + 1,
    expires: o.expires,
    alsoSignWith: o.oldRootKeys,
  };
  if (o.rootThreshold !== undefined) opts.rootThreshold = o.rootThreshold;
  if (o.catalogThreshold !== undefined) opts.catalogThreshold = o.catalogThreshold;
  const next = createRoot(opts);
  verifyRootUpdate(o.current, next, `root v${next.signed.version}`);
  return next;
}

export function rootFingerprint(root: RootDocument): string {
  return fingerprintOf(root.signed);
}
