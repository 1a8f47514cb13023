import {
  SwpkgError,
  checkReleaseThreshold,
  checkThreshold,
  NAME_RE,
  parseRoot,
  rootFingerprint,
  type RootDocument,
  encodeEnvelope,
  parseCatalog,
  parseHostedRepo,
  parseRelease,
  releaseDigest,
  sha256Hex,
  signRelease,
  unmetDependencies,
  MAX_RELEASE_BYTES,
  RELEASE_FORMAT,
  type CatalogDocument,
  type KeyPair,
  type ReleaseDocument,
  type ReleasePackage,
  type ReleaseSigned,
} from '../catalog/index.js';
import semver from 'semver';
import { renderIndexHtml, type IndexHtmlRelease } from './index-html.js';
import { FolderTarget, type PublishTarget } from './storage.js';

/**
 * Releases in a web root or a bucket (issue 15): `releases/ID/VERSION.json`, each a signed release
 * document, written once (create-only) and never changed, and `releases/index.json`, an unsigned
 * listing for people and tools (clients verify the documents themselves, never the listing), written
 * after the document. Everything goes through the PublishTarget a publish uses.
 */
export const RELEASES_DIR = 'releases';

export interface CreateReleaseOptions {
  /** The published web root the release is made from and written into; ignored when `target` is given. */
  out: string;
  /** Where the repository is published (a folder or an S3 bucket); default a FolderTarget on `out`. */
  target?: PublishTarget;
  id: string;
  /** Default: one more than the newest published version of this id. */
  version?: number;
  /** Release keys (private); together they must meet the root's release threshold. */
  keys: KeyPair[];
  arch: string;
  /** `NAME@VERSION` of each package; default every package of the catalog for this arch, newest version of each name. */
  packages?: string[];
  expiresIn: number;
  sourceRevision?: string;
  now?: Date;
}

export interface CreateReleaseResult {
  path: string;
  id: string;
  version: number;
  digest: string;
  supersedes: { id: string; version: number } | null;
  packages: { name: string; version: string; sha256: string; location: string }[];
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function releasePath(id: string, version: number): string {
  return `${RELEASES_DIR}/${id}/${version}.json`;
}

const MAX_ROOT_BYTES = 1024 * 1024;
const MAX_CATALOG_BYTES = 64 * 1024 * 1024;

/**
 * The repository's current root: `repo-root.pub`, which publish and rotate-root keep equal to the
 * newest roots/N.json; checked against its own root keys before it decides anything.
 */
async function latestRoot(target: PublishTarget): Promise<RootDocument | undefined> {
  const bytes = await target.read('repo-root.pub', MAX_ROOT_BYTES);
  if (bytes === undefined) return undefined;
  const root = parseRoot(bytes, 'repo-root.pub');
  checkThreshold(root, root.signed.roles.root, root.signed.keys, 'repo-root.pub');
  return root;
}

/**
 * The catalog clients follow: the one hosted-repo.json names, else catalog.json (a repository
 * published before the pointer). Undefined when there is none.
 */
async function currentCatalog(target: PublishTarget): Promise<{ path: string; doc: CatalogDocument } | undefined> {
  const hint = await target.read('hosted-repo.json', 64 * 1024);
  const path = hint === undefined ? 'catalog.json' : parseHostedRepo(hint).catalog;
  const bytes = await target.read(path, MAX_CATALOG_BYTES);
  return bytes === undefined ? undefined : { path, doc: parseCatalog(bytes, path) };
}

/** Published versions of one release id, ascending. */
async function publishedVersions(target: PublishTarget, id: string): Promise<number[]> {
  return (await target.list(`${RELEASES_DIR}/${id}`))
    .map((n) => /^([1-9]\d*)\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Every release document in the repository, parsed strictly (signatures are the client's business). */
export async function readReleases(target: PublishTarget): Promise<{ path: string; doc: ReleaseDocument }[]> {
  const found: { path: string; doc: ReleaseDocument }[] = [];
  // Only names release create could have made: a folder named otherwise (`..`, in a bucket) is not a release id.
  for (const id of (await target.folders(RELEASES_DIR)).filter((n) => NAME_RE.test(n)).sort()) {
    for (const v of await publishedVersions(target, id)) {
      const path = releasePath(id, v);
      const bytes = await target.read(path, MAX_RELEASE_BYTES);
      // Listed a moment ago and gone now: a release is never deleted, so this is someone else's hand.
      if (bytes === undefined)
        throw new SwpkgError('E_NOT_FOUND', `${path} vanished from ${target.where} while it was read`, { details: { path } });
      found.push({ path, doc: parseRelease(bytes, path) });
    }
  }
  return found;
}

/** The listing index.html and releases/index.json show: newest version first within each id. */
export async function listReleases(target: PublishTarget): Promise<IndexHtmlRelease[]> {
  return (await readReleases(target))
    .map(({ path, doc }) => ({
      id: doc.signed.id,
      version: doc.signed.version,
      digest: releaseDigest(doc),
      created: doc.signed.created,
      expires: doc.signed.expires,
      path,
      packages: doc.signed.packages.length,
    }))
    .sort((a, b) => (a.id === b.id ? b.version - a.version : a.id < b.id ? -1 : 1));
}

/**
 * Package files in the repository that a release not yet expired refers to: retention
 * (publish.ts) keeps them even after they left the catalog, so a pinned set stays installable.
 */
export async function releasePinnedPaths(target: PublishTarget, now: Date): Promise<Set<string>> {
  const pinned = new Set<string>();
  for (const { doc } of await readReleases(target)) {
    if (Date.parse(doc.signed.expires) <= now.getTime()) continue;
    for (const p of doc.signed.packages) if (!/^[a-z]+:/.test(p.location)) pinned.add(p.location);
  }
  return pinned;
}

function pickPackages(catalog: ReleasePackage[], arch: string, specs: string[] | undefined): ReleasePackage[] {
  const usable = catalog.filter((p) => p.arch === arch || p.arch === 'any');
  if (!specs || specs.length === 0) {
    const newest = new Map<string, ReleasePackage>();
    // The catalog orders versions as strings (comparePaths): 1.10.0 before 1.9.0, so compare as semver.
    for (const p of usable) {
      const prev = newest.get(p.name);
      if (!prev || semver.compare(p.version, prev.version) > 0) newest.set(p.name, p);
    }
    return [...newest.values()];
  }
  return specs.map((spec) => {
    const at = spec.indexOf('@');
    const name = at < 0 ? spec : spec.slice(0, at);
    const version = at < 0 ? undefined : spec.slice(at + 1);
    const matches = usable.filter((p) => p.name === name && (version === undefined || p.version === version));
    if (matches.length !== 1) {
      throw new SwpkgError(
        matches.length === 0 ? 'E_NOT_FOUND' : 'E_USAGE',
        matches.length === 0
          ? `the catalog has no ${spec} for ${arch}`
          : `${spec} names ${matches.length} versions; say which (NAME@VERSION)`,
        { details: { spec, arch, versions: usable.filter((p) => p.name === name).map((p) => p.version) } },
      );
    }
    return matches[0]!;
  });
}

/**
 * `swpkg release create`: picks exact packages from the published catalog, checks each file in the
 * repository against its SHA-256 and the set for closed dependencies, signs with the release keys
 * (refused unless the root's release role accepts them), and writes `releases/ID/N.json` once,
 * create-only: a published version never changes (E_IMMUTABLE), and of two creators racing for one
 * version only one wins. Then the listing and index.html, rendered from what is published.
 */
export async function createRelease(o: CreateReleaseOptions): Promise<CreateReleaseResult> {
  const target = o.target ?? new FolderTarget(o.out);
  const now = o.now ?? new Date();
  if (!(o.expiresIn > 0)) throw new SwpkgError('E_USAGE', 'the release must expire in the future (--expires)');
  // The id becomes a folder name under releases/: checked before any path is built from it.
  if (!NAME_RE.test(o.id)) throw new SwpkgError('E_USAGE', `release id ${JSON.stringify(o.id)} must be a name: a-z, 0-9, +, ., _, -`);
  const root = await latestRoot(target);
  const current = await currentCatalog(target);
  if (!root || current === undefined) {
    throw new SwpkgError('E_NOT_FOUND', `${target.where} is not a published repository (no repo-root.pub or catalog)`, {
      hint: 'publish it first (`swpkg repo publish`)',
      details: { out: target.where },
    });
  }
  const catalog = current.doc.signed;
  const picked = pickPackages(
    catalog.packages.map(({ path, ...p }) => ({ ...p, location: path })),
    o.arch,
    o.packages,
  );
  const unmet = unmetDependencies(picked);
  if (unmet.length > 0) {
    throw new SwpkgError('E_RESOLVE', `the release's packages need ${unmet.map((u) => u.requires).join(', ')}, which it does not include`, {
      hint: 'add the packages that meet them: a release is installed as exactly its own set',
      details: { unmet },
    });
  }
  for (const p of picked) {
    // The hash decides (it fixes the size too); an object store answers it from the hash recorded at upload.
    const got = await target.sha256Of(p.location);
    if (got === undefined) {
      throw new SwpkgError('E_NOT_FOUND', `${p.location} (${p.name}@${p.version}) is not a file in ${target.where}`, {
        details: { path: p.location },
      });
    }
    if (got !== p.sha256) {
      throw new SwpkgError('E_HASH_MISMATCH', `${p.location} does not match the catalog (SHA-256 ${got})`, {
        details: { path: p.location, expected: p.sha256, actual: got },
      });
    }
  }
  const versions = await publishedVersions(target, o.id);
  const last = versions[versions.length - 1];
  const version = o.version ?? (last ?? 0) + 1;
  if (last !== undefined && version < last) {
    throw new SwpkgError('E_ROLLBACK', `release ${o.id} v${version} is older than the published v${last}`, {
      hint: 'a new release gets a higher version; published ones never change',
      details: { id: o.id, version, published: last },
    });
  }
  const abi = [...new Set(picked.map((p) => p.abi))];
  const signed: ReleaseSigned = {
    type: 'release',
    format: RELEASE_FORMAT,
    id: o.id,
    version,
    repo: catalog.repo,
    arch: o.arch,
    abi: abi.length === 1 ? abi[0]! : 'linux-musl-static',
    minClientFormat: catalog.compatibility.minClientFormat,
    created: iso(now),
    expires: iso(new Date(now.getTime() + o.expiresIn * 1000)),
    supersedes: last !== undefined && last < version ? { id: o.id, version: last } : null,
    sourceRevision: o.sourceRevision ?? '',
    packages: picked,
  };
  if (abi.length > 1) throw new SwpkgError('E_USAGE', `the packages are for several ABIs (${abi.join(', ')}); a release is for one`);
  const doc = signRelease(signed, o.keys);
  const path = releasePath(o.id, version);
  // The root of this repository decides: a key it does not name as a release key signs nothing here.
  checkReleaseThreshold(doc, root, path);
  const bytes = encodeEnvelope(doc);
  const taken = (): SwpkgError =>
    new SwpkgError('E_IMMUTABLE', `${path} is already published; a published release never changes`, {
      hint: `publish the new set as the next version (v${version + 1}), which supersedes this one`,
      details: { path },
    });
  if (versions.includes(version)) throw taken();
  // Create-only: two writers racing for one version cannot both win (the loser's bytes differ: E_IMMUTABLE).
  try {
    await target.putImmutable(path, { bytes }, sha256Hex(bytes));
  } catch (e) {
    if (e instanceof SwpkgError && e.code === 'E_IMMUTABLE') throw taken();
    throw e;
  }
  await writeReleaseListing(target);
  return {
    path,
    id: o.id,
    version,
    digest: releaseDigest(doc),
    supersedes: signed.supersedes,
    packages: doc.signed.packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256, location: p.location })),
  };
}

/** releases/index.json and index.html, rendered again from what is published. */
export async function writeReleaseListing(target: PublishTarget): Promise<void> {
  const releases = await listReleases(target);
  await target.putMutable(`${RELEASES_DIR}/index.json`, JSON.stringify({ format: 1, releases }, null, 2) + '\n');
  const root = await latestRoot(target);
  if (root) await renderIndexHtmlAgain(target, root);
}

/**
 * index.html rendered again from the repository's current catalog, its releases and `root` (after a
 * rotation or a new release: the catalog is unchanged). A repository without a catalog has no page yet.
 */
export async function renderIndexHtmlAgain(target: PublishTarget, root: RootDocument): Promise<void> {
  const current = await currentCatalog(target);
  if (current === undefined) return;
  const { signed } = current.doc;
  await target.putMutable(
    'index.html',
    renderIndexHtml({
      repo: signed.repo,
      catalogVersion: signed.version,
      generated: signed.generated,
      expires: signed.expires,
      rootFingerprint: rootFingerprint(root),
      rootVersion: root.signed.version,
      packages: signed.packages,
      releases: await listReleases(target),
    }),
  );
}
