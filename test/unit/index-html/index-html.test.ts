import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { escapeHtml, renderIndexHtml, type IndexHtmlInput, type IndexHtmlPackage } from '../../../publishing/index.js';
import { formatBytes } from '../../../catalog/index.js';

function pkg(p: Partial<IndexHtmlPackage> & { name: string; version: string }): IndexHtmlPackage {
  const sha256 = createHash('sha256').update(`${p.name}@${p.version}`).digest('hex');
  return {
    arch: 'x86_64',
    abi: 'linux-musl-static',
    size: 1000,
    sha256,
    path: `packages/${p.name}-${p.version}-x86_64.swpkg`,
    depends: {},
    summary: `${p.name} package`,
    license: 'MIT',
    ...p,
  };
}

const fingerprint = createHash('sha256').update('root').digest('hex');

function input(packages: IndexHtmlPackage[], extra: Partial<IndexHtmlInput> = {}): IndexHtmlInput {
  return {
    repo: 'main',
    catalogVersion: 1764000000,
    generated: '2026-11-24T05:00:00.000Z',
    expires: '2026-12-24T05:00:00.000Z',
    rootFingerprint: fingerprint,
    rootVersion: 2,
    packages,
    ...extra,
  };
}

const set = [
  pkg({ name: 'zlib', version: '1.3.1', size: 98_304 }),
  pkg({ name: 'curl', version: '8.5.0', size: 1_572_864, depends: { openssl: '^3.0.0', zlib: '*', 'ca-certificates': '*' } }),
  pkg({ name: 'curl', version: '8.10.1', size: 1_600_000 }),
  pkg({ name: 'openssl', version: '3.0.22', size: 5_000_000, provides: ['libssl@3.0.22'], conflicts: ['libressl'] }),
];

/** The text of the rows' first cells, in page order. */
function rowOrder(html: string): string[] {
  return [...html.matchAll(/<td class="name">(?:<a [^>]*>)?([^<]*)/g)].map((m) => m[1]!);
}

describe('renderIndexHtml', () => {
  it('is deterministic and does not depend on input order', () => {
    const a = renderIndexHtml(input(set));
    expect(renderIndexHtml(input(set))).toBe(a);
    expect(renderIndexHtml(input([...set].reverse()))).toBe(a);
  });

  it('sorts by name, newest version first (semver, not text)', () => {
    const html = renderIndexHtml(input(set));
    expect(rowOrder(html)).toEqual(['curl', 'curl', 'openssl', 'zlib']);
    expect(html.indexOf('>8.10.1<')).toBeLessThan(html.indexOf('>8.5.0<'));
  });

  it('shows the repository facts and how to add it', () => {
    const html = renderIndexHtml(input(set, { repoUrl: 'http://10.0.2.2:8080/main/' }));
    expect(html).toContain('<title>main — swpkg package repository</title>');
    expect(html).toContain('>1764000000<');
    expect(html).toContain('2026-11-24 05:00:00 UTC');
    expect(html).toContain('2026-12-24 05:00:00 UTC');
    expect(html).toContain(`<code id="fingerprint">${fingerprint}</code>`);
    expect(html).toContain(`pkg repo add main http://10.0.2.2:8080/main/ --fingerprint ${fingerprint}`);
    expect(html).toContain('root version 2');
  });

  it('links each package to its relative path and its sidecar, with human sizes and full hashes', () => {
    const html = renderIndexHtml(input(set));
    for (const p of set) {
      expect(html).toContain(`<a href="${p.path}" download>${p.name}</a>`);
      expect(html).toContain(`<a class="sub" href="${p.path}.sha256">`);
      expect(html).toContain(`<code class="sha">${p.sha256}</code>`);
    }
    expect(html).toContain('>1.5 MiB<');
    expect(html).toContain('title="1572864 bytes"');
    expect(html).toContain('<a href="#p-openssl">openssl</a> <span class="range">^3.0.0</span>');
    // A dependency on a name not in this repository is plain text.
    expect(html).toContain('<li>ca-certificates</li>');
    expect(html).toContain('provides libssl@3.0.22');
    expect(html).toContain('conflicts with libressl');
  });

  it('escapes attacker-controlled text everywhere', () => {
    const evil = pkg({
      name: 'evil',
      version: '1.0.0',
      summary: '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">',
      license: '"><script>alert(1)</script>',
      depends: { '<b>x</b>': '"><i>' },
    });
    const html = renderIndexHtml(input([evil], { repo: 'x"><script>alert(2)</script>' }));
    expect(html).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;');
    expect(html).not.toContain('<script>window');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>x</b>');
    // Exactly one script element: the page's own.
    expect(html.match(/<script/g)).toHaveLength(1);
    // A repository name that is not one shell word never reaches the copy-paste command.
    expect(html).toMatch(/pkg repo add NAME /);
  });

  it('does not link a path that is absolute, climbs, or carries a scheme', () => {
    for (const path of [
      'javascript:alert(1)',
      '/etc/passwd',
      'packages/../../x.swpkg',
      'https://evil.example/x.swpkg',
      'packages/a b.swpkg',
    ]) {
      const html = renderIndexHtml(input([pkg({ name: 'odd', version: '1.0.0', path })]));
      expect(html, path).toContain('<td class="name">odd</td>');
      expect(html, path).not.toContain(`href="${escapeHtml(path)}`);
    }
  });

  it('admits only its own inline style and script in the Content-Security-Policy', () => {
    const html = renderIndexHtml(input(set));
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const b64 = (t: string): string => createHash('sha256').update(t, 'utf8').digest('base64');
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1]!;
    expect(csp).toContain(`style-src 'sha256-${b64(style)}'`);
    expect(csp).toContain(`script-src 'sha256-${b64(script)}'`);
    expect(csp).toContain("default-src 'none'");
  });

  it('loads nothing from elsewhere', () => {
    const html = renderIndexHtml(input(set));
    expect(html).not.toMatch(/<link|<img|<iframe|\ssrc=/);
    expect(html).not.toMatch(/(href|src)="(https?:)?\/\//);
  });

  it('says plainly when the catalog had expired at the given time, and not before', () => {
    const expired = renderIndexHtml(input(set, { now: new Date('2027-01-01T00:00:00Z') }));
    expect(expired).toContain('id="expired-static"');
    expect(expired).toContain('This catalog expired on 2026-12-24 05:00:00 UTC');
    expect(expired).toContain('<strong>expired</strong>');
    const fresh = renderIndexHtml(input(set, { now: new Date('2026-12-01T00:00:00Z') }));
    expect(fresh).not.toContain('id="expired-static"');
    expect(fresh).not.toContain('<strong>expired</strong>');
    // Without a time, the banner is present for the reader's clock but hidden.
    expect(renderIndexHtml(input(set))).toContain('id="expired-live" hidden');
  });

  it('renders an empty repository', () => {
    const html = renderIndexHtml(input([]));
    expect(html).toContain('0 packages, 0 B in all');
    expect(html).toContain('pkg install PACKAGE');
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [123_456, '121 KiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
    [3 * 1024 ** 3, '3.0 GiB'],
    [10_199, '10 KiB'],
    [-3 * 1024 * 1024, '-3.0 MiB'],
  ])('%d -> %s', (n, s) => {
    expect(formatBytes(n)).toBe(s);
  });
});
