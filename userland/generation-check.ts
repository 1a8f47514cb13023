import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, type PackageManifest } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import {
  currentNumber,
  generationDir,
  listGenerationNumbers,
  expectedTree,
  readGeneration,
  switchCurrent,
  type Generation,
} from './generation.js';
import { readStoreManifest } from './store.js';

/** What `checkGeneration` found: complete, or the first problems (it stops early: the answer is already no). */
export interface GenerationCheck {
  generation: number;
  complete: boolean;
  problems: string[];
}

/** A broken generation is rejected on its first few problems; listing every one is doctor's job. */
const MAX_PROBLEMS = 5;

function kindOf(st: { isDirectory(): boolean; isSymbolicLink(): boolean; isFile(): boolean }): string {
  return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
}

/**
 * Whether generation N can be made current: its record reads, every store
 * entry it names is there with a readable manifest and every listed path
 * of the right type, and its tree holds every folder and link the packages
 * call for, each link pointing where it should. Cheap on purpose — one
 * lstat (or readlink) per path, no file is re-hashed (that is `pkg doctor`)
 * — so the client can run it before a fallback and the guest at boot
 * (issue 13) before it trusts `current`.
 */
export async function checkGeneration(ctx: PkgContext, n: number): Promise<GenerationCheck> {
  const problems: string[] = [];
  const done = (): GenerationCheck => ({ generation: n, complete: problems.length === 0, problems });
  let g: Generation;
  try {
    g = await readGeneration(ctx, n);
  } catch (e) {
    problems.push(`generations/${n}: ${(e as Error).message}`);
    return done();
  }
  const manifests: { pkg: Generation['packages'][number]; manifest: PackageManifest }[] = [];
  for (const p of g.packages) {
    let m: PackageManifest;
    try {
      if (!(await lstat(join(ctx.paths.store, p.store))).isDirectory()) throw new Error('not a folder');
      m = await readStoreManifest(ctx, p.store);
    } catch (e) {
      problems.push(`store/${p.store} (${p.name}@${p.version}): ${(e as Error).message}`);
      if (problems.length >= MAX_PROBLEMS) return done();
      continue;
    }
    for (const f of m.files) {
      const st = await lstat(join(ctx.paths.store, p.store, f.path)).catch(() => undefined);
      if (!st || kindOf(st) !== f.type) {
        problems.push(`store/${p.store}/${f.path}: ${st ? `is a ${kindOf(st)}, not a ${f.type}` : 'is missing'}`);
        if (problems.length >= MAX_PROBLEMS) return done();
      }
    }
    manifests.push({ pkg: p, manifest: m });
  }
  if (problems.length > 0) return done();
  const base = generationDir(ctx, n);
  let tree;
  try {
    tree = await expectedTree(manifests, base);
  } catch (e) {
    problems.push(`generations/${n}: ${(e as Error).message}`);
    return done();
  }
  for (const d of tree.dirs) {
    const st = await lstat(join(base, d)).catch(() => undefined);
    if (!st?.isDirectory()) {
      problems.push(`generations/${n}/${d}: folder is missing`);
      if (problems.length >= MAX_PROBLEMS) return done();
    }
  }
  for (const l of tree.links) {
    const target = await readlink(join(base, l.path)).catch(() => undefined);
    if (target !== l.target) {
      problems.push(`generations/${n}/${l.path}: ${target === undefined ? 'link is missing' : `points to ${target}, not ${l.target}`}`);
      if (problems.length >= MAX_PROBLEMS) return done();
    }
  }
  return done();
}

/** The newest generation that passes `checkGeneration`, skipping `except`; undefined when none does. */
export async function newestCompleteGeneration(ctx: PkgContext, except?: number): Promise<GenerationCheck | undefined> {
  const all = await listGenerationNumbers(ctx);
  for (let i = all.length - 1; i >= 0; i--) {
    if (all[i] === except) continue;
    const c = await checkGeneration(ctx, all[i]!);
    if (c.complete) return c;
  }
  return undefined;
}

/** The number `current` names when that is a link to a generation whose record reads; else the problem. */
async function readableCurrent(ctx: PkgContext): Promise<{ n: number | undefined } | { problem: SwpkgError; n?: number }> {
  let n: number | undefined;
  try {
    n = await currentNumber(ctx);
    if (n !== undefined) await readGeneration(ctx, n);
    return { n };
  } catch (e) {
    if (!(e instanceof SwpkgError)) throw e;
    return n === undefined ? { problem: e } : { problem: e, n };
  }
}

/**
 * Makes a damaged `current` usable before a writer builds on it (call with
 * the writer lock held). When `current` is not a link to a generation whose
 * record reads — the generation was deleted, the link points elsewhere —
 * it is switched, with one atomic rename, to the newest generation that
 * passes `checkGeneration`, and a warning says so. With no complete
 * generation left nothing changes and the E_STORE says exactly what to do.
 * Returns the generation now current (undefined on a fresh root).
 */
export async function recoverCurrent(ctx: PkgContext): Promise<number | undefined> {
  const state = await readableCurrent(ctx);
  if (!('problem' in state)) return state.n;
  const fallback = await newestCompleteGeneration(ctx, state.n);
  if (!fallback) {
    throw new SwpkgError('E_STORE', `${state.problem.message}, and no complete generation is left to fall back to`, {
      hint: `remove the link (rm ${ctx.paths.current}) to start again from an empty installed set; the store keeps its entries and reuses them`,
      details: { ...state.problem.details, current: ctx.paths.current },
      cause: state.problem,
    });
  }
  await switchCurrent(ctx, fallback.generation);
  ctx.reporter.warn(`${state.problem.message}; current now points at generation ${fallback.generation}, the newest complete one`);
  return fallback.generation;
}
