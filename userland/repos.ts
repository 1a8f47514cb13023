import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  NAME_RE,
  checkThreshold,
  encodeEnvelope,
  fromFsError,
  parseRoot,
  rootFingerprint,
  type RootDocument,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { readJsonIfExists, writeFileAtomic, listDir } from './fs-util.js';
import { fetchBytes, joinUrl, originsOf, refusedFromServer, tryMirrors, type MirrorSet } from './download.js';
import { withWriterLock } from './writer.js';
import { readCatalogState } from './catalog-store.js';

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
}

interface ReposFile {
  format: 1;
  repos: RepoConfig[];
}

/** `pkg repo list`: configuration plus what the client last accepted. */
export interface RepoInfo extends RepoConfig {
  rootVersion: number;
  rootExpires: string;
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

export async function readRepos(ctx: PkgContext): Promise<RepoConfig[]> {
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

async function writeRepos(ctx: PkgContext, repos: RepoConfig[]): Promise<void> {
  const file: ReposFile = { format: 1, repos };
  await writeFileAtomic(ctx.paths.reposFile, JSON.stringify(file, null, 2) + '\n');
}

export function rootFile(ctx: PkgContext, repo: string): string {
  return join(ctx.paths.rootsDir, `${repo}.json`);
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
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SwpkgError('E_USAGE', `${what} ${JSON.stringify(url)} is not a URL`, {
      hint: 'use http://HOST[:PORT]/PATH/',
      details: { url },
    });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new SwpkgError('E_USAGE', `${what} ${JSON.stringify(url)} must be http:// or https://`, { details: { url } });
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
  const known = (await readRepos(ctx)).find((r) => r.name === o.name);
  if (known && !o.replace) throw duplicate(o.name, known.url);
  if (!known && o.keyFile === undefined && fingerprint === undefined) {
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
  if (root) checkThreshold(root, root.signed.roles.root, root.signed.keys, `root of ${o.name}`);
  return withWriterLock(ctx, async () => {
    const repos = await readRepos(ctx);
    const existing = repos.find((r) => r.name === o.name);
    if (existing && !o.replace) throw duplicate(o.name, existing.url);
    if (!existing && !root) throw new SwpkgError('E_USAGE', `pinning ${o.name} needs its root: --key FILE or --fingerprint HEX`);
    const entry: RepoConfig = {
      name: o.name,
      url,
      mirrors,
      pinnedFingerprint: root ? rootFingerprint(root) : existing!.pinnedFingerprint,
      pinnedAt: root ? ctx.now().toISOString() : existing!.pinnedAt,
    };
    if (root) {
      // A new trust anchor: the catalog accepted under the old one no longer says anything.
      await forgetCatalog(ctx, o.name);
      await saveTrustedRoot(ctx, o.name, root);
    }
    const next = existing ? repos.map((r) => (r.name === o.name ? entry : r)) : [...repos, entry];
    await writeRepos(ctx, next);
    return info(ctx, entry);
  });
}

async function forgetCatalog(ctx: PkgContext, repo: string): Promise<void> {
  for (const n of await listDir(ctx.paths.catalogsDir)) {
    if (n === `${repo}.json` || (n.startsWith(`${repo}-`) && n.endsWith('.catalog') && n.length === repo.length + 1 + 64 + 8)) {
      await rm(join(ctx.paths.catalogsDir, n), { force: true });
    }
  }
}

async function info(ctx: PkgContext, r: RepoConfig): Promise<RepoInfo> {
  const root = await loadTrustedRoot(ctx, r.name);
  const state = await readCatalogState(ctx, r.name);
  const out: RepoInfo = { ...r, rootVersion: root.signed.version, rootExpires: root.signed.expires };
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
  return Promise.all(repos.map((r) => info(ctx, r)));
}

/** `pkg repo remove NAME`: forgets the repository, its pinned root and its catalog. Installed packages stay. */
export async function removeRepository(ctx: PkgContext, name: string): Promise<{ removed: string }> {
  return withWriterLock(ctx, async () => {
    const repos = await readRepos(ctx);
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
    return { removed: name };
  });
}
