import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readElf, runCommand } from '../../../ports/index.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * The real seed ports through the built CLI (scripts/test.sh builds dist/
 * first): three small ports built from the pinned sources into the
 * repository's build cache, smoke-tested, checked for reproducibility and
 * published. The whole seed set is built by scripts/build-ports.sh --all.
 */
const ROOT = resolve(import.meta.dirname, '../../..');
const SWPORT = join(ROOT, 'bin/swport');
const SWPKG = join(ROOT, 'bin/swpkg');

interface Envelope<T> {
  ok: boolean;
  result: T;
  error?: { code: string; message: string; details: Record<string, unknown> };
}

async function cli<T>(bin: string, args: string[], timeoutMs = 600_000): Promise<{ code: number | null; json: Envelope<T> }> {
  const r = await runCommand(bin, [...args, '--json'], { timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  const start = r.output.indexOf('{\n');
  if (start < 0) throw new Error(`no JSON from ${args.join(' ')}: ${r.output.slice(-2000)}`);
  return { code: r.code, json: JSON.parse(r.output.slice(start)) as Envelope<T> };
}

describe('swport on the seed ports', () => {
  it('validates the catalog: thirteen ports in dependency order', async () => {
    const { code, json } = await cli<{ ports: unknown[]; order: string[] }>(SWPORT, ['catalog', 'validate']);
    expect(code).toBe(0);
    expect(json.result.ports).toHaveLength(13);
    expect(json.result.order.indexOf('openssl')).toBeLessThan(json.result.order.indexOf('curl'));
  }, 60_000);

  it('shows the manifest a build will carry: semver mapping and arch any for data ports', async () => {
    const { json } = await cli<{ version: string; arch: string; build: { upstreamVersion: string } }>(SWPORT, [
      'recipe',
      'manifest',
      'tzdata',
    ]);
    expect(json.result).toMatchObject({ version: '2026.2.0', arch: 'any', build: { upstreamVersion: '2026b' } });
    const curl = await cli<{ depends: Record<string, string>; abi: string }>(SWPORT, ['recipe', 'manifest', 'curl']);
    expect(curl.json.result.depends).toEqual({ 'ca-certificates': '>=20230311.0.0' });
    expect(curl.json.result.abi).toBe('linux-musl-static');
  }, 60_000);

  it('refuses an unknown port and an unsupported target with usage exit codes', async () => {
    const unknown = await cli(SWPORT, ['recipe', 'build', 'emacs']);
    expect(unknown.code).toBe(2);
    expect(unknown.json.error?.code).toBe('E_UNKNOWN_PORT');
    const target = await cli(SWPORT, ['recipe', 'validate', 'lua', '--target', 'riscv64-linux-musl']);
    expect(target.code).toBe(2);
    expect(target.json.error?.code).toBe('E_UNSUPPORTED_TARGET');
    const arm = await cli(SWPORT, ['recipe', 'validate', 'lua', '--target', 'aarch64-linux-musl']);
    expect(arm.code).toBe(0);
  }, 60_000);

  it('fetches a pinned Debian repack and says so', async () => {
    const { code, json } = await cli<{ sources: { sha256: string; note?: string; from: string }[] }>(SWPORT, ['recipe', 'fetch', 'zlib']);
    expect(code).toBe(0);
    expect(json.result.sources[0]!.sha256).toBe('71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1');
    expect(json.result.sources[0]!.note).toMatch(/dfsg/);
  }, 120_000);

  for (const port of ['zlib', 'bzip2', 'lua']) {
    it(`packages ${port} and its smoke test passes on the host`, async () => {
      const out = await tempDir();
      const pkg = await cli<{ path: string; sha256: string; files: number }>(SWPORT, ['recipe', 'package', port, '--out', out]);
      expect(pkg.code).toBe(0);
      expect(existsSync(pkg.json.result.path)).toBe(true);
      expect(pkg.json.result.files).toBeGreaterThan(3);
      const smoke = await cli<{ output: string }>(SWPORT, ['recipe', 'smoke', port]);
      expect(smoke.code).toBe(0);
      expect(smoke.json.result.output).toContain(`${port} ok`);
    }, 600_000);
  }

  for (const port of ['zlib', 'bzip2', 'lua']) {
    it(`cross-builds ${port} for aarch64 and its smoke test passes under qemu-user`, async () => {
      const out = await tempDir();
      const pkg = await cli<{ path: string; target: string }>(SWPORT, [
        'recipe',
        'package',
        port,
        '--target',
        'aarch64-linux-musl',
        '--out',
        out,
      ]);
      expect(pkg.code).toBe(0);
      expect(pkg.json.result.path).toMatch(/-aarch64\.swpkg$/);
      const smoke = await cli<{ output: string; emulator?: string }>(SWPORT, ['recipe', 'smoke', port, '--target', 'aarch64-linux-musl']);
      expect(smoke.code).toBe(0);
      expect(smoke.json.result.output).toContain(`${port} ok`);
      expect(smoke.json.result.emulator).toMatch(/qemu-aarch64-static$/);
    }, 600_000);
  }

  it('the aarch64 lua is a static aarch64 program that prints Lua 5.4 under qemu-user', async () => {
    const out = await tempDir();
    const pkg = await cli<{ path: string }>(SWPORT, ['recipe', 'package', 'lua', '--target', 'aarch64-linux-musl', '--out', out]);
    expect(pkg.code).toBe(0);
    const x = join(out, 'x');
    const tar = await runCommand('tar', ['-xf', pkg.json.result.path, '-C', out, '--one-top-level=x'], { timeoutMs: 60_000 });
    expect(tar.code).toBe(0);
    expect(await readElf(join(x, 'bin/lua'))).toMatchObject({ machine: 183, type: 'executable', interpreter: false, needed: 0 });
    const run = await runCommand('qemu-aarch64-static', [join(x, 'bin/lua'), '-v'], { timeoutMs: 60_000 });
    expect(run.output).toMatch(/^Lua 5\.4/);
  }, 600_000);

  it('builds bzip2 twice from clean trees into identical bytes', async () => {
    const { code, json } = await cli<{ identical: boolean; sha256: string[] }>(SWPORT, ['recipe', 'verify-reproducible', 'bzip2']);
    expect(code).toBe(0);
    expect(json.result.identical).toBe(true);
    expect(json.result.sha256[0]).toBe(json.result.sha256[1]);
  }, 600_000);

  it('publishes the ports into a signed root that swpkg repo verify-hosted passes', async () => {
    const dir = await tempDir();
    const key = await cli<{ privatePath: string }>(SWPKG, ['key', 'generate', '--out', join(dir, 'keys'), '--name', 'seed']);
    expect(key.code).toBe(0);
    const root = join(dir, 'root');
    const fixture = await cli<{ publish: { packages: { name: string }[] } }>(SWPORT, [
      'recipe',
      'repo-fixture',
      'zlib',
      'bzip2',
      'lua',
      '--key',
      key.json.result.privatePath,
      '--out',
      root,
    ]);
    expect(fixture.code).toBe(0);
    expect(fixture.json.result.publish.packages.map((p) => p.name).sort()).toEqual(['bzip2', 'lua', 'zlib']);
    const verify = await cli<{ ok: boolean }>(SWPKG, ['repo', 'verify-hosted', root]);
    expect(verify.code).toBe(0);
    expect(verify.json.result.ok).toBe(true);
  }, 600_000);
});
