import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a ports tree and its caches live. Every builder function takes one of these. */
export interface PortsPaths {
  /** The folder holding `catalog.json` and `recipes/`. */
  portsDir: string;
  /** Verified sources (`sources/<sha256>`), build cache (`builds/<key>/`), logs and work trees. */
  cacheDir: string;
  /** Content-addressed source mirror folder (`<sha256>` files); may not exist. */
  mirrorDir: string;
}

/**
 * Finds the repository root by walking up from this module until a folder
 * holds `ports/catalog.json`; works from the TypeScript sources (tests) and
 * from `dist/` (the CLI) alike.
 */
export function findRepoRoot(start: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'ports', 'catalog.json')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * Defaults: the repository's own `ports/`, `.cache/` beside it (gitignored),
 * and the mirror folder `../shared/sources` relative to the repository root,
 * which CI provides beside a fresh clone. Environment overrides:
 * `SWPORT_PORTS_DIR`, `SWPORT_CACHE_DIR`, `SWPORT_SOURCE_MIRROR`.
 */
export function defaultPortsPaths(overrides: Partial<PortsPaths> = {}, env: NodeJS.ProcessEnv = process.env): PortsPaths {
  const root = findRepoRoot() ?? process.cwd();
  return {
    portsDir: resolve(overrides.portsDir ?? env['SWPORT_PORTS_DIR'] ?? join(root, 'ports')),
    cacheDir: resolve(overrides.cacheDir ?? env['SWPORT_CACHE_DIR'] ?? join(root, '.cache')),
    mirrorDir: resolve(overrides.mirrorDir ?? env['SWPORT_SOURCE_MIRROR'] ?? join(root, '..', 'shared', 'sources')),
  };
}
