/** Signed-catalog payloads for the trust tests: one shape, dated from the `now` each test fixes. */
import type { CatalogPackage, CatalogSigned } from '../../catalog/index.js';

export function catalogPackage(name: string, version = '1.0.0'): CatalogPackage {
  return {
    name,
    version,
    arch: 'x86_64',
    abi: 'linux-musl-static',
    depends: {},
    provides: [],
    conflicts: [],
    size: 10,
    installedSize: 10,
    sha256: 'a'.repeat(64),
    path: `packages/${name}-${version}-x86_64.swpkg`,
    summary: 's',
    license: 'MIT',
  };
}

/** A catalog of repository `main` generated at `now`, expiring a week later, holding lua 5.4.4 unless `over` says otherwise. */
export function catalogSigned(now: Date, version: number, over: Partial<CatalogSigned> = {}): CatalogSigned {
  return {
    type: 'catalog',
    format: 1,
    repo: 'main',
    version,
    generated: now.toISOString(),
    expires: new Date(now.getTime() + 7 * 86400000).toISOString(),
    compatibility: { arch: ['x86_64'], abi: ['linux-musl-static'], minClientFormat: 1 },
    packages: [catalogPackage('lua', '5.4.4')],
    ...over,
  };
}
