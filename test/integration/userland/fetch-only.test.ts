/**
 * `pkg fetch` (issue 15): download and verify into the cache, no generation change, resumable; a
 * later install of the same set needs no network (the server is stopped before it).
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createReadStream } from 'node:fs';
import { lstat, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/run-cli.js';
import { ok, releaseRepo } from '../../helpers/release-repo.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { publishedPath } from '../../helpers/published.js';

/** A plain static server over a folder (no Range: resume is tested over file://). */
async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path);
    stat(file)
      .then((st) => {
        if (!st.isFile()) throw new Error('not a file');
        res.writeHead(200, { 'content-length': st.size });
        createReadStream(file).pipe(res);
      })
      .catch(() => {
        res.writeHead(404).end();
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${addr.port}/`, server };
}

describe('pkg fetch', { timeout: 180_000 }, () => {
  it('fetches a release over HTTP without changing a generation; with the server stopped, the install needs no network', async () => {
    const d = await tempDir();
    const { web, releaseKey, fingerprint } = await releaseRepo(d);
    const v1 = await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64']);
    const { url, server } = await serve(web);
    const root = join(d, 'pkgroot');
    let saved: string;
    try {
      await ok('pkg', ['--root', root, 'repo', 'add', 'main', url, '--fingerprint', fingerprint]);
      const f = await ok('pkg', ['--root', root, 'fetch', '--release', `${url}${v1.path}`]);
      expect(f.packages.map((p: { name: string; bytes: number }) => [p.name, p.bytes > 0])).toEqual([
        ['lib', true],
        ['tool', true],
      ]);
      expect(f.release).toMatchObject({ id: 'edge', version: 1, digest: v1.digest });
      await expect(lstat(join(root, 'current'))).rejects.toThrow();
      const again = await ok('pkg', ['--root', root, 'fetch', '--release', `${url}${v1.path}`]);
      expect(again.packages.every((p: { cached: boolean }) => p.cached)).toBe(true);
      saved = f.release.saved as string;
    } finally {
      await new Promise((r) => server.close(r));
    }
    const inst = await ok('pkg', ['--root', root, 'install', '--release', saved, '--yes']);
    expect(inst).toMatchObject({ generation: 1, release: { digest: v1.digest } });
    expect(inst.downloads.every((x: { cached: boolean }) => x.cached)).toBe(true);
    expect((await ok('pkg', ['--root', root, 'doctor'])).release.digest).toBe(v1.digest);
  });

  it('resumes an interrupted fetch from the bytes already in the cache, and refuses a bad one with the cache as it was', async () => {
    const d = await tempDir();
    const { web, fingerprint } = await releaseRepo(d);
    const root = join(d, 'pkgroot');
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', web, '--fingerprint', fingerprint]);
    await ok('pkg', ['--root', root, 'update']);
    const pkgFile = join(web, await publishedPath(web, 'lib-1.0.0-x86_64'));
    const bytes = await readFile(pkgFile);
    const sha = createHash('sha256').update(bytes).digest('hex');
    // What an interrupted run leaves: the first part of the file under .part.
    await mkdir(join(root, 'cache'), { recursive: true });
    await writeFile(join(root, 'cache', `lib-1.0.0-${sha.slice(0, 16)}.swpkg.part`), bytes.subarray(0, 200));
    const f = await ok('pkg', ['--root', root, 'fetch', 'lib']);
    expect(f.packages).toEqual([expect.objectContaining({ name: 'lib', resumedFrom: 200, bytes: bytes.length - 200 })]);
    await expect(lstat(join(root, 'current'))).rejects.toThrow();

    const before = await treeHash(root);
    const both = await runCli('pkg', ['--root', root, 'fetch', 'lib', '--release', 'x.json', '--json']);
    expect(both.json?.error?.code).toBe('E_USAGE');
    const none = await runCli('pkg', ['--root', root, 'fetch', 'nothing-such', '--json']);
    expect(none.json?.error?.code).toBe('E_RESOLVE');
    expect(await treeHash(root)).toBe(before);
  });

  it('swpkg repo mirror copies one release from an HTTP source, verified, and pkg installs it from the copy', async () => {
    const d = await tempDir();
    const { web, releaseKey, fingerprint } = await releaseRepo(d);
    const v1 = await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64']);
    const { url, server } = await serve(web);
    try {
      const m = await ok('swpkg', ['repo', 'mirror', url, join(d, 'media'), '--release', 'edge', '--fingerprint', fingerprint]);
      expect(m.releases).toEqual([{ id: 'edge', version: 1, digest: v1.digest }]);
    } finally {
      await new Promise((r) => server.close(r));
    }
    const root = join(d, 'pkgroot');
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', join(d, 'media'), '--fingerprint', fingerprint]);
    expect((await ok('pkg', ['--root', root, 'install', '--release', join(d, 'media', v1.path), '--yes'])).release.digest).toBe(v1.digest);
  });
});
