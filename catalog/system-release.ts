import { SwpkgError } from './errors.js';
import { SHA256_HEX } from './hash.js';
import type { KeyPair } from './keys.js';
import { CLIENT_FORMAT } from './catalog-doc.js';
import { assertNotExpired, checkReleaseThreshold, type RootDocument, type Signed } from './root.js';
import { parseEnvelope, payloadSha256, signEnvelope, PAYLOAD_TYPES } from './envelope.js';
import { assertKnownFields, isJsonObject, parseStrictJson } from './strict-json.js';

/**
 * The client format a system release asks for. Nothing a system update reads changed with client
 * format 2 (zstd packages), so a system whose pkg speaks 1 can still update to one published now.
 */
export const SYSTEM_RELEASE_MIN_CLIENT_FORMAT = 1;

/**
 * A system release: one signed document naming the kernel, initramfs and
 * base image a guest runs, by path in the web root, size and SHA-256. It is
 * what `pkg system update` writes into the inactive slot. Signed by the
 * root's release role (a system image is a release, and its key can be kept
 * apart from the catalog key), verified with the same rules as a catalog:
 * signatures over the exact bytes first, then a strict parse, the repository
 * named, expiry, a version that never goes back, and the machine's arch.
 */

export const SYSTEM_RELEASE_FORMAT = 1;
/** A system release document is a few hundred bytes; anything near this is not one. */
export const MAX_SYSTEM_RELEASE_BYTES = 64 * 1024;

export const SYSTEM_ARTIFACTS = ['kernel', 'initramfs', 'base'] as const;
export type SystemArtifactName = (typeof SYSTEM_ARTIFACTS)[number];

export interface SystemArtifact {
  /** Relative to the web root, under `system/`. */
  path: string;
  size: number;
  sha256: string;
}

export interface SystemReleaseSigned {
  type: 'system';
  format: number;
  repo: string;
  /** Monotonic: a client never installs a lower version than one it accepted. */
  version: number;
  arch: string;
  /** The `pkg` client format the release's base image needs at least (its own pkg speaks it). */
  minClientFormat: number;
  generated: string;
  expires: string;
  artifacts: Record<SystemArtifactName, SystemArtifact>;
}

export type SystemReleaseDocument = Signed<SystemReleaseSigned>;

const SIGNED_FIELDS = ['type', 'format', 'repo', 'version', 'arch', 'minClientFormat', 'generated', 'expires', 'artifacts'] as const;
/** Plain components under system/: the path is joined onto the repository URL and the web root. */
const ARTIFACT_PATH = /^system(\/[A-Za-z0-9_+-][A-Za-z0-9._+-]*)+$/;
const ARCH = /^[a-z0-9_]{1,32}$/;

function bad(why: string, details: Record<string, unknown> = {}): SwpkgError {
  return new SwpkgError('E_BAD_SYSTEM_RELEASE', `system release: ${why}`, { details });
}

/** Where the newest release for an arch is published, relative to the web root. */
export function systemReleasePath(arch: string): string {
  if (!ARCH.test(arch)) throw new SwpkgError('E_USAGE', `not an architecture name: ${JSON.stringify(arch)}`, { details: { arch } });
  return `system/${arch}.json`;
}

function parseArtifact(v: unknown, name: string): SystemArtifact {
  if (!isJsonObject(v)) throw bad(`artifacts.${name} must be an object`);
  assertKnownFields(v, ['path', 'size', 'sha256'], `system release artifacts.${name}`);
  const { path, size, sha256 } = v;
  if (typeof path !== 'string') throw bad(`artifacts.${name}.path must be a string`);
  if (!ARTIFACT_PATH.test(path) || path.split('/').includes('..')) {
    throw new SwpkgError(
      'E_UNSAFE_PATH',
      `system release: artifacts.${name}.path ${JSON.stringify(path)} is not a plain file under system/`,
      {
        details: { path },
      },
    );
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) throw bad(`artifacts.${name}.size must be a positive integer`);
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw bad(`artifacts.${name}.sha256 is not a SHA-256 digest`);
  return { path, size, sha256 };
}

/** Structural parse of a system release payload (strict JSON, unknown fields refused); trust checks are in verifySystemRelease. */
export function parseSystemReleasePayload(payload: Uint8Array): SystemReleaseSigned {
  const s = parseStrictJson(payload, 'system release payload');
  if (!isJsonObject(s)) throw bad('payload is not an object');
  assertKnownFields(s, SIGNED_FIELDS, 'system release payload');
  for (const k of SIGNED_FIELDS) if (!Object.hasOwn(s, k)) throw bad(`${k} is missing`, { field: k });
  if (s['type'] !== 'system') throw bad(`type is ${JSON.stringify(s['type'])}, expected "system"`);
  const int = (k: string, min: number): number => {
    const x = s[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) throw bad(`${k} must be an integer of at least ${min}`, { field: k });
    return x;
  };
  const str = (k: string): string => {
    const x = s[k];
    if (typeof x !== 'string' || x.length === 0) throw bad(`${k} must be a non-empty string`, { field: k });
    return x;
  };
  const arch = str('arch');
  if (!ARCH.test(arch)) throw bad(`arch ${JSON.stringify(arch)} is not an architecture name`);
  for (const k of ['generated', 'expires']) {
    if (Number.isNaN(Date.parse(str(k)))) throw bad(`${k} must be an ISO-8601 time`, { field: k });
  }
  const a = s['artifacts'];
  if (!isJsonObject(a)) throw bad('artifacts must be an object');
  assertKnownFields(a, SYSTEM_ARTIFACTS, 'system release artifacts');
  const artifacts = {} as Record<SystemArtifactName, SystemArtifact>;
  for (const name of SYSTEM_ARTIFACTS) artifacts[name] = parseArtifact(a[name], name);
  if (new Set(SYSTEM_ARTIFACTS.map((n) => artifacts[n].path)).size !== SYSTEM_ARTIFACTS.length) throw bad('two artifacts share a path');
  return {
    type: 'system',
    format: int('format', 1),
    repo: str('repo'),
    version: int('version', 1),
    arch,
    minClientFormat: int('minClientFormat', 1),
    generated: str('generated'),
    expires: str('expires'),
    artifacts,
  };
}

/** The payload bytes: fields in one fixed order, so the same release always signs to the same bytes. */
export function systemReleasePayload(s: SystemReleaseSigned): Buffer {
  const art = (x: SystemArtifact): SystemArtifact => ({ path: x.path, size: x.size, sha256: x.sha256 });
  return Buffer.from(
    JSON.stringify({
      type: s.type,
      format: s.format,
      repo: s.repo,
      version: s.version,
      arch: s.arch,
      minClientFormat: s.minClientFormat,
      generated: s.generated,
      expires: s.expires,
      artifacts: { kernel: art(s.artifacts.kernel), initramfs: art(s.artifacts.initramfs), base: art(s.artifacts.base) },
    }),
  );
}

export function signSystemRelease(signed: SystemReleaseSigned, keys: KeyPair[]): SystemReleaseDocument {
  // Parsing our own payload first means the writer can never sign what the reader would refuse.
  const payload = systemReleasePayload(signed);
  parseSystemReleasePayload(payload);
  return { ...signEnvelope(PAYLOAD_TYPES.system, payload, keys), signed };
}

/** Parses without checking signatures (a publisher reading its own output). */
export function parseSystemRelease(bytes: Uint8Array, what = 'system release'): SystemReleaseDocument {
  const env = parseEnvelope(bytes, PAYLOAD_TYPES.system, what);
  return { ...env, signed: parseSystemReleasePayload(env.payload) };
}

export interface VerifySystemReleaseOptions {
  root: RootDocument;
  now: Date;
  /** The machine's arch; a release for another is E_WRONG_ARCH. */
  arch: string;
  /** The repository name the client configured (E_WRONG_REPO otherwise). */
  repo?: string;
  /** The newest release this machine accepted (installed or staged): lower is E_ROLLBACK, the same version with other bytes E_EQUIVOCATION. */
  lastAccepted?: { version: number; payloadSha256: string };
  clientFormat?: number;
}

/** The one gate a system release passes before any byte of the inactive slot is written. */
export function verifySystemRelease(bytes: Uint8Array, o: VerifySystemReleaseOptions): SystemReleaseDocument {
  if (bytes.length > MAX_SYSTEM_RELEASE_BYTES) {
    throw new SwpkgError('E_TOO_LARGE', `system release is ${bytes.length} bytes, more than the ${MAX_SYSTEM_RELEASE_BYTES} allowed`, {
      details: { size: bytes.length, limit: MAX_SYSTEM_RELEASE_BYTES },
    });
  }
  const env = parseEnvelope(bytes, PAYLOAD_TYPES.system, 'system release');
  checkReleaseThreshold(env, o.root, 'system release');
  const signed = parseSystemReleasePayload(env.payload);
  const what = `system release v${signed.version}`;
  if (o.repo !== undefined && signed.repo !== o.repo) {
    throw new SwpkgError('E_WRONG_REPO', `${what} is for repository "${signed.repo}", but this is repository "${o.repo}"`, {
      hint: 'the server is serving another repository signed by the same keys; check the URL',
      details: { expected: o.repo, offered: signed.repo },
    });
  }
  assertNotExpired(signed.expires, o.now, what);
  if (o.lastAccepted) {
    if (signed.version < o.lastAccepted.version) {
      throw new SwpkgError('E_ROLLBACK', `${what} is older than version ${o.lastAccepted.version} already accepted`, {
        hint: 'a mirror is serving a stale release or someone is replaying an old one; to go back on purpose use `pkg system rollback`',
        details: { offered: signed.version, accepted: o.lastAccepted.version },
      });
    }
    if (signed.version === o.lastAccepted.version && payloadSha256(env) !== o.lastAccepted.payloadSha256) {
      throw new SwpkgError('E_EQUIVOCATION', `${what} has different content than the copy already accepted`, {
        hint: 'the publisher signed two different system releases with one version; report it',
        details: { version: signed.version, accepted: o.lastAccepted.payloadSha256, offered: payloadSha256(env) },
      });
    }
  }
  const clientFormat = o.clientFormat ?? CLIENT_FORMAT;
  if (signed.format > SYSTEM_RELEASE_FORMAT || signed.minClientFormat > clientFormat) {
    throw new SwpkgError('E_INCOMPATIBLE', `${what} needs client format ${signed.minClientFormat} (release format ${signed.format})`, {
      hint: 'upgrade pkg first',
      details: { format: signed.format, minClientFormat: signed.minClientFormat, clientFormat },
    });
  }
  if (signed.arch !== o.arch) {
    throw new SwpkgError('E_WRONG_ARCH', `${what} is for ${signed.arch}; this machine is ${o.arch}`, {
      hint: `publish a release built for ${o.arch}`,
      details: { releaseArch: signed.arch, machineArch: o.arch },
    });
  }
  return { ...env, signed };
}
