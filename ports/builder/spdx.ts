import type { PackageManifest } from '../../catalog/index.js';
import type { LoadedRecipe } from './ports-catalog.js';

/**
 * An SPDX 2.3-style summary of one package: what it is, its license, the
 * source archives it was built from (with their pins) and the package file's
 * own hash. Deterministic: the creation time is the recipe's
 * SOURCE_DATE_EPOCH, never the wall clock, so two builds write the same bytes.
 */
export function spdxDocument(l: LoadedRecipe, manifest: PackageManifest, packageSha256: string, file: string): Record<string, unknown> {
  const r = l.recipe;
  const created = new Date(r.sourceDateEpoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const pkgId = `SPDXRef-Package-${r.name.replace(/[^A-Za-z0-9.-]/g, '-')}`;
  const sources = r.sources.map((s, i) => ({
    SPDXID: `SPDXRef-Source-${i}`,
    name: s.debian?.file ?? s.url.split('/').pop() ?? `${r.name}-source-${i}`,
    downloadLocation: s.url,
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: s.sha256 }],
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: r.license,
    copyrightText: 'NOASSERTION',
    ...(s.note ? { comment: s.note } : {}),
  }));
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${r.name}-${r.version}`,
    documentNamespace: `https://swpkg.invalid/spdx/${r.name}-${r.version}-${packageSha256}`,
    creationInfo: { created, creators: [`Tool: swport (${manifest.build?.toolchain ?? 'unknown toolchain'})`] },
    packages: [
      {
        SPDXID: pkgId,
        name: r.name,
        versionInfo: r.version,
        packageFileName: file,
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        checksums: [{ algorithm: 'SHA256', checksumValue: packageSha256 }],
        licenseConcluded: r.license,
        licenseDeclared: r.license,
        copyrightText: 'NOASSERTION',
        summary: r.summary,
        ...(r.homepage ? { homepage: r.homepage } : {}),
        comment: `upstream version ${r.upstreamVersion}; ${manifest.files.length} entries, ${manifest.installedSize} bytes installed; recipe sha256 ${l.recipeSha256}`,
      },
      ...sources,
    ],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: pkgId },
      ...sources.map((s) => ({ spdxElementId: pkgId, relationshipType: 'GENERATED_FROM', relatedSpdxElement: s.SPDXID })),
    ],
  };
}
