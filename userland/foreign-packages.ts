import { SwpkgError, type CatalogDocument, type ClientIdentity, type Requirement } from '../catalog/index.js';

/** A catalog entry this machine cannot use (another arch or ABI), kept only to explain a request for it. */
export interface ForeignPackage {
  name: string;
  version: string;
  arch: string;
  abi: string;
  repo: string;
}

/** The entries of a verified catalog that `compatiblePackages` leaves out for this client. */
export function foreignPackagesOf(doc: CatalogDocument, client: ClientIdentity, repo: string): ForeignPackage[] {
  return doc.signed.packages
    .filter((p) => !((p.arch === client.arch || p.arch === 'any') && p.abi === client.abi))
    .map((p) => ({ name: p.name, version: p.version, arch: p.arch, abi: p.abi, repo }));
}

/**
 * Refuses, before any plan is made, a request for a name that no usable
 * package has or provides but a catalog offers for another arch or ABI:
 * "hello exists for aarch64 only; this machine is x86_64" says what the
 * resolver's "nothing provides hello" would hide. Names nobody offers at all
 * are left to the resolver, which explains those.
 */
export function refuseForeignOnly(
  requests: readonly Requirement[],
  usable: ReadonlyArray<{ name: string; provides: readonly string[] }>,
  foreign: readonly ForeignPackage[],
  client: ClientIdentity,
): void {
  for (const r of requests) {
    if (usable.some((p) => p.name === r.name || p.provides.includes(r.name))) continue;
    const other = foreign.filter((p) => p.name === r.name);
    if (other.length === 0) continue;
    const arches = [...new Set(other.map((p) => p.arch))].sort();
    const abis = [...new Set(other.map((p) => p.abi))].sort();
    const byArch = !arches.includes(client.arch) && !arches.includes('any');
    throw new SwpkgError(
      'E_INCOMPATIBLE',
      byArch
        ? `${r.name} exists for ${arches.join(', ')} only; this machine is ${client.arch}`
        : `${r.name} exists for ABI ${abis.join(', ')} only; this machine runs ${client.abi}`,
      {
        hint: 'install the package built for this machine, or add a repository that publishes one',
        details: {
          package: r.name,
          arches,
          abis,
          clientArch: client.arch,
          clientAbi: client.abi,
          repos: [...new Set(other.map((p) => p.repo))].sort(),
        },
      },
    );
  }
}
