import { SwpkgError, refusedFromServer } from './errors.js';
import { assertRootCurrent, verifyRootUpdate, type RootDocument } from './root.js';
import { verifyCatalog, DEFAULT_MAX_CATALOG_BYTES, type CatalogDocument, type VerifyCatalogOptions } from './catalog-doc.js';

/** A root document is small: a few keys and signatures. More is a server trying to exhaust memory. */
export const MAX_ROOT_BYTES = 1024 * 1024;
/** Bounds the root walk: a server cannot keep a client (or the publisher's outside check) walking forever. */
export const MAX_ROOT_STEPS = 1000;

/**
 * Reads one metadata file of a repository for the walker. The core never
 * speaks HTTP or touches a disk: the edge passes this in (the client's
 * bounded HTTP transport with mirror failover, or a folder).
 *
 * Contract: read at most `maxBytes` of `path` (relative to the repository
 * root) and hand the bytes to `accept`, returning what it returns. When the
 * repository has no such file, return undefined if `optional`, else throw a
 * coded error (the transport's own, e.g. E_HTTP with status 404). A fetcher
 * with several mirrors may ask the next one when `accept` throws: every
 * error `accept` throws is already a verification refusal.
 */
export type MetadataFetcher = <T>(
  path: string,
  o: { maxBytes: number; optional: boolean },
  accept: (bytes: Uint8Array) => T,
) => Promise<T | undefined>;

export interface TrustWalkOptions {
  /** The root already trusted: pinned by the client, or the first root of the chain for an outside check. */
  trusted: RootDocument;
  fetch: MetadataFetcher;
  /** Where the catalog is (hosted-repo.json's hint, default catalog.json). */
  catalogPath: string;
  now: Date;
  /** What verifyCatalog checks beyond signatures and expiry: last accepted version, size cap, client, repository name. */
  catalog?: Omit<VerifyCatalogOptions, 'root' | 'now'>;
  /** Called once the root chain is walked and its newest root is current, before the catalog is read. */
  onRoot?: (root: RootDocument, rotated: number[]) => void;
}

export interface TrustWalk<C = CatalogDocument> {
  /** The newest root, reached from `trusted` one signed step at a time. */
  root: RootDocument;
  /** Root versions accepted by rotation in this walk (empty when `trusted` is still the newest). */
  rotated: number[];
  /** What the catalog check returned (verifyCatalog's document by default). */
  catalog: C;
  /** The catalog's bytes as the check left them: a check that decodes in place (pkg update's) has spent them. */
  catalogBytes: Uint8Array;
}

/**
 * How the walk checks the catalog's bytes: verifyCatalog, or a caller's wrapper around one of
 * its forms (pkg update streams the entries into its index with verifyCatalogStream). It is
 * called once per copy fetched (a refused copy sends the fetcher to the next mirror), and must
 * apply every check of verifyCatalog with the options it is given.
 */
export type CatalogCheck<C> = (bytes: Uint8Array, o: VerifyCatalogOptions) => C;

/**
 * The one walk of the trust chain, shared by `pkg update` and `swpkg repo
 * verify-hosted`, in the order of the TUF client workflow (specification
 * 5.3, "update the root role", then 5.4 for the top-level metadata):
 *
 * 1. (5.3.3) fetch roots/N+1.json until the repository has none, at most
 *    MAX_ROOT_STEPS steps of MAX_ROOT_BYTES each;
 * 2. (5.3.4–5.3.5) each must be version N+1, signed by a threshold of the
 *    keys of root N and of its own (verifyRootUpdate);
 * 3. (5.3.10) the newest root must not be expired: its keys may be
 *    compromised by now;
 * 4. (5.4) the catalog must be signed by that root's catalog keys and pass
 *    verifyCatalog (size, framing, repository, expiry, rollback,
 *    equivocation, compatibility).
 *
 * Bytes that fail a check are verification refusals (exit 3) naming the
 * file, never usage errors (refusedFromServer). Nothing is stored here:
 * the caller keeps the new root only once the catalog verified under it.
 */
export async function walkTrust(o: TrustWalkOptions): Promise<TrustWalk>;
export async function walkTrust<C>(o: TrustWalkOptions, check: CatalogCheck<C>): Promise<TrustWalk<C>>;
export async function walkTrust(o: TrustWalkOptions, check: CatalogCheck<unknown> = verifyCatalog): Promise<TrustWalk<unknown>> {
  let root = o.trusted;
  const rotated: number[] = [];
  for (let step = 0; step < MAX_ROOT_STEPS; step++) {
    const path = `roots/${root.signed.version + 1}.json`;
    const current = root;
    const next = await o.fetch(path, { maxBytes: MAX_ROOT_BYTES, optional: true }, (bytes) => {
      try {
        return verifyRootUpdate(current, bytes, path);
      } catch (e) {
        throw refusedFromServer(e, path);
      }
    });
    if (next === undefined) break;
    root = next;
    rotated.push(root.signed.version);
  }
  assertRootCurrent(root, o.now);
  o.onRoot?.(root, rotated);
  const trustedRoot = root;
  const maxBytes = o.catalog?.maxBytes ?? DEFAULT_MAX_CATALOG_BYTES;
  const got = await o.fetch(o.catalogPath, { maxBytes, optional: false }, (bytes) => {
    try {
      return { bytes, doc: check(bytes, { ...o.catalog, maxBytes, root: trustedRoot, now: o.now }) };
    } catch (e) {
      throw refusedFromServer(e, o.catalogPath);
    }
  });
  // A fetcher that breaks its contract (no file, yet no error) must not pass for a verified catalog.
  if (got === undefined) throw new SwpkgError('E_INTERNAL', `the fetcher returned nothing for the required ${o.catalogPath}`);
  return { root, rotated, catalog: got.doc, catalogBytes: got.bytes };
}
