import { createWriteStream } from 'node:fs';
import { readFile, stat, open } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SwpkgError } from '../../catalog/index.js';
import { type RepoReader } from '../../publishing/index.js';
import {
  DEFAULT_LIMITS,
  defaultTransport,
  downloadFile,
  fetchBytes,
  joinUrl,
  type HttpTransport,
  type TransferLimits,
} from '../../userland/index.js';

/** Reads a published root from a local folder. Paths come from the catalog: kept inside the folder. */
export class DirRepoReader implements RepoReader {
  constructor(private readonly root: string) {}

  private resolve(path: string): string {
    const abs = resolve(this.root, path);
    if (!abs.startsWith(resolve(this.root) + sep)) throw new SwpkgError('E_UNSAFE_PATH', `${path} is outside ${this.root}`);
    return abs;
  }

  async read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const abs = this.resolve(path);
    try {
      if ((await stat(abs)).size > maxBytes) throw new SwpkgError('E_TOO_LARGE', `${path} is larger than ${maxBytes} bytes`);
      return await readFile(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async download(path: string, dest: string, expect: { size: number; sha256: string }): Promise<boolean> {
    const abs = this.resolve(path);
    let fh;
    try {
      fh = await open(abs, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    try {
      if ((await fh.stat()).size > expect.size)
        throw new SwpkgError('E_TOO_LARGE', `${path} is larger than the ${expect.size} bytes the catalog declares`);
      await pipeline(fh.createReadStream(), createWriteStream(dest));
    } finally {
      await fh.close().catch(() => {});
    }
    return true;
  }
}

const isNotFound = (e: unknown): boolean => e instanceof SwpkgError && e.code === 'E_HTTP' && e.details['status'] === 404;

/**
 * Reads a published root over HTTP(S) through pkg's own transport, so the
 * outside check meets what a client meets: every read bounded in size, a
 * stall window and a minimum rate instead of one whole-transfer timeout (a
 * large package over a slow link passes while it keeps moving), resumed
 * after a reset, and redirects followed only within the repository's origin.
 */
export class HttpRepoReader implements RepoReader {
  private readonly base: string;
  private transport: Promise<HttpTransport> | undefined;

  constructor(
    base: string,
    private readonly o: { transport?: HttpTransport; limits?: TransferLimits } = {},
  ) {
    this.base = base.endsWith('/') ? base : `${base}/`;
    if (o.transport) this.transport = Promise.resolve(o.transport);
  }

  private get limits(): TransferLimits {
    return this.o.limits ?? DEFAULT_LIMITS;
  }

  private http(): Promise<HttpTransport> {
    this.transport ??= defaultTransport();
    return this.transport;
  }

  async read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
    try {
      return await fetchBytes(joinUrl(this.base, path), { transport: await this.http(), maxBytes, limits: this.limits });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async download(path: string, dest: string, expect: { size: number; sha256: string }): Promise<boolean> {
    try {
      await downloadFile([joinUrl(this.base, path)], { transport: await this.http(), dest, ...expect, limits: this.limits });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async close(): Promise<void> {
    // Only a transport this reader made is its to close.
    if (this.transport && !this.o.transport) await (await this.transport).close?.();
  }
}

export function repoReaderFor(target: string): RepoReader {
  return /^https?:\/\//.test(target) ? new HttpRepoReader(target) : new DirRepoReader(join(target));
}
