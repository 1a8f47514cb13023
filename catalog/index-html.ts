// Interim renderer written by the lead so publish works; the resolver/html helper replaces it.
export interface IndexHtmlPackage {
  name: string;
  version: string;
  arch: string;
  abi: string;
  size: number;
  sha256: string;
  path: string;
  depends: Record<string, string>;
  summary: string;
  license: string;
}

export interface IndexHtmlInput {
  repo: string;
  catalogVersion: number;
  generated: string;
  expires: string;
  rootFingerprint: string;
  rootVersion: number;
  packages: IndexHtmlPackage[];
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function renderIndexHtml(i: IndexHtmlInput): string {
  const rows = [...i.packages]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1))
    .map(
      (p) =>
        `<tr><td><a href="${esc(p.path)}">${esc(p.name)}</a></td><td>${esc(p.version)}</td><td>${esc(p.arch)}</td><td>${p.size}</td><td><code>${esc(p.sha256)}</code></td><td>${esc(
          Object.entries(p.depends)
            .map(([n, r]) => `${n}@${r}`)
            .join(', '),
        )}</td><td>${esc(p.summary)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(i.repo)} — swpkg repository</title></head>
<body><h1>${esc(i.repo)}</h1>
<p>Catalog version ${i.catalogVersion}, generated ${esc(i.generated)}, expires ${esc(i.expires)}. Root v${i.rootVersion} fingerprint <code>${esc(i.rootFingerprint)}</code>.</p>
<table><thead><tr><th>Name</th><th>Version</th><th>Arch</th><th>Size</th><th>SHA-256</th><th>Depends</th><th>Summary</th></tr></thead>
<tbody>
${rows}
</tbody></table></body></html>
`;
}
