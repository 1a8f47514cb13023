import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fsyncDir, readJsonIfExists, writeFileAtomic } from './fs-util.js';
import { currentNumber, listGenerationNumbers, switchCurrent } from './generation.js';
import { checkGeneration, type GenerationCheck } from './generation-check.js';
import { healCurrent } from './health.js';
import { withWriterLock } from './writer.js';
import { crashPoint } from './crash-point.js';

/** One fallback the boot check made: from the generation `current` named to the one it names now (null: none). */
export interface BootFallback {
  time: string;
  /** The generation `current` named at boot (null when the link itself was unusable). */
  from: number | null;
  /** The generation made current (null: none was complete, the guest booted with no packages). */
  to: number | null;
  /** Why `from` was not used: checkGeneration's first problems, or the link's error. */
  problems: string[];
  /** Newer generations than `to` that were incomplete too (passed over). */
  skipped: number[];
}

export interface BootCheckResult {
  /** ok: current was complete; fallback: switched to `to`; empty: nothing complete, `current` removed; fresh: nothing installed. */
  outcome: 'ok' | 'fallback' | 'empty' | 'fresh';
  current: number | null;
  fallback?: BootFallback;
}

/** Fallbacks kept in `db/boot-fallbacks.json` (newest last): enough to see a pattern, bounded. */
const KEEP_FALLBACKS = 20;

function fallbacksPath(ctx: PkgContext): string {
  return join(ctx.paths.db, 'boot-fallbacks.json');
}

/** The boot check's fallbacks, newest last (what `pkg generations` attaches to each generation). */
export async function readBootFallbacks(ctx: PkgContext): Promise<BootFallback[]> {
  try {
    const v = await readJsonIfExists(fallbacksPath(ctx));
    return Array.isArray(v) ? (v as BootFallback[]) : [];
  } catch {
    // A damaged record must not stop the boot or a listing: it is history, not state.
    return [];
  }
}

async function recordFallback(ctx: PkgContext, f: BootFallback): Promise<void> {
  const all = [...(await readBootFallbacks(ctx)), f].slice(-KEEP_FALLBACKS);
  await writeFileAtomic(fallbacksPath(ctx), JSON.stringify(all, null, 2) + '\n');
}

/**
 * `pkg boot-check`, run by the guest's init before anything uses
 * `/pkg/current`: the generation `current` names must pass
 * `checkGeneration` (record, store entries, tree — one lstat per path, no
 * hashing). If it does not, `current` is switched (one rename) to the
 * newest complete generation; with none complete the link is removed and
 * the guest boots with no packages. Either way the reason is returned (the
 * CLI prints it on the console) and recorded in `db/boot-fallbacks.json`,
 * which `pkg generations` shows. A switch whose health checks were
 * interrupted (a power cut during the checks) is undone as the next writer
 * would. Takes the writer lock: a lock from an earlier boot is stale.
 */
export async function bootCheck(ctx: PkgContext): Promise<BootCheckResult> {
  // Nothing installed (a fresh store disk): nothing to check, and nothing is written, not even the lock.
  if ((await lstat(ctx.paths.current).catch(() => undefined)) === undefined) return { outcome: 'fresh', current: null };
  return withWriterLock(ctx, async () => {
    let from: number | null = null;
    const problems: string[] = [];
    try {
      const n = await currentNumber(ctx);
      if (n === undefined) return { outcome: 'fresh', current: null };
      from = n;
      const c = await checkGeneration(ctx, n);
      if (c.complete) {
        const now = await healCurrent(ctx, 'pkg boot-check');
        return { outcome: 'ok', current: now ?? null };
      }
      problems.push(...c.problems);
    } catch (e) {
      if (!(e instanceof SwpkgError)) throw e;
      // A link to a generation that is gone still names it (currentNumber puts the number in details).
      const g = e.details['generation'];
      if (typeof g === 'number') from = g;
      problems.push(e.message);
    }
    // Newest first, as newestCompleteGeneration does, but keeping the ones passed over for the record.
    const skipped: number[] = [];
    let to: GenerationCheck | undefined;
    const all = await listGenerationNumbers(ctx);
    for (let i = all.length - 1; i >= 0 && !to; i--) {
      if (all[i] === from) continue;
      const c = await checkGeneration(ctx, all[i]!);
      if (c.complete) to = c;
      else skipped.push(all[i]!);
    }
    const fallback: BootFallback = { time: ctx.now().toISOString(), from, to: to?.generation ?? null, problems, skipped };
    if (to) {
      await switchCurrent(ctx, to.generation);
    } else {
      try {
        await rm(ctx.paths.current, { force: true });
        await fsyncDir(ctx.paths.root);
      } catch (e) {
        throw fromFsError(e, 'removing current');
      }
    }
    crashPoint('boot.switched');
    await recordFallback(ctx, fallback);
    return { outcome: to ? 'fallback' : 'empty', current: to?.generation ?? null, fallback };
  });
}
