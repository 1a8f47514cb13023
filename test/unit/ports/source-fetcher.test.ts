import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { chmod, mkdir, readdir, writeFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DebianSourceFetcher,
  MirrorFolderFetcher,
  UrlFetcher,
  fetchSource,
  parseShowsrc,
  type RecipeSource,
} from '../../../ports/index.js';
import { CollectingReporter, sha256Hex } from '../../../catalog/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { failure } from '../../helpers/failure.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** A static server on 127.0.0.1: path → body; everything else 404. Counts requests per path. */
async function serve(files: Record<string, Buffer>): Promise<{ url: string; hits: Record<string, number> }> {
  const hits: Record<string, number> = {};
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits[path] = (hits[path] ?? 0) + 1;
    const body = files[path];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, hits };
}

const bytes = Buffer.from('pretend this is a source tarball\n');
const good = sha256Hex(bytes);

function src(url: string, sha256 = good, debian?: RecipeSource['debian']): RecipeSource {
  return { url, sha256, strip: 1, ...(debian ? { debian } : {}) };
}

describe('fetchSource', () => {
  it('downloads from the URL, keeps the bytes under their hash, then serves from the cache', async () => {
    const { url, hits } = await serve({ '/x.tar.gz': bytes });
    const cache = await tempDir();
    const mirror = await tempDir();
    const fetchers = [new MirrorFolderFetcher(mirror), new UrlFetcher(10_000)];
    const first = await fetchSource(src(`${url}/x.tar.gz`), { cacheDir: cache, mirrorDir: mirror, fetchers });
    expect(first.from).toBe('url');
    expect(first.path).toBe(join(cache, 'sources', good));
    expect(await readFile(first.path)).toEqual(bytes);
    const second = await fetchSource(src(`${url}/x.tar.gz`), { cacheDir: cache, mirrorDir: mirror, fetchers });
    expect(second.from).toBe('cache');
    expect(hits['/x.tar.gz']).toBe(1);
  });

  it('takes the mirror folder before the URL', async () => {
    const { url, hits } = await serve({ '/x.tar.gz': bytes });
    const cache = await tempDir();
    const mirror = await tempDir();
    await writeFile(join(mirror, good), bytes);
    const r = await fetchSource(src(`${url}/x.tar.gz`), {
      cacheDir: cache,
      mirrorDir: mirror,
      fetchers: [new MirrorFolderFetcher(mirror), new UrlFetcher(10_000)],
    });
    expect(r.from).toBe('mirror');
    expect(hits['/x.tar.gz']).toBeUndefined();
  });

  it('skips a corrupt mirror file, warns with its hash, and falls through to the URL', async () => {
    const { url } = await serve({ '/x.tar.gz': bytes });
    const cache = await tempDir();
    const mirror = await tempDir();
    await writeFile(join(mirror, good), 'tampered');
    const rep = new CollectingReporter();
    const r = await fetchSource(src(`${url}/x.tar.gz`), {
      cacheDir: cache,
      mirrorDir: mirror,
      reporter: rep,
      fetchers: [new MirrorFolderFetcher(mirror), new UrlFetcher(10_000)],
    });
    expect(r.from).toBe('url');
    expect(r.attempts[0]).toMatchObject({ kind: 'mirror', result: 'hash-mismatch', sha256: sha256Hex('tampered') });
    expect(rep.warnings.join('\n')).toContain(sha256Hex('tampered'));
  });

  it('refuses wrong bytes: E_HASH_MISMATCH names the URL and the hash it served, and nothing is kept', async () => {
    const other = Buffer.from('different bytes');
    const { url } = await serve({ '/x.tar.gz': other });
    const cache = await tempDir();
    const mirror = await tempDir();
    const e = await failure(
      fetchSource(src(`${url}/x.tar.gz`), {
        cacheDir: cache,
        mirrorDir: mirror,
        fetchers: [new MirrorFolderFetcher(mirror), new UrlFetcher(10_000)],
      }),
    );
    expect(e.code).toBe('E_HASH_MISMATCH');
    expect(e.message).toContain(`${url}/x.tar.gz served ${sha256Hex(other)}`);
    expect(e.details['expected']).toBe(good);
    // The sources folder exists but holds nothing: no file, no temp leftovers.
    expect(await readdir(join(cache, 'sources'))).toEqual([]);
  });

  it('refuses an unreachable URL with no mirror: E_FETCH listing every attempt', async () => {
    const cache = await tempDir();
    const mirror = await tempDir();
    // Port 9 (discard) is closed on loopback: the connection is refused at once.
    const e = await failure(
      fetchSource(src('http://127.0.0.1:9/gone.tar.gz'), {
        cacheDir: cache,
        mirrorDir: mirror,
        fetchers: [new MirrorFolderFetcher(mirror), new UrlFetcher(10_000)],
      }),
    );
    expect(e.code).toBe('E_FETCH');
    const attempts = e.details['attempts'] as { kind: string; result: string }[];
    expect(attempts.map((a) => `${a.kind}:${a.result}`)).toEqual(['mirror:skipped', 'url:skipped']);
    expect(await readdir(join(cache, 'sources'))).toEqual([]);
  });

  it('refuses an HTTP error page as a source', async () => {
    const { url } = await serve({});
    const cache = await tempDir();
    const e = await failure(
      fetchSource(src(`${url}/missing.tar.gz`), { cacheDir: cache, mirrorDir: cache, fetchers: [new UrlFetcher(10_000)] }),
    );
    expect(e.code).toBe('E_FETCH');
    expect(JSON.stringify(e.details['attempts'])).toContain('HTTP 404');
  });

  it('re-verifies the cache: a tampered cached file is deleted and fetched again', async () => {
    const { url, hits } = await serve({ '/x.tar.gz': bytes });
    const cache = await tempDir();
    await mkdir(join(cache, 'sources'), { recursive: true });
    await writeFile(join(cache, 'sources', good), 'bit rot');
    const r = await fetchSource(src(`${url}/x.tar.gz`), { cacheDir: cache, mirrorDir: cache, fetchers: [new UrlFetcher(10_000)] });
    expect(r.from).toBe('url');
    expect(hits['/x.tar.gz']).toBe(1);
    expect(await readFile(r.path)).toEqual(bytes);
  });
});

describe('Debian source mirror', () => {
  const showsrc = (sha: string, file: string): string =>
    [
      'Package: hello',
      'Version: 1.0-1',
      'Directory: pool/main/h/hello',
      'Checksums-Sha256:',
      ` ${'1'.repeat(64)} 100 hello_1.0-1.dsc`,
      ` ${sha} 33 ${file}`,
      '',
      'Package: hello',
      'Version: 0.9-1',
      'Directory: pool/main/h/hello',
      'Checksums-Sha256:',
      ` ${'2'.repeat(64)} 20 hello_0.9.orig.tar.gz`,
      '',
    ].join('\n');

  it('parses apt-cache showsrc stanzas', () => {
    const entries = parseShowsrc(showsrc(good, 'hello_1.0.orig.tar.gz'));
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({ version: '1.0-1', directory: 'pool/main/h/hello' });
    expect(entries[0]!.files[1]).toEqual({ sha256: good, size: 33, name: 'hello_1.0.orig.tar.gz' });
  });

  /** Fake apt-get/apt-cache scripts pointing at a mirror on 127.0.0.1; apt-helper is the real one. */
  async function fakeApt(dir: string, base: string, listing: string): Promise<{ aptGet: string; aptCache: string }> {
    const aptGet = join(dir, 'apt-get');
    const aptCache = join(dir, 'apt-cache');
    await writeFile(aptGet, `#!/bin/sh\necho '${base}/debian/'\n`);
    await writeFile(join(dir, 'listing'), listing);
    await writeFile(aptCache, `#!/bin/sh\ncat '${join(dir, 'listing')}'\n`);
    await chmod(aptGet, 0o755);
    await chmod(aptCache, 0o755);
    return { aptGet, aptCache };
  }

  const aptHelperPresent = existsSync('/usr/lib/apt/apt-helper');

  it('fetches only the .orig file through apt-helper from the configured deb-src URI', async () => {
    expect(aptHelperPresent).toBe(true);
    const { url, hits } = await serve({ '/debian/pool/main/h/hello/hello_1.0.orig.tar.gz': bytes });
    const dir = await tempDir();
    const cache = await tempDir();
    const tools = await fakeApt(dir, url, showsrc(good, 'hello_1.0.orig.tar.gz'));
    const r = await fetchSource(src('http://127.0.0.1:9/hello-1.0.tar.gz', good, { package: 'hello', file: 'hello_1.0.orig.tar.gz' }), {
      cacheDir: cache,
      mirrorDir: cache,
      fetchers: [new DebianSourceFetcher(tools)],
    });
    expect(r.from).toBe('debian');
    expect(r.origin).toBe(`${url}/debian/pool/main/h/hello/hello_1.0.orig.tar.gz`);
    expect(Object.keys(hits)).toEqual(['/debian/pool/main/h/hello/hello_1.0.orig.tar.gz']);
  });

  it('says plainly when the pinned version has left the Debian mirror', async () => {
    const dir = await tempDir();
    const cache = await tempDir();
    const tools = await fakeApt(dir, 'http://127.0.0.1:9', showsrc('3'.repeat(64), 'hello_1.1.orig.tar.gz'));
    const rep = new CollectingReporter();
    const e = await failure(
      fetchSource(src('http://127.0.0.1:9/hello-1.0.tar.gz', good, { package: 'hello', file: 'hello_1.0.orig.tar.gz' }), {
        cacheDir: cache,
        mirrorDir: cache,
        reporter: rep,
        fetchers: [new DebianSourceFetcher(tools)],
      }),
    );
    expect(e.code).toBe('E_FETCH');
    expect(rep.warnings.join('\n')).toMatch(/pinned version has left the Debian mirror.*1\.0-1, 0\.9-1/);
  });

  it('reports which Debian URL served which hash when the mirror serves other bytes', async () => {
    expect(aptHelperPresent).toBe(true);
    const other = Buffer.from('a compromised mirror');
    const { url } = await serve({ '/debian/pool/main/h/hello/hello_1.0.orig.tar.gz': other });
    const dir = await tempDir();
    const cache = await tempDir();
    const tools = await fakeApt(dir, url, showsrc(good, 'hello_1.0.orig.tar.gz'));
    const e = await failure(
      fetchSource(src('http://127.0.0.1:9/hello-1.0.tar.gz', good, { package: 'hello', file: 'hello_1.0.orig.tar.gz' }), {
        cacheDir: cache,
        mirrorDir: cache,
        fetchers: [new DebianSourceFetcher(tools)],
      }),
    );
    expect(e.code).toBe('E_HASH_MISMATCH');
    expect(e.message).toContain(`served ${sha256Hex(other)}`);
    expect(await readdir(join(cache, 'sources'))).toEqual([]);
  });

  it('skips a recipe source without a Debian reference', async () => {
    const cache = await tempDir();
    const e = await failure(
      fetchSource(src('http://127.0.0.1:9/x.tar.gz'), {
        cacheDir: cache,
        mirrorDir: cache,
        fetchers: [new DebianSourceFetcher({ aptGet: '/bin/false', aptCache: '/bin/false' })],
      }),
    );
    expect(JSON.stringify(e.details['attempts'])).toContain('names no Debian source package');
  });
});
