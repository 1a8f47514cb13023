import { lstat, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { SwpkgError, type PackageManifest } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { exists, findUnexpectedPaths, listDir } from './fs-util.js';
import {
  currentNumber,
  generationDir,
  listGenerationNumbers,
  expectedTree,
  readGeneration,
  GENERATION_FILE,
  type Generation,
  type GenerationRelease,
} from './generation.js';
import { checkStoreEntry, listStoreEntries, readStoreManifest } from './store.js';
import { findLeftovers } from './writer.js';
import { newestCompleteGeneration } from './generation-check.js';
import { readLockHolder } from './lock.js';
import { readBootFallbacks } from './boot-check.js';

export interface DoctorProblem {
  /** dangling-current: `current` unusable; drift: a store file differs from its manifest; tree: a generation link is wrong or missing; generation: a generation needs a store entry that is gone. */
  kind: 'dangling-current' | 'drift' | 'tree' | 'generation';
  path: string;
  package?: string;
  detail: string;
}

/** `pkg doctor`: what is wrong (problems) and what is merely left over (cleaned by the next writer or `pkg gc`). */
export interface DoctorReport {
  healthy: boolean;
  root: string;
  current: number | null;
  generations: number[];
  packages: number;
  filesChecked: number;
  problems: DoctorProblem[];
  /** Staging and trash of interrupted runs, relative to the root; the next writer removes them. */
  leftovers: string[];
  /** Store entries no generation references; `pkg gc` removes them. */
  unreferenced: string[];
  /** Interrupted downloads, resumed by the next install. */
  partialDownloads: string[];
  /**
   * Incomplete generations the boot check already left (recorded in db/boot-fallbacks.json): known
   * and no longer current, so not problems; `pkg gc` removes them once they are older than the kept ones.
   */
  abandoned: string[];
  lock: { pid?: number; command?: string; stale: boolean } | null;
  /** The release the current generation installed (issue 15), or null. */
  release: GenerationRelease | null;
  /** Each package of the current generation: its version and the SHA-256 of the package file it came from. */
  installed: { name: string; version: string; sha256: string; repo: string | null }[];
  /** What this run checked, in words: so a report says what its "healthy" rests on. */
  verified: string[];
}

async function checkTree(
  ctx: PkgContext,
  g: Generation,
  manifests: Map<string, PackageManifest>,
  problems: DoctorProblem[],
): Promise<void> {
  const base = generationDir(ctx, g.number);
  let plan;
  try {
    plan = await expectedTree(
      g.packages.filter((p) => manifests.has(p.store)).map((p) => ({ pkg: p, manifest: manifests.get(p.store)! })),
      base,
    );
  } catch (e) {
    problems.push({ kind: 'tree', path: relative(ctx.paths.root, base), detail: (e as Error).message });
    return;
  }
  const expected = new Map<string, string | null>();
  for (const d of plan.dirs) expected.set(d, null);
  for (const l of plan.links) {
    expected.set(l.path, l.target);
    const segs = l.path.split('/');
    for (let k = 1; k < segs.length; k++) if (!expected.has(segs.slice(0, k).join('/'))) expected.set(segs.slice(0, k).join('/'), null);
  }
  for (const [path, target] of expected) {
    const abs = join(base, path);
    let st;
    try {
      st = await lstat(abs);
    } catch {
      problems.push({
        kind: 'tree',
        path: relative(ctx.paths.root, abs),
        detail: target === null ? 'folder is missing' : 'link is missing',
      });
      continue;
    }
    if (target === null) {
      if (!st.isDirectory()) problems.push({ kind: 'tree', path: relative(ctx.paths.root, abs), detail: 'should be a folder' });
    } else if (!st.isSymbolicLink() || (await readlink(abs)) !== target) {
      problems.push({ kind: 'tree', path: relative(ctx.paths.root, abs), detail: `should be a link to ${target}` });
    }
  }
  const strays = await findUnexpectedPaths(
    base,
    (p) => (!expected.has(p) ? 'unexpected' : expected.get(p) === null ? 'folder' : 'expected'),
    GENERATION_FILE,
  );
  for (const p of strays) {
    problems.push({ kind: 'tree', path: relative(ctx.paths.root, join(base, p)), detail: 'is not part of any installed package' });
  }
}

/**
 * Checks the root without changing it (a reader: no lock): `current` points
 * at a complete generation; every installed file re-hashes to its manifest;
 * the generation tree links exactly what the packages hold; every
 * generation's store entries exist. Leftovers of interrupted runs are
 * listed, not counted as problems: the next writer removes them.
 */
export async function doctor(ctx: PkgContext): Promise<DoctorReport> {
  const problems: DoctorProblem[] = [];
  let cur: number | undefined;
  try {
    cur = await currentNumber(ctx);
  } catch (e) {
    const fallback = await newestCompleteGeneration(ctx);
    problems.push({
      kind: 'dangling-current',
      path: 'current',
      detail: `${e instanceof SwpkgError ? e.message : String(e)}; ${
        fallback
          ? `the next change falls back to generation ${fallback.generation}, the newest complete one (or \`pkg rollback --to ${fallback.generation}\` now)`
          : `no complete generation is left: remove ${ctx.paths.current} to start from an empty installed set`
      }`,
    });
  }
  const gens = await listGenerationNumbers(ctx);
  const left = new Set((await readBootFallbacks(ctx)).flatMap((f) => [f.from, ...(f.skipped ?? [])]));
  const abandoned: string[] = [];
  const referenced = new Set<string>();
  let filesChecked = 0;
  let packages = 0;
  let release: GenerationRelease | null = null;
  let installed: DoctorReport['installed'] = [];
  for (const n of gens) {
    let g: Generation;
    try {
      g = await readGeneration(ctx, n);
    } catch (e) {
      if (n !== cur && left.has(n)) abandoned.push(`generations/${n}: ${(e as Error).message} (left at boot)`);
      else problems.push({ kind: 'generation', path: `generations/${n}`, detail: (e as Error).message });
      continue;
    }
    for (const p of g.packages) {
      referenced.add(p.store);
      if (!(await exists(join(ctx.paths.store, p.store)))) {
        if (n !== cur && left.has(n)) {
          abandoned.push(`generations/${n}: store/${p.store} is gone (left at boot)`);
          continue;
        }
        problems.push({
          kind: 'generation',
          path: `store/${p.store}`,
          package: `${p.name}@${p.version}`,
          detail: `generation ${n} needs it, but it is gone`,
        });
      }
    }
    if (n !== cur) continue;
    packages = g.packages.length;
    release = g.release ?? null;
    installed = g.packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256, repo: p.repo }));
    const manifests = new Map<string, PackageManifest>();
    for (const p of g.packages) {
      if (!(await exists(join(ctx.paths.store, p.store)))) continue;
      const found = await checkStoreEntry(ctx, p.store);
      for (const f of found)
        problems.push({ kind: 'drift', path: `store/${f.path}`, package: `${p.name}@${p.version}`, detail: `${f.kind}: ${f.detail}` });
      try {
        const m = await readStoreManifest(ctx, p.store);
        manifests.set(p.store, m);
        filesChecked += m.files.length;
      } catch {
        // reported by checkStoreEntry as a manifest problem
      }
    }
    await checkTree(ctx, g, manifests, problems);
  }
  const leftovers = (await findLeftovers(ctx)).map((p) => relative(ctx.paths.root, p));
  const holder = await readLockHolder(ctx.paths.lock);
  if (holder?.stale) leftovers.push('lock');
  const unreferenced = (await listStoreEntries(ctx)).filter((d) => !referenced.has(d)).map((d) => `store/${d}`);
  const partialDownloads = (await listDir(ctx.paths.cache)).filter((n) => n.endsWith('.part')).map((n) => `cache/${n}`);
  return {
    healthy: problems.length === 0,
    root: ctx.paths.root,
    current: cur ?? null,
    generations: gens,
    packages,
    filesChecked,
    problems,
    leftovers: leftovers.sort(),
    unreferenced,
    partialDownloads,
    abandoned,
    lock: holder ? { ...(holder.holder ? { pid: holder.holder.pid, command: holder.holder.command } : {}), stale: holder.stale } : null,
    release,
    installed,
    verified: [
      'current points at a complete generation',
      `every installed file of generation ${cur ?? 'none'} re-hashed against its package manifest (${filesChecked} paths)`,
      'the generation tree links exactly what its packages hold',
      "every generation's store entries exist",
      ...(release
        ? [
            `the generation records release ${release.id} v${release.version}, whose signed manifest (SHA-256 ${release.digest}) was verified against the release keys of ${release.repo} when it was installed`,
          ]
        : []),
    ],
  };
}
