import { readFile, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  SwpkgError,
  NAME_RE,
  checkThreshold,
  encodeEnvelope,
  fromFsError,
  parseRoot,
  refusedFromServer,
  rootFingerprint,
  type RootDocument,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { readJsonIfExists, writeFileAtomic, listDir } from './fs-util.js';
import { fetchBytes, joinUrl, originsOf, tryMirrors, type MirrorSet } from './download.js';
import { withWriterLock } from './writer.js';
import { readCatalogState } from './catalog-store.js';
import { readStagedRepos, type StagedRepo } from './staged-repos.js';
import { crashPoint } from './crash-point.js';

/** A configured repository, as kept in `db/repos.json`. Order is priority order. */
export interface RepoConfig {
  name: string;
  /** Base URL of the published web root. */
  url: string;
  /** Further base URLs serving the same files, tried in order when one fails. */
  mirrors: string[];
  /** Fingerprint of the root pinned at `repo add` (the start of the trust chain). */
  pinnedFingerprint: string;
  pinnedAt: string;
  /** The image's staged file this repository comes from (absent for one added with `pkg repo add`). */
  staged?: string;
}

interface ReposFile {
  format: 1;
  repos: RepoConfig[];
}

/** `pkg repo list`: configuration plus what the client last accepted. */
export interface RepoInfo extends RepoConfig {
  /** Absent for a staged repository pinned by fingerprint whose root `pkg update` has not fetched yet. */
  rootVersion?: number;
  rootExpires?: string;
  /** The staged file this configured repository overrides (`pkg repo add|set` of a staged name). */
  overridesStaged?: string;
  catalogVersion?: number;
  catalogExpires?: string;
  catalogAcceptedAt?: string;
  packages?: number;
  /** Each server (the URL, then the mirrors) as the last successful `pkg update` found it. */
  servers?: MirrorStatus[];
}

export interface MirrorStatus {
  url: string;
  /** When a successful update last asked this server. */
  checkedAt: string;
  ok: boolean;
  /** Why it failed then (ok false): the error code and message. */
  lastError?: { code: string; message: string };
}

function mirrorStatusFile(ctx: PkgContext): string {
  return join(ctx.paths.db, 'mirrors.json');
}

async function readMirrorStatus(ctx: PkgContext): Promise<Record<string, MirrorStatus[]>> {
  const v = await readJsonIfExists(mirrorStatusFile(ctx)).catch(() => undefined);
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, MirrorStatus[]>) : {};
}

/**
 * Records what this command learnt about a repository's servers (called by a successful update, under
 * the writer lock: a refused update changes nothing, this file included). Servers not asked keep their entry.
 */
export async function saveMirrorStatus(ctx: PkgContext, repo: RepoConfig, mirrors: MirrorSet): Promise<void> {
  const all = await readMirrorStatus(ctx);
  const previous = new Map((all[repo.name] ?? []).map((m) => [m.url, m]));
  const at = ctx.now().toISOString();
  all[repo.name] = [repo.url, ...repo.mirrors].flatMap((url): MirrorStatus[] => {
    const o = mirrors.outcomeUnder(url);
    if (!o) return previous.has(url) ? [previous.get(url)!] : [];
    return [{ url, checkedAt: at, ok: o.ok, ...(o.ok ? {} : { lastError: { code: o.code ?? '', message: o.message ?? '' } }) }];
  });
  await writeFileAtomic(mirrorStatusFile(ctx), JSON.stringify(all, null, 2) + '\n');
}

const MAX_ROOT_BYTES = 1024 * 1024;

/** The repositories configured in `db/repos.json` (added or set, staged ones overridden there included). */
async function readConfiguredRepos(ctx: PkgContext): Promise<RepoConfig[]> {
  const v = (await readJsonIfExists(ctx.paths.reposFile)) as ReposFile | undefined;
  if (v === undefined) return [];
  if (!v || v.format !== 1 || !Array.isArray(v.repos)) {
    throw new SwpkgError('E_STORE', `${ctx.paths.reposFile} is not a pkg repository list`, {
      hint: 'restore it from a backup, or remove it and add the repositories again',
      details: { path: ctx.paths.reposFile },
    });
  }
  return v.repos;
}

function stagedConfig(s: StagedRepo): RepoConfig {
  return { name: s.name, url: s.url, mirrors: s.mirrors, pinnedFingerprint: s.fingerprint, pinnedAt: s.stagedAt, staged: s.file };
}

/**
 * Every repository in priority order: those configured in `db/` first, then
 * those the image staged under names `db/` does not configure (a configured
 * name overrides the staged one). A malformed staged file is E_BAD_CONFIG.
 */
export async function readRepos(ctx: PkgContext): Promise<RepoConfig[]> {
  const configured = await readConfiguredRepos(ctx);
  const staged = await readStagedRepos(ctx.stagedReposDir);
  return [...configured, ...staged.filter((s) => !configured.some((c) => c.name === s.name)).map(stagedConfig)];
}

async function writeRepos(ctx: PkgContext, repos: RepoConfig[]): Promise<void> {
  const file: ReposFile = { format: 1, repos };
  await writeFileAtomic(ctx.paths.reposFile, JSON.stringify(file, null, 2) + '\n');
}

export function rootFile(ctx: PkgContext, repo: string): string {
  return join(ctx.paths.rootsDir, `${repo}.json`);
}

/**
 * `db/roots/NAME.staged-pin`: the fingerprint of the staged root that
 * `db/roots/NAME.json` was reached from. A staged repository trusts its
 * accepted root state only while the image still stages that pin: an image
 * rebuilt with another root starts again from the new pin, as `repo set` with
 * a new root does.
 */
function stagedPinFile(ctx: PkgContext, repo: string): string {
  return join(ctx.paths.rootsDir, `${repo}.staged-pin`);
}

async function acceptedFromStagedPin(ctx: PkgContext, repo: RepoConfig): Promise<boolean> {
  let pin: string;
  try {
    pin = (await readFile(stagedPinFile(ctx, repo.name), 'utf8')).trim();
  } catch {
    return false;
  }
  if (pin !== repo.pinnedFingerprint) return false;
  try {
    await readFile(rootFile(ctx, repo.name));
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the catalog kept for `repo` was accepted under the trust it has now: always for an
 * added repository; for a staged one only while the image still stages the pin it came from (a
 * catalog kept from an earlier image's pin says nothing until `pkg update` accepts one again).
 */
export async function catalogTrustedNow(ctx: PkgContext, repo: RepoConfig): Promise<boolean> {
  return repo.staged === undefined || (await acceptedFromStagedPin(ctx, repo));
}

/** Where trust for a repository starts this run. */
export interface TrustStart {
  root: RootDocument;
  /** True when this is the staged pin itself, not yet accepted into `db/`: its first accepted catalog replaces any old state. */
  fromStagedPin: boolean;
}

/**
 * The root a repository's update starts from, without the network: the
 * accepted root in `db/` (added repositories, and staged ones once accepted
 * from the pin the image still stages), else a staged root document. A
 * staged fingerprint whose root was never fetched gives undefined.
 */
export async function localTrustStart(ctx: PkgContext, repo: RepoConfig): Promise<TrustStart | undefined> {
  if (repo.staged === undefined) return { root: await loadTrustedRoot(ctx, repo.name), fromStagedPin: false };
  if (await acceptedFromStagedPin(ctx, repo)) return { root: await loadTrustedRoot(ctx, repo.name), fromStagedPin: false };
  const staged = (await readStagedRepos(ctx.stagedReposDir)).find((s) => s.name === repo.name);
  if (staged?.root) return { root: staged.root, fromStagedPin: true };
  return undefined;
}

/** `pkg update`: as localTrustStart, fetching a staged fingerprint's root from the repository (E_BAD_ROOT when none matches). */
export async function trustStart(ctx: PkgContext, repo: RepoConfig): Promise<TrustStart> {
  const local = await localTrustStart(ctx, repo);
  if (local) return local;
  const root = await fetchRootByFingerprint(ctx, [repo.url, ...repo.mirrors], repo.pinnedFingerprint);
  checkThreshold(root, root.signed.roles.root, root.signed.keys, `root of ${repo.name}`);
  return { root, fromStagedPin: true };
}

/**
 * After a staged repository's first catalog verified under its staged pin:
 * the root goes to `db/` like an added repository's, then the pin it came
 * from. A crash between the two leaves a pin that does not match, so the next
 * run starts from the staged pin again.
 */
export async function acceptStagedRoot(ctx: PkgContext, repo: RepoConfig, root: RootDocument): Promise<void> {
  await forgetCatalog(ctx, repo.name);
  await saveTrustedRoot(ctx, repo.name, root);
  crashPoint('update.staged-root-saved');
  await writeFileAtomic(stagedPinFile(ctx, repo.name), repo.pinnedFingerprint + '\n');
}

/**
 * The root this client trusts for `repo` now: the pinned one, or a later one
 * reached by verified rotation. It was verified before it was written;
 * it is checked again here (threshold of its own root keys) because
 * anything read from disk is checked before it is trusted.
 */
export async function loadTrustedRoot(ctx: PkgContext, repo: string): Promise<RootDocument> {
  const path = rootFile(ctx, repo);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw fromFsError(e, `reading the pinned root of ${repo}`);
  }
  const root = parseRoot(bytes, path);
  checkThreshold(root, root.signed.roles.root, root.signed.keys, path);
  return root;
}

/** Keeps the root's envelope: its payload bytes are exactly the ones that were verified (and fingerprinted). */
export async function saveTrustedRoot(ctx: PkgContext, repo: string, root: RootDocument): Promise<void> {
  await writeFileAtomic(rootFile(ctx, repo), encodeEnvelope(root));
}

function assertRepoName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new SwpkgError('E_USAGE', `repository name ${JSON.stringify(name)} must be 1-64 characters of a-z, 0-9, +, ., _, -`, {
      details: { name },
    });
  }
}

function assertUrl(url: string, what: string): string {
  // Offline media (issue 15): a plain folder is its file:// URL. A `..` anywhere is refused before
  // URL parsing would quietly resolve it (`file:///media/../etc` is `file:///etc`).
  if (url.split(/[/\\]/).some((seg) => seg === '..' || /^(%2e|\.){2}$/i.test(seg))) {
    throw new SwpkgError('E_UNSAFE_PATH', `${what} ${JSON.stringify(url)} climbs out of its folder (..)`, { details: { url } });
  }
  if (url.startsWith('/') || url.startsWith('./')) url = pathToFileURL(resolvePath(url)).toString();
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SwpkgError('E_USAGE', `${what} ${JSON.stringify(url)} is not a URL`, {
      hint: 'use http://HOST[:PORT]/PATH/, file:///PATH/ or /PATH/ (a folder, e.g. mounted media)',
      details: { url },
    });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'file:') {
    throw new SwpkgError('E_USAGE', `${what} ${JSON.stringify(url)} must be http://, https:// or file:// (or a folder)`, {
      details: { url },
    });
  }
  if (u.protocol === 'file:' && u.host !== '') {
    throw new SwpkgError(
      'E_USAGE',
      `${what} ${JSON.stringify(url)} names a host; a file:// URL is a folder on this machine (file:///PATH/)`,
      {
        details: { url },
      },
    );
  }
  return u.toString().replace(/\/?$/, '/');
}

export interface AddRepoOptions {
  name: string;
  url: string;
  /** A root document file (`repo-root.pub`) to pin. */
  keyFile?: string;
  /** SHA-256 of the root's payload bytes; the root is fetched from the URL and must match. */
  fingerprint?: string;
  mirrors?: string[];
  /** `repo set`: replace an existing entry instead of refusing. */
  replace?: boolean;
}

function duplicate(name: string, url: string): SwpkgError {
  return new SwpkgError('E_USAGE', `repository ${name} already exists`, {
    hint: `use \`pkg repo set ${name} URL\` to change it, or \`pkg repo remove ${name}\` first`,
    details: { name, url },
  });
}

function parseRootBytes(bytes: Uint8Array, source: string): RootDocument {
  return parseRoot(bytes, source);
}

/**
 * Finds the root whose fingerprint the user gave: `repo-root.pub` (the
 * newest root) first, then `roots/1.json`, `roots/2.json`… so a
 * fingerprint copied before a rotation still pins. The pinned root must be
 * signed by a threshold of its own root keys.
 */
async function fetchRootByFingerprint(ctx: PkgContext, bases: string[], fingerprint: string): Promise<RootDocument> {
  const transport = await ctx.transport();
  const get = (path: string): Promise<Uint8Array> =>
    tryMirrors(
      bases,
      (base) => fetchBytes(joinUrl(base, path), { transport, maxBytes: MAX_ROOT_BYTES, limits: ctx.limits, origins: originsOf(bases) }),
      ctx.reporter,
    );
  const seen: string[] = [];
  const fetched = (bytes: Uint8Array, source: string): RootDocument => {
    try {
      return parseRootBytes(bytes, source);
    } catch (e) {
      throw refusedFromServer(e, source);
    }
  };
  const newest = fetched(await get('repo-root.pub'), 'repo-root.pub');
  const fp = rootFingerprint(newest);
  seen.push(fp);
  if (fp === fingerprint) return newest;
  for (let v = 1; v < newest.signed.version && v <= 1000; v++) {
    let doc: RootDocument;
    try {
      doc = fetched(await get(`roots/${v}.json`), `roots/${v}.json`);
    } catch (e) {
      if (e instanceof SwpkgError && e.code === 'E_HTTP') continue;
      throw e;
    }
    if (rootFingerprint(doc) === fingerprint) return doc;
    seen.push(rootFingerprint(doc));
  }
  throw new SwpkgError('E_BAD_ROOT', `no root at ${bases[0]} has fingerprint ${fingerprint}`, {
    hint: 'check the fingerprint with the publisher (`swpkg repo verify-hosted URL` prints it); do not pin a root you cannot confirm',
    details: { expected: fingerprint, offered: seen },
  });
}

/**
 * `pkg repo add|set`: pins the repository's root. Trust is never implicit:
 * either a root file the user obtained out of band, or a fingerprint that
 * the fetched root must match.
 */
export async function addRepository(ctx: PkgContext, o: AddRepoOptions): Promise<RepoInfo> {
  assertRepoName(o.name);
  const url = assertUrl(o.url, 'repository URL');
  const mirrors = (o.mirrors ?? []).map((m) => assertUrl(m, 'mirror URL'));
  if (o.keyFile !== undefined && o.fingerprint !== undefined) {
    throw new SwpkgError('E_USAGE', 'give either --key or --fingerprint, not both');
  }
  const fingerprint = o.fingerprint?.toLowerCase();
  if (fingerprint !== undefined && !/^[0-9a-f]{64}$/.test(fingerprint)) {
    throw new SwpkgError('E_USAGE', '--fingerprint must be 64 hex digits (SHA-256 of the root)', {
      details: { fingerprint: o.fingerprint },
    });
  }
  // Trust decisions first, without the lock: fetching a root only reads, and a refusal leaves the root directory untouched.
  const known = (await readConfiguredRepos(ctx)).find((r) => r.name === o.name);
  if (known && !o.replace) throw duplicate(o.name, known.url);
  const staged = known ? undefined : (await readRepos(ctx)).find((r) => r.name === o.name && r.staged !== undefined);
  if (!known && !staged && o.keyFile === undefined && fingerprint === undefined) {
    throw new SwpkgError('E_USAGE', `pinning ${o.name} needs its root: --key FILE or --fingerprint HEX`, {
      hint: 'get repo-root.pub or its fingerprint from the publisher over a channel you trust (`swpkg repo verify-hosted` prints the fingerprint)',
    });
  }
  let root: RootDocument | undefined;
  if (o.keyFile !== undefined) {
    let bytes: Buffer;
    try {
      bytes = await readFile(o.keyFile);
    } catch (e) {
      throw fromFsError(e, `reading ${o.keyFile}`);
    }
    root = parseRootBytes(bytes, o.keyFile);
  } else if (fingerprint !== undefined) {
    root = await fetchRootByFingerprint(ctx, [url, ...mirrors], fingerprint);
  }
  // Overriding a staged repository without a new root keeps the image's trust: the root it accepted from
  // the staged pin (and with it its catalog), else the staged root, else the staged fingerprint fetched from URL.
  let keepStagedState = false;
  if (staged && !root) {
    keepStagedState = await acceptedFromStagedPin(ctx, staged);
    if (!keepStagedState) root = (await trustStart(ctx, { ...staged, url, mirrors })).root;
  }
  if (root) checkThreshold(root, root.signed.roles.root, root.signed.keys, `root of ${o.name}`);
  return withWriterLock(ctx, async () => {
    const repos = await readConfiguredRepos(ctx);
    const existing = repos.find((r) => r.name === o.name);
    if (existing && !o.replace) throw duplicate(o.name, existing.url);
    if (!existing && !root && !keepStagedState) {
      throw new SwpkgError('E_USAGE', `pinning ${o.name} needs its root: --key FILE or --fingerprint HEX`);
    }
    const entry: RepoConfig = {
      name: o.name,
      url,
      mirrors,
      pinnedFingerprint: root ? rootFingerprint(root) : (existing ?? staged)!.pinnedFingerprint,
      pinnedAt: root ? ctx.now().toISOString() : (existing ?? staged)!.pinnedAt,
    };
    if (root) {
      // A new trust anchor: the catalog accepted under the old one no longer says anything.
      await forgetCatalog(ctx, o.name);
      await saveTrustedRoot(ctx, o.name, root);
    }
    // From here db/ owns the name: the staged pin no longer decides anything about this root.
    await rm(stagedPinFile(ctx, o.name), { force: true });
    const next = existing ? repos.map((r) => (r.name === o.name ? entry : r)) : [...repos, entry];
    await writeRepos(ctx, next);
    if (staged && !existing) {
      ctx.reporter.warn(
        `repository ${o.name} is staged by the image (${staged.staged}); this configuration overrides it (\`pkg repo remove ${o.name}\` returns to the staged one)`,
      );
    }
    // An override set again still says what it overrides.
    return info(ctx, entry, staged?.staged ?? (await readStagedRepos(ctx.stagedReposDir)).find((s) => s.name === o.name)?.file);
  });
}

async function forgetCatalog(ctx: PkgContext, repo: string): Promise<void> {
  for (const n of await listDir(ctx.paths.catalogsDir)) {
    const kept = (ext: string): boolean => n.startsWith(`${repo}-`) && n.endsWith(ext) && n.length === repo.length + 1 + 64 + ext.length;
    if (n === `${repo}.json` || kept('.catalog') || kept('.index')) {
      await rm(join(ctx.paths.catalogsDir, n), { force: true });
    }
  }
}

async function info(ctx: PkgContext, r: RepoConfig, overridesStaged?: string): Promise<RepoInfo> {
  const start = await localTrustStart(ctx, r);
  // A staged repository before its first update has no accepted catalog; one kept from an earlier pin says nothing.
  const state = start?.fromStagedPin === false ? await readCatalogState(ctx, r.name) : undefined;
  const out: RepoInfo = { ...r };
  if (start) {
    out.rootVersion = start.root.signed.version;
    out.rootExpires = start.root.signed.expires;
  }
  if (overridesStaged !== undefined) out.overridesStaged = overridesStaged;
  if (state) {
    out.catalogVersion = state.version;
    out.catalogExpires = state.expires;
    out.catalogAcceptedAt = state.acceptedAt;
    out.packages = state.packages;
  }
  const servers = (await readMirrorStatus(ctx))[r.name];
  if (servers && servers.length > 0) out.servers = servers;
  return out;
}

/** `pkg repo list`. A reader: takes no lock. */
export async function listRepositories(ctx: PkgContext): Promise<RepoInfo[]> {
  const repos = await readRepos(ctx);
  const staged = await readStagedRepos(ctx.stagedReposDir);
  return Promise.all(repos.map((r) => info(ctx, r, r.staged === undefined ? staged.find((s) => s.name === r.name)?.file : undefined)));
}

/** `pkg repo remove NAME`: forgets the repository, its pinned root and its catalog. Installed packages stay. */
export async function removeRepository(ctx: PkgContext, name: string): Promise<{ removed: string; stagedAgain?: string }> {
  return withWriterLock(ctx, async () => {
    const repos = await readConfiguredRepos(ctx);
    const staged = (await readStagedRepos(ctx.stagedReposDir)).find((s) => s.name === name);
    if (!repos.some((r) => r.name === name) && staged) {
      throw new SwpkgError('E_USAGE', `repository ${name} is staged by the image (${staged.file}) and cannot be removed here`, {
        hint: `override it with \`pkg repo set ${name} URL --fingerprint HEX\`, or build the image without it`,
        details: { name, path: staged.file },
      });
    }
    if (!repos.some((r) => r.name === name)) {
      throw new SwpkgError('E_NOT_FOUND', `no repository named ${name}`, {
        hint: 'see `pkg repo list`',
        details: { name, configured: repos.map((r) => r.name) },
      });
    }
    await writeRepos(
      ctx,
      repos.filter((r) => r.name !== name),
    );
    await forgetCatalog(ctx, name);
    await rm(rootFile(ctx, name), { force: true });
    await rm(stagedPinFile(ctx, name), { force: true });
    if (staged) {
      ctx.reporter.warn(`repository ${name} is staged by the image (${staged.file}): it is used again, from its staged root`);
      return { removed: name, stagedAgain: staged.file };
    }
    return { removed: name };
  });
}
