/**
 * The repository page in a real browser (Debian's Chromium driven by
 * playwright-core): served from 127.0.0.1 by a minimal node:http server, it
 * must show the repository's facts and every package, keep an injected
 * `<script>` summary as inert text, and run its own small script under its
 * Content-Security-Policy.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderIndexHtml, type IndexHtmlPackage } from '../../../publishing/index.js';
import { tempDir } from '../../helpers/tmp.js';

const CHROMIUM = '/usr/bin/chromium';
const EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

function pkg(name: string, version: string, size: number, extra: Partial<IndexHtmlPackage> = {}): IndexHtmlPackage {
  return {
    name,
    version,
    arch: 'x86_64',
    abi: 'linux-musl-static',
    size,
    sha256: createHash('sha256').update(`${name}@${version}`).digest('hex'),
    path: `packages/${name}-${version}-x86_64.swpkg`,
    depends: {},
    summary: `${name} for the guest`,
    license: 'MIT',
    ...extra,
  };
}

const packages = [
  pkg('curl', '8.5.0', 1_572_864, {
    depends: { openssl: '^3.0.0', zlib: '*' },
    summary: 'command line tool for transferring data with URLs',
  }),
  pkg('openssl', '3.0.22', 5_242_880, { summary: 'TLS toolkit' }),
  pkg('zlib', '1.3.1', 98_304, { summary: 'compression library' }),
  pkg('evil', '0.0.1', 2048, { summary: EVIL }),
  pkg('busybox', '1.35.0', 1_048_576, { arch: 'aarch64', path: 'packages/busybox-1.35.0-aarch64.swpkg', summary: 'tiny utilities' }),
  pkg('tzdata', '2024a', 409_600, { arch: 'any', abi: 'none', path: 'packages/tzdata-2024a-any.swpkg', summary: 'time zones' }),
];
const fingerprint = createHash('sha256').update('test root').digest('hex');
const html = renderIndexHtml({
  repo: 'guest-main',
  catalogVersion: 1764000000,
  generated: '2026-11-24T05:00:00.000Z',
  // Far in the future: the live expiry banner must stay hidden.
  expires: '2099-01-01T00:00:00.000Z',
  rootFingerprint: fingerprint,
  rootVersion: 1,
  packages,
});

let server: Server;
let base: string;
let browser: Browser;
let page: Page;
const requested: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}; install it with: apt-get install -y chromium`);
  }
  server = createServer((req, res) => {
    requested.push(req.url ?? '');
    if (req.url === '/repo/' || req.url === '/repo/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/repo/`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto(base, { waitUntil: 'load', timeout: 15_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
});

/** The table row whose name cell is exactly `name`. */
function rowOf(name: string) {
  return page
    .locator('#package-table tbody tr')
    .filter({ has: page.locator('td.name', { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
}

// A loaded 2-core machine makes browser round trips slow; every wait stays bounded.
describe('index.html in Chromium', { timeout: 30_000 }, () => {
  it('has the repository title and facts', async () => {
    expect(await page.title()).toBe('guest-main — swpkg package repository');
    expect(await page.locator('h1').innerText()).toBe('guest-main');
    expect(await page.locator('#fingerprint').innerText()).toBe(fingerprint);
    expect(await page.locator('#catalog-version').innerText()).toBe('1764000000');
    expect(await page.locator('#expired-live').isVisible()).toBe(false);
  });

  it('shows every package row with name, version, size and full SHA-256', async () => {
    const rows = page.locator('#package-table tbody tr');
    expect(await rows.count()).toBe(packages.length);
    for (const p of packages) {
      const row = rowOf(p.name);
      expect(await row.count(), p.name).toBe(1);
      expect(await row.isVisible()).toBe(true);
      const text = await row.innerText();
      expect(text).toContain(p.version);
      expect(text).toContain(p.sha256);
    }
    const curl = rowOf('curl');
    expect(await curl.locator('td.num').innerText()).toBe('1.5 MiB');
  });

  it('links a package to its relative path, resolved under the repository folder', async () => {
    const link = page.locator('td.name a', { hasText: 'zlib' });
    expect(await link.getAttribute('href')).toBe('packages/zlib-1.3.1-x86_64.swpkg');
    // The project compiles without DOM types; these callbacks run in the page.
    expect(await link.evaluate((a) => (a as unknown as { href: string }).href)).toBe(`${base}packages/zlib-1.3.1-x86_64.swpkg`);
  });

  it('shows an injected <script> summary as text and never runs it', async () => {
    const row = rowOf('evil');
    expect(await row.innerText()).toContain(EVIL);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('#package-table img').count()).toBe(0);
    // The page asked for nothing but itself (no image, no script source).
    expect(requested.filter((u) => !u.startsWith('/repo/') && u !== '/favicon.ico')).toEqual([]);
  });

  it('runs its own script under its CSP: filter box and the page address in the add command', async () => {
    expect(consoleErrors).toEqual([]);
    expect(await page.locator('#tools').isVisible()).toBe(true);
    expect(await page.locator('#add-command').innerText()).toContain(`pkg repo add guest-main ${base} --fingerprint ${fingerprint}`);
    await page.locator('#filter').fill('compression');
    const visible = page.locator('#package-table tbody tr:visible');
    await expect.poll(() => visible.count(), { timeout: 10_000 }).toBe(1);
    expect(await visible.locator('td.name').innerText()).toBe('zlib');
    expect(await page.locator('#shown').innerText()).toBe('1 of 6 shown');
    await page.locator('#filter').fill('');
    await expect.poll(() => visible.count(), { timeout: 10_000 }).toBe(6);
  });

  it('filters by arch: a machine arch shows its own packages and the arch-independent ones', async () => {
    const visible = page.locator('#package-table tbody tr:visible');
    expect(await page.locator('#arch option').allInnerTexts()).toEqual(['all', 'aarch64', 'x86_64']);
    await page.locator('#arch').selectOption('aarch64');
    await expect.poll(() => visible.count(), { timeout: 10_000 }).toBe(2);
    expect((await visible.locator('td.name').allInnerTexts()).sort()).toEqual(['busybox', 'tzdata']);
    await page.locator('#arch').selectOption('x86_64');
    await expect.poll(() => visible.count(), { timeout: 10_000 }).toBe(5);
    expect(await page.locator('#shown').innerText()).toBe('5 of 6 shown');
    await page.locator('#arch').selectOption('');
    await expect.poll(() => visible.count(), { timeout: 10_000 }).toBe(6);
  });

  it('renders a screenshot', async () => {
    const dir = await tempDir('swpkg-index-html-');
    const file = join(dir, 'index.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(existsSync(file)).toBe(true);
    if (process.env['SWPKG_KEEP_SCREENSHOT']) await page.screenshot({ path: process.env['SWPKG_KEEP_SCREENSHOT'], fullPage: true });
  });
});
