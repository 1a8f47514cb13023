import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createEvidenceDir,
  finishEvidence,
  pruneStoreImages,
  writeScenarioResult,
  type DeploymentFacts,
  type RunResult,
} from '../../acceptance/evidence.js';
import { ScenarioTranscript } from '../../acceptance/guest-session.js';
import { tempDir } from '../../helpers/tmp.js';

describe('evidence store-image pruning', () => {
  it('keeps the newest finished runs and never touches a run still in progress', async () => {
    const base = await tempDir('evidence-');
    const run = async (name: string, finished: boolean): Promise<void> => {
      await mkdir(join(base, name), { recursive: true });
      await writeFile(join(base, name, 'store.img'), 'store');
      if (finished) await writeFile(join(base, name, 'result.json'), '{}');
    };
    // The oldest run is still going (a concurrent --all); three newer ones have finished.
    await run('2026-01-01T00-00-00Z-aarch64', false);
    await run('2026-01-01T01-00-00Z', true);
    await run('2026-01-01T02-00-00Z-aarch64', true);
    await run('2026-01-01T03-00-00Z', true);
    expect(await pruneStoreImages(base, 2)).toEqual(['2026-01-01T01-00-00Z']);
    expect(existsSync(join(base, '2026-01-01T00-00-00Z-aarch64', 'store.img'))).toBe(true);
    expect(existsSync(join(base, '2026-01-01T01-00-00Z', 'result.json'))).toBe(true);
    expect(existsSync(join(base, '2026-01-01T02-00-00Z-aarch64', 'store.img'))).toBe(true);
  });

  it('removes the A/B system disk and its firmware variables with the store, and keeps the newest runs whole', async () => {
    const base = await tempDir('evidence-');
    const disks = ['store.img', 'system.img', 'system.img.vars.fd'];
    for (const name of ['2026-01-01T01-00-00Z', '2026-01-01T02-00-00Z', '2026-01-01T03-00-00Z']) {
      await mkdir(join(base, name), { recursive: true });
      for (const d of disks) await writeFile(join(base, name, d), d);
      await writeFile(join(base, name, 'result.json'), '{}');
    }
    // An older run whose store was pruned by an earlier version still has its system disk.
    await mkdir(join(base, '2026-01-01T00-00-00Z'), { recursive: true });
    await writeFile(join(base, '2026-01-01T00-00-00Z', 'system.img'), 'x');
    await writeFile(join(base, '2026-01-01T00-00-00Z', 'result.json'), '{}');
    expect(await pruneStoreImages(base, 2)).toEqual(['2026-01-01T00-00-00Z', '2026-01-01T01-00-00Z']);
    for (const d of disks) {
      expect(existsSync(join(base, '2026-01-01T00-00-00Z', d))).toBe(false);
      expect(existsSync(join(base, '2026-01-01T01-00-00Z', d))).toBe(false);
      expect(existsSync(join(base, '2026-01-01T03-00-00Z', d))).toBe(true);
    }
    expect(existsSync(join(base, '2026-01-01T01-00-00Z', 'result.json'))).toBe(true);
  });
});

// The suite and the main job write their evidence through these functions: one header, one record.
describe('the evidence writer', () => {
  it('writes a scenario transcript with the shared header and returns its row', async () => {
    const runDir = await createEvidenceDir(await tempDir('evidence-'), 'stamp');
    const t = new ScenarioTranscript();
    t.note('step one');
    const pass = await writeScenarioResult(runDir, { number: 3, name: 'boot', title: 'the guest boots' }, { startedMs: Date.now() }, t);
    expect(pass).toMatchObject({ name: 'boot', ok: true, transcript: 'scenarios/03-boot.txt', commands: 0 });
    expect(pass.why).toBeUndefined();
    const text = await readFile(join(runDir, pass.transcript), 'utf8');
    expect(text.split('\n').slice(0, 2)).toEqual(['scenario boot: the guest boots', 'result: PASS']);
    expect(text).toContain('step one');

    const fail = await writeScenarioResult(
      runDir,
      { number: 12, name: 'main-job', title: 'x' },
      { startedMs: Date.now(), why: 'no shell' },
      t,
    );
    expect(fail).toMatchObject({ ok: false, why: 'no shell', transcript: 'scenarios/12-main-job.txt' });
    expect((await readFile(join(runDir, fail.transcript), 'utf8')).split('\n')[1]).toBe('result: FAIL: no shell');
  });

  it('finishes a run: result.json, manifest.txt, then latest points at it', async () => {
    const base = await tempDir('evidence-');
    const runDir = await createEvidenceDir(base, 'stamp');
    const result: RunResult = {
      format: 1,
      arch: 'x86_64',
      mode: '--main-job',
      started: '2026-12-02T00:00:00.000Z',
      finished: '2026-12-02T00:01:00.000Z',
      seconds: 60,
      ok: false,
      scenarios: [{ name: 'main-job', ok: false, seconds: 60, why: 'no shell', transcript: 'scenarios/01-main-job.txt', commands: 0 }],
      notRun: [],
      timings: {},
      evidence: runDir,
    };
    const facts: DeploymentFacts = {
      git: { revision: 'abc', branch: 'main', worktree: 'clean' },
      host: { node: 'v24', kernel: 'Linux' },
      qemu: null,
      artifactsDir: '/artifacts',
      manifest: null,
      deployment: null,
      storeImage: join(runDir, 'store.img'),
      repositories: ['main  http://10.0.2.2:8080/'],
      seedPorts: ['curl'],
      forwards: [],
    };
    await finishEvidence(base, result, facts);
    expect(JSON.parse(await readFile(join(runDir, 'result.json'), 'utf8'))).toEqual(result);
    const manifest = await readFile(join(runDir, 'manifest.txt'), 'utf8');
    expect(manifest).toContain('result:         FAIL');
    expect(manifest).toMatch(/FAIL {4}main-job/);
    expect(await readlink(join(base, 'latest'))).toBe('stamp');
  });
});
