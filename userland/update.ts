import {
  SwpkgError,
  assertRootCurrent,
  parseHostedRepo,
  payloadSha256,
  verifyCatalog,
  verifyRootUpdate,
  type RootDocument,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fetchBytes, isUnreachable, joinUrl, mirrorSetOf, originsOf, refusedFromServer, tryMirrors } from './download.js';
import { readRepos, loadTrustedRoot, saveMirrorStatus, saveTrustedRoot, type RepoConfig } from './repos.js';
import { readCatalogState, saveAcceptedCatalog, storedCatalogIntact } from './catalog-store.js';
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

const MAX_ROOT_BYTES = 1024 * 1024;
/** Bounds the root walk: a server cannot keep a client walking forever. */
const MAX_ROOT_STEPS = 1000;
const CATALOG_PATH = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/**
 * Walks `roots/N+1.json` from the trusted root until a 404: each step must be
 * version N+1 signed by a threshold of the old root's keys and its own
 * (verifyRootUpdate). Returns the newest root and the versions accepted.
 */
async function walkRoots(ctx: PkgContext, bases: string[], trusted: RootDocument): Promise<{ root: RootDocument; rotated: number[] }> {
  const transport = await ctx.transport();
  let root = trusted;
  const rotated: number[] = [];
  for (let step = 0; step < MAX_ROOT_STEPS; step++) {
    const next = root.signed.version + 1;
    const bytes = await tryMirrors(
      bases,
      async (base): Promise<Uint8Array | undefined> => {
        try {
          return await fetchBytes(joinUrl(base, `roots/${next}.json`), {
            transport,
            maxBytes: MAX_ROOT_BYTES,
            limits: ctx.limits,
            origins: originsOf(bases),
          });
        } catch (e) {
          // 404 is this mirror's answer "no newer root", not a failure to fail over from.
          if (e instanceof SwpkgError && e.code === 'E_HTTP' && e.details['status'] === 404) return undefined;
          throw e;
        }
      },
      ctx.reporter,
      mirrorSetOf(transport),
    );
    if (bytes === undefined) break;
    try {
      root = verifyRootUpdate(root, bytes, `roots/${next}.json`);
    } catch (e) {
      throw refusedFromServer(e, `roots/${next}.json`);
    }
    rotated.push(root.signed.version);
  }
  return { root, rotated };
}

/**
 * Reads one server's hosted-repo.json catalog path (an untrusted hint, the repository's one mutable
 * pointer): any plain relative path, default catalog.json. Asked per server, so a mirror's pointer
 * is followed on that mirror, where everything it names was uploaded before it.
 */
async function catalogPath(ctx: PkgContext, base: string, bases: string[]): Promise<string> {
  const transport = await ctx.transport();
  try {
    const bytes = await fetchBytes(joinUrl(base, 'hosted-repo.json'), {
      transport,
      maxBytes: 64 * 1024,
      limits: ctx.limits,
      origins: originsOf(bases),
    });
    const hint = parseHostedRepo(bytes);
    if (CATALOG_PATH.test(hint.catalog) && !hint.catalog.split('/').includes('..')) return hint.catalog;
  } catch (e) {
    // An unreachable server is a failed mirror, not a missing hint: asking it for catalog.json would cost a second timeout.
    if (!(e instanceof SwpkgError) || isUnreachable(e)) throw e;
    // The hint is optional: a host without it still serves catalog.json.
  }
  return 'catalog.json';
}

async function updateOne(ctx: PkgContext, repo: RepoConfig): Promise<RepoUpdate> {
  const bases = [repo.url, ...repo.mirrors];
  const trusted = await loadTrustedRoot(ctx, repo.name);
  const { root, rotated } = await walkRoots(ctx, bases, trusted);
  // An expired newest root stops updates: its keys may be compromised by now.
  assertRootCurrent(root, ctx.now());
  const state = await readCatalogState(ctx, repo.name);
  const transport = await ctx.transport();
  let source = '';
  const { bytes, doc } = await tryMirrors(
    bases,
    async (base) => {
      const url = joinUrl(base, await catalogPath(ctx, base, bases));
      const b = await fetchBytes(url, { transport, maxBytes: ctx.maxCatalogBytes, limits: ctx.limits, origins: originsOf(bases) });
      // A stale or forged copy from one mirror fails here and the next mirror is asked.
      let d;
      try {
        d = verifyCatalog(b, {
          root,
          now: ctx.now(),
          ...(state
            ? { lastAccepted: { version: state.version, ...(state.payloadSha256 ? { payloadSha256: state.payloadSha256 } : {}) } }
            : {}),
          maxBytes: ctx.maxCatalogBytes,
          client: ctx.client,
          // The configured name is bound into what is accepted: another repository signed by the same keys is refused.
          repo: repo.name,
        });
      } catch (e) {
        throw refusedFromServer(e, url);
      }
      source = url;
      return { bytes: b, doc: d };
    },
    ctx.reporter,
    mirrorSetOf(transport),
  );
  crashPoint('update.catalog-verified');
  // The new root is kept only once a catalog verified under it, so a refused update changes nothing.
  if (rotated.length > 0) {
    await saveTrustedRoot(ctx, repo.name, root);
    crashPoint('update.root-saved');
  }
  // What was signed decides "changed": the same payload re-framed is the same catalog, and the copy already kept stays.
  const changed = !state || state.payloadSha256 !== payloadSha256(doc);
  if (changed || rotated.length > 0 || !(await storedCatalogIntact(ctx, repo.name, state)))
    await saveAcceptedCatalog(ctx, repo.name, bytes, doc, { rootVersion: root.signed.version, source });
  await saveMirrorStatus(ctx, repo, mirrorSetOf(transport));
  // The outcome is the result (RepoUpdate): the CLI prints it once, so nothing is reported here.
  crashPoint('update.saved');
  const out: RepoUpdate = {
    repo: repo.name,
    version: doc.signed.version,
    changed,
    packages: doc.signed.packages.length,
    expires: doc.signed.expires,
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
