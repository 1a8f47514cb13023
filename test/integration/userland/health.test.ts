import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HealthCheck } from '../../../catalog/index.js';
import { HEALTH_OUTPUT_TAIL_BYTES, type GenerationSummary } from '../../../userland/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { addMainRepo, pkgJson } from './helpers.js';

/**
 * Health checks after a change (issue 13): a failed required check switches
 * `current` back, keeps the failed generation (marked in `pkg generations`
 * with the check's name, exit status and output tail) and exits 8; checks
 * that hang, flood, are missing or not executable fail in bounded time
 * and memory.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

function app(version: string, check: string, health: Partial<HealthCheck> = {}): Parameters<FakeRepo['publish']>[0] {
  return [
    {
      name: 'app',
      version,
      files: { 'bin/app': `#!/bin/sh\necho app ${version}\n`, 'libexec/app/check': check },
      health: [{ name: 'responds', command: 'libexec/app/check', timeout: 5, level: 'required', ...health }],
    },
  ];
}

beforeEach(async () => {
  repo = await buildFakeRepo({ packages: [{ name: 'app', version: '1.0.0', files: { 'bin/app': '#!/bin/sh\necho app 1.0.0\n' } }] });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
  expect((await pkgJson(root, ['install', 'app', '--yes'])).json?.result.generation).toBe(1);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function upgrade(extra: string[] = []): Promise<Awaited<ReturnType<typeof pkgJson>>> {
  expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
  return pkgJson(root, ['upgrade', '--yes', ...extra]);
}

/** Where `current` points: what a reverted change must have put back. */
async function current(): Promise<string> {
  return readlink(join(root, 'current'));
}

describe('health checks after a change', () => {
  it('a failed required check switches back, keeps the failed generation and exits 8; a passing v3 upgrades', async () => {
    await repo.publish(app('2.0.0', '#!/bin/sh\necho "listening on :80 failed" >&2\nexit 3\n'));
    const r = await upgrade();
    expect(r.code).toBe(8);
    expect(r.json?.error?.code).toBe('E_HEALTH_CHECK');
    expect(r.json?.error?.details).toMatchObject({ generation: 2, revertedTo: 1, check: 'app/responds', reason: 'exit', exitStatus: 3 });
    expect(r.json?.error?.details['outputTail']).toContain('listening on :80 failed');
    expect(await current()).toBe('generations/1');
    expect(await readFile(join(root, 'current/bin/app'), 'utf8')).toContain('app 1.0.0');

    const gens = (await pkgJson(root, ['generations'])).json?.result as GenerationSummary[];
    expect(gens.map((g) => [g.number, g.current])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(gens[1]!.health).toMatchObject({ state: 'failed', failed: { name: 'app/responds', exitStatus: 3 }, reverted: { to: 1 } });
    expect((gens[1]!.health!['failed'] as { outputTail: string }).outputTail).toContain('listening on :80 failed');
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);

    await repo.publish(app('3.0.0', '#!/bin/sh\ntest "$PKG_GENERATION" = 3 && test -x "$PKG_ROOT/current/bin/app"\n'));
    const ok = await upgrade();
    expect(ok.json?.ok, ok.stdout).toBe(true);
    expect(ok.json?.result).toMatchObject({ generation: 3, health: { state: 'passed' } });
    expect(await current()).toBe('generations/3');
    const after = (await pkgJson(root, ['generations'])).json?.result as GenerationSummary[];
    expect(after.map((g) => g.health?.state ?? '-')).toEqual(['-', 'failed', 'passed']);
  });

  it('a check that hangs is killed at its timeout, with whatever it started, and counts as failed', async () => {
    // The check leaves a child holding its output pipe, then hangs itself.
    await repo.publish(app('2.0.0', '#!/bin/sh\n(sleep 300 &)\necho waiting\nsleep 300\n', { timeout: 1 }));
    const r = await upgrade();
    expect(r.json?.error?.code).toBe('E_HEALTH_CHECK');
    expect(r.json?.error?.details).toMatchObject({ reason: 'timeout', exitStatus: null, signal: 'SIGKILL' });
    expect(r.json?.error?.details['outputTail']).toContain('waiting');
    expect(await current()).toBe('generations/1');
  });

  it('a check that exits but leaves a child holding its output does not hold the transaction', async () => {
    await repo.publish(app('2.0.0', '#!/bin/sh\n(sleep 300 &)\nexit 0\n', { timeout: 60 }));
    const r = await upgrade();
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.result.health.checks[0]).toMatchObject({ ok: true, exitStatus: 0 });
  });

  it('a check that floods its output keeps only a bounded tail', async () => {
    await repo.publish(app('2.0.0', '#!/bin/sh\nhead -c 20000000 /dev/zero | tr "\\0" x\necho\necho LAST LINE\nexit 1\n'));
    const r = await upgrade();
    expect(r.json?.error?.code).toBe('E_HEALTH_CHECK');
    const checks = r.json?.error?.details['checks'] as unknown[];
    expect(checks).toHaveLength(1);
    const tail = r.json?.error?.details['outputTail'] as string;
    expect(tail.length).toBeLessThanOrEqual(HEALTH_OUTPUT_TAIL_BYTES);
    expect(tail).toMatch(/x+\nLAST LINE\n$/);
    const rec = JSON.parse(await readFile(join(root, 'db/health/2.json'), 'utf8')) as { checks: { outputBytes: number }[] };
    expect(rec.checks[0]!.outputBytes).toBeGreaterThan(20_000_000);
  });

  it('a missing check program (a link to nothing) fails as missing; the change is undone', async () => {
    await repo.publish([
      {
        name: 'app',
        version: '2.0.0',
        files: { 'bin/app': '#!/bin/sh\n', 'libexec/app/check': { symlink: 'not-there' } },
        health: [{ name: 'responds', command: 'libexec/app/check', timeout: 5, level: 'required' }],
      },
    ]);
    const r = await upgrade();
    expect(r.json?.error?.details).toMatchObject({ check: 'app/responds', reason: 'missing' });
    expect(await current()).toBe('generations/1');
  });

  it('system checks: a non-executable entry fails (a remove is undone); advisory ones only warn', async () => {
    await mkdir(join(root, 'health.d/advisory'), { recursive: true });
    await writeFile(join(root, 'health.d/advisory/disk'), '#!/bin/sh\necho low disk\nexit 1\n', { mode: 0o755 });
    await writeFile(join(root, 'health.d/network'), '#!/bin/sh\nexit 0\n');
    await chmod(join(root, 'health.d/network'), 0o644);
    const before = await current();
    const r = await pkgJson(root, ['remove', 'app', '--yes']);
    expect(r.code).toBe(8);
    expect(r.json?.error?.details).toMatchObject({ check: 'system/network', reason: 'not-executable', revertedTo: 1 });
    expect(await current()).toBe(before);

    await chmod(join(root, 'health.d/network'), 0o755);
    const ok = await pkgJson(root, ['remove', 'app', '--yes']);
    expect(ok.json?.ok, ok.stdout).toBe(true);
    expect(ok.json?.warnings?.join('\n')).toMatch(/advisory health check system\/advisory\/disk failed/);
    expect(ok.json?.result.health.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([
      ['system/network', true],
      ['system/advisory/disk', false],
    ]);
  });

  it('PKG_HEALTH_DIR names another folder of system checks', async () => {
    const dir = await tempDir('pkg-health-');
    await writeFile(join(dir, 'always-fails'), '#!/bin/sh\necho from PKG_HEALTH_DIR\nexit 9\n', { mode: 0o755 });
    const r = await pkgJson(root, ['remove', 'app', '--yes'], { PKG_HEALTH_DIR: dir });
    expect(r.json?.error?.details).toMatchObject({ check: 'system/always-fails', exitStatus: 9 });
    expect(await current()).toBe('generations/1');
    // Without it, the root's own folder (none here) applies and the remove goes through.
    expect((await pkgJson(root, ['remove', 'app', '--yes'])).json?.ok).toBe(true);
  });

  it('--no-health-check skips the checks and the generation record says so; pkg health runs them on demand', async () => {
    await repo.publish(app('2.0.0', '#!/bin/sh\necho broken\nexit 7\n'));
    const r = await upgrade(['--no-health-check']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.result.health).toEqual({ state: 'skipped', checks: [] });
    const gens = (await pkgJson(root, ['generations'])).json?.result as GenerationSummary[];
    expect(gens[1]!.health?.state).toBe('skipped');

    const before = await treeHash(root);
    const h = await pkgJson(root, ['health']);
    expect(h.code).toBe(8);
    expect(h.json?.error?.code).toBe('E_HEALTH_CHECK');
    expect(h.json?.error?.details['report']).toMatchObject({
      generation: 2,
      healthy: false,
      checks: [{ name: 'app/responds', exitStatus: 7 }],
    });
    // On demand changes nothing: not current, not a record.
    expect(await treeHash(root)).toBe(before);
  });

  it('the first install of a package whose check fails leaves nothing installed, and says so', async () => {
    const fresh = await tempDir('pkg-root-');
    await repo.publish(app('2.0.0', '#!/bin/sh\nexit 1\n'));
    await addMainRepo(fresh, server.url, repo.fingerprint);
    const r = await pkgJson(fresh, ['install', 'app', '--yes']);
    expect(r.json?.error?.details).toMatchObject({ generation: 1, revertedTo: null });
    await expect(readlink(join(fresh, 'current'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await pkgJson(fresh, ['doctor'])).json?.ok).toBe(true);
    expect((await pkgJson(fresh, ['list'])).json?.result).toEqual([]);
  });

  it('a rollback runs the checks of the packages it brings back', async () => {
    await repo.publish(app('2.0.0', '#!/bin/sh\nexit 0\n'));
    expect((await upgrade()).json?.ok).toBe(true);
    await repo.publish(app('3.0.0', '#!/bin/sh\nexit 0\n'));
    expect((await upgrade()).json?.result.generation).toBe(3);
    // Generation 2's check now fails (its program reads a file the test controls).
    await writeFile(join(root, 'fail'), '');
    await repo.publish(app('4.0.0', '#!/bin/sh\ntest ! -e "$PKG_ROOT/fail"\n'));
    expect((await upgrade(['--no-health-check'])).json?.result.generation).toBe(4);
    const r = await pkgJson(root, ['rollback', '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.result).toMatchObject({ to: 3, health: { state: 'passed' } });
    const back = await pkgJson(root, ['rollback', '--to', '4', '--yes']);
    expect(back.json?.error?.code).toBe('E_HEALTH_CHECK');
    expect(await current()).toBe('generations/3');
  });
});
