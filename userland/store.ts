import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { lstat, readFile, readdir, readlink, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  encodeDetachedSignature,
  extractPackage,
  fromFsError,
  parseStrictJson,
  validateManifest,
  type PackageManifest,
  type DetachedSignature,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { exists, findUnexpectedPaths, fsyncDir, removeTree } from './fs-util.js';
import { storeDirName, TMP_PREFIX, TRASH_PREFIX } from './paths.js';
import { crashPoint } from './crash-point.js';

/** Metadata pkg keeps inside each store entry. Payload paths may never use `.SWPKG/`, so this cannot collide. */
export const STORE_META_DIR = '.SWPKG';
const MANIFEST_FILE = `${STORE_META_DIR}/manifest.json`;
const SIGNATURE_FILE = `${STORE_META_DIR}/signature.json`;

export interface StoreEntry {
  dir: string;
  manifest: PackageManifest;
  sha256: string;
  /** False when an identical verified entry was already in the store. */
  added: boolean;
}

export async function readStoreManifest(ctx: PkgContext, dir: string): Promise<PackageManifest> {
  const path = join(ctx.paths.store, dir, MANIFEST_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw fromFsError(e, `reading the manifest of store entry ${dir}`);
  }
  return validateManifest(parseStrictJson(bytes, path));
}

/** One finding of a store check. */
export interface StoreProblem {
  kind: 'missing' | 'modified' | 'type' | 'mode' | 'link' | 'extra' | 'manifest';
  path: string;
  detail: string;
}

async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * Re-hashes a store entry against its manifest: every listed path present
 * with its type, mode (write bits aside: the store is read-only), size,
 * SHA-256 and link target, and nothing unlisted beside `.SWPKG/`.
 */
export async function checkStoreEntry(ctx: PkgContext, dir: string, manifest?: PackageManifest): Promise<StoreProblem[]> {
  const base = join(ctx.paths.store, dir);
  const problems: StoreProblem[] = [];
  let m = manifest;
  if (!m) {
    try {
      m = await readStoreManifest(ctx, dir);
    } catch (e) {
      return [{ kind: 'manifest', path: join(dir, MANIFEST_FILE), detail: (e as Error).message }];
    }
  }
  const listed = new Set<string>();
  for (const f of m.files) {
    listed.add(f.path);
    const abs = join(base, f.path);
    let st;
    try {
      st = await lstat(abs);
    } catch {
      problems.push({ kind: 'missing', path: join(dir, f.path), detail: `${f.type} listed in the manifest is missing` });
      continue;
    }
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    if (type !== f.type) {
      problems.push({ kind: 'type', path: join(dir, f.path), detail: `is a ${type}, the manifest says ${f.type}` });
      continue;
    }
    if (f.type === 'symlink') {
      const target = await readlink(abs);
      if (target !== f.target)
        problems.push({ kind: 'link', path: join(dir, f.path), detail: `points to ${target}, the manifest says ${f.target}` });
      continue;
    }
    if ((st.mode & 0o7555) !== (f.mode & 0o7555)) {
      problems.push({
        kind: 'mode',
        path: join(dir, f.path),
        detail: `mode ${(st.mode & 0o7777).toString(8)}, the manifest says ${f.mode.toString(8)}`,
      });
    }
    if (f.type === 'file') {
      const h = await hashFile(abs);
      if (h.size !== f.size || h.sha256 !== f.sha256) {
        problems.push({ kind: 'modified', path: join(dir, f.path), detail: `content differs from the manifest (SHA-256 ${h.sha256})` });
      }
    }
  }
  const extras = await findUnexpectedPaths(
    base,
    async (p) => (!listed.has(p) ? 'unexpected' : (await lstat(join(base, p))).isDirectory() ? 'folder' : 'expected'),
    STORE_META_DIR,
  );
  for (const p of extras) problems.push({ kind: 'extra', path: join(dir, p), detail: 'is not in the manifest' });
  return problems;
}

/**
 * Removes the write bits of the folders the manifest lists, deepest first so
 * each is still writable while its entries change (files were extracted
 * read-only: `readOnlyFiles`). The manifest says what is there (extraction
 * wrote exactly that), which saves a stat per path. Symlink modes mean
 * nothing on Linux and are left alone.
 */
function makeReadOnly(tmp: string, m: PackageManifest): void {
  const dirs = m.files.filter((f) => f.type === 'dir').sort((a, b) => b.path.length - a.path.length);
  for (const d of dirs) chmodSync(join(tmp, d.path), d.mode & 0o7555);
  chmodSync(join(tmp, STORE_META_DIR), 0o555);
  chmodSync(tmp, 0o555);
}

/**
 * Written into a staging folder; made durable with the rest of the transaction by one syncfs
 * (before commitStoreEntries). Synchronous like the extraction's own writes: a small file is
 * cheaper written in place than handed to libuv's thread pool three times.
 */
function writeMeta(path: string, data: Uint8Array): void {
  writeFileSync(path, data, { flag: 'wx', mode: 0o444 });
}

/** A package extracted and sealed in `store/.tmp-*`, not yet under its name. */
export interface StagedEntry {
  tmp: string;
  dir: string;
  manifest: PackageManifest;
  sha256: string;
}

/**
 * Reuses a store entry already holding these bytes, after re-hashing it
 * against its manifest (anything found on disk is checked before it is
 * trusted); a damaged one is moved aside and undefined returned.
 */
export async function reuseStoreEntry(ctx: PkgContext, sha256: string, name: string, version: string): Promise<StoreEntry | undefined> {
  const dir = storeDirName(sha256, name, version);
  if (!(await exists(join(ctx.paths.store, dir)))) return undefined;
  const problems = await checkStoreEntry(ctx, dir);
  if (problems.length === 0) return { dir, manifest: await readStoreManifest(ctx, dir), sha256, added: false };
  ctx.reporter.warn(`store entry ${dir} is damaged (${problems[0]!.path}: ${problems[0]!.detail}); replacing it`);
  await discardStoreEntry(ctx, dir);
  return undefined;
}

/**
 * Extracts a package into `store/.tmp-*`: every byte is checked against the
 * manifest while it streams (extractPackage), `.SWPKG/` gets the manifest
 * (and signature), and the tree is made read-only. Not yet durable nor
 * visible: the transaction's one syncfs and commitStoreEntries do that. A crash leaves
 * only the `.tmp-*`, which the next writer removes.
 */
export async function stageStoreEntry(
  ctx: PkgContext,
  file: string,
  expect: { sha256?: string; size?: number; installedSize?: number; name: string; version: string; signature?: DetachedSignature },
  onBytes?: (compressedBytes: number) => void,
): Promise<StagedEntry> {
  // No ensureDir of store/ first: extractPackage makes the folder's parents only when they are missing
  // (an existing store/ cost a mkdir and a stat per package, about 0.6 ms each under load).
  const tmp = join(ctx.paths.store, `${TMP_PREFIX}${randomBytes(6).toString('hex')}`);
  crashPoint('store.extract');
  let verified;
  try {
    // No fsync per file: one syncfs for the whole transaction before anything is renamed.
    verified = await extractPackage(file, tmp, {
      fsync: false,
      readOnlyFiles: true,
      ...(expect.sha256 ? { expectedSha256: expect.sha256 } : {}),
      ...(expect.size !== undefined ? { maxBytes: expect.size } : {}),
      ...(expect.installedSize !== undefined ? { installedSize: expect.installedSize } : {}),
      ...(onBytes ? { onBytes } : {}),
    });
  } catch (e) {
    await removeTree(tmp);
    throw storageCause(e);
  }
  const dir = storeDirName(verified.sha256, verified.manifest.name, verified.manifest.version);
  try {
    if (verified.manifest.name !== expect.name || verified.manifest.version !== expect.version) {
      throw new SwpkgError(
        'E_CORRUPT',
        `${file} contains ${verified.manifest.name}@${verified.manifest.version}, expected ${expect.name}@${expect.version}`,
        {
          hint: 'the repository lists this file under another name; tell the publisher',
          details: { file, expected: `${expect.name}@${expect.version}`, actual: `${verified.manifest.name}@${verified.manifest.version}` },
        },
      );
    }
    crashPoint('store.extracted');
    mkdirSync(join(tmp, STORE_META_DIR), { mode: 0o755 });
    // The manifest's exact bytes, so a kept signature still verifies over them.
    writeMeta(join(tmp, MANIFEST_FILE), verified.manifestBytes);
    const sig = verified.signature ?? expect.signature;
    if (sig) writeMeta(join(tmp, SIGNATURE_FILE), encodeDetachedSignature(sig));
    makeReadOnly(tmp, verified.manifest);
    crashPoint('store.sealed');
  } catch (e) {
    await removeTree(tmp);
    throw storageCause(e instanceof SwpkgError ? e : fromFsError(e, `adding ${dir} to the store`));
  }
  return { tmp, dir, manifest: verified.manifest, sha256: verified.sha256 };
}

/**
 * Publishes staged entries the caller has already made durable (the
 * transaction's one barrier covers them and the staged generation): each is
 * renamed to `store/<sha256>-NAME-VERSION`, then the store folder is
 * fsynced, before any generation naming them is renamed into place. A crash
 * before a rename leaves a `.tmp-*`; after it, a complete entry
 * (unreferenced until a generation names it).
 */
export async function commitStoreEntries(
  ctx: PkgContext,
  staged: StagedEntry[],
  onAdded: (dir: string) => void = () => {},
): Promise<StoreEntry[]> {
  if (staged.length === 0) return [];
  const out: StoreEntry[] = [];
  for (const e of staged) {
    const dest = join(ctx.paths.store, e.dir);
    try {
      if (await exists(dest)) {
        // The same bytes twice in one batch, or already stored: keep the existing entry.
        await removeTree(e.tmp);
        out.push({ dir: e.dir, manifest: e.manifest, sha256: e.sha256, added: false });
        continue;
      }
      // Synchronous: one rename per entry, without a thread-pool hand-off each.
      renameSync(e.tmp, dest);
    } catch (err) {
      throw fromFsError(err, `adding ${e.dir} to the store`);
    }
    onAdded(e.dir);
    crashPoint('store.renamed');
    out.push({ dir: e.dir, manifest: e.manifest, sha256: e.sha256, added: true });
  }
  await fsyncDir(ctx.paths.store);
  return out;
}

/**
 * The package reader reports any failure inside its stream as a corrupt
 * archive; a write that failed for lack of space is a full disk, and the
 * user's fix is different (free space, not a new download).
 */
export function storageCause(e: unknown): unknown {
  let c: unknown = e;
  for (let i = 0; i < 5 && c; i++) {
    const code = (c as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') return fromFsError(c, 'writing to the store');
    c = (c as { cause?: unknown }).cause;
  }
  return e;
}

/** Removes a store entry: renamed aside first, so a crash never leaves a half-deleted entry under its real name. */
export async function discardStoreEntry(ctx: PkgContext, dir: string): Promise<void> {
  const aside = join(ctx.paths.store, `${TRASH_PREFIX}${randomBytes(4).toString('hex')}-${dir}`);
  try {
    await rename(join(ctx.paths.store, dir), aside);
    await fsyncDir(ctx.paths.store);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fromFsError(e, `removing store entry ${dir}`);
  }
  await removeTree(aside);
}

/** Store entry names (excluding staging and trash). */
export async function listStoreEntries(ctx: PkgContext): Promise<string[]> {
  try {
    return (await readdir(ctx.paths.store)).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fromFsError(e, `reading ${ctx.paths.store}`);
  }
}
