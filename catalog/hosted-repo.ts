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
  /**
   * Older content-addressed catalogs still fetchable, newest first: a mirror or CDN holding an
   * older pointer finds everything it names, and verify-hosted checks them too. Absent before issue 16.
   */
  retainedCatalogs?: string[];
  /**
   * The same catalog gzip-compressed, `CATALOG.gz` beside it (immutable like it): a client that
   * reads it moves about a sixth of the bytes, and checks the SHA-256 in the catalog's name and
   * the signature on the inflated bytes. Absent before issue 17; a client that ignores it reads
   * `catalog` as before.
   */
  catalogGzip?: string;
}

const HOSTED_FIELDS = [
  'format',
  'name',
  'catalog',
  'rootFingerprint',
  'rootVersion',
  'mirrors',
  'retainedCatalogs',
  'catalogGzip',
] as const;

/** Parses `hosted-repo.json` strictly (it comes from a server): every field typed, unknown fields refused. */
export function parseHostedRepo(bytes: Uint8Array, what = 'hosted-repo.json'): HostedRepo {
  const v = parseStrictJson(bytes, what);
  const bad = (why: string): SwpkgError => new SwpkgError('E_MALFORMED', `${what}: ${why}`, { details: { what } });
  if (!isJsonObject(v)) throw bad('is not an object');
  assertKnownFields(v, HOSTED_FIELDS, what);
  const { format, name, catalog, rootFingerprint: fp, rootVersion, mirrors, retainedCatalogs, catalogGzip } = v;
  if (format !== HOSTED_REPO_FORMAT) throw bad(`format must be ${HOSTED_REPO_FORMAT}`);
  if (typeof name !== 'string' || typeof catalog !== 'string' || typeof fp !== 'string')
    throw bad('lacks name, catalog or rootFingerprint');
  if (typeof rootVersion !== 'number' || rootVersion < 1) throw bad('rootVersion must be a positive integer');
  if (!Array.isArray(mirrors) || !mirrors.every((m) => typeof m === 'string')) throw bad('mirrors must be an array of strings');
  if (retainedCatalogs !== undefined && !(Array.isArray(retainedCatalogs) && retainedCatalogs.every((m) => typeof m === 'string')))
    throw bad('retainedCatalogs must be an array of strings');
  if (catalogGzip !== undefined && typeof catalogGzip !== 'string') throw bad('catalogGzip must be a string');
  return {
    format,
    name,
    catalog,
    rootFingerprint: fp,
    rootVersion,
    mirrors,
    ...(retainedCatalogs !== undefined ? { retainedCatalogs } : {}),
    ...(catalogGzip !== undefined ? { catalogGzip } : {}),
  };
}
