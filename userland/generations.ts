import { randomBytes } from 'node:crypto';
import { lstat, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { fsyncDir, listDir, removeTree } from './fs-util.js';
import { currentNumber, generationDir, listGenerationNumbers, readGeneration, switchCurrent } from './generation.js';
import { discardStoreEntry, listStoreEntries } from './store.js';
import { TRASH_PREFIX } from './paths.js';
import { withWriterLock } from './writer.js';
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
 * a dangling `current` (`--to N`).
 */
export async function rollback(ctx: PkgContext, o: { to?: number; healthCheck?: boolean } = {}): Promise<RollbackResult> {
  return withWriterLock(ctx, async () => {
    let cur: number | undefined;
    try {
      cur = await currentNumber(ctx);
    } catch (e) {
      if (o.to === undefined) throw e;
      cur = undefined;
    }
    const all = await listGenerationNumbers(ctx);
    let to = o.to;
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
    crashPoint('rollback.checked');
    // The packages the rollback brings back (not in the generation it leaves) run their checks, as an upgrade's would.
    const leaving = new Set(cur !== undefined ? (await readGeneration(ctx, cur).catch(() => undefined))?.packages.map((p) => p.store) : []);
    const back = (await readGeneration(ctx, to)).packages.filter((p) => !leaving.has(p.store));
    const guard = await prepareHealth(ctx, {
      generation: to,
      revertTo: cur ?? null,
      packages: await Promise.all(back.map(async (p) => ({ pkg: p, manifest: await readStoreManifest(ctx, p.store) }))),
      skip: o.healthCheck === false,
    });
    await switchCurrent(ctx, to);
    ctx.reporter.info(`current is now generation ${to}${cur !== undefined ? ` (was ${cur})` : ''}`);
    const health = guard ? await runGuard(ctx, guard) : o.healthCheck === false ? { state: 'skipped' as const, checks: [] } : undefined;
    return { from: cur ?? null, to, changed: true, ...(health ? { health } : {}) };
  });
}

export interface GcResult {
  removedGenerations: number[];
  removedStoreEntries: string[];
  removedCacheFiles: string[];
  freedBytes: number;
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
 * `pkg gc [--keep N]`: deletes generations beyond the newest N (never the
 * current one), then store entries no remaining generation references, then
 * finished downloads and week-old partial ones. Each deletion renames the
 * entry aside first, so a crash never leaves a half-deleted generation or
 * store entry under its real name.
 */
export async function collectGarbage(ctx: PkgContext, o: { keep?: number } = {}): Promise<GcResult> {
  const keep = o.keep ?? 5;
  if (!Number.isInteger(keep) || keep < 1)
    throw new SwpkgError('E_USAGE', '--keep must be a whole number of at least 1', { details: { keep } });
  return withWriterLock(ctx, async () => {
    // Never collect on a damaged `current`: it is repaired first, so the generation it falls back to is kept.
    const cur = await healCurrent(ctx);
    const all = await listGenerationNumbers(ctx);
    const kept = new Set(all.slice(-keep));
    if (cur !== undefined) kept.add(cur);
    const result: GcResult = { removedGenerations: [], removedStoreEntries: [], removedCacheFiles: [], freedBytes: 0 };
    for (const n of all) {
      if (kept.has(n)) continue;
      const aside = join(ctx.paths.generations, `${TRASH_PREFIX}${n}-${randomBytes(4).toString('hex')}`);
      try {
        await rename(generationDir(ctx, n), aside);
        await fsyncDir(ctx.paths.generations);
      } catch (e) {
        throw fromFsError(e, `removing generation ${n}`);
      }
      crashPoint('gc.generation');
      result.freedBytes += await du(aside);
      await removeTree(aside);
      await removeHealthRecord(ctx, n);
      result.removedGenerations.push(n);
    }
    const referenced = new Set<string>();
    for (const n of kept) for (const p of (await readGeneration(ctx, n)).packages) referenced.add(p.store);
    for (const dir of await listStoreEntries(ctx)) {
      if (referenced.has(dir)) continue;
      result.freedBytes += await du(join(ctx.paths.store, dir));
      await discardStoreEntry(ctx, dir);
      crashPoint('gc.store');
      result.removedStoreEntries.push(dir);
    }
    for (const n of await listDir(ctx.paths.cache)) {
      const path = join(ctx.paths.cache, n);
      const st = await stat(path).catch(() => undefined);
      if (!st) continue;
      if (n.endsWith('.part') && Date.now() - st.mtimeMs < STALE_PART_MS) continue;
      result.freedBytes += st.size;
      await rm(path, { recursive: true, force: true });
      result.removedCacheFiles.push(n);
    }
    ctx.reporter.info(
      `removed ${result.removedGenerations.length} generation(s), ${result.removedStoreEntries.length} store entr${result.removedStoreEntries.length === 1 ? 'y' : 'ies'}, ${result.removedCacheFiles.length} cached file(s)`,
    );
    return result;
  });
}
