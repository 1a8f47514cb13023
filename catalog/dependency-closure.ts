import semver from 'semver';
import { SwpkgError } from './errors.js';

/** What the closure check needs of a catalog entry. */
export interface ClosurePackage {
  name: string;
  version: string;
  arch: string;
  depends: Record<string, string>;
  provides: string[];
}

/** A dependency nothing in the set meets. */
export interface UnmetDependency {
  /** `NAME@VERSION` (arch) of the package that declares it. */
  package: string;
  arch: string;
  /** `NAME@RANGE`. */
  requires: string;
}

/**
 * Does `p` meet a dependency on `name` within `range`? By its own name and version, or by a
 * provide: `name@version` meets ranges its version satisfies, a bare `name` only `*`. These are the
 * resolver's rules (catalog/resolver.ts), so what is refused here is what no client could install.
 */
function meets(p: ClosurePackage, name: string, range: string): boolean {
  if (p.name === name && semver.satisfies(p.version, range)) return true;
  return p.provides.some((v) => {
    const at = v.indexOf('@');
    if (at < 0) return v === name && range === '*';
    return v.slice(0, at) === name && semver.satisfies(v.slice(at + 1), range);
  });
}

/**
 * Every dependency of every package in the set that no package of a usable arch (the same arch,
 * or `any`) meets. Sorted by package, then requirement. An empty list means the set is closed: a
 * client can install any package of it from this catalog alone.
 */
export function unmetDependencies(packages: readonly ClosurePackage[]): UnmetDependency[] {
  const out: UnmetDependency[] = [];
  for (const p of packages) {
    const usable = packages.filter((q) => p.arch === 'any' || q.arch === p.arch || q.arch === 'any');
    for (const [name, range] of Object.entries(p.depends)) {
      if (!usable.some((q) => meets(q, name, range)))
        out.push({ package: `${p.name}@${p.version}`, arch: p.arch, requires: `${name}@${range}` });
    }
  }
  return out.sort((a, b) => (a.package === b.package ? (a.requires < b.requires ? -1 : 1) : a.package < b.package ? -1 : 1));
}

/**
 * Publishing refuses a set whose dependencies do not close (E_RESOLVE, listing each), unless the
 * publisher says the rest comes from elsewhere; then the list is returned for a warning.
 */
export function checkDependencyClosure(packages: readonly ClosurePackage[], allowUnmet: boolean): UnmetDependency[] {
  const unmet = unmetDependencies(packages);
  if (unmet.length === 0 || allowUnmet) return unmet;
  const lines = unmet.map((u) => `${u.package} (${u.arch}) requires ${u.requires}, which no package in the set provides`);
  throw new SwpkgError(
    'E_RESOLVE',
    `${unmet.length} dependenc${unmet.length === 1 ? 'y' : 'ies'} of the packages to publish ${unmet.length === 1 ? 'is' : 'are'} not met by any package in the set`,
    {
      hint: 'add the missing packages to the folder, or publish anyway with --allow-unmet-dependencies if clients get them from another repository',
      details: { explanation: lines, unmet },
    },
  );
}
