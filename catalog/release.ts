import { SwpkgError } from './errors.js';
import type { KeyPair } from './keys.js';
import { assertName } from './manifest.js';
import { assertNotExpired, checkReleaseThreshold, parseTime, type RootDocument, type Signed } from './root.js';
import { parseEnvelope, payloadSha256, signEnvelope, PAYLOAD_TYPES } from './envelope.js';
import { parsePackageFields, type CatalogPackage, type ClientIdentity } from './catalog-doc.js';
import { assertKnownFields, isJsonObject, parseStrictJson } from './strict-json.js';

/**
 * A release (issue 15): a pinned, reviewed set of exact package files. Every entry carries what the
 * catalog would say about the package, so the client resolves and checks it the same way, and a
 * `location` instead of a catalog `path`: relative to the repository's web root, or an absolute
 * http(s):// or file:// URL.
 */
export interface ReleasePackage extends Omit<CatalogPackage, 'path'> {
  location: string;
}

export interface ReleaseSigned {
  type: 'release';
  format: number;
  /** Names the release line (e.g. `edge-router`); versions of one id supersede each other. */
  id: string;
  version: number;
  /** The repository whose root authorises the release keys. */
  repo: string;
  arch: string;
  abi: string;
  minClientFormat: number;
  created: string;
  expires: string;
  supersedes: { id: string; version: number } | null;
  sourceRevision: string;
  packages: ReleasePackage[];
}

export type ReleaseDocument = Signed<ReleaseSigned>;

export const RELEASE_FORMAT = 1;
/** A release lists at most a few thousand packages; more is refused before parsing (endless data). */
export const MAX_RELEASE_BYTES = 8 * 1024 * 1024;

function badRelease(why: string, details: Record<string, unknown> = {}): SwpkgError {
  return new SwpkgError('E_BAD_RELEASE', `release: ${why}`, { details });
}

const RELATIVE_LOCATION = /^[A-Za-z0-9+._~%@-]+(\/[A-Za-z0-9+._~%@-]+)*$/;
const ABSOLUTE_LOCATION = /^(https?|file):\/\//;

/**
 * A location may not climb: no `..` or `.` segment, spelt plainly or percent-encoded, no encoded
 * slash that a server or file system would split on, no backslash. Relative ones are plain
 * segments under the web root; absolute ones http(s):// or file://.
 */
export function assertReleaseLocation(location: unknown, field: string): string {
  const unsafe = (why: string): SwpkgError =>
    new SwpkgError('E_UNSAFE_PATH', `release: ${field} ${JSON.stringify(location)} ${why}`, { details: { field, location } });
  if (typeof location !== 'string' || location.length === 0 || location.length > 2048) throw unsafe('must be a non-empty string');
  if (location.includes('\\')) throw unsafe('contains a backslash');
  if (/%(2f|5c|00)/i.test(location)) throw unsafe('contains an encoded slash, backslash or NUL');
  const absolute = ABSOLUTE_LOCATION.test(location);
  let path = location;
  if (absolute) {
    try {
      new URL(location);
    } catch {
      throw unsafe('is not a URL');
    }
    path = location.replace(/^[a-z]+:\/\/[^/]*/, '');
  } else if (!RELATIVE_LOCATION.test(location)) {
    throw unsafe('must be a path relative to the web root, or an http://, https:// or file:// URL');
  }
  for (const seg of path.split(/[/?#]/)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      throw unsafe('has a broken percent-encoding');
    }
    if (decoded === '..' || decoded === '.') throw unsafe('climbs out of its folder');
  }
  return location;
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
  'location',
  'summary',
  'license',
] as const;
const SIGNED_FIELDS = [
  'type',
  'format',
  'id',
  'version',
  'repo',
  'arch',
  'abi',
  'minClientFormat',
  'created',
  'expires',
  'supersedes',
  'sourceRevision',
  'packages',
] as const;

function parseReleasePackage(v: unknown, i: number): ReleasePackage {
  if (!isJsonObject(v)) throw badRelease(`packages[${i}] must be an object`);
  assertKnownFields(v, PACKAGE_FIELDS, `release packages[${i}]`);
  const fields = parsePackageFields(v, i, badRelease, { listsMayBeAbsent: false });
  const { summary, license, ...head } = fields;
  return { ...head, location: assertReleaseLocation(v['location'], `packages[${i}].location`), summary, license };
}

/** Structural parse of a release payload (strict JSON, unknown fields refused); trust checks are in verifyRelease. */
export function parseReleasePayload(payload: Uint8Array, source = 'release'): ReleaseSigned {
  const s = parseStrictJson(payload, `${source} payload`);
  if (!isJsonObject(s)) throw badRelease('payload is not an object');
  assertKnownFields(s, SIGNED_FIELDS, `${source} payload`);
  if (s['type'] !== 'release') throw badRelease(`type is ${JSON.stringify(s['type'])}, expected "release"`);
  const posInt = (k: string): number => {
    const x = s[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 1) throw badRelease(`${k} must be a positive integer`, { field: k });
    return x;
  };
  const str = (k: string): string => {
    const x = s[k];
    if (typeof x !== 'string') throw badRelease(`${k} must be a string`, { field: k });
    return x;
  };
  const time = (k: string): string => {
    try {
      parseTime(s[k], k, source);
    } catch {
      throw badRelease(`${k} must be an ISO-8601 UTC time`, { field: k });
    }
    return s[k] as string;
  };
  let sup: ReleaseSigned['supersedes'] = null;
  const rawSup = s['supersedes'];
  if (rawSup !== null) {
    if (!isJsonObject(rawSup)) throw badRelease('supersedes must be null or {id, version}');
    assertKnownFields(rawSup, ['id', 'version'], `${source} supersedes`);
    const v = rawSup['version'];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw badRelease('supersedes.version must be a positive integer');
    sup = { id: wrapName(rawSup['id'], 'supersedes.id'), version: v };
  }
  if (!Array.isArray(s['packages'])) throw badRelease('packages must be an array');
  let packages: ReleasePackage[];
  try {
    packages = s['packages'].map(parseReleasePackage);
  } catch (e) {
    // The shared name, version and range validators speak of usage errors (exit 2); here they are someone else's bytes.
    if (e instanceof SwpkgError && e.exitCode === 2) throw badRelease(e.message, { ...e.details, cause: e.code });
    throw e;
  }
  const names = new Set<string>();
  for (const p of packages) {
    // One version of each name: a release is an exact installed set, not a menu.
    if (names.has(p.name)) throw badRelease(`lists ${p.name} twice`, { name: p.name });
    names.add(p.name);
  }
  return {
    type: 'release',
    format: posInt('format'),
    id: wrapName(s['id'], 'id'),
    version: posInt('version'),
    repo: wrapName(s['repo'], 'repo'),
    arch: str('arch'),
    abi: str('abi'),
    minClientFormat: posInt('minClientFormat'),
    created: time('created'),
    expires: time('expires'),
    supersedes: sup,
    sourceRevision: str('sourceRevision'),
    packages,
  };
}

function wrapName(v: unknown, field: string): string {
  try {
    return assertName(v, field);
  } catch (e) {
    throw badRelease(e instanceof Error ? e.message : String(e), { field });
  }
}

/** The payload bytes of a release: fields in one fixed order, so the same release always signs to the same bytes. */
export function releasePayload(s: ReleaseSigned): Buffer {
  const ordered = {
    type: s.type,
    format: s.format,
    id: s.id,
    version: s.version,
    repo: s.repo,
    arch: s.arch,
    abi: s.abi,
    minClientFormat: s.minClientFormat,
    created: s.created,
    expires: s.expires,
    supersedes: s.supersedes && { id: s.supersedes.id, version: s.supersedes.version },
    sourceRevision: s.sourceRevision,
    packages: [...s.packages]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((p) => ({
        name: p.name,
        version: p.version,
        arch: p.arch,
        abi: p.abi,
        depends: Object.fromEntries(Object.entries(p.depends).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
        provides: p.provides,
        conflicts: p.conflicts,
        size: p.size,
        installedSize: p.installedSize,
        sha256: p.sha256,
        location: p.location,
        summary: p.summary,
        license: p.license,
      })),
  };
  return Buffer.from(JSON.stringify(ordered, null, 1) + '\n');
}

/** Signs a release; the payload is parsed back so a release we write is one we would accept. */
export function signRelease(signed: ReleaseSigned, keys: KeyPair[]): ReleaseDocument {
  const env = signEnvelope(PAYLOAD_TYPES.release, releasePayload(signed), keys);
  return { ...env, signed: parseReleasePayload(env.payload, 'new release') };
}

/** Parses a release envelope and its payload without checking signatures (a publisher reading its own output). */
export function parseRelease(bytes: Uint8Array, what = 'release'): ReleaseDocument {
  const env = parseEnvelope(bytes, PAYLOAD_TYPES.release, what);
  return { ...env, signed: parseReleasePayload(env.payload, what) };
}

/** The manifest digest a client records and reports: SHA-256 of the signed payload bytes. */
export function releaseDigest(doc: ReleaseDocument): string {
  return payloadSha256(doc);
}

/** What the client accepted last for one release id. */
export interface AcceptedRelease {
  version: number;
  digest: string;
}

export interface VerifyReleaseOptions {
  root: RootDocument;
  now: Date;
  client: ClientIdentity;
  /** The repository the client configured under this name: a release naming another is refused (E_WRONG_REPO). */
  repo: string;
  lastAccepted?: AcceptedRelease;
}

/**
 * The one gate a release passes, in the catalog's order: size, framing and payload type, a threshold
 * of the root's release keys over the exact payload bytes, the payload (strictly), the repository it
 * names, expiry, version against the last accepted one of the same id (rollback, equivocation), and
 * compatibility with this machine.
 */
export function verifyRelease(bytes: Uint8Array, o: VerifyReleaseOptions, what = 'release'): ReleaseDocument {
  if (bytes.length > MAX_RELEASE_BYTES) {
    throw new SwpkgError('E_TOO_LARGE', `${what} is ${bytes.length} bytes, more than the ${MAX_RELEASE_BYTES} allowed`, {
      details: { size: bytes.length, limit: MAX_RELEASE_BYTES },
    });
  }
  const env = parseEnvelope(bytes, PAYLOAD_TYPES.release, what);
  checkReleaseThreshold(env, o.root, what);
  const doc: ReleaseDocument = { ...env, signed: parseReleasePayload(env.payload, what) };
  const r = doc.signed;
  if (r.repo !== o.repo) {
    throw new SwpkgError('E_WRONG_REPO', `${what} is for repository "${r.repo}", but it was checked against repository "${o.repo}"`, {
      details: { expected: o.repo, offered: r.repo },
    });
  }
  assertNotExpired(r.expires, o.now, `release ${r.id} v${r.version}`);
  const digest = releaseDigest(doc);
  if (o.lastAccepted) {
    if (r.version < o.lastAccepted.version) {
      throw new SwpkgError('E_ROLLBACK', `release ${r.id} v${r.version} is older than v${o.lastAccepted.version} already accepted`, {
        hint: 'a newer release of this id was installed before; an older one is refused (replay), install the current one',
        details: { id: r.id, offered: r.version, accepted: o.lastAccepted.version },
      });
    }
    if (r.version === o.lastAccepted.version && digest !== o.lastAccepted.digest) {
      throw new SwpkgError('E_EQUIVOCATION', `release ${r.id} v${r.version} has other content than the copy already accepted`, {
        hint: 'the publisher signed two different releases with one version; report it',
        details: { id: r.id, version: r.version, accepted: o.lastAccepted.digest, offered: digest },
      });
    }
  }
  if (r.format > RELEASE_FORMAT || r.minClientFormat > o.client.format) {
    throw new SwpkgError(
      'E_INCOMPATIBLE',
      `release ${r.id} needs client format ${r.minClientFormat}; this client speaks ${o.client.format}`,
      {
        hint: 'upgrade pkg',
        details: { releaseFormat: r.format, minClientFormat: r.minClientFormat, clientFormat: o.client.format },
      },
    );
  }
  const wrong = r.packages.find((p) => (p.arch !== o.client.arch && p.arch !== 'any') || p.abi !== o.client.abi);
  if ((r.arch !== o.client.arch && r.arch !== 'any') || r.abi !== o.client.abi || wrong) {
    throw new SwpkgError(
      'E_INCOMPATIBLE',
      `release ${r.id} is for ${wrong ? `${wrong.arch}/${wrong.abi} (${wrong.name})` : `${r.arch}/${r.abi}`}; this machine is ${o.client.arch}/${o.client.abi}`,
      {
        hint: 'install the release built for this architecture',
        details: { arch: r.arch, abi: r.abi, clientArch: o.client.arch, clientAbi: o.client.abi },
      },
    );
  }
  return doc;
}
