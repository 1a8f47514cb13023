import { join } from 'node:path';
import type { PkgContext } from './context.js';
import { acquireWriterLock } from './lock.js';
import { ensureDir, listDir, removeTree, exists } from './fs-util.js';
import { TMP_PREFIX, TRASH_PREFIX } from './paths.js';
import { strayCatalogFiles } from './catalog-store.js';
import { crashPoint } from './crash-point.js';

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
