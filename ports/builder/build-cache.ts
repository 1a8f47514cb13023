import { readFile, readdir, rename, rm, stat, mkdir, writeFile, lstat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { canonicalJson, parseJson, sha256File, sha256Hex, validateManifest, type PackageManifest } from '../../catalog/index.js';
import { RECIPE_FILE, type LoadedRecipe } from './ports-catalog.js';

/** Everything that decides a package's bytes. Its canonical hash is the cache key. */
export interface BuildKeyInputs {
  port: string;
  target: string;
  /** Every file of the recipe folder except the smoke test, by relative path. */
  recipeFiles: Record<string, string>;
  sources: string[];
  /** Build dependencies (transitive) → SHA-256 of the package they were built into. */
  dependencies: Record<string, string>;
  toolchain: string;
  sandbox: string;
}

export interface CacheEntry {
  key: string;
  dir: string;
  packagePath: string;
  sha256: string;
  size: number;
  info: CachedBuildInfo;
}

/** `build.json` beside a cached package. */
export interface CachedBuildInfo {
  port: string;
  version: string;
  file: string;
  sha256: string;
  size: number;
  seconds: number;
  /** CPU seconds of the build's processes (independent of machine load). */
  cpuSeconds?: number;
  builtAt: string;
  inputs: BuildKeyInputs;
  /** The package's manifest as packed, so a cache hit needs no archive read. */
  manifest: PackageManifest;
}

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(dir, p));
    if (st.isDirectory()) out.push(...(await listFiles(dir, p)));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/**
 * Hashes the recipe folder's files; the smoke test is left out because it
 * does not shape the package. recipe.json counts as the bytes that were
 * parsed (not re-read), so the key and the recipe hash recorded in the
 * package always describe the same recipe.
 */
export async function recipeFileHashes(loaded: LoadedRecipe): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of await listFiles(loaded.dir)) {
    if (p === loaded.recipe.smoke) continue;
    out[p] = p === RECIPE_FILE ? loaded.recipeSha256 : (await sha256File(join(loaded.dir, p))).sha256;
  }
  out[RECIPE_FILE] = loaded.recipeSha256;
  return out;
}

export function buildKey(inputs: BuildKeyInputs): string {
  return sha256Hex(canonicalJson(inputs));
}

export class BuildCache {
  constructor(readonly cacheDir: string) {}

  private dirOf(key: string): string {
    return join(this.cacheDir, 'builds', key);
  }

  /**
   * A hit only when build.json parses and the package still hashes to what
   * it recorded: anything found on disk is verified before it is trusted.
   */
  async lookup(key: string): Promise<CacheEntry | undefined> {
    const dir = this.dirOf(key);
    let info: CachedBuildInfo;
    try {
      info = parseJson(await readFile(join(dir, 'build.json'), 'utf8'), 'build.json') as CachedBuildInfo;
      info.manifest = validateManifest(info.manifest);
    } catch {
      return undefined;
    }
    const packagePath = join(dir, info.file);
    const ok = await stat(packagePath).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!ok) return undefined;
    const { sha256, size } = await sha256File(packagePath);
    if (sha256 !== info.sha256) {
      await rm(dir, { recursive: true, force: true });
      return undefined;
    }
    return { key, dir, packagePath, sha256, size, info };
  }

  /**
   * Moves a finished package (and its side files) into the cache. The entry
   * appears with one rename, so a crash leaves either no entry or a whole one;
   * a concurrent builder that got there first wins and ours is dropped.
   */
  async store(key: string, files: { path: string; name: string }[], info: CachedBuildInfo): Promise<CacheEntry> {
    const root = join(this.cacheDir, 'builds');
    await mkdir(root, { recursive: true });
    const tmp = join(root, `.tmp-${key.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp);
    try {
      for (const f of files) await rename(f.path, join(tmp, f.name));
      await writeFile(join(tmp, 'build.json'), JSON.stringify(info, null, 2) + '\n');
      const dir = this.dirOf(key);
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    const entry = await this.lookup(key);
    if (!entry) throw new Error(`cache entry ${key} vanished after it was stored`);
    return entry;
  }

  relative(path: string): string {
    return relative(this.cacheDir, path);
  }
}
