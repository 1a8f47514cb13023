import { copyFile, mkdir, readdir, readFile, rename, rm, stat, open } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import { parseJson } from '../catalog/index.js';
import { addSignature, encodeEnvelope, signEnvelope, PAYLOAD_TYPES } from '../catalog/index.js';
import { HOSTED_REPO_FORMAT, parseHostedRepo, type HostedRepo } from '../catalog/index.js';
import { sha256File } from '../catalog/index.js';
import type { KeyPair, PublicKey } from '../catalog/index.js';
import { verifyPackageFile } from '../catalog/index.js';
import { comparePaths } from '../catalog/index.js';
import { checkThreshold, createRoot, parseRoot, rotateRoot, rootFingerprint, type RootDocument } from '../catalog/index.js';
import {
  CATALOG_FORMAT,
  catalogFieldsOf,
  catalogPayload,
  CLIENT_FORMAT,
  parseCatalog,
  signCatalog,
  type CatalogPackage,
  type CatalogSigned,
  type CatalogDocument,
} from '../catalog/index.js';
import { renderIndexHtml } from './index-html.js';
import { silentReporter, type Reporter } from '../catalog/index.js';
import { checkDependencyClosure } from '../catalog/index.js';

export function packageFileName(p: { name: string; version: string; arch: string }): string {
  return `${p.name}-${p.version}-${p.arch}.swpkg`;
}

/**
 * Reads every `.swpkg` in a folder, verifying each fully (manifest, every
 * file's hash), and returns catalog entries. This is `swpkg repo index`.
 */
export async function indexPackages(dir: string, reporter: Reporter = silentReporter): Promise<CatalogPackage[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.swpkg')).sort(comparePaths);
  } catch (e) {
    throw fromFsError(e, `reading ${dir}`);
  }
  const out: CatalogPackage[] = [];
  const seen = new Map<string, string>();
  let i = 0;
  for (const name of names) {
    const v = await verifyPackageFile(join(dir, name));
    const m = v.manifest;
    const file = packageFileName(m);
    const prev = seen.get(file);
    if (prev !== undefined) {
      throw new SwpkgError('E_IMMUTABLE', `${name} and ${prev} are both ${m.name}@${m.version} for ${m.arch}`, {
        hint: 'keep one file per name, version and arch in the folder',
        details: { files: [prev, name] },
      });
    }
    seen.set(file, name);
    out.push({ ...catalogFieldsOf(m, v), path: `packages/${file}` });
    reporter.progress('indexing', ++i, names.length, 'items');
  }
  return out.sort((a, b) => comparePaths(a.name, b.name) || comparePaths(a.version, b.version) || comparePaths(a.arch, b.arch));
}

export interface BuildCatalogOptions {
  repo: string;
  packages: CatalogPackage[];
  now: Date;
  /** Seconds until the catalog expires. */
  expiresIn: number;
  previousVersion?: number;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The catalog version is max(previous + 1, publish time in seconds): it
 * always increases, even when a root is republished from an empty folder.
 */
export function buildCatalog(o: BuildCatalogOptions): CatalogSigned {
  const seconds = Math.floor(o.now.getTime() / 1000);
  const arch = [...new Set(o.packages.map((p) => p.arch))].sort();
  const abi = [...new Set(o.packages.map((p) => p.abi))].sort();
  return {
    type: 'catalog',
    format: CATALOG_FORMAT,
    repo: o.repo,
    version: Math.max((o.previousVersion ?? 0) + 1, seconds),
    generated: iso(o.now),
    expires: iso(new Date(o.now.getTime() + o.expiresIn * 1000)),
    compatibility: {
      arch: arch.length ? arch : ['x86_64'],
      abi: abi.length ? abi : ['linux-musl-static'],
      minClientFormat: CLIENT_FORMAT,
    },
    packages: o.packages,
  };
}

export interface PublishOptions {
  packagesDir: string;
  out: string;
  /** Catalog signing key. */
  key: KeyPair;
  /** Root key for a new repository; defaults to `key`. An existing root is reused as it is. */
  rootKey?: KeyPair;
  name?: string;
  /** Seconds until the catalog expires (default 14 days). */
  expiresIn?: number;
  /** Seconds a superseded package stays downloadable (default 7 days). */
  retainSeconds?: number;
  mirrors?: string[];
  now?: Date;
  reporter?: Reporter;
  /** Publish even when a dependency is met by no package in the set (clients get it elsewhere). */
  allowUnmetDependencies?: boolean;
}

export interface PublishResult {
  out: string;
  name: string;
  catalogVersion: number;
  catalogSha256: string;
  expires: string;
  rootVersion: number;
  rootFingerprint: string;
  packages: { name: string; version: string; arch: string; path: string; sha256: string; added: boolean }[];
  retained: string[];
  deleted: string[];
}

const DAY = 86400;
const RETENTION_FILE = 'retention.json';

async function readJsonIfExists(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(e, `reading ${path}`);
  }
  return parseJson(text, what);
}

async function readBytesIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(e, `reading ${path}`);
  }
}

/** Temp file, fsync, rename: a reader sees the old file or the new one, never half of one. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fromFsError(e, `writing ${path}`);
  }
}

async function latestRoot(out: string): Promise<RootDocument | undefined> {
  let names: string[];
  try {
    names = await readdir(join(out, 'roots'));
  } catch {
    return undefined;
  }
  const versions = names
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  if (versions.length === 0) return undefined;
  const n = Math.max(...versions);
  const bytes = await readBytesIfExists(join(out, 'roots', `${n}.json`));
  if (bytes === undefined) return undefined;
  // A damaged or altered root is refused (strict parse, its own threshold) rather than built upon.
  const root = parseRoot(bytes, `roots/${n}.json`);
  checkThreshold(root, root.signed.roles.root, root.signed.keys, `roots/${n}.json`);
  return root;
}

/**
 * Publishes a folder of packages as a static, signed web root. Everything is
 * checked before the first byte is written (bad packages, a key the root does
 * not accept, different bytes under a published name); then packages land
 * first, the catalog last and its sidecar after it, so a reader never sees a
 * catalog that points at a missing file. Superseded packages stay for the
 * retention window. Private keys are never written here.
 */
export async function publishRepository(o: PublishOptions): Promise<PublishResult> {
  const now = o.now ?? new Date();
  const reporter = o.reporter ?? silentReporter;
  const expiresIn = o.expiresIn ?? 14 * DAY;
  const retainSeconds = o.retainSeconds ?? 7 * DAY;
  if (!(expiresIn > 0)) throw new SwpkgError('E_USAGE', 'the catalog must expire in the future (--expires)');

  // 1. Check everything before writing anything.
  reporter.info(`verifying packages in ${o.packagesDir}`);
  const packages = await indexPackages(o.packagesDir, reporter);
  for (const u of checkDependencyClosure(packages, o.allowUnmetDependencies === true))
    reporter.warn(`${u.package} (${u.arch}) requires ${u.requires}, which no published package provides`);
  let root = await latestRoot(o.out);
  const isNewRoot = root === undefined;
  if (root === undefined) {
    root = createRoot({ rootKeys: [o.rootKey ?? o.key], catalogKeys: [o.key], expires: new Date(now.getTime() + 365 * DAY * 1000) });
  } else if (!root.signed.roles.catalog.keyids.includes(o.key.keyid)) {
    throw new SwpkgError('E_UNKNOWN_KEY', `key ${o.key.keyid} is not a catalog key of root v${root.signed.version} in ${o.out}`, {
      hint: 'sign with a catalog key of this repository, or rotate the root to add this key (`swpkg repo rotate-root`)',
      details: { keyid: o.key.keyid, catalogKeyids: root.signed.roles.catalog.keyids },
    });
  }
  if (root.signed.roles.catalog.threshold > 1) {
    throw new SwpkgError(
      'E_THRESHOLD',
      `root v${root.signed.version} needs ${root.signed.roles.catalog.threshold} catalog signatures; publish signs with one key`,
      {
        hint: 'use `swpkg repo index` and `swpkg repo sign` with each key',
      },
    );
  }
  const previous = await readBytesIfExists(join(o.out, 'catalog.json'));
  let previousDoc: CatalogDocument | undefined;
  if (previous !== undefined) previousDoc = parseCatalog(previous, 'catalog.json');
  const name = o.name ?? previousDoc?.signed.repo ?? basename(o.out);

  const plan: { pkg: CatalogPackage; source: string; added: boolean }[] = [];
  const sources = new Map<string, string>();
  for (const f of (await readdir(o.packagesDir)).filter((n) => n.endsWith('.swpkg'))) {
    const v = await sha256File(join(o.packagesDir, f));
    sources.set(v.sha256, join(o.packagesDir, f));
  }
  for (const pkg of packages) {
    const dest = join(o.out, pkg.path);
    let existing: string | undefined;
    try {
      await stat(dest);
      existing = (await sha256File(dest)).sha256;
    } catch {
      existing = undefined;
    }
    if (existing !== undefined && existing !== pkg.sha256) {
      throw new SwpkgError('E_IMMUTABLE', `${pkg.path} is already published with different bytes`, {
        hint: `a published name-version-arch never changes: bump the version of ${pkg.name}`,
        details: { path: pkg.path, published: existing, offered: pkg.sha256 },
      });
    }
    plan.push({ pkg, source: sources.get(pkg.sha256)!, added: existing === undefined });
  }

  // 2. Packages first.
  try {
    await mkdir(join(o.out, 'packages'), { recursive: true });
    await mkdir(join(o.out, 'roots'), { recursive: true });
  } catch (e) {
    throw fromFsError(e, `creating ${o.out}`);
  }
  for (const { pkg, source, added } of plan) {
    const dest = join(o.out, pkg.path);
    if (added) {
      const tmp = `${dest}.tmp-${process.pid}`;
      try {
        await copyFile(source, tmp);
        await rename(tmp, dest);
      } catch (e) {
        await rm(tmp, { force: true });
        throw fromFsError(e, `copying ${pkg.path}`);
      }
    }
    await writeAtomic(`${dest}.sha256`, `${pkg.sha256}  ${basename(pkg.path)}\n`);
  }

  // 3. Root (new repositories only; an existing root changes only through rotate-root).
  const rootBytes = encodeEnvelope(root);
  if (isNewRoot) await writeAtomic(join(o.out, 'roots', `${root.signed.version}.json`), rootBytes);
  await writeAtomic(join(o.out, 'repo-root.pub'), rootBytes);

  // 4. Retention bookkeeping for packages that left the catalog.
  const retention = ((await readJsonIfExists(join(o.out, RETENTION_FILE), RETENTION_FILE)) ?? {}) as Record<string, string>;
  const current = new Set(packages.map((p) => p.path));
  const published = (await readdir(join(o.out, 'packages'))).filter((n) => n.endsWith('.swpkg')).map((n) => `packages/${n}`);
  const retained: string[] = [];
  const expired: string[] = [];
  for (const path of published) {
    if (current.has(path)) {
      delete retention[path];
      continue;
    }
    retention[path] ??= iso(now);
    if (now.getTime() - Date.parse(retention[path]) >= retainSeconds * 1000) expired.push(path);
    else retained.push(path);
  }

  // 5. Catalog last, sidecar after it.
  const signed = buildCatalog({
    repo: name,
    packages,
    now,
    expiresIn,
    ...(previousDoc ? { previousVersion: previousDoc.signed.version } : {}),
  });
  const doc = signCatalog(signed, [o.key]);
  const catalogText = encodeEnvelope(doc);
  const hosted: HostedRepo = {
    format: HOSTED_REPO_FORMAT,
    name,
    catalog: 'catalog.json',
    rootFingerprint: rootFingerprint(root),
    rootVersion: root.signed.version,
    mirrors: o.mirrors ?? [],
  };
  await writeAtomic(join(o.out, 'hosted-repo.json'), JSON.stringify(hosted, null, 2) + '\n');
  await writeAtomic(
    join(o.out, 'index.html'),
    renderIndexHtml({
      repo: name,
      catalogVersion: signed.version,
      generated: signed.generated,
      expires: signed.expires,
      rootFingerprint: hosted.rootFingerprint,
      rootVersion: root.signed.version,
      packages,
    }),
  );
  await writeAtomic(join(o.out, 'catalog.json'), catalogText);
  const { sha256: catalogSha256 } = await sha256File(join(o.out, 'catalog.json'));
  await writeAtomic(join(o.out, 'catalog.json.sha256'), `${catalogSha256}  catalog.json\n`);

  // 6. Only now, with no catalog pointing at them, delete packages past retention.
  for (const path of expired) {
    await rm(join(o.out, path), { force: true });
    await rm(join(o.out, `${path}.sha256`), { force: true });
    delete retention[path];
  }
  await writeAtomic(join(o.out, RETENTION_FILE), JSON.stringify(Object.fromEntries(Object.entries(retention).sort()), null, 2) + '\n');

  reporter.info(`published catalog v${signed.version} with ${packages.length} package(s) to ${o.out}`);
  return {
    out: o.out,
    name,
    catalogVersion: signed.version,
    catalogSha256,
    expires: signed.expires,
    rootVersion: root.signed.version,
    rootFingerprint: hosted.rootFingerprint,
    packages: plan.map(({ pkg, added }) => ({
      name: pkg.name,
      version: pkg.version,
      arch: pkg.arch,
      path: pkg.path,
      sha256: pkg.sha256,
      added,
    })),
    retained: retained.sort(),
    deleted: expired.sort(),
  };
}

/** Writes a new root version (rotation) into a published web root: roots/N.json, then repo-root.pub. */
export async function publishRoot(out: string, root: RootDocument): Promise<void> {
  await mkdir(join(out, 'roots'), { recursive: true });
  const file = join(out, 'roots', `${root.signed.version}.json`);
  try {
    await stat(file);
    throw new SwpkgError('E_IMMUTABLE', `roots/${root.signed.version}.json already exists`, { details: { path: file } });
  } catch (e) {
    if (e instanceof SwpkgError) throw e;
  }
  await writeAtomic(file, encodeEnvelope(root));
  await writeAtomic(join(out, 'repo-root.pub'), encodeEnvelope(root));
  const hostedBytes = await readBytesIfExists(join(out, 'hosted-repo.json'));
  const hosted = hostedBytes === undefined ? undefined : parseHostedRepo(hostedBytes);
  if (hosted) {
    await writeAtomic(
      join(out, 'hosted-repo.json'),
      JSON.stringify({ ...hosted, rootFingerprint: rootFingerprint(root), rootVersion: root.signed.version }, null, 2) + '\n',
    );
  }
}

export { latestRoot as readLatestRoot };

export interface IndexToFileOptions {
  packagesDir: string;
  out: string;
  name: string;
  expiresIn: number;
  previousVersion?: number;
  now?: Date;
  reporter?: Reporter;
}

/** `swpkg repo index`: an unsigned catalog envelope (`signatures: []`) for `swpkg repo sign`. */
export async function indexToFile(o: IndexToFileOptions): Promise<CatalogSigned> {
  const packages = await indexPackages(o.packagesDir, o.reporter);
  const signed = buildCatalog({
    repo: o.name,
    packages,
    now: o.now ?? new Date(),
    expiresIn: o.expiresIn,
    ...(o.previousVersion !== undefined ? { previousVersion: o.previousVersion } : {}),
  });
  await writeAtomic(o.out, encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, catalogPayload(signed), [])));
  return signed;
}

/**
 * `swpkg repo sign`: adds one signature to a catalog envelope in place, so
 * several catalog keys can sign in turn to meet a threshold. The payload
 * bytes are left exactly as they are.
 */
export async function signCatalogFile(o: {
  file: string;
  key: KeyPair;
  out?: string;
}): Promise<{ version: number; signatures: number; keyid: string }> {
  const bytes = await readBytesIfExists(o.file);
  if (bytes === undefined) throw new SwpkgError('E_NOT_FOUND', `${o.file} does not exist`, { details: { path: o.file } });
  const doc = parseCatalog(bytes, o.file);
  const signedEnv = addSignature(doc, o.key);
  await writeAtomic(o.out ?? o.file, encodeEnvelope(signedEnv));
  return { version: doc.signed.version, signatures: signedEnv.signatures.length, keyid: o.key.keyid };
}

/** `swpkg repo rotate-root`: publishes root N+1 signed by the old and the new root keys. */
export async function rotatePublishedRoot(o: {
  out: string;
  oldRootKeys: KeyPair[];
  newRootKeys: KeyPair[];
  catalogKeys?: PublicKey[];
  releaseKeys?: PublicKey[];
  rootThreshold?: number;
  catalogThreshold?: number;
  releaseThreshold?: number;
  expiresIn: number;
  now?: Date;
}): Promise<{ version: number; fingerprint: string }> {
  const current = await latestRoot(o.out);
  if (!current) {
    throw new SwpkgError('E_NOT_FOUND', `${o.out} has no roots/ folder: nothing to rotate`, {
      hint: 'publish the repository first (`swpkg repo publish`)',
    });
  }
  const now = o.now ?? new Date();
  const next = rotateRoot({
    current,
    oldRootKeys: o.oldRootKeys,
    newRootKeys: o.newRootKeys,
    expires: new Date(now.getTime() + o.expiresIn * 1000),
    ...(o.catalogKeys ? { catalogKeys: o.catalogKeys } : {}),
    ...(o.releaseKeys ? { releaseKeys: o.releaseKeys } : {}),
    ...(o.releaseThreshold !== undefined ? { releaseThreshold: o.releaseThreshold } : {}),
    ...(o.rootThreshold !== undefined ? { rootThreshold: o.rootThreshold } : {}),
    ...(o.catalogThreshold !== undefined ? { catalogThreshold: o.catalogThreshold } : {}),
  });
  await publishRoot(o.out, next);
  await pointAtRoot(o.out, next);
  return { version: next.signed.version, fingerprint: rootFingerprint(next) };
}

/**
 * hosted-repo.json and index.html tell a new user which root to pin: after a rotation they name
 * the new root at once, not only after the next publish (issue 11). The catalog is unchanged, so
 * the page is rendered again from it; a web root without a catalog has no page yet.
 */
async function pointAtRoot(out: string, root: RootDocument): Promise<void> {
  const fingerprint = rootFingerprint(root);
  // hosted-repo.json was already pointed at the new root by publishRoot.
  const catalog = await readBytesIfExists(join(out, 'catalog.json'));
  if (catalog === undefined) return;
  const { signed } = parseCatalog(catalog);
  await writeAtomic(
    join(out, 'index.html'),
    renderIndexHtml({
      repo: signed.repo,
      catalogVersion: signed.version,
      generated: signed.generated,
      expires: signed.expires,
      rootFingerprint: fingerprint,
      rootVersion: root.signed.version,
      packages: signed.packages,
    }),
  );
}
