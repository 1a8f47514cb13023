import semver from 'semver';
import { SwpkgError, compatiblePackages, didYouMean, type CatalogPackage, type FileEntry } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { catalogTrustedNow, readRepos } from './repos.js';
import { loadCatalog } from './catalog-store.js';
import { readCurrent, type GenerationPackage } from './generation.js';
import { readStoreManifest } from './store.js';

/**
 * The read-only commands. None takes the lock: they read the accepted
 * catalogs (checked against their recorded SHA-256) and the current
 * generation, which is immutable once `current` points at it.
 */

export interface CatalogEntry extends CatalogPackage {
  repo: string;
}

/**
 * Asked for what only a catalog can answer (search, install by name) on a root with no
 * repository: saying "no matches" or "nothing provides" would send the person looking for the
 * wrong problem.
 */
export function noRepositoryError(root: string): SwpkgError {
  return new SwpkgError('E_NOT_FOUND', `no repository is configured in ${root}, so there is no catalog to look in`, {
    hint: 'add one: pkg repo add NAME URL --fingerprint HEX (then pkg update)',
    details: { root },
  });
}

/** Throws noRepositoryError when no repository is configured. */
export async function requireRepositories(ctx: PkgContext): Promise<void> {
  if ((await readRepos(ctx)).length === 0) throw noRepositoryError(ctx.paths.root);
}

async function catalogEntries(ctx: PkgContext): Promise<CatalogEntry[]> {
  const out: CatalogEntry[] = [];
  for (const r of await readRepos(ctx)) {
    if (!(await catalogTrustedNow(ctx, r))) continue;
    const c = await loadCatalog(ctx, r.name, { fresh: false });
    if (!c) continue;
    for (const p of compatiblePackages(c.doc, ctx.client)) out.push({ ...p, repo: r.name });
  }
  return out;
}

/** Newest version per name, earlier repositories winning ties. */
function newestByName(entries: CatalogEntry[]): Map<string, CatalogEntry> {
  const best = new Map<string, CatalogEntry>();
  for (const e of entries) {
    const b = best.get(e.name);
    if (!b || semver.gt(e.version, b.version)) best.set(e.name, e);
  }
  return best;
}

export interface SearchHit {
  name: string;
  version: string;
  repo: string;
  summary: string;
  installed: string | null;
}

/** `pkg search TERM`: names and summaries containing TERM (case-insensitive), newest version of each. */
export async function searchPackages(ctx: PkgContext, term: string): Promise<SearchHit[]> {
  await requireRepositories(ctx);
  const t = term.toLowerCase();
  const installed = new Map((await readCurrent(ctx))?.packages.map((p) => [p.name, p.version]) ?? []);
  const hits = [...newestByName(await catalogEntries(ctx)).values()].filter(
    (e) => e.name.includes(t) || e.summary.toLowerCase().includes(t) || e.provides.some((p) => p.toLowerCase().includes(t)),
  );
  // Exact name first, then names starting with the term, then the rest; alphabetical within each.
  const rank = (e: CatalogEntry): number => (e.name === t ? 0 : e.name.startsWith(t) ? 1 : e.name.includes(t) ? 2 : 3);
  return hits
    .sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1))
    .map((e) => ({ name: e.name, version: e.version, repo: e.repo, summary: e.summary, installed: installed.get(e.name) ?? null }));
}

export interface PackageInfo {
  name: string;
  installed: (GenerationPackage & { summary: string; license: string; homepage?: string; files: number }) | null;
  /** Every compatible version the catalogs offer, newest first. */
  available: CatalogEntry[];
}

/** `pkg info NAME`. E_NOT_FOUND when neither installed nor in any catalog. */
export async function packageInfo(ctx: PkgContext, name: string): Promise<PackageInfo> {
  const available = (await catalogEntries(ctx)).filter((e) => e.name === name).sort((a, b) => semver.rcompare(a.version, b.version));
  const rec = (await readCurrent(ctx))?.packages.find((p) => p.name === name);
  let installed: PackageInfo['installed'] = null;
  if (rec) {
    const m = await readStoreManifest(ctx, rec.store);
    installed = { ...rec, summary: m.summary, license: m.license, ...(m.homepage ? { homepage: m.homepage } : {}), files: m.files.length };
  }
  if (!installed && available.length === 0) {
    await requireRepositories(ctx);
    const known = [...(await catalogEntries(ctx)).map((e) => e.name), ...((await readCurrent(ctx))?.packages.map((p) => p.name) ?? [])];
    const near = didYouMean(name, known);
    throw new SwpkgError(
      'E_NOT_FOUND',
      `no package named ${name} is installed or in any catalog${near ? `; did you mean "${near}"?` : ''}`,
      {
        hint: near ? `pkg info ${near}` : 'try `pkg search TERM`, or `pkg update` to refresh the catalogs',
        details: { name },
      },
    );
  }
  return { name, installed, available };
}

export interface ListedPackage {
  name: string;
  version: string;
  repo: string | null;
  explicit?: boolean;
  /** For --upgradable: the newest version the catalogs offer. */
  latest?: string;
  summary?: string;
  installedSize?: number;
}

export type ListFilter = 'installed' | 'upgradable' | 'available';

/** `pkg list [--installed|--upgradable|--available]`. */
export async function listPackages(ctx: PkgContext, filter: ListFilter = 'installed'): Promise<ListedPackage[]> {
  const current = await readCurrent(ctx);
  const installed = current?.packages ?? [];
  if (filter === 'installed') {
    return installed.map((p) => ({ name: p.name, version: p.version, repo: p.repo, explicit: p.explicit, installedSize: p.installedSize }));
  }
  const newest = newestByName(await catalogEntries(ctx));
  if (filter === 'available') {
    const have = new Map(installed.map((p) => [p.name, p.version]));
    return [...newest.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((e) => ({
        name: e.name,
        version: e.version,
        repo: e.repo,
        summary: e.summary,
        ...(have.has(e.name) ? { explicit: installed.find((p) => p.name === e.name)!.explicit } : {}),
      }));
  }
  const out: ListedPackage[] = [];
  for (const p of installed) {
    const n = newest.get(p.name);
    if (n && semver.gt(n.version, p.version))
      out.push({ name: p.name, version: p.version, repo: n.repo, explicit: p.explicit, latest: n.version });
  }
  return out;
}

export interface PackageFiles {
  name: string;
  version: string;
  store: string;
  files: FileEntry[];
}

/** `pkg files NAME`: what an installed package put under `current/`. */
export async function packageFiles(ctx: PkgContext, name: string): Promise<PackageFiles> {
  const rec = (await readCurrent(ctx))?.packages.find((p) => p.name === name);
  if (!rec) {
    throw new SwpkgError('E_NOT_INSTALLED', `${name} is not installed`, { hint: 'pkg list shows what is installed', details: { name } });
  }
  const m = await readStoreManifest(ctx, rec.store);
  return { name: rec.name, version: rec.version, store: rec.store, files: m.files };
}
