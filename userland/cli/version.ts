import { readFileSync } from 'node:fs';

/** Replaced by the bundler (`--define:PKG_VERSION=...`); undefined when run from tsc output or sources. */
declare const PKG_VERSION: string | undefined;

/** The version in package.json: inlined into the bundle, read beside the sources otherwise. */
export function pkgVersion(): string {
  if (typeof PKG_VERSION === 'string') return PKG_VERSION;
  // Sources live at userland/cli/, tsc output at dist/userland/cli/: package.json is 2 or 3 levels up.
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pj = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pj.name === 'swpkg' && pj.version) return pj.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}
