import { readdir } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import { parseJson } from '../catalog/index.js';
import { addSignature, encodeEnvelope, signEnvelope, PAYLOAD_TYPES } from '../catalog/index.js';
import { HOSTED_REPO_FORMAT, parseHostedRepo, type HostedRepo } from '../catalog/index.js';
import { sha256File, sha256Hex, writeFileAtomic } from '../catalog/index.js';
import type { KeyPair, PublicKey } from '../catalog/index.js';
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
import { FolderTarget, raceLost, readFileIfExists, type PublishTarget } from './storage.js';
import { listReleases, releasePinnedPaths, renderIndexHtmlAgain } from './release.js';
import { silentReporter, type Reporter } from '../catalog/index.js';
import { defaultVerifyJobs, verifyPackagesInOrder } from './verify-pool.js';
import { checkDependencyClosure } from '../catalog/index.js';

/**
 * A published package's file name: the readable NAME-VERSION-ARCH, then the SHA-256 of its bytes.
 * The name is derived from the content, so it never has to change and a mirror or CDN can cache
 * it forever (Debian's by-hash, TUF's consistent snapshots); one flat packages/ folder keeps
 * listing and retention simple.
 */
export function packageFileName(p: { name: string; version: string; arch: string }, sha256: string): string {
  return `${packageStem(p)}.${sha256}.swpkg`;
}

/** NAME-VERSION-ARCH: what a package file name starts with, in this layout and the one before it. */
function packageStem(p: { name: string; version: string; arch: string }): string {
  return `${p.name}-${p.version}-${p.arch}`;
}

/** packages/STEM.SHA256.swpkg: the hash in the name is the bytes' (verify-hosted checks it). */
export const HASHED_PACKAGE = /^packages\/[A-Za-z0-9+._-]+\.([0-9a-f]{64})\.swpkg$/;

/**
 * Files already published for this name, version and arch under other bytes: STEM.OTHERHASH.swpkg,
 * or STEM.swpkg of the layout before hash names (its bytes are hashed to tell).
 */
async function otherBytesFor(
  target: PublishTarget,
  byStem: Map<string, string[]>,
  pkg: CatalogPackage,
): Promise<{ path: string; sha256: string } | undefined> {
  const stem = packageStem(pkg);
  for (const n of byStem.get(stem) ?? []) {
    const named = /\.([0-9a-f]{64})\.swpkg$/.exec(n)?.[1];
    if (named !== undefined && named !== pkg.sha256) return { path: `packages/${n}`, sha256: named };
    if (named === undefined) {
      const sha256 = await target.sha256Of(`packages/${n}`);
      if (sha256 !== undefined && sha256 !== pkg.sha256) return { path: `packages/${n}`, sha256 };
    }
  }
  return undefined;
}

/** Published package file names by their NAME-VERSION-ARCH (hash names and names of the layout before them). */
function namesByStem(names: Iterable<string>): Map<string, string[]> {
  const byStem = new Map<string, string[]>();
  for (const n of names) {
    const stem = /^(.+?)(?:\.[0-9a-f]{64})?\.swpkg$/.exec(n)?.[1];
    if (stem === undefined) continue;
    byStem.set(stem, [...(byStem.get(stem) ?? []), n]);
  }
  return byStem;
}

/**
 * Reads every `.swpkg` in a folder, verifying each fully (manifest, every
 * file's hash), and returns catalog entries. This is `swpkg repo index`.
 * `jobs` packages are verified at once (worker threads when above 1; see
 * verifyPackagesInOrder); the answer, and the refusal when a package is bad,
 * are the same as verifying them one by one in name order.
 */
export async function indexPackages(
  dir: string,
  reporter: Reporter = silentReporter,
  jobs: number | 'auto' = 1,
): Promise<CatalogPackage[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.swpkg')).sort(comparePaths);
  } catch (e) {
    throw fromFsError(e, `reading ${dir}`);
  }
  const out: CatalogPackage[] = [];
  const seen = new Map<string, string>();
  let i = 0;
  const paths = names.map((n) => join(dir, n));
  for await (const v of verifyPackagesInOrder(paths, jobs === 'auto' ? defaultVerifyJobs(names.length) : jobs)) {
    const name = names[i]!;
    const m = v.manifest;
    const stem = packageStem(m);
    const prev = seen.get(stem);
    if (prev !== undefined) {
      throw new SwpkgError('E_IMMUTABLE', `${name} and ${prev} are both ${m.name}@${m.version} for ${m.arch}`, {
        hint: 'keep one file per name, version and arch in the folder',
        details: { files: [prev, name] },
      });
    }
    seen.set(stem, name);
    const fields = catalogFieldsOf(m, v);
    out.push({ ...fields, path: `packages/${packageFileName(m, fields.sha256)}` });
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
  /** Web root folder to write; ignored when `target` is given. */
  out: string;
  /** Where to publish (a folder or an S3 bucket); default a FolderTarget on `out`. */
  target?: PublishTarget;
  /** Catalog signing key. */
  key: KeyPair;
  /** Root key for a new repository; defaults to `key`. An existing root is reused as it is. */
  rootKey?: KeyPair;
  name?: string;
  /** Seconds until the catalog expires (default 14 days). */
  expiresIn?: number;
  /** Seconds a superseded package stays downloadable (default 7 days). */
  retainSeconds?: number;
  /** How many catalogs stay fetchable, the new one included (default 5). */
  keepCatalogs?: number;
  /** Uploads at once (default 8 for object storage, 1 for a folder). */
  concurrency?: number;
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
  /** The catalog's content-addressed path (catalogs/VERSION-SHA256.json), named by hosted-repo.json. */
  catalogPath: string;
  expires: string;
  rootVersion: number;
  rootFingerprint: string;
  packages: { name: string; version: string; arch: string; path: string; sha256: string; added: boolean }[];
  retained: string[];
  deleted: string[];
  /** Older catalogs still fetchable (newest first), listed in hosted-repo.json. */
  retainedCatalogs: string[];
}

const DAY = 86400;
const RETENTION_FILE = 'retention.json';
const POINTER = 'hosted-repo.json';
const MAX_DOC = 64 * 1024 * 1024;
/** catalogs/VERSION-SHA256.json: the version orders them, the hash names the bytes. */
export const HASHED_CATALOG = /^catalogs\/(\d+)-([0-9a-f]{64})\.json$/;

async function latestRootIn(target: PublishTarget): Promise<RootDocument | undefined> {
  const versions = (await target.list('roots'))
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  if (versions.length === 0) return undefined;
  const n = Math.max(...versions);
  const bytes = await target.read(`roots/${n}.json`, MAX_DOC);
  if (bytes === undefined) return undefined;
  // A damaged or altered root is refused (strict parse, its own threshold) rather than built upon.
  const root = parseRoot(bytes, `roots/${n}.json`);
  checkThreshold(root, root.signed.roles.root, root.signed.keys, `roots/${n}.json`);
  return root;
}

function latestRoot(out: string): Promise<RootDocument | undefined> {
  return latestRootIn(new FolderTarget(out));
}

/** Runs `fn` over `items`, at most `limit` at once; the first failure stops new starts and is thrown. */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: Error | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e instanceof Error ? e : new Error(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * Publishes a folder of packages as a signed repository into a folder or a
 * bucket. Everything is checked before the first byte is written (bad
 * packages, a key the root does not accept, different bytes under a
 * published name, a target that holds something else). Then every file named
 * by its content or version goes up create-only: packages, their sidecars,
 * the root, the catalog as catalogs/VERSION-SHA256.json. Only then is the one
 * mutable pointer, hosted-repo.json, swapped (compare-and-swap against what
 * was read at the start), so a reader, mirror or CDN holding either pointer
 * finds everything it names. Copies for older readers, index.html and the
 * retention book follow; packages and catalogs past retention are deleted
 * last, when no kept catalog names them. Private keys are never written here.
 */
export async function publishRepository(o: PublishOptions): Promise<PublishResult> {
  const target = o.target ?? new FolderTarget(o.out);
  const before = await target.readPointer(POINTER, 64 * 1024);
  try {
    return await publishOnce(o, target);
  } catch (e) {
    // A write refused while another publish moved the pointer is that race, whatever status the store gave it.
    if (!(e instanceof SwpkgError) || e.code !== 'E_HTTP') throw e;
    const after = await target.readPointer(POINTER, 64 * 1024).catch(() => before);
    if (after.token === before.token) throw e;
    const lost = raceLost(target.where, POINTER);
    lost.details['cause'] = e.message;
    throw lost;
  }
}

async function publishOnce(o: PublishOptions, target: PublishTarget): Promise<PublishResult> {
  const now = o.now ?? new Date();
  const reporter = o.reporter ?? silentReporter;
  const expiresIn = o.expiresIn ?? 14 * DAY;
  const retainSeconds = o.retainSeconds ?? 7 * DAY;
  const keepCatalogs = o.keepCatalogs ?? 5;
  const concurrency = o.concurrency ?? (o.target && !(o.target instanceof FolderTarget) ? 8 : 1);
  if (!(expiresIn > 0)) throw new SwpkgError('E_USAGE', 'the catalog must expire in the future (--expires)');
  if (!Number.isInteger(keepCatalogs) || keepCatalogs < 1) throw new SwpkgError('E_USAGE', '--keep-catalogs must be a positive integer');

  // 1. Check everything before writing anything.
  reporter.info(`verifying packages in ${o.packagesDir}`);
  const packages = await indexPackages(o.packagesDir, reporter);
  for (const u of checkDependencyClosure(packages, o.allowUnmetDependencies === true))
    reporter.warn(`${u.package} (${u.arch}) requires ${u.requires}, which no published package provides`);
  // The pointer as it is now: the swap at the end succeeds only if nobody moved it meanwhile.
  const pointer = await target.readPointer(POINTER, 64 * 1024);
  let root = await latestRootIn(target);
  if (pointer.token === null && root === undefined && (await target.hasAnything())) {
    throw new SwpkgError('E_NOT_REPOSITORY', `${target.where} holds files but no repository (no hosted-repo.json, no roots/)`, {
      hint: 'publish into an empty folder or bucket prefix, or into an existing repository',
      details: { where: target.where },
    });
  }
  const isNewRoot = root === undefined;
  if (root === undefined) {
    root = createRoot({ rootKeys: [o.rootKey ?? o.key], catalogKeys: [o.key], expires: new Date(now.getTime() + 365 * DAY * 1000) });
  } else if (!root.signed.roles.catalog.keyids.includes(o.key.keyid)) {
    throw new SwpkgError('E_UNKNOWN_KEY', `key ${o.key.keyid} is not a catalog key of root v${root.signed.version} in ${target.where}`, {
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
  const hint = pointer.bytes === undefined ? undefined : parseHostedRepo(pointer.bytes);
  const previousPath = hint?.catalog ?? 'catalog.json';
  const previous = await target.read(previousPath, MAX_DOC);
  let previousDoc: CatalogDocument | undefined;
  if (previous !== undefined) previousDoc = parseCatalog(previous, previousPath);
  const name = o.name ?? previousDoc?.signed.repo ?? basename(o.out);

  const sources = new Map<string, { file: string; size: number }>();
  for (const f of (await readdir(o.packagesDir)).filter((n) => n.endsWith('.swpkg'))) {
    const v = await sha256File(join(o.packagesDir, f));
    sources.set(v.sha256, { file: join(o.packagesDir, f), size: v.size });
  }
  const published = new Set(await target.list('packages'));
  const byStem = namesByStem(published);
  const plan: { pkg: CatalogPackage; source: { file: string; size: number }; added: boolean }[] = [];
  await eachLimit(packages, concurrency, async (pkg) => {
    // A version means one content: other bytes under this name, version and arch are refused, even
    // though their hash would give them a file name of their own (clients and releases pin NAME@VERSION).
    const other = await otherBytesFor(target, byStem, pkg);
    const existing = published.has(basename(pkg.path)) ? await target.sha256Of(pkg.path) : undefined;
    const clash = other ?? (existing !== undefined && existing !== pkg.sha256 ? { path: pkg.path, sha256: existing } : undefined);
    if (clash !== undefined) {
      throw new SwpkgError(
        'E_IMMUTABLE',
        `${pkg.name}@${pkg.version} (${pkg.arch}) is already published with different bytes (${clash.path})`,
        {
          hint: `a published name-version-arch never changes: bump the version of ${pkg.name}`,
          details: { path: clash.path, published: clash.sha256, offered: pkg.sha256 },
        },
      );
    }
    plan.push({ pkg, source: sources.get(pkg.sha256)!, added: existing === undefined });
  });
  plan.sort((a, b) => comparePaths(a.pkg.path, b.pkg.path));

  const signed = buildCatalog({
    repo: name,
    packages,
    now,
    expiresIn,
    ...(previousDoc ? { previousVersion: previousDoc.signed.version } : {}),
  });
  const catalogText = encodeEnvelope(signCatalog(signed, [o.key]));
  const catalogSha256 = sha256Hex(catalogText);
  const catalogPath = `catalogs/${signed.version}-${catalogSha256}.json`;

  // The retention book: when each package and catalog was superseded (publisher bookkeeping, clients never read it).
  const retentionBytes = await target.read(RETENTION_FILE, MAX_DOC);
  const retention = (retentionBytes === undefined ? {} : parseJson(new TextDecoder().decode(retentionBytes), RETENTION_FILE)) as Record<
    string,
    string
  >;
  const withinRetention = (path: string): boolean => now.getTime() - Date.parse(retention[path] ?? iso(now)) < retainSeconds * 1000;

  // Which older catalogs stay fetchable (the last N, each for the retention window), and so which packages must stay too.
  const olderCatalogs = [...(hint && HASHED_CATALOG.test(hint.catalog) ? [hint.catalog] : []), ...(hint?.retainedCatalogs ?? [])];
  if (hint && HASHED_CATALOG.test(hint.catalog)) retention[hint.catalog] ??= iso(now);
  const retainedCatalogs: string[] = [];
  const namedByKept = new Set<string>();
  for (const c of olderCatalogs) {
    if (retainedCatalogs.length >= keepCatalogs - 1 || retainedCatalogs.includes(c) || !HASHED_CATALOG.test(c)) continue;
    if (!withinRetention(c)) continue;
    const bytes = c === previousPath ? previous : await target.read(c, MAX_DOC);
    if (bytes === undefined) continue;
    for (const p of parseCatalog(bytes, c).signed.packages) namedByKept.add(p.path);
    retainedCatalogs.push(c);
  }

  // 2. Immutable files first: packages and their sidecars, the root, the catalog.
  reporter.info(`uploading ${plan.filter((p) => p.added).length} new package(s) to ${target.where}`);
  let done = 0;
  await eachLimit(plan, concurrency, async ({ pkg, source }) => {
    await target.putImmutable(pkg.path, source, pkg.sha256);
    const side = `${pkg.sha256}  ${basename(pkg.path)}\n`;
    await target.putImmutable(`${pkg.path}.sha256`, { bytes: side }, sha256Hex(side));
    reporter.progress('uploading', ++done, plan.length, 'items');
  });
  const rootBytes = encodeEnvelope(root);
  // An existing root changes only through rotate-root.
  if (isNewRoot) await target.putImmutable(`roots/${root.signed.version}.json`, { bytes: rootBytes }, sha256Hex(rootBytes));
  await target.putImmutable(catalogPath, { bytes: catalogText }, catalogSha256);
  // Its gzip sibling, immutable too: clients that read hosted-repo.json's catalogGzip move about a sixth of the bytes.
  const catalogGz = await gzipCatalog(catalogText);
  await target.putImmutable(`${catalogPath}.gz`, { bytes: catalogGz }, sha256Hex(catalogGz));

  // 3. Retention bookkeeping for packages that left the catalog.
  const current = new Set(packages.map((p) => p.path));
  const retained: string[] = [];
  const expired: string[] = [];
  // A package a live release names is never deleted: the pinned set must stay installable (issue 15).
  const pinned = await releasePinnedPaths(target, now);
  for (const path of (await target.list('packages')).filter((n) => n.endsWith('.swpkg')).map((n) => `packages/${n}`)) {
    if (current.has(path)) {
      delete retention[path];
      continue;
    }
    retention[path] ??= iso(now);
    if (!withinRetention(path) && !namedByKept.has(path) && !pinned.has(path)) expired.push(path);
    else retained.push(path);
  }

  // 4. The pointer, last of what clients follow: compare-and-swap, so of two racing publishes one loses cleanly.
  const hosted: HostedRepo = {
    format: HOSTED_REPO_FORMAT,
    name,
    catalog: catalogPath,
    rootFingerprint: rootFingerprint(root),
    rootVersion: root.signed.version,
    mirrors: o.mirrors ?? [],
    retainedCatalogs,
    catalogGzip: `${catalogPath}.gz`,
  };
  await target.swapPointer(POINTER, JSON.stringify(hosted, null, 2) + '\n', pointer.token);

  // 5. What older readers and people read: the root by its fixed name, the catalog as catalog.json, the page.
  await target.putMutable('repo-root.pub', rootBytes);
  await target.putMutable('catalog.json', catalogText);
  await target.putMutable('catalog.json.sha256', `${catalogSha256}  catalog.json\n`);
  await target.putMutable(
    'index.html',
    renderIndexHtml({
      repo: name,
      catalogVersion: signed.version,
      generated: signed.generated,
      expires: signed.expires,
      rootFingerprint: hosted.rootFingerprint,
      rootVersion: root.signed.version,
      packages,
      releases: await listReleases(target),
    }),
  );

  // 6. Only now, with no kept catalog naming them, delete packages past retention and catalogs past the last N.
  for (const path of expired) {
    await target.remove(path);
    await target.remove(`${path}.sha256`);
    delete retention[path];
  }
  const kept = new Set([catalogPath, ...retainedCatalogs]);
  for (const n of await target.list('catalogs')) if (!kept.has(`catalogs/${n}`.replace(/\.gz$/, ''))) await target.remove(`catalogs/${n}`);
  for (const k of Object.keys(retention)) if (k.startsWith('catalogs/') && !kept.has(k)) delete retention[k];
  await target.putMutable(RETENTION_FILE, JSON.stringify(Object.fromEntries(Object.entries(retention).sort()), null, 2) + '\n');

  reporter.info(`published catalog v${signed.version} with ${packages.length} package(s) to ${target.where}`);
  return {
    out: target.where,
    name,
    catalogVersion: signed.version,
    catalogSha256,
    catalogPath,
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
    retainedCatalogs,
  };
}

/**
 * Writes a new root version (rotation) into a published repository: roots/N.json create-only, then
 * repo-root.pub, then the pointer's root fields. The pointer is swapped by compare-and-swap against
 * a fresh read; only its root fields change, so a publish that moved it in between is not undone:
 * the swap is tried again on the new pointer (a few times, then E_PUBLISH_RACE).
 */
export async function publishRoot(target: PublishTarget, root: RootDocument): Promise<void> {
  const path = `roots/${root.signed.version}.json`;
  if ((await target.list('roots')).includes(`${root.signed.version}.json`))
    throw new SwpkgError('E_IMMUTABLE', `${path} already exists`, { details: { path, where: target.where } });
  const bytes = encodeEnvelope(root);
  await target.putImmutable(path, { bytes }, sha256Hex(bytes));
  await target.putMutable('repo-root.pub', bytes);
  for (let attempt = 1; ; attempt++) {
    const pointer = await target.readPointer(POINTER, 64 * 1024);
    if (pointer.bytes === undefined) return;
    const hosted = parseHostedRepo(pointer.bytes);
    const next = JSON.stringify({ ...hosted, rootFingerprint: rootFingerprint(root), rootVersion: root.signed.version }, null, 2) + '\n';
    try {
      await target.swapPointer(POINTER, next, pointer.token);
      return;
    } catch (e) {
      if (!(e instanceof SwpkgError) || e.code !== 'E_PUBLISH_RACE' || attempt >= 3) throw e;
    }
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
  /** Packages verified at once (1: on this thread); default `defaultVerifyJobs`: a worker per 32 packages, at most one per core. */
  jobs?: number;
}

/** `swpkg repo index`: an unsigned catalog envelope (`signatures: []`) for `swpkg repo sign`. */
export async function indexToFile(o: IndexToFileOptions): Promise<CatalogSigned> {
  const packages = await indexPackages(o.packagesDir, o.reporter, o.jobs ?? 'auto');
  const signed = buildCatalog({
    repo: o.name,
    packages,
    now: o.now ?? new Date(),
    expiresIn: o.expiresIn,
    ...(o.previousVersion !== undefined ? { previousVersion: o.previousVersion } : {}),
  });
  await writeFileAtomic(o.out, encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, catalogPayload(signed), [])));
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
  const bytes = await readFileIfExists(o.file);
  if (bytes === undefined) throw new SwpkgError('E_NOT_FOUND', `${o.file} does not exist`, { details: { path: o.file } });
  const doc = parseCatalog(bytes, o.file);
  const signedEnv = addSignature(doc, o.key);
  await writeFileAtomic(o.out ?? o.file, encodeEnvelope(signedEnv));
  return { version: doc.signed.version, signatures: signedEnv.signatures.length, keyid: o.key.keyid };
}

/** `swpkg repo rotate-root`: publishes root N+1 signed by the old and the new root keys. */
export async function rotatePublishedRoot(o: {
  /** The web root folder; ignored when `target` is given. */
  out: string;
  /** Where the repository is published (a folder or an S3 bucket); default a FolderTarget on `out`. */
  target?: PublishTarget;
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
  const target = o.target ?? new FolderTarget(o.out);
  const current = await latestRootIn(target);
  if (!current) {
    throw new SwpkgError('E_NOT_FOUND', `${target.where} has no roots/ folder: nothing to rotate`, {
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
  await publishRoot(target, next);
  await pointAtRoot(target, next);
  return { version: next.signed.version, fingerprint: rootFingerprint(next) };
}

/**
 * hosted-repo.json and index.html tell a new user which root to pin: after a rotation they name
 * the new root at once, not only after the next publish (issue 11). The catalog is unchanged, so
 * the page is rendered again from it; a web root without a catalog has no page yet.
 */
async function pointAtRoot(target: PublishTarget, root: RootDocument): Promise<void> {
  // hosted-repo.json was already pointed at the new root by publishRoot.
  await renderIndexHtmlAgain(target, root);
}

/** gzip of a catalog's exact bytes (level 9: written once, read by every client), off the main thread. */
async function gzipCatalog(text: Uint8Array): Promise<Buffer> {
  const { gzip, constants } = await import('node:zlib');
  return new Promise((resolve, reject) => gzip(text, { level: constants.Z_BEST_COMPRESSION }, (e, out) => (e ? reject(e) : resolve(out))));
}
