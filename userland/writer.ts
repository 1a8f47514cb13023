import { join } from 'node:path';
import type { PkgContext } from './context.js';
import { acquireWriterLock } from './lock.js';
import { ensureDir, listDir, removeTree, exists } from './fs-util.js';
import { TMP_PREFIX, TRASH_PREFIX } from './paths.js';
import { strayCatalogFiles } from './catalog-store.js';
import { crashPoint } from './crash-point.js';
import { SwpkgError } from '../catalog/index.js';

/**
 * Staging and deletion leftovers of interrupted writers: `.tmp-*` (a store
 * entry or generation being built, an atomic write in progress), `.trash-*`
 * (being deleted), `current.new` (a switch not yet renamed), catalog bytes
 * no state points at. None is ever referenced by `current`, so removing
 * them is always safe for the next writer.
 */
export async function findLeftovers(ctx: PkgContext): Promise<string[]> {
  const p = ctx.paths;
  const out: string[] = [];
  for (const dir of [p.store, p.generations, p.db, p.rootsDir, p.keysDir, p.healthRecords, p.root]) {
    for (const n of await listDir(dir)) {
      if (n.startsWith(TMP_PREFIX) || n.startsWith(TRASH_PREFIX)) out.push(join(dir, n));
    }
  }
  if (await exists(p.currentNew)) out.push(p.currentNew);
  for (const n of await listDir(p.root)) if (n.startsWith('lock.stale-')) out.push(join(p.root, n));
  out.push(...(await strayCatalogFiles(ctx)));
  return out.sort();
}

export async function cleanupLeftovers(ctx: PkgContext): Promise<string[]> {
  const found = await findLeftovers(ctx);
  for (const path of found) await removeTree(path);
  return found;
}

/**
 * Runs `fn` as the only writer of the root: takes the lock (waiting up to
 * the lock timeout), removes what interrupted writers left, and releases
 * the lock however `fn` ends. A SIGKILL leaves the lock behind; the next
 * writer sees its holder is gone and takes it over.
 */
export async function withWriterLock<T>(ctx: PkgContext, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireWriterLock(ctx.paths.lock, { command: ctx.command, timeoutMs: ctx.lockTimeoutMs, reporter: ctx.reporter });
  try {
    crashPoint('lock.acquired');
    // The whole layout exists from the first write on, so a refused operation never leaves a new empty folder behind.
    for (const d of [ctx.paths.db, ctx.paths.store, ctx.paths.generations, ctx.paths.cache]) await ensureDir(d);
    const cleaned = await cleanupLeftovers(ctx);
    if (cleaned.length > 0) ctx.reporter.info(`removed ${cleaned.length} leftover(s) of an interrupted run`);
    return await fn();
  } finally {
    await lock.release();
  }
}

/** How a mutation's plan is shown and agreed to (`pkg` passes these; a library caller may pass neither). */
export interface PlanGate<P> {
  /** Only compute and return the plan: no lock, no change. */
  dryRun?: boolean;
  /** Shown the plan before it is applied when nobody is asked (--yes). */
  show?: (plan: P) => void;
  /**
   * Asks whether to apply the plan; false declines (nothing changes; not an error). Called with
   * the writer lock NOT held, so a person thinking does not block every other pkg.
   */
  confirm?: (plan: P) => Promise<boolean>;
}

export type GateOutcome<P, R> = { kind: 'dry-run' | 'empty' | 'declined'; plan: P } | { kind: 'applied'; plan: P; result: R };

/**
 * Plan, show, ask, apply (STYLE 7). The plan is computed from what is on disk; with a question it
 * is computed first without the lock, asked about, and computed again under the lock: if another
 * writer changed the root meanwhile, the agreed plan is no longer the one that would run, so
 * nothing is applied (E_CONFIRM, exit 2) and the person is asked to look again.
 */
export async function planThenApply<P, R>(
  ctx: PkgContext,
  gate: PlanGate<P>,
  steps: {
    /** Runs under the writer lock before the plan is made (repairs a damaged `current`); not for --dry-run. */
    prepare?: () => Promise<unknown>;
    plan: () => Promise<P>;
    isEmpty: (plan: P) => boolean;
    /** A stable text of what the plan would do, compared before and after the question. */
    identity: (plan: P) => string;
    apply: (plan: P) => Promise<R>;
  },
): Promise<GateOutcome<P, R>> {
  if (gate.dryRun === true) return { kind: 'dry-run', plan: await steps.plan() };
  let agreed: string | undefined;
  if (gate.confirm) {
    const asked = await steps.plan();
    if (steps.isEmpty(asked)) return { kind: 'empty', plan: asked };
    if (!(await gate.confirm(asked))) return { kind: 'declined', plan: asked };
    agreed = steps.identity(asked);
  }
  return withWriterLock(ctx, async (): Promise<GateOutcome<P, R>> => {
    await steps.prepare?.();
    const plan = await steps.plan();
    if (agreed !== undefined && steps.identity(plan) !== agreed) {
      throw new SwpkgError('E_CONFIRM', 'the root changed while you were answering (another pkg ran); nothing was changed', {
        hint: 'run the command again to see the new plan',
      });
    }
    if (steps.isEmpty(plan)) return { kind: 'empty', plan };
    if (agreed === undefined) gate.show?.(plan);
    return { kind: 'applied', plan, result: await steps.apply(plan) };
  });
}
