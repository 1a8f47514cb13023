import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile, readlink, rename, rm, symlink, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, fromFsError, parseJson, type PackageManifest } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { ensureDir, fsyncDir, listDir } from './fs-util.js';
import { TMP_PREFIX } from './paths.js';
import { crashPoint } from './crash-point.js';

/** One installed package as a generation records it. */
export interface GenerationPackage {
  name: string;
  version: string;
  arch: string;
  abi: string;
  /** SHA-256 of the `.swpkg` bytes; also the first part of the store folder's name. */
  sha256: string;
  size: number;
  installedSize: number;
  /** Store folder name under `store/`. */
  store: string;
  /** In the world: asked for by a person, not pulled in as a dependency. */
  explicit: boolean;
  /** Repository it came from; null for a local `.swpkg` file. */
  repo: string | null;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
}

/** `generations/N/generation.json`. */
export interface Generation {
  format: 1;
  number: number;
  time: string;
  command: string;
  /** The generation that was current when this one was built. */
  parent: number | null;
  /** Catalog version per repository the packages were resolved against. */
  catalogs: Record<string, number>;
  packages: GenerationPackage[];
  /** Set when the generation installed a release's exact set (issue 15); absent otherwise. */
  release?: GenerationRelease;
}

/** The release a generation was built from: which one, and the SHA-256 of the signed manifest payload. */
export interface GenerationRelease {
  id: string;
  version: number;
  digest: string;
  repo: string;
}

/** The generation metadata file, at the top of each generation beside the package tree. */
export const GENERATION_FILE = 'generation.json';

function damaged(path: string, why: string): SwpkgError {
  return new SwpkgError('E_STORE', `${path} is damaged: ${why}`, {
    hint: 'run `pkg doctor`; `pkg rollback --to N` switches to another generation',
    details: { path },
  });
}

export function generationDir(ctx: PkgContext, n: number): string {
  return join(ctx.paths.generations, String(n));
}

export async function readGeneration(ctx: PkgContext, n: number): Promise<Generation> {
  const path = join(generationDir(ctx, n), GENERATION_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SwpkgError('E_NOT_FOUND', `generation ${n} does not exist`, { hint: 'see `pkg generations`', details: { generation: n } });
    }
    throw fromFsError(e, `reading ${path}`);
  }
  const g = parseJson(text, path) as Generation;
  if (!g || g.format !== 1 || g.number !== n || !Array.isArray(g.packages)) throw damaged(path, 'not a generation record');
  return g;
}

/** Generation numbers present on disk, ascending (staging folders excluded). */
export async function listGenerationNumbers(ctx: PkgContext): Promise<number[]> {
  return (await listDir(ctx.paths.generations))
    .filter((n) => /^[1-9][0-9]*$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * The number `current` points at, or undefined when nothing was ever
 * installed. A `current` that is not a link to `generations/N` with a
 * readable generation is "dangling": E_STORE, which `pkg doctor` reports.
 */
export async function currentNumber(ctx: PkgContext): Promise<number | undefined> {
  let target: string;
  try {
    target = await readlink(ctx.paths.current);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new SwpkgError('E_STORE', `${ctx.paths.current} is not a symlink`, {
      hint: 'run `pkg doctor`; `pkg rollback --to N` points it at a generation again',
      details: { path: ctx.paths.current, errno: code },
    });
  }
  const m = /^generations\/([1-9][0-9]*)$/.exec(target);
  if (!m)
    throw new SwpkgError('E_STORE', `current points to ${target}, not to a generation`, { hint: 'run `pkg doctor`', details: { target } });
  const n = Number(m[1]);
  try {
    await lstat(join(generationDir(ctx, n), GENERATION_FILE));
  } catch {
    throw new SwpkgError('E_STORE', `current points to generation ${n}, which does not exist (dangling)`, {
      hint: 'the next install, remove, upgrade or gc falls back to the newest complete generation; or choose one with `pkg rollback --to N`',
      details: { target, generation: n },
    });
  }
  return n;
}

/** The active generation, or undefined on a fresh root. Readers call this without any lock. */
export async function readCurrent(ctx: PkgContext): Promise<Generation | undefined> {
  const n = await currentNumber(ctx);
  return n === undefined ? undefined : readGeneration(ctx, n);
}

/** What a generation's tree holds: real folders, and links (into the store, or a package's own symlink). */
export interface TreePlan {
  dirs: string[];
  links: TreeLink[];
}

export interface TreeLink {
  path: string;
  target: string;
  owner: string;
  /**
   * A folder only this package has anything in, linked whole into its store entry (as Nix's
   * buildEnv does): one link where a link per file and a folder per folder would be. A
   * generation written before folder links has a real folder here, with what
   * `planTree(inputs, { folderLinks: false })` lists below it; the checks accept either.
   */
  folder?: true;
}

export interface TreeInput {
  pkg: Pick<GenerationPackage, 'name' | 'version' | 'store'>;
  manifest: PackageManifest;
}

/**
 * A package symlink resolves from where it really lies: inside a folder linked whole, that is
 * the store entry, not the merged tree. So a folder is linked whole only if every symlink in it
 * names a sibling (a plain name: `libz.so -> libz.so.1`), which resolves the same in both; a
 * target with a `/` (`../bin/tool`) could mean another package's file in the merged tree.
 */
function staysInFolder(target: string): boolean {
  return !target.includes('/') && target !== '.' && target !== '..';
}

/**
 * Merges every package's files into one tree, or refuses with
 * E_FILE_CONFLICT naming both owners of a path. Folders may be shared;
 * anything else at one path (or a path below another package's file or
 * symlink) is a conflict. Pure: runs before anything is extracted.
 *
 * The highest folders only one package has anything in are linked whole
 * (`folderLinks`, default true); every other file gets its own link.
 */
export function planTree(inputs: TreeInput[], o: { folderLinks?: boolean } = {}): TreePlan {
  const owner = new Map<string, { type: 'dir' | 'file' | 'symlink'; who: string[] }>();
  const conflicts: { path: string; owners: string[] }[] = [];
  const note = (path: string, a: string, b: string): void => {
    if (conflicts.length < 50) conflicts.push({ path, owners: [a, b] });
  };
  owner.set(GENERATION_FILE, { type: 'file', who: ['pkg (generation record)'] });
  const sorted = [...inputs].sort((a, b) => (a.pkg.name < b.pkg.name ? -1 : 1));
  // Folder -> the one package with anything at or below it (null: more than one, or not linkable whole).
  const soleOwner = new Map<string, string | null>();
  if (o.folderLinks !== false) {
    for (const { pkg, manifest } of sorted) {
      const me = `${pkg.name}@${pkg.version}`;
      for (const f of manifest.files) {
        const ps = f.type === 'dir' ? [...parents(f.path), f.path] : parents(f.path);
        const escapes = f.type === 'symlink' && !staysInFolder(f.target!);
        for (const p of ps) {
          const cur = soleOwner.get(p);
          soleOwner.set(p, escapes || (cur !== undefined && cur !== me) ? null : me);
        }
      }
    }
  }
  const links: TreeLink[] = [];
  // Folders linked whole, and so everything below them is reached through the link.
  const wholeFolders = new Set<string>();
  const insideWhole = (path: string): boolean => parents(path).some((p) => wholeFolders.has(p));
  for (const { pkg, manifest } of sorted) {
    const me = `${pkg.name}@${pkg.version}`;
    const intoStore = (path: string): string => `${'../'.repeat(path.split('/').length + 1)}store/${pkg.store}/${path}`;
    for (const f of manifest.files) {
      const above = parents(f.path);
      // A path below someone else's file or symlink would be written through it.
      let blocked = false;
      for (const p of above) {
        const parent = owner.get(p);
        if (parent && parent.type !== 'dir') {
          note(f.path, parent.who[0]!, me);
          blocked = true;
          break;
        }
      }
      if (blocked) continue;
      const prev = owner.get(f.path);
      if (prev) {
        if (prev.type === 'dir' && f.type === 'dir') {
          prev.who.push(me);
          continue;
        }
        note(f.path, prev.who[0]!, me);
        continue;
      }
      owner.set(f.path, { type: f.type, who: [me] });
      if (wholeFolders.size > 0 && above.some((p) => wholeFolders.has(p))) continue;
      if (f.type === 'dir' && soleOwner.get(f.path) === me) {
        wholeFolders.add(f.path);
        links.push({ path: f.path, target: intoStore(f.path), owner: me, folder: true });
      } else if (f.type === 'file') {
        // Relative, so a store built on the host works mounted anywhere: up to the root, then into store/.
        links.push({ path: f.path, target: intoStore(f.path), owner: me });
      } else if (f.type === 'symlink') {
        // A package's own symlink is copied as it is: it resolves inside the merged tree, also across packages.
        links.push({ path: f.path, target: f.target!, owner: me });
      }
    }
  }
  const first = conflicts[0];
  if (first) {
    throw new SwpkgError(
      'E_FILE_CONFLICT',
      `${first.path} is in both ${first.owners[0]} and ${first.owners[1]}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more conflicting path(s))` : ''}`,
      {
        hint: `remove one of them first (pkg remove ${first.owners[0]!.split('@')[0]}), or install another version`,
        details: { path: first.path, owners: first.owners, conflicts },
      },
    );
  }
  const dirs = [...owner.entries()]
    .filter(([p, v]) => v.type === 'dir' && !wholeFolders.has(p) && !insideWhole(p))
    .map(([p]) => p)
    .sort();
  return { dirs, links };
}

/**
 * The tree generation folder `base` should hold: planTree's, except that where a folder link
 * is a real folder on disk (a generation written before folder links), the per-file entries
 * below it stand in for the link. What the checks (checkGeneration, doctor) compare against.
 */
export async function expectedTree(inputs: TreeInput[], base: string): Promise<TreePlan> {
  const plan = planTree(inputs);
  const older: string[] = [];
  for (const l of plan.links) {
    if (l.folder && (await lstat(join(base, l.path)).catch(() => undefined))?.isDirectory()) older.push(l.path);
  }
  if (older.length === 0) return plan;
  const flat = planTree(inputs, { folderLinks: false });
  const below = (p: string): boolean => older.some((f) => p === f || p.startsWith(`${f}/`));
  return {
    dirs: [...plan.dirs, ...flat.dirs.filter(below)].sort(),
    links: [...plan.links.filter((l) => !older.includes(l.path)), ...flat.links.filter((l) => below(l.path))],
  };
}

/** Every folder on the way to `path`, shallowest first. */
function parents(path: string): string[] {
  // Slices at each '/': planTree asks this for every path of every package (20 000 for the bench corpus).
  const out: string[] = [];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}

/** A generation written into `generations/.tmp-*`, not yet durable nor under its number. */
export interface StagedGeneration {
  tmp: string;
  generation: Generation;
}

/**
 * Writes generation N beside the others into `generations/.tmp-*`: the tree
 * of links and generation.json, nothing synced. The links may name store
 * entries that are still staged: nothing follows them before `current` does.
 * The transaction makes this folder durable with its store entries in one
 * barrier, then commitGeneration puts it under its number. A crash before
 * that leaves a `.tmp-*` the next writer removes.
 */
export async function stageGeneration(
  ctx: PkgContext,
  o: {
    packages: GenerationPackage[];
    tree: TreePlan;
    command: string;
    catalogs: Record<string, number>;
    parent: number | null;
    release?: GenerationRelease;
  },
): Promise<StagedGeneration> {
  await ensureDir(ctx.paths.generations);
  const existing = await listGenerationNumbers(ctx);
  const number = (existing[existing.length - 1] ?? 0) + 1;
  const tmp = join(ctx.paths.generations, `${TMP_PREFIX}${number}-${randomBytes(4).toString('hex')}`);
  const gen: Generation = {
    format: 1,
    number,
    time: ctx.now().toISOString(),
    command: o.command,
    parent: o.parent,
    catalogs: o.catalogs,
    packages: [...o.packages].sort((a, b) => (a.name < b.name ? -1 : 1)),
    ...(o.release && { release: o.release }),
  };
  try {
    // Synchronous calls: a tree of thousands of links costs one syscall each here, against a hand-off
    // to libuv's thread pool and back per fs/promises call (most of an install's futex and epoll calls).
    mkdirSync(tmp, { mode: 0o755 });
    crashPoint('generation.tmp');
    const made = new Set<string>(['']);
    const allDirs = new Set<string>(o.tree.dirs);
    for (const l of o.tree.links) for (const p of parents(l.path)) allDirs.add(p);
    for (const d of [...allDirs].sort()) {
      for (const p of [...parents(d), d]) {
        if (made.has(p)) continue;
        mkdirSync(join(tmp, p), { mode: 0o755 });
        made.add(p);
      }
    }
    crashPoint('generation.dirs');
    let i = 0;
    for (const l of o.tree.links) {
      symlinkSync(l.target, join(tmp, l.path));
      if (++i % 5000 === 0) crashPoint('generation.links');
    }
    crashPoint('generation.linked');
    writeFileSync(join(tmp, GENERATION_FILE), JSON.stringify(gen, null, 2) + '\n', { flag: 'wx', mode: 0o444 });
    crashPoint('generation.recorded');
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e instanceof SwpkgError ? e : fromFsError(e, `building generation ${gen.number}`);
  }
  return { tmp, generation: gen };
}

/**
 * Renames a staged generation, already durable (the transaction's one
 * barrier), to `generations/N` and fsyncs that folder, so `current` is
 * only ever pointed at a generation a power cut cannot take back.
 */
export async function commitGeneration(ctx: PkgContext, staged: StagedGeneration): Promise<Generation> {
  const n = staged.generation.number;
  try {
    await rename(staged.tmp, generationDir(ctx, n));
    crashPoint('generation.renamed');
    await fsyncDir(ctx.paths.generations);
  } catch (e) {
    throw fromFsError(e, `building generation ${n}`);
  }
  return staged.generation;
}

/** Removes a staged generation that will not be committed (the transaction failed). */
export async function discardStagedGeneration(staged: StagedGeneration): Promise<void> {
  await rm(staged.tmp, { recursive: true, force: true });
}

/**
 * Points `current` at generation N atomically: a new symlink `current.new`,
 * renamed over `current` (rename(2) replaces the link in one step), then the
 * root folder fsynced. A crash before the rename leaves the old `current`
 * and a stray `current.new` (removed by the next writer); after it, the new.
 */
export async function switchCurrent(ctx: PkgContext, n: number): Promise<void> {
  try {
    await rm(ctx.paths.currentNew, { force: true });
    await symlink(`generations/${n}`, ctx.paths.currentNew);
    crashPoint('current.staged');
    await rename(ctx.paths.currentNew, ctx.paths.current);
    crashPoint('current.renamed');
    await fsyncDir(ctx.paths.root);
    crashPoint('current.synced');
  } catch (e) {
    throw fromFsError(e, `switching current to generation ${n}`);
  }
}
