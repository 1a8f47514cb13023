import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, silentReporter } from '../../catalog/index.js';
import { publishRepository, readPrivateKey, type PublishResult } from '../../publishing/index.js';
import { buildPorts, type BuildOptions, type BuiltPackage } from './build-port.js';
import { DEFAULT_TARGET, assertTarget } from './recipe.js';
import { dependencyOrder, edgesOf, loadPortsCatalog, loadRecipeClosure } from './ports-catalog.js';

export interface RepoFixtureOptions extends BuildOptions {
  /** The static web root to publish into (created; an existing root is updated). */
  out: string;
  /** Catalog signing key file (`swpkg key generate`). */
  keyPath: string;
  /** Root key file for a new repository; defaults to the catalog key. */
  rootKeyPath?: string;
  /** Repository name in hosted-repo.json. */
  name?: string;
  /** Seconds until the catalog expires. */
  expiresIn?: number;
  /** Publish every port of the catalog (names are then ignored). */
  all?: boolean;
  /**
   * Build and publish for each of these targets into the one root (default:
   * `target`, else x86_64). Arch-specific packages are published per arch;
   * an `arch: any` package is the same file for every target and is published once.
   */
  targets?: string[];
}

export interface RepoFixtureResult {
  /** The packages built and published: the named ports and their runtime dependencies, per target. */
  ports: { name: string; version: string; target: string; file: string; sha256: string; cached: boolean; seconds: number }[];
  publish: PublishResult;
}

/**
 * `swport recipe repo-fixture NAMES... --key KEY --out ROOT`: builds the named
 * ports (or all with `all`) and their runtime dependencies through the cache,
 * then publishes exactly those packages with the library's publishRepository
 * (what `swpkg repo publish` runs) into a signed static root, for one or
 * several targets (one root serves every arch). A failed build stops before
 * anything is published.
 */
export async function makeRepoFixture(names: string[], o: RepoFixtureOptions): Promise<RepoFixtureResult> {
  const reporter = o.reporter ?? silentReporter;
  const catalog = await loadPortsCatalog(o.paths.portsDir);
  const wanted = o.all ? [...catalog.folders.keys()] : names;
  const recipes = await loadRecipeClosure(catalog, wanted);
  if (wanted.length === 0) {
    throw new SwpkgError('E_USAGE', 'name at least one port, or pass --all', {
      hint: 'swport recipe repo-fixture lua zlib --key KEY --out ROOT',
    });
  }
  const key = await readPrivateKey(o.keyPath);
  const rootKey = o.rootKeyPath ? await readPrivateKey(o.rootKeyPath) : undefined;
  const published = new Set(
    dependencyOrder(wanted, (n) => {
      const l = recipes.get(n);
      return l ? edgesOf(l.recipe, 'runtime') : undefined;
    }),
  );
  const targets = [...new Set(o.targets && o.targets.length > 0 ? o.targets : [o.target ?? DEFAULT_TARGET])];
  // Every target is checked against every recipe before anything is built.
  for (const t of targets) for (const n of wanted) assertTarget(recipes.get(n)!.recipe, t);
  const ports: BuiltPackage[] = [];
  const files = new Map<string, string>();
  for (const target of targets) {
    const built = await buildPorts(wanted, { ...o, target, withRuntime: true });
    for (const b of built.filter((x) => published.has(x.name))) {
      const seen = files.get(b.file);
      if (seen === b.sha256) continue;
      if (seen !== undefined) {
        throw new SwpkgError('E_IMMUTABLE', `${b.file} was built twice with different bytes (for ${targets.join(' and ')})`, {
          hint: 'an arch "any" port must not depend on the target it is built for',
          details: { file: b.file, sha256: [seen, b.sha256] },
        });
      }
      files.set(b.file, b.sha256);
      ports.push(b);
    }
  }
  const staging = join(o.paths.cacheDir, 'work');
  await mkdir(staging, { recursive: true });
  const packagesDir = await mkdtemp(join(staging, '.repo-fixture-'));
  try {
    for (const b of ports) await copyFile(b.path, join(packagesDir, b.file));
    reporter.info(`publishing ${ports.length} packages into ${o.out}`);
    const publish = await publishRepository({
      packagesDir,
      out: o.out,
      key,
      ...(rootKey ? { rootKey } : {}),
      ...(o.name ? { name: o.name } : {}),
      ...(o.expiresIn ? { expiresIn: o.expiresIn } : {}),
      reporter,
    });
    return {
      ports: ports.map((b) => ({
        name: b.name,
        version: b.version,
        target: b.target,
        file: b.file,
        sha256: b.sha256,
        cached: b.cached,
        seconds: b.seconds,
      })),
      publish,
    };
  } finally {
    await rm(packagesDir, { recursive: true, force: true });
  }
}
