import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { SwpkgError, commitFile, fromFsError } from '../catalog/index.js';
import { runTool } from './host-tools.js';

/** Filesystem labels the guest init looks for; disks are never found by position. */
export const BASE_LABEL = 'swpkg-base';
export const STORE_LABEL = 'swpkg-store';

export interface Ext4ImageOptions {
  /** Image file to create; written beside and renamed into place. */
  out: string;
  label: string;
  sizeMiB: number;
  /** Copied into the new filesystem (`mkfs.ext4 -d`). */
  sourceDir?: string;
  /** Journalled (the store) or not (the read-only base). */
  journal: boolean;
  /** Fixed UUID (also the directory hash seed), for reproducible images. */
  uuid?: string;
  /** Seconds since the epoch written as every inode and superblock time, for reproducible images. */
  fakeTime?: number;
  /** Bytes per inode (`-i`); fewer inodes for a disk of a few large files. */
  bytesPerInode?: number;
}

const PLAIN_NAME = /^[A-Za-z0-9._+@%=,:-]+$/;

/** Every path below `root` (relative, `/`-prefixed), parents first. */
async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const n of (await readdir(dir)).sort()) {
      if (!PLAIN_NAME.test(n)) {
        throw new SwpkgError('E_UNSAFE_PATH', `cannot make a reproducible image of ${join(dir, n)}: unusual file name`, {
          details: { path: join(dir, n) },
        });
      }
      const p = `${prefix}/${n}`;
      out.push(p);
      if ((await lstat(join(dir, n))).isDirectory()) await walk(join(dir, n), p);
    }
  };
  await walk(root, '');
  return out;
}

/**
 * Makes an ext4 image with `mkfs.ext4` into a regular (sparse) file. Inode
 * tables and the journal are initialised now, on the host, instead of lazily
 * by the guest kernel, which would otherwise spend its first minutes writing
 * zeros under TCG. The file appears under its name only when complete.
 */
export async function makeExt4Image(o: Ext4ImageOptions): Promise<void> {
  if (!Number.isInteger(o.sizeMiB) || o.sizeMiB < 8) {
    throw new SwpkgError('E_USAGE', `an ext4 image needs at least 8 MiB, got ${o.sizeMiB}`, { details: { sizeMiB: o.sizeMiB } });
  }
  if (o.sourceDir !== undefined && !existsSync(o.sourceDir)) {
    throw new SwpkgError('E_NOT_FOUND', `seed folder ${o.sourceDir} does not exist`, { details: { path: o.sourceDir } });
  }
  await mkdir(dirname(o.out), { recursive: true });
  const tmp = join(dirname(o.out), `.${basename(o.out)}.${process.pid}.tmp`);
  await rm(tmp, { force: true });
  const ext = ['root_owner=0:0', 'lazy_itable_init=0', 'lazy_journal_init=0'];
  if (o.uuid !== undefined) ext.push(`hash_seed=${o.uuid}`);
  const args = ['-q', '-F', '-t', 'ext4', '-L', o.label, '-b', '4096', '-E', ext.join(',')];
  if (!o.journal) args.push('-O', '^has_journal', '-m', '0');
  if (o.uuid !== undefined) args.push('-U', o.uuid);
  if (o.bytesPerInode !== undefined) args.push('-i', String(o.bytesPerInode));
  if (o.sourceDir !== undefined) args.push('-d', o.sourceDir);
  args.push(tmp, `${o.sizeMiB}M`);
  const env: NodeJS.ProcessEnv = o.fakeTime === undefined ? {} : { E2FSPROGS_FAKE_TIME: String(o.fakeTime) };
  try {
    await runTool('mkfs.ext4', args, { timeoutMs: 5 * 60_000, env, what: `making ${o.label} image` });
    if (o.fakeTime !== undefined && o.sourceDir !== undefined) {
      // mkfs.ext4 -d copies each source file's ctime, which no tool can set on the host;
      // rewriting it here is what makes two builds of the same inputs byte-identical.
      const script = join(dirname(o.out), `.${basename(o.out)}.${process.pid}.debugfs`);
      const paths = ['/', '/lost+found', ...(await listTree(o.sourceDir))];
      await writeFile(script, paths.map((p) => `sif "${p}" ctime @${o.fakeTime}\n`).join(''));
      try {
        await runTool('debugfs', ['-w', '-f', script, tmp], { timeoutMs: 60_000, env, what: `normalising times in ${o.label} image` });
      } finally {
        await rm(script, { force: true });
      }
    }
    // fsync before the rename: the image is what the guest boots, and mkfs's page cache is not on disk yet.
    await commitFile(tmp, o.out);
  } catch (e) {
    await rm(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw fromFsError(e, `writing ${o.out}`);
    throw e;
  }
}

export interface CreateStoreImageOptions {
  /** Where the new store disk goes. An existing file is refused unless `overwrite`. */
  path: string;
  /** Default 1024 MiB; the file is sparse, so unused space costs nothing on the host. */
  sizeMiB?: number;
  /**
   * A folder to copy in, e.g. one prepared with `pkg --root DIR install ...`
   * on the host; it becomes the guest's `/pkg`.
   */
  seedDir?: string;
  overwrite?: boolean;
}

/**
 * Creates a blank (or preseeded) writable store disk for `/pkg`: journalled
 * ext4 labelled `swpkg-store`, made on the host because busybox in the guest
 * makes only ext2, and the power-cut scenario needs a journal. Each guest run
 * that writes should get its own fresh store (this takes milliseconds);
 * copying a used image around is how stale state leaks between runs.
 */
export async function createStoreImage(o: CreateStoreImageOptions): Promise<{ path: string; sizeMiB: number }> {
  const sizeMiB = o.sizeMiB ?? 1024;
  if (existsSync(o.path) && !o.overwrite) {
    throw new SwpkgError('E_USAGE', `${o.path} already exists; refusing to replace a store disk`, {
      hint: 'choose a new path, or pass overwrite to start from an empty store',
      details: { path: o.path },
    });
  }
  if (o.seedDir !== undefined && !existsSync(o.seedDir)) {
    throw new SwpkgError('E_NOT_FOUND', `seed folder ${o.seedDir} does not exist`, { details: { path: o.seedDir } });
  }
  if (o.seedDir !== undefined && !(await stat(o.seedDir)).isDirectory()) {
    throw new SwpkgError('E_USAGE', `seed ${o.seedDir} is not a folder`, { details: { path: o.seedDir } });
  }
  await makeExt4Image({
    out: o.path,
    label: STORE_LABEL,
    sizeMiB,
    journal: true,
    ...(o.seedDir === undefined ? {} : { sourceDir: o.seedDir }),
  });
  return { path: o.path, sizeMiB };
}
