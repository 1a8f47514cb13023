import { createReadStream } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwpkgError } from '../catalog/index.js';
import type { HttpRequest, HttpResponse, HttpTransport } from './http-transport.js';

/**
 * Offline media (issue 15): `file://` URLs answered as an HTTP server would, so a repository on a
 * disk goes through exactly the code that verifies one on the network (download.ts picks this
 * transport by scheme, in one place). A missing file is a 404, which ends a root walk as it does
 * over HTTP; `Range: bytes=N-` gives 206 or 416, so resume and truncation behave the same.
 *
 * A file must really live in the folder its URL names: the target is resolved through symlinks and
 * refused (E_UNSAFE_PATH) when that leads out of the folder, so a link on the media cannot make pkg
 * read a file of this machine (`packages/x.swpkg -> /etc/shadow`).
 */
export const fileTransport: HttpTransport = {
  async get(url: string, req: HttpRequest): Promise<HttpResponse> {
    const path = fileURLToPath(url);
    let real: string;
    let folder: string;
    try {
      folder = await realpath(dirname(path));
      real = await realpath(path);
    } catch (e) {
      if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return status(404);
      throw readError(url, e);
    }
    if (!real.startsWith(folder + sep)) {
      throw new SwpkgError('E_UNSAFE_PATH', `${url} is a link to ${real}, outside the folder it is in`, {
        hint: 'a repository on media may not point at files elsewhere on this machine; copy it with `swpkg repo mirror`',
        details: { url, target: real, folder },
      });
    }
    const fh = await open(real, 'r').catch((e: unknown) => {
      throw readError(url, e);
    });
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return status(404);
    }
    const size = st.size;
    const range = /^bytes=(\d+)-$/.exec(req.headers['range'] ?? '');
    const start = range ? Number(range[1]) : 0;
    if (range && start >= size) {
      await fh.close();
      return status(416, { 'content-range': `bytes */${size}` });
    }
    const stream = createReadStream('', { fd: fh, start, highWaterMark: 1 << 20 });
    const headers: Record<string, string> = { 'content-length': String(size - start) };
    if (range) headers['content-range'] = `bytes ${start}-${size - 1}/${size}`;
    return {
      status: range ? 206 : 200,
      header: (name) => headers[name],
      body: stream,
      discard: async () => {
        stream.destroy();
      },
    };
  },
};

function status(code: number, headers: Record<string, string> = {}): HttpResponse {
  return { status: code, header: (name) => headers[name], body: (async function* () {})(), discard: async () => {} };
}

function readError(url: string, e: unknown): SwpkgError {
  return new SwpkgError('E_FETCH', `${url}: ${(e as Error).message}`, {
    hint: 'the media may be damaged or unmounted',
    details: { url, errno: (e as NodeJS.ErrnoException).code },
  });
}
