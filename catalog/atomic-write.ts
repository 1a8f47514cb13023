import { copyFile, open, rename, rm, mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { fromFsError } from './errors.js';

/**
 * The one crash-safe file write, shared by the publisher, the client and the
 * image builder (DESIGN.md, "writes are crash-safe"). Everything here is the
 * same four steps: bytes land in a temp file beside the target, the temp file
 * is fsynced, renamed over the target, and the folder is fsynced. A crash or
 * power cut at any instant leaves the old file or the complete new one,
 * never a torn one, and a rename that returned survives a power cut (ext4
 * data=ordered does not promise that without the folder's fsync). A crash
 * before the rename leaves a `.tmp-*` beside the target, which the next run
 * of the writer removes or ignores.
 */

/** fsync a folder so a rename or create inside it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some filesystems (tmpfs on old kernels, overlay) refuse fsync on a folder; nothing more can be done there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw fromFsError(e, `syncing ${dir}`);
  } finally {
    await fh?.close();
  }
}

/** A temp name beside `path` (same filesystem, so the rename is atomic), unique per call. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.tmp-${randomBytes(6).toString('hex')}-${basename(path)}`);
}

/**
 * Moves a finished temp file over `path` durably: fsync the file, rename,
 * fsync the folder. For a file another step wrote (a copy, mkfs, a gzip
 * stream); `tmp` must be in `path`'s folder. On failure `tmp` is removed and
 * the target is as it was.
 */
export async function commitFile(tmp: string, path: string): Promise<void> {
  try {
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fromFsError(e, `writing ${path}`);
  }
  await fsyncDir(dirname(path));
}

/** Writes `data` to `path` crash-safely (temp, write, fsync, rename, fsync the folder); creates the folder. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | Iterable<Uint8Array>,
  o: { mode?: number } = {},
): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    // 'wx': a temp name is never shared, so finding one is a bug, not something to overwrite.
    await writeFile(tmp, data, { flag: 'wx', mode: o.mode ?? 0o644 });
  } catch (e) {
    await rm(tmp, { force: true });
    throw fromFsError(e, `writing ${path}`);
  }
  await commitFile(tmp, path);
}

/** Copies `src` over `dest` crash-safely: readers of `dest` see the old file or the whole copy. */
export async function copyFileAtomic(src: string, dest: string): Promise<void> {
  const tmp = tempPathFor(dest);
  try {
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(src, tmp);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fromFsError(e, `copying ${src} to ${dest}`);
  }
  await commitFile(tmp, dest);
}
