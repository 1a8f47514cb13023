import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GenerationSummary } from '../../../userland/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { addMainRepo, pkgJson, spawnPkg } from './helpers.js';

/**
 * `pkg boot-check` (issue 13), what the guest's init runs before anything
 * uses /pkg/current: an incomplete current generation is left for the newest
 * complete one, with none complete the guest boots with no packages; the
 * reason is printed and recorded where `pkg generations --json` shows it, and
 * `pkg doctor` is clean afterwards.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'one', version: '1.0.0', files: { 'bin/one': 'one\n' } },
      { name: 'two', version: '1.0.0', files: { 'bin/two': 'two\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
  expect((await pkgJson(root, ['install', 'one', '--yes'])).json?.result.generation).toBe(1);
  expect((await pkgJson(root, ['install', 'two', '--yes'])).json?.result.generation).toBe(2);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function storeOf(name: string): Promise<string> {
  const info = await pkgJson(root, ['info', name]);
  return join(root, 'store', info.json?.result.installed.store as string);
}

describe('pkg boot-check', () => {
  it('a complete current is left alone', async () => {
    const r = await pkgJson(root, ['boot-check']);
    expect(r.json?.result).toEqual({ outcome: 'ok', current: 2 });
    expect(await readlink(join(root, 'current'))).toBe('generations/2');
  });

  it('falls back to the newest complete generation when a store folder current links to is gone; says why; doctor is clean', async () => {
    await rm(await storeOf('two'), { recursive: true });
    const r = await pkgJson(root, ['boot-check']);
    expect(r.json?.result).toMatchObject({ outcome: 'fallback', current: 1, fallback: { from: 2, to: 1, skipped: [] } });
    expect(r.json?.result.fallback.problems[0]).toMatch(/two@1\.0\.0/);
    expect(await readlink(join(root, 'current'))).toBe('generations/1');
    const plain = await pkgJson(root, ['generations']);
    const gens = plain.json?.result as GenerationSummary[];
    expect(gens.find((g) => g.number === 2)?.bootFallback).toMatchObject({ from: 2, to: 1 });
    const doc = await pkgJson(root, ['doctor']);
    expect(doc.json?.ok, doc.stdout).toBe(true);
    expect(doc.json?.result.abandoned).toHaveLength(1);
  });

  it('with no complete generation it removes current (boot with no packages) and says so', async () => {
    await rm(await storeOf('one'), { recursive: true });
    const r = await spawnPkg(root, ['boot-check']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/no complete generation .*one@1\.0\.0.*booting with no packages/);
    await expect(readlink(join(root, 'current'))).rejects.toMatchObject({ code: 'ENOENT' });
    const rec = JSON.parse(await readFile(join(root, 'db/boot-fallbacks.json'), 'utf8')) as unknown[];
    expect(rec).toMatchObject([{ from: 2, to: null, skipped: [1] }]);
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
    expect((await pkgJson(root, ['list'])).json?.result).toEqual([]);
  });

  it('a current link to a deleted generation falls back too', async () => {
    await rm(join(root, 'generations/2'), { recursive: true });
    const r = await pkgJson(root, ['boot-check']);
    expect(r.json?.result).toMatchObject({ outcome: 'fallback', current: 1, fallback: { from: 2, to: 1 } });
  });

  it('a current generation whose record does not read falls back; pkg generations still lists it with the reason', async () => {
    await rm(join(root, 'generations/2/generation.json'));
    const r = await pkgJson(root, ['boot-check']);
    expect(r.json?.result).toMatchObject({ outcome: 'fallback', current: 1, fallback: { from: 2, to: 1 } });
    const gens = (await pkgJson(root, ['generations'])).json?.result as GenerationSummary[];
    expect(gens.find((g) => g.number === 2)).toMatchObject({ damaged: expect.any(String) as string, bootFallback: { from: 2, to: 1 } });
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
  });

  it('undoes a switch whose health checks a power cut interrupted', async () => {
    await repo.publish([
      {
        name: 'two',
        version: '2.0.0',
        files: { 'bin/two': 'two 2\n', 'libexec/two/check': '#!/bin/sh\nexit 0\n' },
        health: [{ name: 'ok', command: 'libexec/two/check', timeout: 5, level: 'required' }],
      },
    ]);
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    const killed = await spawnPkg(root, ['upgrade', '--yes'], { PKG_TEST_CRASH_AT: 'health.check:1' });
    expect(killed.signal).toBe('SIGKILL');
    expect(await readlink(join(root, 'current'))).toBe('generations/3');
    const r = await pkgJson(root, ['boot-check']);
    expect(r.json?.result).toEqual({ outcome: 'ok', current: 2 });
    expect(r.json?.warnings?.join('\n')).toMatch(/health checks of generation 3 were interrupted/);
    const gens = (await pkgJson(root, ['generations'])).json?.result as GenerationSummary[];
    expect(gens.find((g) => g.number === 3)?.health?.state).toBe('interrupted');
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
  });

  it('a fresh root (no current) is left untouched: not even the lock is written', async () => {
    const fresh = await tempDir('pkg-root-');
    const before = await treeHash(fresh);
    expect((await pkgJson(fresh, ['boot-check'])).json?.result).toEqual({ outcome: 'fresh', current: null });
    expect(await treeHash(fresh)).toBe(before);
  });

  it('a damaged fallback record is ignored, never fatal', async () => {
    await writeFile(join(root, 'db/boot-fallbacks.json'), '{not json');
    expect((await pkgJson(root, ['boot-check'])).json?.result.outcome).toBe('ok');
    expect((await pkgJson(root, ['generations'])).json?.ok).toBe(true);
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
  });
});
