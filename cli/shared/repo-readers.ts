import { createWriteStream } from 'node:fs';
import { readFile, stat, open } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SwpkgError } from '../../catalog/index.js';
import { type RepoReader } from '../../publishing/index.js';

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

  async download(path: string, dest: string, maxBytes: number): Promise<boolean> {
    const abs = this.resolve(path);
    let fh;
    try {
      fh = await open(abs, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    try {
      if ((await fh.stat()).size > maxBytes)
        throw new SwpkgError('E_TOO_LARGE', `${path} is larger than the ${maxBytes} bytes the catalog declares`);
      await pipeline(fh.createReadStream(), createWriteStream(dest));
    } finally {
      await fh.close().catch(() => {});
    }
    return true;
  }
}

/** Reads a published root over HTTP(S) the way a client would; every read is bounded in size and time. */
export class HttpRepoReader implements RepoReader {
  private readonly base: string;
  constructor(
    base: string,
    private readonly timeoutMs = 30000,
  ) {
    this.base = base.endsWith('/') ? base : `${base}/`;
  }

  private async get(path: string): Promise<Response | undefined> {
    const url = new URL(path, this.base).toString();
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'follow' });
    } catch (e) {
      throw new SwpkgError('E_NETWORK', `cannot fetch ${url}: ${(e as Error).message}`, { cause: e, details: { url } });
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw new SwpkgError('E_HTTP', `${url} answered HTTP ${res.status}`, { details: { url, status: res.status } });
    return res;
  }

  private async *bounded(res: Response, path: string, maxBytes: number): AsyncGenerator<Uint8Array> {
    let n = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += chunk.length;
      if (n > maxBytes) throw new SwpkgError('E_TOO_LARGE', `${path} sends more than ${maxBytes} bytes`);
      yield chunk;
    }
  }

  async read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const res = await this.get(path);
    if (!res) return undefined;
    const chunks: Uint8Array[] = [];
    for await (const c of this.bounded(res, path, maxBytes)) chunks.push(c);
    return Buffer.concat(chunks);
  }

  async download(path: string, dest: string, maxBytes: number): Promise<boolean> {
    const res = await this.get(path);
    if (!res) return false;
    await pipeline(Readable.from(this.bounded(res, path, maxBytes)), createWriteStream(dest));
    return true;
  }
}

export function repoReaderFor(target: string): RepoReader {
  return /^https?:\/\//.test(target) ? new HttpRepoReader(target) : new DirRepoReader(join(target));
}
