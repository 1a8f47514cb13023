import { createHash } from 'node:crypto';
import {
  SwpkgError,
  parseHostedRepo,
  sha256Hex,
  verifyCatalogStream,
  walkTrust,
  type MetadataFetcher,
  type VerifyCatalogOptions,
  type VerifiedCatalogSummary,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fetchBytes, isUnreachable, joinUrl, mirrorSetOf, originsOf, tryMirrors } from './download.js';
import { readRepos, saveMirrorStatus, saveTrustedRoot, trustStart, acceptStagedRoot, type RepoConfig } from './repos.js';
import { CatalogIndexBuilder, readCatalogState, saveAcceptedCatalog, storedCatalogIntact, storedSize } from './catalog-store.js';
import { withWriterLock } from './writer.js';
import { crashPoint } from './crash-point.js';

/** Outcome of `pkg update` for one repository. */
export interface RepoUpdate {
  repo: string;
  /** The catalog version accepted before this run (absent on the first update). */
  previousVersion?: number;
  version: number;
  /** False when the server offered the catalog already accepted. */
  changed: boolean;
  packages: number;
  expires: string;
  rootVersion: number;
  /** Root versions accepted by rotation in this run. */
  rotatedRoots: number[];
  source: string;
}

export interface UpdateResult {
  repos: RepoUpdate[];
}

const CATALOG_PATH = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** The walker's name for "this server's current catalog": each server's own pointer resolves it. */
const CURRENT_CATALOG = 'catalog.json';

/**
 * The walker's fetcher over pkg's bounded HTTP transport: each file is asked
 * of the primary and then each mirror (a server that failed earlier in this
 * command last: the transport's MirrorSet). A mirror's 404 for an optional
 * file (no newer root) is its answer, not a failure to fail over from; bytes
 * the walker refuses (a stale or forged copy) send it to the next mirror.
 * The current catalog is read at the path that server's own pointer names,
 * so a mirror's pointer is followed on that mirror, where everything it
 * names was uploaded before it. `onSource` hears which URL's bytes were accepted.
 */
function mirrorFetcher(ctx: PkgContext, bases: string[], onSource: (path: string, url: string) => void): MetadataFetcher {
  return async (path, o, accept) => {
    const transport = await ctx.transport();
    const get = (url: string, gunzip = false): Promise<Uint8Array> =>
      fetchBytes(url, { transport, maxBytes: o.maxBytes, limits: ctx.limits, origins: originsOf(bases), gunzip });
    return tryMirrors(
      bases,
      async (base) => {
        const hint = path === CURRENT_CATALOG ? await catalogPath(ctx, base, bases) : { path };
        const url = joinUrl(base, hint.path);
        // The source named is the catalog's URL even when its bytes came through the gzip sibling.
        let bytes = hint.gzip !== undefined ? await fetchCatalogGzip(get, joinUrl(base, hint.gzip), hint.path) : undefined;
        try {
          bytes ??= await get(url);
        } catch (e) {
          if (o.optional && e instanceof SwpkgError && e.code === 'E_HTTP' && e.details['status'] === 404) return undefined;
          throw e;
        }
        const value = accept(bytes);
        onSource(path, url);
        return value;
      },
      ctx.reporter,
      mirrorSetOf(transport),
    );
  };
}

/** catalogs/VERSION-SHA256.json: the SHA-256 of the catalog's bytes is in its name. */
const HASHED_CATALOG = /^catalogs\/\d+-([0-9a-f]{64})\.json$/;

/**
 * The catalog through its gzip sibling (hosted-repo.json's `catalogGzip`): inflated as it
 * arrives, capped like the catalog itself, and its inflated bytes must hash to the SHA-256 the
 * catalog's name carries (E_HASH_MISMATCH otherwise, before the signature is even looked at).
 * Undefined when the server has no such file (404): the plain catalog is read instead.
 */
async function fetchCatalogGzip(
  get: (url: string, gunzip?: boolean) => Promise<Uint8Array>,
  url: string,
  catalog: string,
): Promise<Uint8Array | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await get(url, true);
  } catch (e) {
    if (e instanceof SwpkgError && e.code === 'E_HTTP' && e.details['status'] === 404) return undefined;
    throw e;
  }
  const named = HASHED_CATALOG.exec(catalog)?.[1];
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (named !== undefined && actual !== named) {
    throw new SwpkgError('E_HASH_MISMATCH', `${url} inflates to bytes with SHA-256 ${actual}, not the ${named} its catalog's name says`, {
      hint: 'the server sent a compressed catalog that is not the catalog it names; use another mirror, or tell the publisher',
      details: { url, expected: named, actual },
    });
  }
  return bytes;
}

/**
 * Reads one server's hosted-repo.json catalog path (an untrusted hint, the repository's one mutable
 * pointer): any plain relative path, default catalog.json; and its gzip sibling when the hint names
 * one, which must be that path plus `.gz` (anything else is ignored).
 */
async function catalogPath(ctx: PkgContext, base: string, bases: string[]): Promise<{ path: string; gzip?: string }> {
  const transport = await ctx.transport();
  try {
    const bytes = await fetchBytes(joinUrl(base, 'hosted-repo.json'), {
      transport,
      maxBytes: 64 * 1024,
      limits: ctx.limits,
      origins: originsOf(bases),
    });
    const hint = parseHostedRepo(bytes);
    if (CATALOG_PATH.test(hint.catalog) && !hint.catalog.split('/').includes('..'))
      return { path: hint.catalog, ...(hint.catalogGzip === `${hint.catalog}.gz` ? { gzip: hint.catalogGzip } : {}) };
  } catch (e) {
    // An unreachable server is a failed mirror, not a missing hint: asking it for catalog.json would cost a second timeout.
    if (!(e instanceof SwpkgError) || isUnreachable(e)) throw e;
    // The hint is optional: a host without it still serves catalog.json.
  }
  return { path: 'catalog.json' };
}

async function updateOne(ctx: PkgContext, repo: RepoConfig): Promise<RepoUpdate> {
  const bases = [repo.url, ...repo.mirrors];
  // A staged repository starts from the image's pin (its fingerprint fetched and matched: E_BAD_ROOT otherwise)
  // until a catalog verifies under it; rotation from there is the same walk as for an added repository.
  const start = await trustStart(ctx, repo);
  const trusted = start.root;
  // State accepted under another anchor (an earlier staged pin) says nothing about this one.
  const state = start.fromStagedPin ? undefined : await readCatalogState(ctx, repo.name);
  const path = CURRENT_CATALOG;
  let source = '';
  // The size of the copy already kept: bytes of another size are another catalog, without hashing them.
  const keptSize = state ? await storedSize(ctx, repo.name, state.sha256) : undefined;
  // Verifies the bytes into a fresh index (discarded when they are refused). The payload is decoded
  // inside the fetched bytes (tens of MB less held for a large catalog): they are spent from then
  // on, and what is stored comes back through the summary's originalBytes.
  const indexFor = (b: Uint8Array, v: VerifyCatalogOptions): { summary: VerifiedCatalogSummary; builder: CatalogIndexBuilder } => {
    const builder = new CatalogIndexBuilder(ctx.paths.catalogsDir);
    try {
      return { summary: verifyCatalogStream(b, v, (p) => builder.add(p), { inPlace: true }), builder };
    } catch (e) {
      builder.discard();
      throw e;
    }
  };
  const {
    root,
    rotated,
    catalog: { summary, entries, checked, sha256 },
  } = await walkTrust(
    {
      trusted,
      fetch: mirrorFetcher(ctx, bases, (p, url) => {
        if (p === path) source = url;
      }),
      catalogPath: path,
      now: ctx.now(),
      catalog: {
        ...(state
          ? { lastAccepted: { version: state.version, ...(state.payloadSha256 ? { payloadSha256: state.payloadSha256 } : {}) } }
          : {}),
        maxBytes: ctx.maxCatalogBytes,
        client: ctx.client,
        // The configured name is bound into what is accepted: another repository signed by the same keys is refused.
        repo: repo.name,
      },
    },
    // The catalog is never built whole: each entry, once checked, goes into the index, which is
    // kept only if the whole catalog verifies (a fresh one per copy fetched, as mirrors may be tried in turn).
    // The very bytes already kept need no new index (the entries are only checked), unless the kept copy
    // turns out damaged: then they are verified once more into one, below.
    (b, v) => {
      // Hashed before verifying: the verification spends the bytes.
      const sha256 = sha256Hex(b);
      if (keptSize === b.length && state && sha256 === state.sha256) {
        return { summary: verifyCatalogStream(b, v, () => undefined, { inPlace: true }), entries: undefined, checked: v, sha256 };
      }
      const index = indexFor(b, v);
      return { summary: index.summary, entries: index.builder, checked: v, sha256 };
    },
  );
  // What was signed decides "changed": the same payload re-framed is the same catalog, and the copy already kept stays.
  const changed = !state || state.payloadSha256 !== summary.payloadSha256;
  let index = entries;
  try {
    crashPoint('update.catalog-verified');
    // The new root is kept only once a catalog verified under it, so a refused update changes nothing.
    if (start.fromStagedPin) {
      await acceptStagedRoot(ctx, repo, root);
      crashPoint('update.root-saved');
    } else if (rotated.length > 0) {
      await saveTrustedRoot(ctx, repo.name, root);
      crashPoint('update.root-saved');
    }
    if (changed || rotated.length > 0 || start.fromStagedPin || !(await storedCatalogIntact(ctx, repo.name, state))) {
      // The bytes already kept, but the kept copy is damaged: the entries were only checked, so verify them again into an index.
      index ??= indexFor(Buffer.concat([...summary.originalBytes()]), checked).builder;
      await saveAcceptedCatalog(ctx, repo.name, { sha256, bytes: summary.originalBytes() }, summary, index, {
        rootVersion: root.signed.version,
        source,
      });
    }
    await saveMirrorStatus(ctx, repo, mirrorSetOf(await ctx.transport()));
  } finally {
    // The index's temp file of entries, written or not; a crash leaves it to the next writer (strayCatalogFiles).
    index?.discard();
  }
  // The outcome is the result (RepoUpdate): the CLI prints it once, so nothing is reported here.
  crashPoint('update.saved');
  const out: RepoUpdate = {
    repo: repo.name,
    version: summary.signed.version,
    changed,
    packages: summary.packages,
    expires: summary.signed.expires,
    rootVersion: root.signed.version,
    rotatedRoots: rotated,
    source,
  };
  if (state) out.previousVersion = state.version;
  return out;
}

/**
 * `pkg update`: fetches and verifies each repository's catalog against its
 * pinned root (following root rotation), and keeps it as the last accepted
 * one. Any refusal leaves that repository's accepted catalog and root as
 * they were. With `repos` given, only those are updated.
 */
export async function updateRepositories(ctx: PkgContext, o: { repos?: string[] } = {}): Promise<UpdateResult> {
  return withWriterLock(ctx, async () => {
    const all = await readRepos(ctx);
    if (all.length === 0) {
      throw new SwpkgError('E_NOT_FOUND', 'no repositories are configured', {
        hint: 'add one with `pkg repo add NAME URL --fingerprint HEX`',
      });
    }
    const chosen =
      o.repos && o.repos.length > 0
        ? o.repos.map((n) => {
            const r = all.find((x) => x.name === n);
            if (!r) throw new SwpkgError('E_NOT_FOUND', `no repository named ${n}`, { hint: 'see `pkg repo list`', details: { name: n } });
            return r;
          })
        : all;
    const repos: RepoUpdate[] = [];
    const failed: { repo: string; error: SwpkgError }[] = [];
    for (const r of chosen) {
      try {
        repos.push(await updateOne(ctx, r));
      } catch (e) {
        if (!(e instanceof SwpkgError)) throw e;
        // One broken repository must not keep the others stale; its failure is still the command's result.
        ctx.reporter.warn(`${r.name}: ${e.code} ${e.message}`);
        failed.push({ repo: r.name, error: e });
      }
    }
    const first = failed[0];
    if (first) {
      first.error.details['repo'] = first.repo;
      if (repos.length > 0 || failed.length > 1) {
        first.error.details['updated'] = repos.map((u) => u.repo);
        first.error.details['failed'] = failed.map((f) => ({ repo: f.repo, code: f.error.code }));
      }
      throw first.error;
    }
    return { repos };
  });
}
