import { lstat, mkdir, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  checkReleaseThreshold,
  checkThreshold,
  NAME_RE,
  parseRoot,
  rootFingerprint,
  type RootDocument,
  encodeEnvelope,
  fromFsError,
  parseCatalog,
  parseRelease,
  releaseDigest,
  sha256File,
  signRelease,
  unmetDependencies,
  writeFileAtomic,
  RELEASE_FORMAT,
  type KeyPair,
  type ReleaseDocument,
  type ReleasePackage,
  type ReleaseSigned,
} from '../catalog/index.js';
import semver from 'semver';
import { renderIndexHtml, type IndexHtmlRelease } from './index-html.js';
import { readFileIfExists } from './storage.js';

/**
 * Releases in a web root (issue 15): `releases/ID/VERSION.json`, each a signed release document,
 * written once and never changed, and `releases/index.json`, an unsigned listing for people and
 * tools (clients verify the documents themselves, never the listing).
 */
export const RELEASES_DIR = 'releases';

export interface CreateReleaseOptions {
  /** The published web root the release is made from and written into. */
  out: string;
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

/**
 * The web root's current root: `repo-root.pub`, which publish and rotate-root keep equal to the
 * newest roots/N.json; checked against its own root keys before it decides anything.
 */
async function latestRoot(out: string): Promise<RootDocument | undefined> {
  const bytes = await readFileIfExists(join(out, 'repo-root.pub'));
  if (bytes === undefined) return undefined;
  const root = parseRoot(bytes, 'repo-root.pub');
  checkThreshold(root, root.signed.roles.root, root.signed.keys, 'repo-root.pub');
  return root;
}

/** Published versions of one release id, ascending. */
async function publishedVersions(out: string, id: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(join(out, RELEASES_DIR, id));
  } catch {
    return [];
  }
  return names
    .map((n) => /^([1-9]\d*)\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Every release document in the web root, parsed strictly (signatures are the client's business). */
export async function readReleases(out: string): Promise<{ path: string; doc: ReleaseDocument }[]> {
  let ids: string[];
  try {
    ids = (await readdir(join(out, RELEASES_DIR), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
  const found: { path: string; doc: ReleaseDocument }[] = [];
  for (const id of ids.sort()) {
    for (const v of await publishedVersions(out, id)) {
      const path = releasePath(id, v);
      found.push({ path, doc: parseRelease(await readFile(join(out, path)), path) });
    }
  }
  return found;
}

/** The listing index.html and releases/index.json show: newest version first within each id. */
export async function listReleases(out: string): Promise<IndexHtmlRelease[]> {
  return (await readReleases(out))
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
 * Package files in this web root that a release not yet expired refers to: retention
 * (publish.ts) keeps them even after they left the catalog, so a pinned set stays installable.
 */
export async function releasePinnedPaths(out: string, now: Date): Promise<Set<string>> {
  const pinned = new Set<string>();
  for (const { doc } of await readReleases(out)) {
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
 * web root against its size and SHA-256 and the set for closed dependencies, signs with the release
 * keys (refused unless the root's release role accepts them), and writes `releases/ID/N.json`
 * once: a published version never changes (E_IMMUTABLE). Then the listing and index.html.
 */
export async function createRelease(o: CreateReleaseOptions): Promise<CreateReleaseResult> {
  const now = o.now ?? new Date();
  if (!(o.expiresIn > 0)) throw new SwpkgError('E_USAGE', 'the release must expire in the future (--expires)');
  // The id becomes a folder name under releases/: checked before any path is built from it.
  if (!NAME_RE.test(o.id)) throw new SwpkgError('E_USAGE', `release id ${JSON.stringify(o.id)} must be a name: a-z, 0-9, +, ., _, -`);
  const root = await latestRoot(o.out);
  const catalogBytes = await readFileIfExists(join(o.out, 'catalog.json'));
  if (!root || catalogBytes === undefined) {
    throw new SwpkgError('E_NOT_FOUND', `${o.out} is not a published repository (no roots/ or catalog.json)`, {
      hint: 'publish it first (`swpkg repo publish`)',
      details: { out: o.out },
    });
  }
  const catalog = parseCatalog(catalogBytes, 'catalog.json').signed;
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
    const file = join(o.out, p.location);
    const st = await lstat(file).catch(() => undefined);
    if (!st || !st.isFile()) {
      throw new SwpkgError('E_NOT_FOUND', `${p.location} (${p.name}@${p.version}) is not a file in ${o.out}`, {
        details: { path: p.location },
      });
    }
    const got = await sha256File(file);
    if (got.sha256 !== p.sha256 || got.size !== p.size) {
      throw new SwpkgError('E_HASH_MISMATCH', `${p.location} does not match the catalog (SHA-256 ${got.sha256}, ${got.size} bytes)`, {
        details: { path: p.location, expected: p.sha256, actual: got.sha256, size: got.size, expectedSize: p.size },
      });
    }
  }
  const versions = await publishedVersions(o.out, o.id);
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
  // The root in this web root decides: a key it does not name as a release key signs nothing here.
  checkReleaseThreshold(doc, root, path);
  const bytes = encodeEnvelope(doc);
  const existing = await readFileIfExists(join(o.out, path));
  if (existing !== undefined) {
    throw new SwpkgError('E_IMMUTABLE', `${path} is already published; a published release never changes`, {
      hint: `publish the new set as the next version (v${version + 1}), which supersedes this one`,
      details: { path },
    });
  }
  try {
    await mkdir(join(o.out, RELEASES_DIR, o.id), { recursive: true });
  } catch (e) {
    throw fromFsError(e, `creating ${RELEASES_DIR}/${o.id}`);
  }
  // 'wx': two writers racing for one version cannot both win.
  try {
    const fh = await open(join(o.out, path), 'wx', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new SwpkgError('E_IMMUTABLE', `${path} is already published; a published release never changes`, { details: { path } });
    }
    throw fromFsError(e, `writing ${path}`);
  }
  await writeReleaseListing(o.out);
  return {
    path,
    id: o.id,
    version,
    digest: releaseDigest(doc),
    supersedes: signed.supersedes,
    packages: doc.signed.packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256, location: p.location })),
  };
}

/** releases/index.json and index.html, rendered again from what is on disk. */
export async function writeReleaseListing(out: string): Promise<void> {
  const releases = await listReleases(out);
  await writeFileAtomic(join(out, RELEASES_DIR, 'index.json'), JSON.stringify({ format: 1, releases }, null, 2) + '\n');
  const root = await latestRoot(out);
  if (root) await renderIndexHtmlAgain(out, root);
}

/**
 * index.html rendered again from the web root's catalog.json, its releases and `root` (after a
 * rotation or a new release: the catalog is unchanged). A web root without a catalog has no page yet.
 */
export async function renderIndexHtmlAgain(out: string, root: RootDocument): Promise<void> {
  const catalogBytes = await readFileIfExists(join(out, 'catalog.json'));
  if (catalogBytes === undefined) return;
  const { signed } = parseCatalog(catalogBytes, 'catalog.json');
  await writeFileAtomic(
    join(out, 'index.html'),
    renderIndexHtml({
      repo: signed.repo,
      catalogVersion: signed.version,
      generated: signed.generated,
      expires: signed.expires,
      rootFingerprint: rootFingerprint(root),
      rootVersion: root.signed.version,
      packages: signed.packages,
      releases: await listReleases(out),
    }),
  );
}
