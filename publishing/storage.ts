import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { copyFile, link, mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SwpkgError, fromFsError, sha256File, sha256Hex, writeFileAtomic } from '../catalog/index.js';

/**
 * Where a publish writes: a folder or an object store. publishRepository runs one
 * sequence (check, immutable files, pointer, mutable extras, deletions) against
 * this interface, so the order that keeps readers safe is written once.
 */
export interface PublishTarget {
  /** For messages: the folder, or s3://bucket/prefix. */
  readonly where: string;
  /** A small file's bytes, or undefined when it does not exist. */
  read(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
  /**
   * The pointer's bytes and the token a later swapPointer compares against
   * (an ETag, or the folder copy's hash); token null when there is none yet.
   */
  readPointer(path: string, maxBytes: number): Promise<{ bytes?: Uint8Array; token: string | null }>;
  /** File names directly under a folder (`packages`), no slashes; empty when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Folder names directly under a folder (`releases` → release ids), no slashes; empty when it does not exist. */
  folders(dir: string): Promise<string[]>;
  /** True when the target holds anything at all (a fresh folder or bucket prefix does not). */
  hasAnything(): Promise<boolean>;
  /** SHA-256 of an existing file, undefined when absent. */
  sha256Of(path: string): Promise<string | undefined>;
  /**
   * Create-only write: an absent name is written, the same bytes already there
   * are fine ('same'), different bytes are E_IMMUTABLE. Files stream; sha256 is the body's.
   */
  putImmutable(path: string, body: Body, sha256: string): Promise<'created' | 'same'>;
  /** Replaces a file that is not named by its content (index.html, retention.json). */
  putMutable(path: string, bytes: Uint8Array | string): Promise<void>;
  /** Replaces the pointer only if it is still what readPointer saw (token); else E_PUBLISH_RACE. */
  swapPointer(path: string, bytes: Uint8Array | string, token: string | null): Promise<void>;
  remove(path: string): Promise<void>;
}

export type Body = { file: string; size: number } | { bytes: Uint8Array | string };

export const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';
/** The pointer and other mutable names: a CDN may serve them at most this stale. */
export const POINTER_CACHE = 'public, max-age=60';

export function bodyBytes(b: Uint8Array | string): Uint8Array {
  return typeof b === 'string' ? new TextEncoder().encode(b) : b;
}

export function raceLost(where: string, path: string): SwpkgError {
  return new SwpkgError('E_PUBLISH_RACE', `${path} in ${where} changed while this publish ran: another publish won`, {
    hint: 'run the publish again: it starts from the new state (nothing this run wrote is visible to clients)',
    details: { where, path },
  });
}

export function immutableClash(where: string, path: string, published: string, offered: string): SwpkgError {
  return new SwpkgError('E_IMMUTABLE', `${path} is already published in ${where} with different bytes`, {
    hint: 'a published name never changes: bump the version (or find who wrote the object)',
    details: { path, published, offered },
  });
}

/** A file's bytes, or undefined when it does not exist; one over `maxBytes` is E_TOO_LARGE. */
export async function readFileIfExists(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Buffer | undefined> {
  try {
    const st = await stat(path);
    if (st.size > maxBytes) throw new SwpkgError('E_TOO_LARGE', `${path} is over ${maxBytes} bytes`, { details: { path, size: st.size } });
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof SwpkgError) throw e;
    throw fromFsError(e, `reading ${path}`);
  }
}

/** A web root on the local disk (served by `swpkg serve` or any static server). */
export class FolderTarget implements PublishTarget {
  readonly where: string;
  constructor(private readonly root: string) {
    this.where = root;
  }

  private abs(path: string): string {
    return join(this.root, path);
  }

  read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
    return readFileIfExists(this.abs(path), maxBytes);
  }

  async readPointer(path: string, maxBytes: number): Promise<{ bytes?: Uint8Array; token: string | null }> {
    const bytes = await readFileIfExists(this.abs(path), maxBytes);
    return bytes === undefined ? { token: null } : { bytes, token: sha256Hex(bytes) };
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(this.abs(dir), { withFileTypes: true }))
        .filter((d) => d.isFile() && !d.name.includes('.tmp-'))
        .map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromFsError(e, `reading ${this.abs(dir)}`);
    }
  }

  async folders(dir: string): Promise<string[]> {
    try {
      return (await readdir(this.abs(dir), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromFsError(e, `reading ${this.abs(dir)}`);
    }
  }

  async hasAnything(): Promise<boolean> {
    try {
      return (await readdir(this.root)).length > 0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fromFsError(e, `reading ${this.root}`);
    }
  }

  async sha256Of(path: string): Promise<string | undefined> {
    try {
      return (await sha256File(this.abs(path))).sha256;
    } catch (e) {
      if (e instanceof SwpkgError && e.code === 'E_NOT_FOUND') return undefined;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async putImmutable(path: string, body: Body, sha256: string): Promise<'created' | 'same'> {
    const dest = this.abs(path);
    const tmp = `${dest}.tmp-${process.pid}`;
    try {
      await mkdir(dirname(dest), { recursive: true });
      if ('file' in body) {
        await copyFile(body.file, tmp);
        const fh = await open(tmp, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      } else await writeFileAtomic(tmp, body.bytes);
      // link() fails on an existing name: create-only, like If-None-Match: * on a bucket.
      await link(tmp, dest);
      return 'created';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e instanceof SwpkgError ? e : fromFsError(e, `writing ${dest}`);
      const published = await this.sha256Of(path);
      if (published !== sha256) throw immutableClash(this.where, path, published ?? '(unreadable)', sha256);
      return 'same';
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async putMutable(path: string, bytes: Uint8Array | string): Promise<void> {
    try {
      await mkdir(dirname(this.abs(path)), { recursive: true });
    } catch (e) {
      throw fromFsError(e, `creating ${dirname(this.abs(path))}`);
    }
    await writeFileAtomic(this.abs(path), bytes);
  }

  async swapPointer(path: string, bytes: Uint8Array | string, token: string | null): Promise<void> {
    // A folder has no conditional rename: the check narrows the race to the rename itself.
    const now = await this.readPointer(path, 16 * 1024 * 1024);
    if (now.token !== token) throw raceLost(this.where, path);
    await this.putMutable(path, bytes);
  }

  async remove(path: string): Promise<void> {
    await rm(this.abs(path), { force: true });
  }
}

/** Streams a local file with backpressure (object-store uploads with a known length). */
export function fileStream(file: string): ReadableStream<Uint8Array> {
  return Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
}
