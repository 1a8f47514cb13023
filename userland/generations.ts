import { randomBytes } from 'node:crypto';
import { lstat, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fsyncDir, listDir, removeTree } from './fs-util.js';
import { currentNumber, generationDir, listGenerationNumbers, readGeneration, switchCurrent } from './generation.js';
import { discardStoreEntry, listStoreEntries } from './store.js';
import { TRASH_PREFIX } from './paths.js';
import { planThenApply, type PlanGate } from './writer.js';
import { checkGeneration } from './generation-check.js';
import {
  healCurrent,
  prepareHealth,
  readHealthRecord,
  removeHealthRecord,
  runGuard,
  type HealthOutcome,
  type HealthRecord,
} from './health.js';
import { readStoreManifest } from './store.js';
import { readBootFallbacks, type BootFallback } from './boot-check.js';
import { crashPoint } from './crash-point.js';

export interface GenerationSummary {
  number: number;
  time: string;
  command: string;
  parent: number | null;
  packages: number;
  current: boolean;
  catalogs: Record<string, number>;
  /**
   * What its health checks found: absent when it had none; `failed` names the check, its exit
   * status and output tail, and where `current` went back to.
   */
  health?: Pick<HealthRecord, 'state' | 'failed' | 'reverted' | 'time'>;
  /** The latest boot-time fallback away from this generation (`from`) or to it (`to`), with the reason. */
  bootFallback?: BootFallback;
  /** Set when its generation.json does not read (the other fields are then empty): why. */
  damaged?: string;
}

/** `pkg generations`: every generation on disk, oldest first. A reader: no lock. */
export async function listGenerations(ctx: PkgContext): Promise<GenerationSummary[]> {
  let cur: number | undefined;
  try {
    cur = await currentNumber(ctx);
  } catch {
    cur = undefined;
  }
  const out: GenerationSummary[] = [];
  const fallbacks = await readBootFallbacks(ctx);
  for (const n of await listGenerationNumbers(ctx)) {
    const h = await readHealthRecord(ctx, n);
    const boot = fallbacks.findLast((f) => f.from === n || f.to === n);
    let g;
    try {
      g = await readGeneration(ctx, n);
    } catch (e) {
      if (!(e instanceof SwpkgError)) throw e;
      // One unreadable record (the generation a boot check left) must not hide the others or the reason.
      out.push({
        number: n,
        time: '',
        command: '',
        parent: null,
        packages: 0,
        current: n === cur,
        catalogs: {},
        damaged: e.message,
        ...(boot ? { bootFallback: boot } : {}),
      });
      continue;
    }
    out.push({
      number: n,
      time: g.time,
      command: g.command,
      parent: g.parent,
      packages: g.packages.length,
      current: n === cur,
      catalogs: g.catalogs,
      ...(h
        ? {
            health: {
              state: h.state,
              time: h.time,
              ...(h.failed ? { failed: h.failed } : {}),
              ...(h.reverted ? { reverted: h.reverted } : {}),
            },
          }
        : {}),
      ...(boot ? { bootFallback: boot } : {}),
    });
  }
  return out;
}

export interface RollbackResult {
  from: number | null;
  to: number;
  changed: boolean;
  dryRun?: boolean;
  /** The person answered no: nothing was changed. */
  declined?: boolean;
  /** The checks of the packages the rollback brought back (absent when there were none). */
  health?: HealthOutcome;
}

/** A generation may become current only if it is complete (checkGeneration: record, store entries, tree). */
async function assertComplete(ctx: PkgContext, n: number): Promise<void> {
  const c = await checkGeneration(ctx, n);
  if (!c.complete) {
    throw new SwpkgError('E_STORE', `generation ${n} is incomplete: ${c.problems[0]}`, {
      hint: 'choose another generation (`pkg generations`)',
      details: { generation: n, problems: c.problems },
    });
  }
}

/**
 * `pkg rollback [--to N]`: makes an older generation current again (default:
 * the newest one older than current). Only `current` changes, in one
 * rename, so a crash leaves either generation current. Also the way out of
 * a dangling `current` (`--to N`). Shown and confirmed like any change.
 */
export async function rollback(
  ctx: PkgContext,
  o: { to?: number; healthCheck?: boolean } & PlanGate<RollbackResult> = {},
): Promise<RollbackResult> {
  const outcome = await planThenApply(ctx, o, {
    plan: () => planRollback(ctx, o.to),
    isEmpty: (p) => !p.changed,
    identity: (p) => `${p.from}->${p.to}`,
    apply: async (p) => {
      crashPoint('rollback.checked');
      // The packages the rollback brings back (not in the generation it leaves) run their checks, as an upgrade's would.
      const leaving = new Set(
        p.from !== null ? (await readGeneration(ctx, p.from).catch(() => undefined))?.packages.map((x) => x.store) : [],
      );
      const back = (await readGeneration(ctx, p.to)).packages.filter((x) => !leaving.has(x.store));
      const guard = await prepareHealth(ctx, {
        generation: p.to,
        revertTo: p.from,
        packages: await Promise.all(back.map(async (x) => ({ pkg: x, manifest: await readStoreManifest(ctx, x.store) }))),
        skip: o.healthCheck === false,
      });
      await switchCurrent(ctx, p.to);
      return guard ? await runGuard(ctx, guard) : o.healthCheck === false ? { state: 'skipped' as const, checks: [] } : undefined;
    },
  });
  if (outcome.kind === 'dry-run') return { ...outcome.plan, dryRun: true };
  if (outcome.kind === 'declined') return { ...outcome.plan, declined: true };
  if (outcome.kind === 'applied' && outcome.result) return { ...outcome.plan, health: outcome.result };
  return outcome.plan;
}

/** Which generation a rollback makes current, checked complete; reads only. */
async function planRollback(ctx: PkgContext, requested: number | undefined): Promise<RollbackResult> {
  let cur: number | undefined;
  try {
    cur = await currentNumber(ctx);
  } catch (e) {
    if (requested === undefined) throw e;
    cur = undefined;
  }
  const all = await listGenerationNumbers(ctx);
  let to = requested;
  if (to === undefined) {
    const older = all.filter((n) => cur !== undefined && n < cur);
    to = older[older.length - 1];
    if (to === undefined) {
      throw new SwpkgError(
        'E_NOT_FOUND',
        cur === undefined ? 'nothing is installed yet' : `generation ${cur} is the oldest; there is nothing to roll back to`,
        {
          hint: 'see `pkg generations`',
          details: { current: cur, generations: all },
        },
      );
    }
  }
  if (!all.includes(to)) {
    throw new SwpkgError('E_NOT_FOUND', `generation ${to} does not exist`, {
      hint: 'see `pkg generations`',
      details: { generation: to, generations: all },
    });
  }
  if (to === cur) return { from: cur, to, changed: false };
  await assertComplete(ctx, to);
  return { from: cur ?? null, to, changed: true };
}

export interface GcResult {
  removedGenerations: number[];
  removedStoreEntries: string[];
  removedCacheFiles: string[];
  freedBytes: number;
  /** Generations kept: the current one and the newest `keep` others. */
  keptGenerations: number[];
  dryRun?: boolean;
  /** The person answered no: nothing was changed. */
  declined?: boolean;
}

async function du(path: string): Promise<number> {
  let total = 0;
  let st;
  try {
    st = await lstat(path);
  } catch {
    return 0;
  }
  total += st.size;
  if (st.isDirectory()) for (const n of await readdir(path)) total += await du(join(path, n));
  return total;
}

const STALE_PART_MS = 7 * 24 * 3600 * 1000;

/**
 * `pkg gc [--keep N]`: deletes generations except the current one and the newest N others, then
 * store entries no remaining generation references, then finished downloads and week-old partial
 * ones. The list is a plan, shown and confirmed like any change (deleted generations are rollback
 * targets). Each deletion renames the entry aside first, so a crash never leaves a half-deleted
 * generation or store entry under its real name.
 */
export async function collectGarbage(ctx: PkgContext, o: { keep?: number } & PlanGate<GcResult> = {}): Promise<GcResult> {
  const keep = o.keep ?? 5;
  if (!Number.isInteger(keep) || keep < 0)
    throw new SwpkgError('E_USAGE', '--keep must be a whole number (generations to keep besides the current one)', { details: { keep } });
  const outcome = await planThenApply(ctx, o, {
    // Never collect on a damaged `current`: it is repaired first, so the generation it falls back to is kept.
    prepare: () => healCurrent(ctx),
    plan: () => planGarbage(ctx, keep),
    isEmpty: (p) => p.removedGenerations.length + p.removedStoreEntries.length + p.removedCacheFiles.length === 0,
    identity: (p) => JSON.stringify([p.removedGenerations, p.removedStoreEntries, p.removedCacheFiles]),
    apply: async (p) => {
      for (const n of p.removedGenerations) {
        const aside = join(ctx.paths.generations, `${TRASH_PREFIX}${n}-${randomBytes(4).toString('hex')}`);
        try {
          await rename(generationDir(ctx, n), aside);
          await fsyncDir(ctx.paths.generations);
        } catch (e) {
          throw fromFsError(e, `removing generation ${n}`);
        }
        crashPoint('gc.generation');
        await removeTree(aside);
        await removeHealthRecord(ctx, n);
      }
      for (const dir of p.removedStoreEntries) {
        await discardStoreEntry(ctx, dir);
        crashPoint('gc.store');
      }
      for (const n of p.removedCacheFiles) await rm(join(ctx.paths.cache, n), { recursive: true, force: true });
    },
  });
  if (outcome.kind === 'dry-run') return { ...outcome.plan, dryRun: true };
  if (outcome.kind === 'declined') return { ...outcome.plan, declined: true };
  return outcome.plan;
}

/** What gc would delete and free; reads only. */
async function planGarbage(ctx: PkgContext, keep: number): Promise<GcResult> {
  const cur = await currentNumber(ctx);
  const all = await listGenerationNumbers(ctx);
  const others = all.filter((n) => n !== cur);
  const kept = new Set(keep === 0 ? [] : others.slice(-keep));
  if (cur !== undefined) kept.add(cur);
  const plan: GcResult = {
    removedGenerations: [],
    removedStoreEntries: [],
    removedCacheFiles: [],
    freedBytes: 0,
    keptGenerations: [...kept].sort((a, b) => a - b),
  };
  for (const n of all) {
    if (kept.has(n)) continue;
    plan.freedBytes += await du(generationDir(ctx, n));
    plan.removedGenerations.push(n);
  }
  const referenced = new Set<string>();
  for (const n of kept) for (const p of (await readGeneration(ctx, n)).packages) referenced.add(p.store);
  for (const dir of await listStoreEntries(ctx)) {
    if (referenced.has(dir)) continue;
    plan.freedBytes += await du(join(ctx.paths.store, dir));
    plan.removedStoreEntries.push(dir);
  }
  for (const n of await listDir(ctx.paths.cache)) {
    const st = await stat(join(ctx.paths.cache, n)).catch(() => undefined);
    if (!st) continue;
    if (n.endsWith('.part') && Date.now() - st.mtimeMs < STALE_PART_MS) continue;
    plan.freedBytes += st.size;
    plan.removedCacheFiles.push(n);
  }
  return plan;
}
