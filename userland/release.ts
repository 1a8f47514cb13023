import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  SwpkgError,
  MAX_RELEASE_BYTES,
  releaseDigest,
  unmetDependencies,
  verifyRelease,
  type AcceptedRelease,
  type ReleaseDocument,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fetchBytes, originsOf } from './download.js';
import { readJsonIfExists, writeFileAtomic } from './fs-util.js';
import { loadTrustedRoot, readRepos, type RepoConfig } from './repos.js';
import { installExactSet, type Available, type MutationOptions, type TransactionResult } from './transaction.js';
import type { GenerationRelease } from './generation.js';
import { requireRepositories } from './query.js';
import { withWriterLock } from './writer.js';

/** `db/releases.json`: per release id, the newest version this client accepted and its digest (rollback, equivocation). */
interface AcceptedFile {
  format: 1;
  releases: Record<string, AcceptedRelease & { repo: string; acceptedAt: string }>;
}

function acceptedFile(ctx: PkgContext): string {
  return join(ctx.paths.db, 'releases.json');
}

async function readAccepted(ctx: PkgContext): Promise<AcceptedFile> {
  const v = (await readJsonIfExists(acceptedFile(ctx))) as AcceptedFile | undefined;
  if (v === undefined) return { format: 1, releases: {} };
  if (!v || v.format !== 1 || typeof v.releases !== 'object' || v.releases === null) {
    throw new SwpkgError('E_STORE', `${acceptedFile(ctx)} is not a pkg release record`, { details: { path: acceptedFile(ctx) } });
  }
  return v;
}

/** Records a release as accepted; a lower version never replaces a higher one. */
export async function recordAcceptedRelease(ctx: PkgContext, r: GenerationRelease): Promise<void> {
  const file = await readAccepted(ctx);
  const prev = Object.hasOwn(file.releases, r.id) ? file.releases[r.id] : undefined;
  if (prev && prev.version > r.version) return;
  file.releases[r.id] = { version: r.version, digest: r.digest, repo: r.repo, acceptedAt: ctx.now().toISOString() };
  await writeFileAtomic(acceptedFile(ctx), JSON.stringify(file, null, 2) + '\n');
}

/** A verified release, the repository whose root vouched for it, and where its packages come from. */
export interface LoadedRelease {
  doc: ReleaseDocument;
  repo: RepoConfig;
  record: GenerationRelease;
  source: string;
  available: Available[];
  /** The release as read: `pkg fetch --release` keeps a copy for installing later without the network. */
  bytes: Uint8Array;
}

/** FILE or URL → the URL it is read from: one reader (download.ts) for http(s):// and file:// alike. */
function releaseUrl(spec: string): string {
  if (/^(https?|file):\/\//.test(spec)) return spec;
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) {
    throw new SwpkgError('E_USAGE', `--release ${JSON.stringify(spec)} must be a file or an http://, https:// or file:// URL`, {
      details: { release: spec },
    });
  }
  return pathToFileURL(resolvePath(spec)).toString();
}

/**
 * Reads a release and verifies it against the configured repositories' trusted roots: the one whose
 * release keys signed it (signatures are checked before the payload is read, so the payload cannot
 * choose its repository), then expiry, rollback against the last accepted version of its id, arch,
 * and the set's own dependencies. Package locations resolve against that repository's URL and
 * mirrors, or are absolute URLs.
 */
export async function loadRelease(ctx: PkgContext, spec: string): Promise<LoadedRelease> {
  await requireRepositories(ctx);
  const url = releaseUrl(spec);
  const transport = await ctx.transport();
  const bytes = await fetchBytes(url, { transport, maxBytes: MAX_RELEASE_BYTES, limits: ctx.limits, origins: originsOf([url]) });
  const accepted = await readAccepted(ctx);
  let firstRefusal: SwpkgError | undefined;
  for (const repo of await readRepos(ctx)) {
    const root = await loadTrustedRoot(ctx, repo.name);
    if (!root.signed.roles.release) continue;
    let doc: ReleaseDocument;
    try {
      doc = verifyRelease(bytes, { root, now: ctx.now(), client: ctx.client, repo: repo.name });
    } catch (e) {
      // Signed by other keys, or naming another repository: maybe the next repository's release.
      if (e instanceof SwpkgError && (e.code === 'E_UNKNOWN_KEY' || e.code === 'E_WRONG_REPO')) {
        firstRefusal ??= e;
        continue;
      }
      throw e;
    }
    // The id is known only once the signature verified; then the same gate runs again with what was accepted for it.
    const prev = Object.hasOwn(accepted.releases, doc.signed.id) ? accepted.releases[doc.signed.id] : undefined;
    if (prev) verifyRelease(bytes, { root, now: ctx.now(), client: ctx.client, repo: repo.name, lastAccepted: prev });
    const unmet = unmetDependencies(doc.signed.packages);
    if (unmet.length > 0) {
      throw new SwpkgError('E_RESOLVE', `release ${doc.signed.id} v${doc.signed.version} does not contain what its packages need`, {
        hint: 'the publisher must add the missing packages to the release',
        details: { unmet },
      });
    }
    const bases = [repo.url, ...repo.mirrors];
    const available: Available[] = doc.signed.packages.map(({ location, ...fields }) => {
      const absolute = /^[a-z]+:\/\//.test(location);
      return {
        ...fields,
        repo: repo.name,
        source: { kind: 'repo', repo: repo.name, bases: absolute ? [location] : bases, path: location },
      };
    });
    const record: GenerationRelease = { id: doc.signed.id, version: doc.signed.version, digest: releaseDigest(doc), repo: repo.name };
    return { doc, repo, record, source: url, available, bytes };
  }
  if (firstRefusal) throw firstRefusal;
  throw new SwpkgError('E_UNKNOWN_KEY', `${spec}: no configured repository's root names release keys`, {
    hint: 'add the repository the release belongs to (`pkg repo add`); its publisher adds release keys with `swpkg repo rotate-root --release-key`',
    details: { release: spec },
  });
}

export interface InstallReleaseResult extends TransactionResult {
  release: GenerationRelease & { source: string };
}

/** `pkg install --release` and `pkg upgrade --release`: the release's exact set becomes the next generation. */
export async function installRelease(ctx: PkgContext, o: MutationOptions & { release: string }): Promise<InstallReleaseResult> {
  const r = await loadRelease(ctx, o.release);
  const { release: _spec, ...gate } = o;
  const result = await installExactSet(ctx, { ...gate, available: r.available, release: r.record });
  // Under the lock like every write to db/; a crash just before it leaves the release installed but its
  // version not yet recorded, so rollback protection for that id starts at the next install.
  if (!result.dryRun && !result.declined) await withWriterLock(ctx, () => recordAcceptedRelease(ctx, r.record));
  return { ...result, release: { ...r.record, source: r.source } };
}
