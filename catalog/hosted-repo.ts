import { SwpkgError } from './errors.js';
import { assertKnownFields, isJsonObject, parseStrictJson } from './strict-json.js';

export const HOSTED_REPO_FORMAT = 1;

/** `hosted-repo.json`: hints for clients. Untrusted by design: everything is checked against the pinned root. */
export interface HostedRepo {
  format: number;
  name: string;
  catalog: string;
  rootFingerprint: string;
  rootVersion: number;
  mirrors: string[];
}

const HOSTED_FIELDS = ['format', 'name', 'catalog', 'rootFingerprint', 'rootVersion', 'mirrors'] as const;

/** Parses `hosted-repo.json` strictly (it comes from a server): every field typed, unknown fields refused. */
export function parseHostedRepo(bytes: Uint8Array, what = 'hosted-repo.json'): HostedRepo {
  const v = parseStrictJson(bytes, what);
  const bad = (why: string): SwpkgError => new SwpkgError('E_MALFORMED', `${what}: ${why}`, { details: { what } });
  if (!isJsonObject(v)) throw bad('is not an object');
  assertKnownFields(v, HOSTED_FIELDS, what);
  const { format, name, catalog, rootFingerprint: fp, rootVersion, mirrors } = v;
  if (format !== HOSTED_REPO_FORMAT) throw bad(`format must be ${HOSTED_REPO_FORMAT}`);
  if (typeof name !== 'string' || typeof catalog !== 'string' || typeof fp !== 'string')
    throw bad('lacks name, catalog or rootFingerprint');
  if (typeof rootVersion !== 'number' || rootVersion < 1) throw bad('rootVersion must be a positive integer');
  if (!Array.isArray(mirrors) || !mirrors.every((m) => typeof m === 'string')) throw bad('mirrors must be an array of strings');
  return { format, name, catalog, rootFingerprint: fp, rootVersion, mirrors };
}
