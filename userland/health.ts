import { spawn } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, fromFsError, parseJson, DEFAULT_HEALTH_TIMEOUT, type HealthCheck, type PackageManifest } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fsyncDir, readTextIfExists, writeFileAtomic } from './fs-util.js';
import { currentNumber, generationDir, readGeneration, switchCurrent, type GenerationPackage } from './generation.js';
import { checkGeneration, newestCompleteGeneration, recoverCurrent } from './generation-check.js';
import { readStoreManifest } from './store.js';
import { crashPoint } from './crash-point.js';

/** Bytes of a check's output kept (the end: where the reason for a failure usually is). */
export const HEALTH_OUTPUT_TAIL_BYTES = 4096;
/** After a kill, how long pkg waits for the process to be reaped before it stops waiting (a process stuck in the kernel). */
const REAP_GRACE_MS = 5000;
/** After the check exits, how long its pipes may stay open (held by something it started) before pkg closes them. */
const PIPE_GRACE_MS = 1000;
/** Entries of the system folder under this name are advisory checks; everything else in it is required. */
export const ADVISORY_FOLDER = 'advisory';

/** One check about to run: a package's (from its manifest) or a system-wide one (from the health folder). */
export interface PlannedCheck {
  /** `PACKAGE/NAME` for a package's check, `system/FILE` for the folder's. */
  name: string;
  source: 'package' | 'system';
  /** `name@version` of the package that declared it. */
  package?: string;
  /** What runs: absolute path. */
  path: string;
  timeout: number;
  level: HealthCheck['level'];
}

/** What one check did. `ok` is exit status 0 within the timeout. */
export interface HealthCheckResult {
  name: string;
  source: 'package' | 'system';
  package?: string;
  command: string;
  level: HealthCheck['level'];
  timeout: number;
  ok: boolean;
  /** Why it failed: missing, not-executable, could-not-start, timeout, signal, exit. */
  reason?: 'missing' | 'not-executable' | 'could-not-start' | 'timeout' | 'signal' | 'exit';
  exitStatus: number | null;
  signal: string | null;
  durationMs: number;
  /** Total bytes the check wrote (stdout and stderr). */
  outputBytes: number;
  /** The last HEALTH_OUTPUT_TAIL_BYTES of its output. */
  outputTail: string;
}

/** `db/health/N.json`: the health of generation N. */
export interface HealthRecord {
  format: 1;
  generation: number;
  /**
   * pending: written before `current` switched, checks not finished (a crash here is undone by the
   * next writer or at boot); passed; failed (a required check failed and `current` went back);
   * skipped (--no-health-check); interrupted (pending found later and undone).
   */
  state: 'pending' | 'passed' | 'failed' | 'skipped' | 'interrupted';
  time: string;
  command: string;
  /** Where `current` goes back to when a required check fails (null: nothing was installed). */
  revertTo: number | null;
  checks: HealthCheckResult[];
  /** The first required check that failed. */
  failed?: { name: string; reason: string; exitStatus: number | null; signal: string | null; outputTail: string };
  /** What undid an interrupted or failed switch, and when. */
  reverted?: { to: number | null; time: string; by: string };
}

function recordPath(ctx: PkgContext, n: number): string {
  return join(ctx.paths.healthRecords, `${n}.json`);
}

/** The health record of generation N, or undefined when it has none (no checks ran) or it does not read. */
export async function readHealthRecord(ctx: PkgContext, n: number): Promise<HealthRecord | undefined> {
  const text = await readTextIfExists(recordPath(ctx, n));
  if (text === undefined) return undefined;
  try {
    const r = parseJson(text, recordPath(ctx, n)) as HealthRecord;
    return r && r.format === 1 && r.generation === n && typeof r.state === 'string' ? r : undefined;
  } catch {
    // A record is advice about the past; a damaged one must not stop a writer or the boot.
    return undefined;
  }
}

async function writeHealthRecord(ctx: PkgContext, r: HealthRecord): Promise<void> {
  // Temp file, fsync, rename: a crash leaves the old record or the new one (a `.tmp-*` the next writer removes).
  await writeFileAtomic(recordPath(ctx, r.generation), JSON.stringify(r, null, 2) + '\n');
}

/** Removes the records of generations that no longer exist (gc). */
export async function removeHealthRecord(ctx: PkgContext, n: number): Promise<void> {
  await rm(recordPath(ctx, n), { force: true });
}

/** The checks the packages declare, in package order. */
function packageChecks(
  ctx: PkgContext,
  generation: number,
  packages: { pkg: Pick<GenerationPackage, 'name' | 'version'>; manifest: PackageManifest }[],
): PlannedCheck[] {
  const base = generationDir(ctx, generation);
  const out: PlannedCheck[] = [];
  for (const { pkg, manifest } of [...packages].sort((a, b) => (a.pkg.name < b.pkg.name ? -1 : 1))) {
    for (const h of manifest.health ?? []) {
      out.push({
        name: `${pkg.name}/${h.name}`,
        source: 'package',
        package: `${pkg.name}@${pkg.version}`,
        // The generation's own link to the file: the check runs what `current` now shows.
        path: join(base, h.command),
        timeout: h.timeout,
        level: h.level,
      });
    }
  }
  return out;
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw fromFsError(e, `reading ${dir}`);
  }
}

/**
 * The system-wide checks: every entry of the health folder (dotfiles
 * aside) is a required check, every entry of its `advisory/` folder an
 * advisory one, each with the default timeout. An entry that is not an
 * executable file is not skipped: it runs as a failed check, so a
 * forgotten `chmod +x` is seen rather than silently ignored.
 */
export async function systemChecks(ctx: PkgContext): Promise<PlannedCheck[]> {
  const out: PlannedCheck[] = [];
  for (const n of await listNames(ctx.healthDir)) {
    if (n === ADVISORY_FOLDER) continue;
    out.push({ name: `system/${n}`, source: 'system', path: join(ctx.healthDir, n), timeout: DEFAULT_HEALTH_TIMEOUT, level: 'required' });
  }
  const adv = join(ctx.healthDir, ADVISORY_FOLDER);
  for (const n of await listNames(adv)) {
    out.push({
      name: `system/${ADVISORY_FOLDER}/${n}`,
      source: 'system',
      path: join(adv, n),
      timeout: DEFAULT_HEALTH_TIMEOUT,
      level: 'advisory',
    });
  }
  return out;
}

/** Keeps the last `max` bytes of a stream of chunks, and counts them all. */
class OutputTail {
  private chunks: Buffer[] = [];
  private held = 0;
  total = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.total += b.length;
    this.chunks.push(b);
    this.held += b.length;
    while (this.held - this.chunks[0]!.length >= this.max) this.held -= this.chunks.shift()!.length;
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}

/** The environment a check sees: pkg's own, minus test hooks, with the generation's bin first on PATH. */
function checkEnv(ctx: PkgContext, generation: number | null, name: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PKG_TEST_')) env[k] = v;
  const path = process.env['PATH'] ?? '/usr/bin:/bin';
  env['PATH'] = generation === null ? path : `${join(generationDir(ctx, generation), 'bin')}:${path}`;
  env['PKG_ROOT'] = ctx.paths.root;
  env['PKG_GENERATION'] = generation === null ? '' : String(generation);
  env['PKG_HEALTH_CHECK'] = name;
  return env;
}

/**
 * Runs one check from the generation's folder: no stdin, stdout and stderr
 * kept as a bounded tail, its own process group so a timeout kills
 * everything it started, and every wait bounded (the timeout, then a grace
 * for the kernel to reap, then one for pipes a leftover holds) — a check
 * cannot hang the transaction. Never throws: a check that cannot run is a
 * failed check with the reason.
 */
export async function runCheck(ctx: PkgContext, generation: number | null, c: PlannedCheck): Promise<HealthCheckResult> {
  const started = Date.now();
  const tail = new OutputTail(HEALTH_OUTPUT_TAIL_BYTES);
  const result = (
    o: Pick<HealthCheckResult, 'ok' | 'exitStatus' | 'signal'> & { reason?: HealthCheckResult['reason']; note?: string },
  ): HealthCheckResult => {
    if (o.note) tail.push(Buffer.from(`pkg: ${o.note}\n`));
    return {
      name: c.name,
      source: c.source,
      ...(c.package ? { package: c.package } : {}),
      command: c.path,
      level: c.level,
      timeout: c.timeout,
      ok: o.ok,
      ...(o.reason ? { reason: o.reason } : {}),
      exitStatus: o.exitStatus,
      signal: o.signal,
      durationMs: Date.now() - started,
      outputBytes: tail.total,
      outputTail: tail.text(),
    };
  };
  const st = await stat(c.path).catch(() => undefined);
  if (!st) return result({ ok: false, reason: 'missing', exitStatus: null, signal: null, note: `${c.path} does not exist` });
  if (!st.isFile() || (st.mode & 0o111) === 0) {
    return result({ ok: false, reason: 'not-executable', exitStatus: null, signal: null, note: `${c.path} is not an executable file` });
  }
  return new Promise<HealthCheckResult>((resolve) => {
    let settled = false;
    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (r: HealthCheckResult): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve(r);
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(c.path, [], {
        cwd: generation === null ? '/' : generationDir(ctx, generation),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: checkEnv(ctx, generation, c.name),
      });
    } catch (e) {
      finish(result({ ok: false, reason: 'could-not-start', exitStatus: null, signal: null, note: (e as Error).message }));
      return;
    }
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    child.stdout?.on('data', (b: Buffer) => tail.push(b));
    child.stderr?.on('data', (b: Buffer) => tail.push(b));
    child.once('error', (e) => {
      killGroup();
      finish(result({ ok: false, reason: 'could-not-start', exitStatus: null, signal: null, note: e.message }));
    });
    timers.push(
      setTimeout(() => {
        timedOut = true;
        killGroup();
        // A process in uninterruptible sleep may never be reaped: stop waiting for it.
        timers.push(
          setTimeout(() => {
            child.stdout?.destroy();
            child.stderr?.destroy();
            finish(result({ ok: false, reason: 'timeout', exitStatus: null, signal: 'SIGKILL', note: `killed after ${c.timeout} s` }));
          }, REAP_GRACE_MS),
        );
      }, c.timeout * 1000),
    );
    child.once('exit', (code, signal) => {
      // Whatever the check left running dies with it: nothing it started outlives the transaction.
      killGroup();
      const done = (): void => {
        if (timedOut)
          finish(
            result({ ok: false, reason: 'timeout', exitStatus: null, signal: signal ?? 'SIGKILL', note: `killed after ${c.timeout} s` }),
          );
        else if (signal) finish(result({ ok: false, reason: 'signal', exitStatus: null, signal }));
        else finish(result({ ok: code === 0, ...(code === 0 ? {} : { reason: 'exit' as const }), exitStatus: code, signal: null }));
      };
      const pipes = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        done();
      }, PIPE_GRACE_MS);
      timers.push(pipes);
      child.once('close', () => {
        clearTimeout(pipes);
        done();
      });
    });
  });
}

/** Health of a change before its switch: what will run, and where `current` goes back to. */
export interface HealthGuard {
  generation: number;
  revertTo: number | null;
  checks: PlannedCheck[];
  command: string;
}

/** What the checks of a change found (it passed: a failure throws E_HEALTH_CHECK). */
export interface HealthOutcome {
  state: 'passed' | 'skipped';
  checks: HealthCheckResult[];
}

/**
 * Call before `current` switches to `generation`. With checks to run it
 * records them as pending first, so a crash between the switch and the
 * verdict is undone by the next writer (or the boot check): an unchecked
 * generation is never left current. With `skip` (--no-health-check) the
 * record says the checks were skipped. Returns undefined when there is
 * nothing to run.
 */
export async function prepareHealth(
  ctx: PkgContext,
  o: {
    generation: number;
    revertTo: number | null;
    packages: { pkg: Pick<GenerationPackage, 'name' | 'version'>; manifest: PackageManifest }[];
    skip: boolean;
  },
): Promise<HealthGuard | undefined> {
  const base = {
    format: 1 as const,
    generation: o.generation,
    time: ctx.now().toISOString(),
    command: ctx.command,
    revertTo: o.revertTo,
    checks: [],
  };
  if (o.skip) {
    await writeHealthRecord(ctx, { ...base, state: 'skipped' });
    crashPoint('health.skipped');
    return undefined;
  }
  const checks = [...packageChecks(ctx, o.generation, o.packages), ...(await systemChecks(ctx))];
  if (checks.length === 0) return undefined;
  await writeHealthRecord(ctx, { ...base, state: 'pending' });
  crashPoint('health.pending');
  return { generation: o.generation, revertTo: o.revertTo, checks, command: ctx.command };
}

/** Points `current` at generation N, or removes it (nothing installed) for null: both one atomic step. */
async function setCurrent(ctx: PkgContext, to: number | null): Promise<void> {
  if (to !== null) return switchCurrent(ctx, to);
  try {
    await rm(ctx.paths.current, { force: true });
    await fsyncDir(ctx.paths.root);
  } catch (e) {
    throw fromFsError(e, 'removing current');
  }
}

function failureText(r: HealthCheckResult): string {
  switch (r.reason) {
    case 'missing':
      return 'its program is missing';
    case 'not-executable':
      return 'its program is not executable';
    case 'could-not-start':
      return 'it could not start';
    case 'timeout':
      return `it did not finish within ${r.timeout} s and was killed`;
    case 'signal':
      return `it was killed by ${r.signal}`;
    default:
      return `it exited with status ${r.exitStatus}`;
  }
}

/**
 * Runs the checks of a change whose `current` has just switched. A failed
 * required check switches `current` back to `guard.revertTo` (one rename,
 * or removing the link when nothing was installed before), keeps the
 * failed generation, records the verdict and throws E_HEALTH_CHECK with
 * the check's name, exit status and output tail. Advisory failures are
 * warnings.
 */
export async function runGuard(ctx: PkgContext, guard: HealthGuard): Promise<HealthOutcome> {
  const results: HealthCheckResult[] = [];
  for (const c of guard.checks) {
    crashPoint('health.check');
    ctx.reporter.progress('health checks', results.length, guard.checks.length);
    const r = await runCheck(ctx, guard.generation, c);
    results.push(r);
    if (!r.ok && r.level === 'advisory') ctx.reporter.warn(`advisory health check ${r.name} failed: ${failureText(r)}`);
  }
  crashPoint('health.checked');
  const base = {
    format: 1 as const,
    generation: guard.generation,
    time: ctx.now().toISOString(),
    command: guard.command,
    revertTo: guard.revertTo,
    checks: results,
  };
  const failed = results.find((r) => !r.ok && r.level === 'required');
  if (!failed) {
    await writeHealthRecord(ctx, { ...base, state: 'passed' });
    crashPoint('health.recorded');
    return { state: 'passed', checks: results };
  }
  // Back first, then the record: a crash in between leaves the old generation current, which is what matters.
  await setCurrent(ctx, guard.revertTo);
  crashPoint('health.reverted');
  const fail = {
    name: failed.name,
    reason: failed.reason ?? 'exit',
    exitStatus: failed.exitStatus,
    signal: failed.signal,
    outputTail: failed.outputTail,
  };
  await writeHealthRecord(ctx, {
    ...base,
    state: 'failed',
    failed: fail,
    reverted: { to: guard.revertTo, time: ctx.now().toISOString(), by: guard.command },
  });
  crashPoint('health.recorded');
  const back = guard.revertTo === null ? 'nothing is installed again' : `generation ${guard.revertTo} is current again`;
  throw new SwpkgError('E_HEALTH_CHECK', `health check ${failed.name} failed: ${failureText(failed)}; ${back}`, {
    hint: `generation ${guard.generation} is kept for inspection (\`pkg generations\`); fix the cause and retry, or pass --no-health-check to keep a change whose check is wrong`,
    details: {
      generation: guard.generation,
      revertedTo: guard.revertTo,
      check: failed.name,
      ...(failed.package ? { package: failed.package } : {}),
      reason: fail.reason,
      exitStatus: failed.exitStatus,
      signal: failed.signal,
      outputTail: failed.outputTail,
      checks: results.map((r) => ({ name: r.name, level: r.level, ok: r.ok, ...(r.reason ? { reason: r.reason } : {}) })),
    },
  });
}

/**
 * What a writer (or the boot check) does before it trusts `current`:
 * repairs a damaged link (recoverCurrent), then undoes a switch whose
 * health checks never finished — `current` goes back to the generation the
 * pending record names (if that one is complete; else the newest complete
 * other one; else it stays, with a warning) and the record says so. Call
 * with the writer lock held. Returns the generation now current.
 */
export async function healCurrent(ctx: PkgContext, by: string = ctx.command): Promise<number | undefined> {
  const n = await recoverCurrent(ctx);
  if (n === undefined) return n;
  const rec = await readHealthRecord(ctx, n);
  if (rec?.state !== 'pending') return n;
  let to: number | null | undefined = rec.revertTo;
  if (to !== null && !(await checkGeneration(ctx, to)).complete) to = (await newestCompleteGeneration(ctx, n))?.generation;
  if (to === undefined) {
    ctx.reporter.warn(
      `the health checks of generation ${n} were interrupted and no complete generation is left to go back to; it stays current`,
    );
    await writeHealthRecord(ctx, { ...rec, state: 'interrupted', time: ctx.now().toISOString() });
    return n;
  }
  await setCurrent(ctx, to);
  crashPoint('health.undone');
  await writeHealthRecord(ctx, { ...rec, state: 'interrupted', reverted: { to, time: ctx.now().toISOString(), by } });
  ctx.reporter.warn(
    `the health checks of generation ${n} were interrupted; ${to === null ? 'current is removed (nothing was installed before)' : `generation ${to} is current again`}`,
  );
  return to ?? undefined;
}

/** `pkg health`: every check of the current generation's packages and the system folder, run now; nothing changes. */
export interface HealthReport {
  generation: number | null;
  healthy: boolean;
  checks: HealthCheckResult[];
}

export async function checkHealth(ctx: PkgContext): Promise<HealthReport> {
  // A reader: a damaged `current` is reported (E_STORE), not repaired.
  const cur = await currentNumber(ctx);
  const packages: { pkg: GenerationPackage; manifest: PackageManifest }[] = [];
  if (cur !== undefined) {
    for (const p of (await readGeneration(ctx, cur)).packages) packages.push({ pkg: p, manifest: await readStoreManifest(ctx, p.store) });
  }
  const planned = [...(cur === undefined ? [] : packageChecks(ctx, cur, packages)), ...(await systemChecks(ctx))];
  const checks: HealthCheckResult[] = [];
  for (const c of planned) {
    ctx.reporter.progress('health checks', checks.length, planned.length);
    checks.push(await runCheck(ctx, cur ?? null, c));
  }
  return { generation: cur ?? null, healthy: checks.every((c) => c.ok || c.level === 'advisory'), checks };
}
