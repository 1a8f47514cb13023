import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { silentReporter, type Reporter } from '../../catalog/index.js';
import { buildPort, buildPorts, spdxFileName, type BuildOptions, type BuiltPackage } from './build-port.js';
import { loadPortsCatalog, loadRecipe, checkRecipeFiles } from './ports-catalog.js';
import type { PortsPaths } from './paths.js';
import { assertTarget } from './recipe.js';
import { fetchSources, type FetchAttempt, type SourceFetcher } from './source-fetcher.js';

export interface FetchReport {
  name: string;
  version: string;
  sources: {
    sha256: string;
    size: number;
    path: string;
    from: FetchAttempt['kind'];
    origin: string;
    note?: string;
    attempts: FetchAttempt[];
  }[];
}

/** `swport recipe fetch NAME`: every source of the recipe, verified, in the source cache. */
export async function fetchRecipe(
  name: string,
  o: { paths: PortsPaths; target?: string; reporter?: Reporter; fetchers?: SourceFetcher[] },
): Promise<FetchReport> {
  const catalog = await loadPortsCatalog(o.paths.portsDir);
  const l = await loadRecipe(catalog, name);
  await checkRecipeFiles(l);
  if (o.target !== undefined) assertTarget(l.recipe, o.target);
  const fetched = await fetchSources(l.recipe.sources, {
    cacheDir: o.paths.cacheDir,
    mirrorDir: o.paths.mirrorDir,
    reporter: o.reporter ?? silentReporter,
    ...(o.fetchers ? { fetchers: o.fetchers } : {}),
  });
  return {
    name,
    version: l.recipe.version,
    sources: fetched.map((f, i) => {
      const note = l.recipe.sources[i]!.note;
      return {
        sha256: f.sha256,
        size: f.size,
        path: f.path,
        from: f.from,
        origin: f.origin,
        attempts: f.attempts,
        ...(note ? { note } : {}),
      };
    }),
  };
}

export interface PackageReport {
  name: string;
  version: string;
  target: string;
  /** The package written to the output folder. */
  path: string;
  spdxPath: string;
  sha256: string;
  size: number;
  files: number;
  installedSize: number;
  depends: Record<string, string>;
  cached: boolean;
  seconds: number;
  buildSeconds: number;
  /** CPU seconds the original build used (user + system). */
  cpuSeconds?: number;
  log: string;
  /** Dependencies built (or taken from the cache) on the way. */
  dependencies: { name: string; cached: boolean; seconds: number }[];
}

/** Copies a file into `dir` under its name with a rename at the end, so readers never see half a package. */
async function copyInto(src: string, dir: string, name: string): Promise<string> {
  const final = join(dir, name);
  const tmp = `${final}.tmp-${process.pid}`;
  await copyFile(src, tmp);
  await rename(tmp, final).catch(async (e: unknown) => {
    await rm(tmp, { force: true });
    throw e;
  });
  return final;
}

/**
 * `swport recipe package NAME`: builds the port (through the cache, after its
 * build dependencies) and writes its reproducible `.swpkg` and SPDX summary
 * into `out`.
 */
export async function packageRecipe(name: string, o: BuildOptions & { out: string }): Promise<PackageReport> {
  const all = await buildPorts([name], o);
  const b = all.find((x) => x.name === name)!;
  await mkdir(o.out, { recursive: true });
  const path = await copyInto(b.path, o.out, b.file);
  const spdxPath = await copyInto(b.spdxPath, o.out, spdxFileName(b.file));
  return {
    ...reportOf(b),
    path,
    spdxPath,
    dependencies: all.filter((x) => x.name !== name).map((x) => ({ name: x.name, cached: x.cached, seconds: x.seconds })),
  };
}

function reportOf(b: BuiltPackage): Omit<PackageReport, 'dependencies' | 'spdxPath'> {
  return {
    name: b.name,
    version: b.version,
    target: b.target,
    path: b.path,
    sha256: b.sha256,
    size: b.size,
    files: b.manifest.files.length,
    installedSize: b.manifest.installedSize,
    depends: b.manifest.depends,
    cached: b.cached,
    seconds: b.seconds,
    buildSeconds: b.buildSeconds,
    ...(b.cpuSeconds !== undefined ? { cpuSeconds: b.cpuSeconds } : {}),
    log: b.logPath,
  };
}

/** `swport recipe build NAME`: the package in the build cache, building only what changed. */
export async function buildRecipe(
  name: string,
  o: BuildOptions,
): Promise<Omit<PackageReport, 'spdxPath' | 'dependencies'> & { cacheKey: string; sandbox: string }> {
  const b = await buildPort(name, o);
  return { ...reportOf(b), cacheKey: b.cacheKey, sandbox: b.sandbox };
}
