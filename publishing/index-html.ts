/**
 * `index.html` of a published repository: the page a person browsing the web
 * root sees. Self-contained (inline CSS, no external resources), complete
 * without JavaScript; a small inline script only adds a filter box, fills in
 * the page's own address in the `pkg repo add` command and flags an expired
 * catalog against the reader's clock.
 *
 * Everything from the catalog (names, summaries, licenses, paths) is attacker-
 * influenced input, so every value is escaped, links are emitted only for
 * plain relative paths, and a Content-Security-Policy admits exactly the
 * page's own inline style and script (by hash): even a missed escape could
 * not run a script. The output depends only on the input (no clock), so
 * republishing the same catalog gives the same bytes.
 */
import { createHash } from 'node:crypto';
import semver from 'semver';
import { formatBytes } from '../catalog/index.js';

export interface IndexHtmlPackage {
  name: string;
  version: string;
  arch: string;
  abi: string;
  size: number;
  sha256: string;
  /** Relative to the web root, e.g. `packages/NAME-VERSION-ARCH.SHA256.swpkg`. */
  path: string;
  depends: Record<string, string>;
  summary: string;
  license: string;
  provides?: string[];
  conflicts?: string[];
  installedSize?: number;
}

export interface IndexHtmlInput {
  repo: string;
  catalogVersion: number;
  /** ISO 8601 times, as the catalog carries them. */
  generated: string;
  expires: string;
  rootFingerprint: string;
  rootVersion: number;
  packages: IndexHtmlPackage[];
  /** The repository's public address, for the `pkg repo add` command; without it the page shows its own folder's address. */
  repoUrl?: string;
  /** When given, the page says whether the catalog had expired at this time; without it only the reader's clock can tell. */
  now?: Date;
  /** Published releases (issue 15), newest first; the section is left out when there are none. */
  releases?: IndexHtmlRelease[];
}

export interface IndexHtmlRelease {
  id: string;
  version: number;
  digest: string;
  created: string;
  expires: string;
  path: string;
  packages: number;
}

function releasesSection(releases: IndexHtmlRelease[] | undefined): string {
  if (!releases || releases.length === 0) return '';
  const rows = releases.map((r) => {
    const link = SAFE_RELATIVE_PATH.test(r.path) ? `<a href="${escapeHtml(r.path)}">${escapeHtml(r.id)}</a>` : escapeHtml(r.id);
    return `<tr><td class="name">${link}</td><td class="mono">${escapeHtml(String(r.version))}</td><td class="num">${escapeHtml(String(r.packages))}</td><td><time datetime="${escapeHtml(r.created)}">${escapeHtml(formatTime(r.created))}</time></td><td><time datetime="${escapeHtml(r.expires)}">${escapeHtml(formatTime(r.expires))}</time></td><td><code class="sha">${escapeHtml(r.digest)}</code></td></tr>`;
  });
  return `<h2 id="releases">Releases</h2>
<p class="note">Pinned, signed package sets: <code>pkg install --release URL</code> installs exactly one. Listed in <a href="releases/index.json">releases/index.json</a>.</p>
<div class="table-wrap">
<table id="release-table">
<thead><tr><th>Release</th><th>Version</th><th>Packages</th><th>Created</th><th>Expires</th><th>Manifest SHA-256</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</div>
`;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** `2026-11-24 05:00:00 UTC`, or the text itself when it is not a time. */
function formatTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A link target we are willing to emit: relative, no scheme, no climbing, no query. */
const SAFE_RELATIVE_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._+\-/]+$/;

function byNameThenNewest(a: IndexHtmlPackage, b: IndexHtmlPackage): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  const va = semver.valid(a.version);
  const vb = semver.valid(b.version);
  const byVersion = va && vb ? semver.rcompare(va, vb) : a.version < b.version ? 1 : a.version > b.version ? -1 : 0;
  if (byVersion !== 0) return byVersion;
  return a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0;
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6470;--bg:#fff;--alt:#f5f7fa;--line:#d8dee4;--accent:#0a5bd3;--warn-bg:#fff4e5;--warn:#8a4b00;--bad-bg:#ffe9e9;--bad:#a40e26}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ed;--muted:#9aa4af;--bg:#0f1216;--alt:#171b21;--line:#2b323b;--accent:#6aa6ff;--warn-bg:#33260f;--warn:#f3c27a;--bad-bg:#3a1519;--bad:#ff9aa5}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1280px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px}
a{color:var(--accent)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:13px}
.lede{color:var(--muted);margin:0 0 18px}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:6px 18px;margin:0;padding:14px 16px;background:var(--alt);border:1px solid var(--line);border-radius:8px}
.facts dt{color:var(--muted)}.facts dd{margin:0;overflow-wrap:anywhere}
.banner{padding:10px 14px;border-radius:8px;margin:0 0 16px;font-weight:600}
.banner.bad{background:var(--bad-bg);color:var(--bad);border:1px solid var(--bad)}
.note{color:var(--muted);font-size:14px}
pre{background:var(--alt);border:1px solid var(--line);border-radius:8px;padding:12px 14px;overflow-x:auto;margin:8px 0}
.files{padding-left:20px;margin:6px 0}
.tools{display:flex;gap:12px;align-items:center;margin:0 0 10px}
.tools input{font:inherit;padding:6px 10px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);min-width:260px}
.table-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:8px 10px;border-bottom:1px solid var(--line)}
thead th{background:var(--alt);position:sticky;top:0;font-weight:600;white-space:nowrap}
tbody tr:nth-child(even){background:var(--alt)}
tbody tr:last-child td{border-bottom:0}
td.name{font-weight:600;white-space:nowrap}
td.num{text-align:right;white-space:nowrap}
td.nowrap{white-space:nowrap}
code.sha{display:inline-block;max-width:17em;word-break:break-all;font-size:12px;line-height:1.35}
.sub{display:block;color:var(--muted);font-size:12px;font-weight:400}
ul.deps{list-style:none;margin:0;padding:0}ul.deps li{white-space:nowrap}
.range{color:var(--muted)}
footer{margin-top:28px;color:var(--muted);font-size:13px}
`;

// Plain ES5-level script, no innerHTML: it only toggles `hidden` and sets textContent.
const SCRIPT = `
(function () {
  var d = document;
  var input = d.getElementById('filter');
  var arch = d.getElementById('arch');
  var rows = Array.prototype.slice.call(d.querySelectorAll('#package-table tbody tr'));
  var shown = d.getElementById('shown');
  d.getElementById('tools').hidden = false;
  function apply() {
    var q = input.value.trim().toLowerCase();
    var a = arch.value;
    var n = 0;
    rows.forEach(function (r) {
      var ra = r.getAttribute('data-arch');
      // An arch-independent package installs everywhere, so it shows under every arch.
      var hit = (!q || (r.getAttribute('data-search') || '').indexOf(q) >= 0) && (!a || ra === a || ra === 'any');
      r.hidden = !hit;
      if (hit) n++;
    });
    shown.textContent = n === rows.length ? '' : n + ' of ' + rows.length + ' shown';
  }
  input.addEventListener('input', apply);
  arch.addEventListener('change', apply);
  if (location.protocol === 'http:' || location.protocol === 'https:') {
    var base = location.href.replace(/[?#].*$/, '').replace(/[^/]*$/, '');
    Array.prototype.forEach.call(d.querySelectorAll('[data-fill="url"]'), function (el) { el.textContent = base; });
  }
  var exp = d.getElementById('expires');
  var t = Date.parse(exp.getAttribute('datetime'));
  if (!isNaN(t) && t < Date.now()) d.getElementById('expired-live').hidden = false;
})();
`;

/**
 * The `pkg repo add` line is copied into shells: a value that is not one plain
 * word (an attacker-chosen repository name such as `x;rm -rf ~`) is replaced by
 * its placeholder rather than shown.
 */
const SHELL_WORD = /^[A-Za-z0-9._+:/@%=,~-]+$/;
function shellWord(value: string | undefined, placeholder: string): string {
  return value !== undefined && SHELL_WORD.test(value) ? escapeHtml(value) : placeholder;
}

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

function dependsCell(p: IndexHtmlPackage, names: ReadonlySet<string>): string {
  const items: string[] = [];
  for (const name of Object.keys(p.depends ?? {}).sort()) {
    const range = p.depends[name] ?? '*';
    const label = names.has(name) ? `<a href="#p-${escapeHtml(name)}">${escapeHtml(name)}</a>` : escapeHtml(name);
    items.push(`<li>${label}${range === '*' || range === '' ? '' : ` <span class="range">${escapeHtml(range)}</span>`}</li>`);
  }
  const extra: string[] = [];
  if (p.provides && p.provides.length > 0) extra.push(`<span class="sub">provides ${escapeHtml(p.provides.join(', '))}</span>`);
  if (p.conflicts && p.conflicts.length > 0) extra.push(`<span class="sub">conflicts with ${escapeHtml(p.conflicts.join(', '))}</span>`);
  const list = items.length > 0 ? `<ul class="deps">${items.join('')}</ul>` : '<span class="range">none</span>';
  return list + extra.join('');
}

function packageRow(p: IndexHtmlPackage, first: boolean, names: ReadonlySet<string>): string {
  const linkable = SAFE_RELATIVE_PATH.test(p.path);
  const name = linkable ? `<a href="${escapeHtml(p.path)}" download>${escapeHtml(p.name)}</a>` : escapeHtml(p.name);
  const sidecar = linkable ? ` <a class="sub" href="${escapeHtml(p.path)}.sha256">.sha256</a>` : '';
  const search = [p.name, p.version, p.summary, ...(p.provides ?? [])].join(' ').toLowerCase();
  const installed = p.installedSize === undefined ? '' : `<span class="sub">${escapeHtml(formatBytes(p.installedSize))} installed</span>`;
  // The newest version of each name carries the name's anchor, the target of dependency links.
  const id = first ? ` id="p-${escapeHtml(p.name)}"` : '';
  return [
    `<tr${id} data-search="${escapeHtml(search)}" data-arch="${escapeHtml(p.arch)}">`,
    `<td class="name">${name}</td>`,
    `<td class="nowrap mono">${escapeHtml(p.version)}</td>`,
    `<td class="nowrap">${escapeHtml(p.arch)}<span class="sub">${escapeHtml(p.abi)}</span></td>`,
    `<td class="num" title="${escapeHtml(String(p.size))} bytes">${escapeHtml(formatBytes(p.size))}${installed}</td>`,
    `<td><code class="sha">${escapeHtml(p.sha256)}</code>${sidecar}</td>`,
    `<td>${dependsCell(p, names)}</td>`,
    `<td>${escapeHtml(p.summary)}<span class="sub">${escapeHtml(p.license)}</span></td>`,
    `</tr>`,
  ].join('');
}

/** Renders the repository page. Pure: the same input gives the same bytes. */
export function renderIndexHtml(input: IndexHtmlInput): string {
  const packages = [...input.packages].sort(byNameThenNewest);
  const names = new Set(packages.map((p) => p.name));
  const seen = new Set<string>();
  const rows = packages.map((p) => {
    const first = !seen.has(p.name);
    seen.add(p.name);
    return packageRow(p, first, names);
  });
  const totalBytes = packages.reduce((n, p) => n + (Number.isFinite(p.size) ? p.size : 0), 0);
  // One choice per machine arch the repository serves; `any` packages show under each of them.
  const archOptions = [...new Set(packages.map((p) => p.arch).filter((a) => a !== 'any'))]
    .sort()
    .map((a) => `<option value="${escapeHtml(a)}">${escapeHtml(a)}</option>`)
    .join('');
  const repo = escapeHtml(input.repo);
  const fingerprint = escapeHtml(input.rootFingerprint);
  const expiresMs = Date.parse(input.expires);
  const expiredAtRender = input.now !== undefined && !Number.isNaN(expiresMs) && expiresMs <= input.now.getTime();
  const url = input.repoUrl === undefined ? '<span data-fill="url">URL</span>' : shellWord(input.repoUrl, 'URL');
  const command = [
    `pkg repo add ${shellWord(input.repo, 'NAME')} ${url} --fingerprint ${shellWord(input.rootFingerprint, 'HEX')}`,
    'pkg update',
    `pkg install ${shellWord(packages[0]?.name, 'PACKAGE')}`,
  ].join('\n');
  const csp = [
    "default-src 'none'",
    `style-src ${cspHash(STYLE)}`,
    `script-src ${cspHash(SCRIPT)}`,
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  const expiredText = `This catalog expired on ${escapeHtml(formatTime(input.expires))}. Clients refuse it (freeze-attack protection) until the publisher signs a new one.`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="generator" content="swpkg">
<title>${repo} — swpkg package repository</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${repo}</h1>
<p class="lede">A signed swpkg package repository: ${packages.length} package${packages.length === 1 ? '' : 's'}, ${escapeHtml(formatBytes(totalBytes))} in all.</p>
${expiredAtRender ? `<p class="banner bad" id="expired-static">${expiredText}</p>\n` : ''}<p class="banner bad" id="expired-live" hidden>${expiredText}</p>
<dl class="facts">
<dt>Catalog version</dt><dd class="mono" id="catalog-version">${escapeHtml(String(input.catalogVersion))}</dd>
<dt>Generated</dt><dd><time datetime="${escapeHtml(input.generated)}">${escapeHtml(formatTime(input.generated))}</time></dd>
<dt>Expires</dt><dd><time id="expires" datetime="${escapeHtml(input.expires)}">${escapeHtml(formatTime(input.expires))}</time>${expiredAtRender ? ' — <strong>expired</strong>' : ''} <span class="note">(clients refuse the catalog after this time until it is re-signed)</span></dd>
<dt>Root key fingerprint</dt><dd><code id="fingerprint">${fingerprint}</code> <span class="note">(root version ${escapeHtml(String(input.rootVersion))})</span></dd>
</dl>

<h2>Use this repository</h2>
<p>On a system with <code>pkg</code>, add the repository pinned to its root key, then install from it:</p>
<pre><code id="add-command">${command}</code></pre>
<p class="note">${input.repoUrl === undefined ? '<code>URL</code> is the address of the folder holding this page. ' : ''}This page is not signed: compare the fingerprint with one you got from the publisher another way. <code>pkg</code> verifies every root, catalog and package against it before installing anything.</p>
<p class="note">Repository files: <a href="hosted-repo.json">hosted-repo.json</a> · <a href="catalog.json">catalog.json</a> (<a href="catalog.json.sha256">.sha256</a>) · <a href="repo-root.pub">repo-root.pub</a></p>

<h2 id="packages">Packages</h2>
<div class="tools" id="tools" hidden><label for="filter">Filter</label><input id="filter" type="search" placeholder="name or summary" autocomplete="off"><label for="arch">Arch</label><select id="arch"><option value="">all</option>${archOptions}</select><span class="note" id="shown"></span></div>
<div class="table-wrap">
<table id="package-table">
<thead><tr><th>Name</th><th>Version</th><th>Arch</th><th>Size</th><th>SHA-256</th><th>Depends</th><th>Summary</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</div>
${releasesSection(input.releases)}<footer>Catalog version ${escapeHtml(String(input.catalogVersion))} of ${repo}, written by swpkg repo publish.</footer>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
