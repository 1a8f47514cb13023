import { SwpkgError } from './errors.js';
import { SHA256_HEX } from './hash.js';
import type { KeyPair } from './keys.js';
import { ARCHES, assertName, assertVersion, validateDepends, type PackageManifest } from './manifest.js';
import { assertNotExpired, type RootDocument, type Signed } from './root.js';
import {
  checkThreshold,
  parseEnvelope,
  parseEnvelopeInPlace,
  payloadSha256,
  paeHead,
  signEnvelope,
  PAYLOAD_TYPES,
  type Envelope,
} from './envelope.js';
import { assertKnownFields, isJsonObject, parseStrictJson, parseStrictJsonBytes, StreamedJsonArray } from './strict-json.js';

/**
 * The client format this code understands; catalogs demanding more are refused as incompatible.
 * 2: packages may be zstd (what `swpkg pack` writes since 2026-12-03). A format-1 client reads
 * gzip only, so a catalog published now asks for 2 and such a client refuses it at `pkg update`
 * with E_INCOMPATIBLE, not one package at a time as corrupt.
 */
export const CLIENT_FORMAT = 2;
export const CATALOG_FORMAT = 1;
/** A client never reads more catalog than this unless configured (endless-data attack). */
export const DEFAULT_MAX_CATALOG_BYTES = 64 * 1024 * 1024;

export interface CatalogPackage {
  name: string;
  version: string;
  arch: string;
  abi: string;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
  size: number;
  installedSize: number;
  sha256: string;
  path: string;
  summary: string;
  license: string;
}

/**
 * A catalog entry's fields for a package, except where it is published: the
 * manifest's metadata plus the size and SHA-256 of the archive's bytes. The
 * publisher adds `path`; the client builds its install candidates from it.
 */
export function catalogFieldsOf(m: PackageManifest, archive: { size: number; sha256: string }): Omit<CatalogPackage, 'path'> {
  return {
    name: m.name,
    version: m.version,
    arch: m.arch,
    abi: m.abi,
    depends: m.depends,
    provides: m.provides,
    conflicts: m.conflicts,
    size: archive.size,
    installedSize: m.installedSize,
    sha256: archive.sha256,
    summary: m.summary,
    license: m.license,
  };
}

export interface CatalogCompatibility {
  arch: string[];
  abi: string[];
  minClientFormat: number;
}

export interface CatalogSigned {
  type: 'catalog';
  format: number;
  repo: string;
  version: number;
  generated: string;
  expires: string;
  compatibility: CatalogCompatibility;
  packages: CatalogPackage[];
}

export type CatalogDocument = Signed<CatalogSigned>;

export interface ClientIdentity {
  arch: string;
  abi: string;
  format: number;
}

export const DEFAULT_CLIENT: ClientIdentity = { arch: 'x86_64', abi: 'linux-musl-static', format: CLIENT_FORMAT };

const isRecord = isJsonObject;

function badCatalog(why: string, details: Record<string, unknown> = {}): SwpkgError {
  return new SwpkgError('E_BAD_CATALOG', `catalog: ${why}`, { details });
}

const PACKAGE_FIELDS = [
  'name',
  'version',
  'arch',
  'abi',
  'depends',
  'provides',
  'conflicts',
  'size',
  'installedSize',
  'sha256',
  'path',
  'summary',
  'license',
] as const;
const SIGNED_FIELDS = ['type', 'format', 'repo', 'version', 'generated', 'expires', 'compatibility', 'packages'] as const;

const PACKAGE_PATH = /^packages\/[A-Za-z0-9+._-]+\.swpkg$/;

/**
 * The fields a catalog entry and a release entry share (`packages[i]` of either document), checked
 * one way; `bad` makes the document's own refusal. A catalog may leave provides/conflicts out.
 */
export function parsePackageFields(
  v: Record<string, unknown>,
  i: number,
  bad: (why: string, details?: Record<string, unknown>) => SwpkgError,
  o: { listsMayBeAbsent: boolean },
): Omit<CatalogPackage, 'path'> {
  const str = (k: string): string => {
    const x = v[k];
    if (typeof x !== 'string') throw bad(`packages[${i}].${k} must be a string`, { field: `packages[${i}].${k}` });
    return x;
  };
  const int = (k: string): number => {
    const x = v[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw bad(`packages[${i}].${k} must be a non-negative integer`);
    return x;
  };
  const list = (k: string): string[] => {
    const x = o.listsMayBeAbsent ? (v[k] ?? []) : v[k];
    if (!Array.isArray(x) || x.some((e) => typeof e !== 'string')) throw bad(`packages[${i}].${k} must be an array of strings`);
    return x as string[];
  };
  const sha256 = str('sha256');
  if (!SHA256_HEX.test(sha256)) throw bad(`packages[${i}].sha256 is not a SHA-256 digest`);
  return {
    name: assertName(v['name'], `packages[${i}].name`),
    version: assertVersion(v['version'], `packages[${i}].version`),
    arch: str('arch'),
    abi: str('abi'),
    depends: validateDepends(v['depends'], `packages[${i}].depends`),
    provides: list('provides'),
    conflicts: list('conflicts'),
    size: int('size'),
    installedSize: int('installedSize'),
    sha256,
    summary: str('summary'),
    license: str('license'),
  };
}

function parsePackageEntry(v: unknown, i: number): CatalogPackage {
  if (!isRecord(v)) throw badCatalog(`packages[${i}] must be an object`);
  assertKnownFields(v, PACKAGE_FIELDS, `catalog packages[${i}]`);
  const path = v['path'];
  // The path is joined onto the repository URL: it must stay a plain file under packages/.
  if (typeof path === 'string' && !PACKAGE_PATH.test(path)) {
    throw new SwpkgError('E_UNSAFE_PATH', `catalog: packages[${i}].path ${JSON.stringify(path)} is not a plain packages/ file name`, {
      details: { path },
    });
  }
  const fields = parsePackageFields(v, i, badCatalog, { listsMayBeAbsent: true });
  if (typeof path !== 'string') throw badCatalog(`packages[${i}].path must be a string`, { field: `packages[${i}].path` });
  // Key order as the document has it: the entry is written back as an index line and shown as JSON.
  const { summary, license, ...head } = fields;
  return { ...head, path, summary, license };
}

/** Structural parse of a catalog payload (strict JSON, unknown fields refused); trust checks are in verifyCatalog. */
export function parseCatalogPayload(payload: Uint8Array): CatalogSigned {
  const packages: CatalogPackage[] = [];
  const { head } = parseCatalogPayloadStream(payload, (p) => packages.push(p));
  return { ...head, packages };
}

/** A catalog's signed fields other than its entries. */
export type CatalogHead = Omit<CatalogSigned, 'packages'>;

/**
 * parseCatalogPayload without holding the entries: each one, once checked, goes to `onPackage`
 * in catalog order. The refusals are parseCatalogPayload's, in its order: the whole payload's
 * syntax first, then the fields outside `packages`, then the first bad entry, then a duplicate.
 * So entries handed over may belong to a payload refused at the end: the caller keeps them
 * aside until this returns.
 */
export function parseCatalogPayloadStream(
  payload: Uint8Array,
  onPackage: (p: CatalogPackage, i: number) => void,
): { head: CatalogHead; packages: number } {
  let entryError: Error | undefined;
  let duplicate: string | undefined;
  const seen = new Set<string>();
  const s = parseStrictJsonBytes(payload, 'catalog payload', {
    streamArray: {
      key: 'packages',
      onElement: (v, i) => {
        // Only the first bad entry counts, and only once the whole payload parsed (a later syntax error wins);
        // entries after a duplicate are still checked, since a bad one is refused before duplicates are.
        if (entryError !== undefined) return;
        let p: CatalogPackage;
        try {
          p = parsePackageEntry(v, i);
        } catch (e) {
          entryError = e instanceof Error ? e : new Error(String(e));
          return;
        }
        const id = `${p.name}@${p.version}@${p.arch}`;
        if (seen.has(id)) duplicate ??= id;
        seen.add(id);
        if (duplicate === undefined) onPackage(p, i);
      },
    },
  });
  if (!isRecord(s)) throw badCatalog('payload is not an object');
  assertKnownFields(s, SIGNED_FIELDS, 'catalog payload');
  if (s['type'] !== 'catalog') throw badCatalog(`type is ${JSON.stringify(s['type'])}, expected "catalog"`);
  const version = s['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw badCatalog('version must be a positive integer');
  if (typeof s['format'] !== 'number') throw badCatalog('format must be a number');
  if (typeof s['repo'] !== 'string') throw badCatalog('repo must be a string');
  for (const k of ['generated', 'expires']) {
    if (typeof s[k] !== 'string' || Number.isNaN(Date.parse(s[k]))) throw badCatalog(`${k} must be an ISO-8601 time`);
  }
  const c = s['compatibility'];
  if (!isRecord(c) || !Array.isArray(c['arch']) || !Array.isArray(c['abi']) || typeof c['minClientFormat'] !== 'number') {
    throw badCatalog('compatibility must have arch[], abi[] and minClientFormat');
  }
  assertKnownFields(c, ['arch', 'abi', 'minClientFormat'], 'catalog compatibility');
  if (![...c['arch'], ...c['abi']].every((x) => typeof x === 'string')) throw badCatalog('compatibility arch[] and abi[] must be strings');
  const packages = s['packages'];
  if (!(packages instanceof StreamedJsonArray)) throw badCatalog('packages must be an array');
  if (entryError !== undefined) {
    // The shared name, version and range validators speak of usage errors (exit 2); in a catalog they are the server's bytes.
    if (entryError instanceof SwpkgError && entryError.exitCode === 2)
      throw badCatalog(entryError.message, { ...entryError.details, cause: entryError.code });
    throw entryError;
  }
  if (duplicate !== undefined) throw badCatalog(`lists ${duplicate} twice`);
  return {
    head: {
      type: 'catalog',
      format: s['format'],
      repo: s['repo'],
      version,
      generated: s['generated'] as string,
      expires: s['expires'] as string,
      compatibility: { arch: c['arch'] as string[], abi: c['abi'] as string[], minClientFormat: c['minClientFormat'] },
    },
    packages: packages.length,
  };
}

/** Parses a catalog envelope and its payload without checking signatures (a publisher reading its own output). */
export function parseCatalog(bytes: Uint8Array, what = 'catalog'): CatalogDocument {
  const env = parseEnvelope(bytes, PAYLOAD_TYPES.catalog, what);
  return { ...env, signed: parseCatalogPayload(env.payload) };
}

/**
 * Re-reads an envelope whose bytes equal ones that passed verifyCatalog
 * (the client's accepted copy, checked by its SHA-256): the payload is
 * parsed strictly, but neither signatures nor the schema of every entry are
 * checked again, so `pkg search` over 10 000 entries does not pay for them
 * on every command.
 */
export function openVerifiedCatalog(env: Envelope): CatalogDocument {
  return { ...env, signed: parseStrictJson(env.payload, 'catalog payload') as CatalogSigned };
}

/**
 * The payload bytes of a catalog: JSON with every object's fields in one
 * fixed order (dependency names sorted), so the same catalog always signs to
 * the same bytes. This is cheaper than RFC 8785 over 65 000 entries
 * (bench/catalog) and verification never depends on it: it reads the bytes.
 */
export function catalogPayload(s: CatalogSigned): Buffer {
  const head = JSON.stringify({
    type: s.type,
    format: s.format,
    repo: s.repo,
    version: s.version,
    generated: s.generated,
    expires: s.expires,
    compatibility: { arch: s.compatibility.arch, abi: s.compatibility.abi, minClientFormat: s.compatibility.minClientFormat },
    packages: [],
  });
  // The document is never one string or one parsed copy: each entry is stringified alone (as
  // JSON.stringify of the whole would write it) straight into one buffer, after room for PAE's
  // head, so signing reads the payload in place. The head's length depends on the payload's, so
  // the room is for the widest head, and the head is written last, just before the payload.
  const open = Buffer.from(head.slice(0, -2));
  const room = paeHead(PAYLOAD_TYPES.catalog, Number.MAX_SAFE_INTEGER).length;
  // Generous: pages never written are never touched, so only the bytes written count in memory.
  let buf = Buffer.allocUnsafe(room + open.length + 2 + s.packages.length * PAYLOAD_ENTRY_ESTIMATE);
  let at = room + open.copy(buf, room);
  const reserve = (n: number): void => {
    if (at + n <= buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(Math.floor(buf.length * 1.5), at + n));
    buf.copy(bigger, 0, 0, at);
    buf = bigger;
  };
  s.packages.forEach((p, i) => {
    const entry = JSON.stringify({
      name: p.name,
      version: p.version,
      arch: p.arch,
      abi: p.abi,
      depends: sortedDepends(p.depends),
      provides: p.provides,
      conflicts: p.conflicts,
      size: p.size,
      installedSize: p.installedSize,
      sha256: p.sha256,
      path: p.path,
      summary: p.summary,
      license: p.license,
    });
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    reserve(entry.length * 3 + 1);
    if (i > 0) buf[at++] = 0x2c;
    at += buf.write(entry, at);
  });
  reserve(2);
  at += buf.write(']}', at);
  const pae = paeHead(PAYLOAD_TYPES.catalog, at - room);
  pae.copy(buf, room - pae.length);
  return buf.subarray(room, at);
}

/** Bytes set aside per catalog entry before any is written (a Debian-like entry is about 450). */
const PAYLOAD_ENTRY_ESTIMATE = 1024;

function sortedDepends(d: Record<string, string>): Record<string, string> {
  const keys = Object.keys(d);
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) sorted = keys[i - 1]! < keys[i]!;
  if (sorted) return d;
  return Object.fromEntries(Object.entries(d).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function signCatalog(signed: CatalogSigned, keys: KeyPair[]): CatalogDocument {
  return { ...signEnvelope(PAYLOAD_TYPES.catalog, catalogPayload(signed), keys), signed };
}

export interface LastAccepted {
  version: number;
  /** SHA-256 of the accepted payload bytes (what was signed, whatever the framing); absent for state from the first format. */
  payloadSha256?: string;
}

export interface VerifyCatalogOptions {
  root: RootDocument;
  now: Date;
  lastAccepted?: LastAccepted;
  maxBytes?: number;
  /** Whose compatibility to check; `null` skips it (a publisher checking its own root). */
  client?: ClientIdentity | null;
  /** The repository name the client configured: a catalog naming another repository is refused (E_WRONG_REPO). */
  repo?: string;
}

/**
 * The one gate a catalog passes before anything uses it. Order matters:
 * size before parsing (endless data), the envelope's framing and payload
 * type, signatures over the exact payload bytes before the payload is
 * parsed, then the payload (strictly), the repository it names (confusion),
 * freshness (expiry = freeze), monotonic version (rollback), same version
 * with another signed payload (equivocation), and compatibility.
 */
export function verifyCatalog(bytes: Uint8Array, o: VerifyCatalogOptions): CatalogDocument {
  const packages: CatalogPackage[] = [];
  let env: Envelope | undefined;
  const v = verifyCatalogStream(bytes, o, (p) => packages.push(p), { onEnvelope: (e) => (env = e) });
  if (!env) throw new SwpkgError('E_INTERNAL', 'verifyCatalog: the envelope was not kept');
  return { ...env, signed: { ...v.signed, packages } };
}

/** A catalog that passed verifyCatalogStream, without its entries (they went to its callback). */
export interface VerifiedCatalogSummary {
  signed: CatalogHead;
  /** How many entries it has. */
  packages: number;
  /** SHA-256 of the signed payload bytes (payloadSha256). */
  payloadSha256: string;
  /** The catalog's bytes as they arrived, in slices (after `inPlace`, rebuilt: see parseEnvelopeInPlace). */
  originalBytes: () => Iterable<Uint8Array>;
}

/**
 * verifyCatalog without building the document: the same checks in the same order, with the same
 * refusals, but each entry goes to `onPackage` once checked and is not kept, and the payload is
 * read in place (no second copy for PAE, no copy of the whole text). Entries are handed over
 * before the checks that follow the parse (repository, expiry, rollback, equivocation,
 * compatibility), so the caller must hold them aside until this returns and drop them if it
 * throws. `onEnvelope` hears the parsed envelope (verifyCatalog keeps it; pkg update does not).
 * `inPlace` decodes the payload inside `bytes` (parseEnvelopeInPlace): tens of MB less held at
 * once, and `bytes` is spent, returned or thrown, so the caller keeps them through `originalBytes`.
 */
export function verifyCatalogStream(
  bytes: Uint8Array,
  o: VerifyCatalogOptions,
  onPackage: (p: CatalogPackage, i: number) => void,
  more: { onEnvelope?: (env: Envelope) => void; inPlace?: boolean } = {},
): VerifiedCatalogSummary {
  const max = o.maxBytes ?? DEFAULT_MAX_CATALOG_BYTES;
  if (bytes.length > max) {
    throw new SwpkgError('E_TOO_LARGE', `catalog is ${bytes.length} bytes, more than the ${max} allowed`, {
      hint: 'raise the limit only if you expect a catalog this large',
      details: { size: bytes.length, limit: max },
    });
  }
  let originalBytes = (): Iterable<Uint8Array> => [bytes];
  let env: Envelope;
  if (more.inPlace) {
    const { originalBytes: rebuilt, ...parsed } = parseEnvelopeInPlace(bytes, PAYLOAD_TYPES.catalog, 'catalog');
    env = parsed;
    originalBytes = rebuilt;
  } else env = parseEnvelope(bytes, PAYLOAD_TYPES.catalog, 'catalog');
  const root = o.root.signed;
  checkThreshold(env, root.roles.catalog, root.keys, 'catalog');
  const parsed = parseCatalogPayloadStream(env.payload, onPackage);
  const doc = { signed: parsed.head };
  if (o.repo !== undefined && doc.signed.repo !== o.repo) {
    throw new SwpkgError('E_WRONG_REPO', `the catalog is for repository "${doc.signed.repo}", but this is repository "${o.repo}"`, {
      hint: 'the server is serving another repository signed by the same keys; check the URL, or add it under its own name',
      details: { expected: o.repo, offered: doc.signed.repo },
    });
  }
  assertNotExpired(doc.signed.expires, o.now, `catalog v${doc.signed.version}`);
  const sha256 = payloadSha256(env);
  if (o.lastAccepted) {
    if (doc.signed.version < o.lastAccepted.version) {
      throw new SwpkgError(
        'E_ROLLBACK',
        `catalog version ${doc.signed.version} is older than version ${o.lastAccepted.version} already accepted`,
        {
          hint: 'a mirror is serving stale metadata or someone is replaying an old catalog; try another mirror',
          details: { offered: doc.signed.version, accepted: o.lastAccepted.version },
        },
      );
    }
    const accepted = o.lastAccepted.payloadSha256;
    if (doc.signed.version === o.lastAccepted.version && accepted !== undefined && sha256 !== accepted) {
      throw new SwpkgError('E_EQUIVOCATION', `catalog version ${doc.signed.version} has different content than the copy already accepted`, {
        hint: 'the publisher signed two different catalogs with one version; report it',
        details: { version: doc.signed.version, accepted, offered: sha256 },
      });
    }
  }
  more.onEnvelope?.(env);
  const out: VerifiedCatalogSummary = {
    signed: parsed.head,
    packages: parsed.packages,
    payloadSha256: sha256,
    originalBytes,
  };
  if (o.client === null) return out;
  const client = o.client ?? DEFAULT_CLIENT;
  const compat = doc.signed.compatibility;
  if (doc.signed.format > CATALOG_FORMAT || compat.minClientFormat > client.format) {
    throw new SwpkgError(
      'E_INCOMPATIBLE',
      `catalog needs client format ${compat.minClientFormat} (catalog format ${doc.signed.format}); this client speaks ${client.format}`,
      {
        hint: 'upgrade pkg',
        details: { catalogFormat: doc.signed.format, minClientFormat: compat.minClientFormat, clientFormat: client.format },
      },
    );
  }
  if (!compat.arch.includes(client.arch) && !compat.arch.includes('any')) {
    throw new SwpkgError('E_INCOMPATIBLE', `catalog is for ${compat.arch.join(', ')}; this machine is ${client.arch}`, {
      hint: 'add the repository built for this architecture',
      details: { catalogArch: compat.arch, clientArch: client.arch },
    });
  }
  if (!compat.abi.includes(client.abi)) {
    throw new SwpkgError('E_INCOMPATIBLE', `catalog is for ABI ${compat.abi.join(', ')}; this machine runs ${client.abi}`, {
      hint: 'add the repository built for this ABI',
      details: { catalogAbi: compat.abi, clientAbi: client.abi },
    });
  }
  return out;
}

/** Packages of a verified catalog usable by this client (its arch or `any`, its ABI). */
export function compatiblePackages(doc: CatalogDocument, client: ClientIdentity = DEFAULT_CLIENT): CatalogPackage[] {
  return doc.signed.packages.filter((p) => (p.arch === client.arch || p.arch === 'any') && p.abi === client.abi);
}

export function isArch(a: string): boolean {
  return (ARCHES as readonly string[]).includes(a);
}
