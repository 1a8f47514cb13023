import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HealthCheck } from '../../catalog/index.js';
import { createContext, doctor, readCurrent, readCatalogState } from '../../userland/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../helpers/http-table-server.js';
import { pkg, pkgBundle, spawnPkg } from '../integration/userland/helpers.js';

/**
 * Kill at every step (DESIGN.md: "A kill -9 or power loss at any instant
 * leaves either the old or the new generation current, both complete; the
 * next run cleans leftovers").
 *
 * For each flow (install, upgrade, remove, rollback, update, gc): a clean run
 * with PKG_TEST_CRASH_TRACE lists every crash point it passes (name:n);
 * then, for each step (its first and last arrival; every arrival with
 * PKG_FAULTS_FULL=1), a copy of the starting root is handed to the bundled
 * `pkg` with PKG_TEST_CRASH_AT=name:n, which SIGKILLs itself there. After
 * each kill: `pkg doctor` finds no problem, `current` is the old or the new
 * generation with exactly the old or the new package set, and rerunning the
 * command succeeds and reaches the new state with no leftovers.
 */

interface Flow {
  name: string;
  /** Commands run once to build the starting root (template). */
  setup: string[][];
  /** Publishing between setup steps, by index (run before setup[i]). */
  before?: Record<number, (repo: FakeRepo) => Promise<void>>;
  command: string[];
  /** What `current` must hold after a complete run. */
  final: string[];
  /** Exit code of a complete run (default 0); the failed-health flow ends with 8 and the old set. */
  exit?: number;
  /**
   * A generation that may be current after a kill besides the old and the new one (with its set):
   * the one whose health check fails, current between the switch and the switch back.
   */
  transient?: { current: string; set: string[] };
  /** Crash points the clean run must pass (so the kills really land inside the health checks). */
  reaches?: string[];
}

// Order matters: upgrade publishes 1.1.0 versions, and update publishes more; earlier flows see 1.0.0 only.
const FLOWS: Flow[] = [
  { name: 'install', setup: [], command: ['install', 'app', 'tool', '--yes'], final: ['app@1.0.0', 'lib@1.0.0', 'tool@1.0.0'] },
  { name: 'remove', setup: [['install', 'app', 'tool', '--yes']], command: ['remove', 'app', '--yes'], final: ['tool@1.0.0'] },
  {
    name: 'rollback',
    setup: [
      ['install', 'app', '--yes'],
      ['install', 'tool', '--yes'],
    ],
    command: ['rollback', '--yes'],
    final: ['app@1.0.0', 'lib@1.0.0'],
  },
  {
    name: 'gc',
    setup: [
      ['install', 'app', '--yes'],
      ['install', 'tool', '--yes'],
      ['remove', 'app', '--yes'],
    ],
    command: ['gc', '--keep', '0', '--yes'],
    final: ['tool@1.0.0'],
  },
  {
    name: 'upgrade',
    setup: [['install', 'app', 'tool', '--yes'], ['update']],
    before: {
      1: (r) =>
        r.publish([
          { name: 'lib', version: '1.1.0', files: libFiles('1.1.0') },
          { name: 'app', version: '1.1.0', depends: { lib: '^1.1.0' }, files: appFiles('1.1.0') },
        ]),
    },
    command: ['upgrade', '--yes'],
    final: ['app@1.1.0', 'lib@1.1.0', 'tool@1.0.0'],
  },
  {
    // Crash points during the checks: a kill leaves the new generation current with its checks pending;
    // the next run undoes it (back to the old one) and upgrades again.
    name: 'upgrade-checked',
    setup: [['install', 'app', 'tool', '--yes'], ['update']],
    before: {
      1: (r) => r.publish([{ name: 'app', version: '1.2.0', depends: { lib: '^1.1.0' }, files: appFiles('1.2.0', 0), health: check }]),
    },
    command: ['upgrade', '--yes'],
    final: ['app@1.2.0', 'lib@1.1.0', 'tool@1.0.0'],
    reaches: ['health.pending:1', 'health.check:2', 'health.checked:1', 'health.recorded:1'],
  },
  {
    // A required check fails: the run switches back and exits 8; a kill before the switch back leaves the failed
    // generation current with its checks pending, which the next run undoes.
    name: 'upgrade-unhealthy',
    setup: [['install', 'app', 'tool', '--yes'], ['update']],
    before: {
      1: (r) => r.publish([{ name: 'app', version: '1.3.0', depends: { lib: '^1.1.0' }, files: appFiles('1.3.0', 4), health: check }]),
    },
    command: ['upgrade', '--yes'],
    final: ['app@1.2.0', 'lib@1.1.0', 'tool@1.0.0'],
    exit: 8,
    transient: { current: 'generations/2', set: ['app@1.3.0', 'lib@1.1.0', 'tool@1.0.0'] },
    reaches: ['health.pending:1', 'health.check:1', 'health.checked:1', 'health.reverted:1', 'health.recorded:1'],
  },
  { name: 'update', setup: [], before: {}, command: ['update'], final: [] },
];

function libFiles(v: string): Record<string, string> {
  return { 'lib/libx.a': `lib ${v}\n`, 'include/x.h': `/* ${v} */\n`, [`share/lib/${v}.txt`]: v };
}
function appFiles(v: string, checkExit?: number): Record<string, string> {
  return {
    'bin/app': `#!/bin/sh\necho app ${v}\n`,
    'share/app/data.txt': `app data ${v}\n`,
    ...(checkExit !== undefined ? { 'libexec/app/check': `#!/bin/sh\necho checking ${v}\nexit ${checkExit}\n` } : {}),
  };
}
const check: HealthCheck[] = [
  { name: 'runs', command: 'libexec/app/check', timeout: 10, level: 'required' },
  { name: 'again', command: 'libexec/app/check', timeout: 10, level: 'required' },
];

/**
 * No run here is meant to stall, and the server answering it lives in this busy test process
 * (two kills in flight, doctor in between): the spawn helper's 2-second stall window turned a
 * slow answer under load into E_STALLED instead of the kill under test.
 */
const UNHURRIED = { PKG_STALL_TIMEOUT: '30' };

let repo: FakeRepo;
let server: TableServer;
let work: string;

beforeAll(async () => {
  await pkgBundle();
  repo = await buildFakeRepo({
    packages: [
      { name: 'lib', version: '1.0.0', files: libFiles('1.0.0') },
      { name: 'app', version: '1.0.0', depends: { lib: '^1.0.0' }, files: appFiles('1.0.0') },
      {
        name: 'tool',
        version: '1.0.0',
        files: { 'bin/tool': '#!/bin/sh\necho tool\n', 'lib/tool.so': { symlink: 'tool.so.1' }, 'lib/tool.so.1': 'so\n' },
      },
    ],
  });
  server = await startTableServer(repo.table);
  work = await mkdtemp(join(tmpdir(), 'pkg-kill-'));
}, 300_000);

afterAll(async () => {
  await server?.close();
  await cleanupFakeRepos();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Every step by name, at its first and last arrival (a step passed once per
 * package is killed for the first package and for the last one).
 * PKG_FAULTS_FULL=1 kills at every single arrival instead.
 */
const FULL = process.env['PKG_FAULTS_FULL'] === '1';
function sample(trace: string[]): string[] {
  const last = new Map<string, string>();
  for (const p of trace) last.set(p.slice(0, p.lastIndexOf(':')), p);
  return trace.filter((p) => p.endsWith(':1') || last.get(p.slice(0, p.lastIndexOf(':'))) === p);
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

function copyTree(from: string, to: string): void {
  execFileSync('cp', ['-a', from, to]);
}

async function installedSet(root: string): Promise<string[]> {
  const g = await readCurrent(createContext({ root }));
  return (g?.packages ?? []).map((p) => `${p.name}@${p.version}`).sort();
}

async function currentTarget(root: string): Promise<string | null> {
  try {
    return await readlink(join(root, 'current'));
  } catch {
    return null;
  }
}

describe('kill -9 at every step', () => {
  let total = 0;

  for (const flow of FLOWS) {
    it(`${flow.name}: survives a SIGKILL at each of its steps`, async () => {
      const template = join(work, `${flow.name}-template`);
      expect((await pkg(template, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint, '--json'])).json?.ok).toBe(true);
      expect((await pkg(template, ['update', '--json'])).json?.ok).toBe(true);
      for (const [i, cmd] of flow.setup.entries()) {
        await flow.before?.[i]?.(repo);
        const r = await pkg(template, [...cmd, '--json']);
        expect(r.json?.ok, `${cmd.join(' ')}: ${r.stdout}`).toBe(true);
      }
      if (flow.name === 'update') await repo.publish([{ name: 'extra', version: '0.0.1' }]);
      const ctxT = createContext({ root: template });
      const oldSet = await installedSet(template);
      const oldCurrent = await currentTarget(template);
      const oldCatalog = (await readCatalogState(ctxT, 'main'))?.version;

      // The trace run: which crash points this command passes, in order.
      const traceRoot = join(work, `${flow.name}-trace`);
      copyTree(template, traceRoot);
      const traceFile = join(work, `${flow.name}.trace`);
      const clean = await spawnPkg(traceRoot, flow.command, { PKG_TEST_CRASH_TRACE: traceFile, ...UNHURRIED });
      expect(clean.code, clean.stderr).toBe(flow.exit ?? 0);
      const trace = (await readFile(traceFile, 'utf8')).trim().split('\n');
      const points = FULL ? trace : sample(trace);
      expect(trace).toEqual(expect.arrayContaining(flow.reaches ?? []));
      // One durability barrier per transaction (docs/design.md): it comes before any name appears.
      const synced = trace.filter((p) => p.startsWith('transaction.synced:'));
      if (trace.some((p) => p.startsWith('generation.renamed:'))) {
        expect(synced, `${flow.name}: one barrier`).toEqual(['transaction.synced:1']);
        const at = trace.indexOf('transaction.synced:1');
        for (const [i, p] of trace.entries())
          if (/^(store|generation|current)\.renamed:/.test(p)) expect(i, `${p} after the barrier`).toBeGreaterThan(at);
      }
      const newSet = await installedSet(traceRoot);
      const newCurrent = await currentTarget(traceRoot);
      const newCatalog = (await readCatalogState(createContext({ root: traceRoot }), 'main'))?.version;
      if (flow.final.length) expect(newSet).toEqual(flow.final);
      expect(new Set(trace).size).toBe(trace.length);
      total += points.length;

      const one = async (point: string): Promise<void> => {
        const root = join(work, `${flow.name}-${point.replace(/[^a-z0-9.-]/gi, '_')}`);
        copyTree(template, root);
        const killed = await spawnPkg(root, flow.command, { PKG_TEST_CRASH_AT: point, ...UNHURRIED });
        expect(killed.signal, `${point}: ${killed.stderr}`).toBe('SIGKILL');

        const ctx = createContext({ root });
        const report = await doctor(ctx);
        expect(report.problems, `${flow.name} killed at ${point}`).toEqual([]);
        const cur = await currentTarget(root);
        const currents = [oldCurrent, newCurrent, ...(flow.transient ? [flow.transient.current] : [])];
        expect(currents, `${flow.name} killed at ${point}: current`).toContain(cur);
        const set = await installedSet(root);
        const sets = [oldSet, newSet, ...(flow.transient ? [flow.transient.set] : [])].map((x) => JSON.stringify(x));
        expect(sets, `${flow.name} killed at ${point}: installed set`).toContain(JSON.stringify(set));
        const cat = (await readCatalogState(ctx, 'main'))?.version;
        expect([oldCatalog, newCatalog]).toContain(cat);

        // The next run cleans up and completes the change.
        const rerun = await pkg(root, [...flow.command, '--json']);
        if (cur === newCurrent && (flow.name === 'rollback' || flow.name === 'remove')) {
          // The change had landed before the kill: rolling back again finds nothing older, removing
          // again finds nothing installed. Both say so with their code and change nothing.
          expect(rerun.json?.error?.code, rerun.stdout).toBe(flow.name === 'rollback' ? 'E_NOT_FOUND' : 'E_NOT_INSTALLED');
          expect(await installedSet(root)).toEqual(newSet);
        } else if (flow.exit === 8) {
          // The rerun (after undoing a pending switch, if the kill left one) tries the upgrade again: same verdict.
          expect(rerun.json?.error?.code, `${flow.name} rerun after ${point}: ${rerun.stdout}`).toBe('E_HEALTH_CHECK');
          expect(await installedSet(root)).toEqual(newSet);
          expect(await currentTarget(root)).toBe(oldCurrent);
        } else {
          expect(rerun.json?.ok, `${flow.name} rerun after ${point}: ${rerun.stdout}`).toBe(true);
          expect(await installedSet(root)).toEqual(newSet);
        }
        const after = await doctor(ctx);
        expect(after.problems).toEqual([]);
        expect(after.leftovers, `${flow.name} after ${point}`).toEqual([]);
        if (flow.name !== 'update') expect(after.partialDownloads).toEqual([]);
        await rm(root, { recursive: true, force: true });
      };
      // Two kills in flight: each spawn waits on process start, the checks run in this process meanwhile.
      await pool(points, 2, one);
    }, 180_000);
  }

  it('covered at least 50 distinct crash points', () => {
    console.info(`pkg was killed at ${total} distinct crash points`);
    expect(total).toBeGreaterThanOrEqual(50);
  });
});
