/**
 * Offline media (issue 15): a repository in a folder or at a file:// URL is verified exactly as one
 * over HTTP, through the built pkg; no server runs in these tests.
 */
import { copyFile, lstat, symlink, truncate, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/run-cli.js';
import { ok, releaseRepo } from '../../helpers/release-repo.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { publishedPath } from '../../helpers/published.js';

describe('pkg with a repository on offline media', { timeout: 180_000 }, () => {
  it('a folder and a file:// URL work as repositories: add, update, install', async () => {
    const d = await tempDir();
    const { web, fingerprint } = await releaseRepo(d);
    const root = join(d, 'pkgroot');
    const added = await ok('pkg', ['--root', root, 'repo', 'add', 'main', web, '--fingerprint', fingerprint]);
    expect(added.url).toBe(`file://${web}/`);
    await ok('pkg', ['--root', root, 'update']);
    await ok('pkg', ['--root', root, 'install', 'tool', '--yes']);
    const list = await ok('pkg', ['--root', root, 'list']);
    expect(JSON.stringify(list)).toContain('tool');
    const root2 = join(d, 'pkgroot2');
    await ok('pkg', ['--root', root2, 'repo', 'add', 'main', `file://${web}`, '--fingerprint', fingerprint]);
    await ok('pkg', ['--root', root2, 'update']);
  });

  it('refuses a climbing URL, a link out of the media, and a truncated package; nothing changes', async () => {
    const d = await tempDir();
    const { web, fingerprint } = await releaseRepo(d);
    const root = join(d, 'pkgroot');
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', web, '--fingerprint', fingerprint]);
    await ok('pkg', ['--root', root, 'update']);

    const before = await treeHash(root);
    for (const url of [`file://${web}/../web`, `${web}/../web`, `file://${web}/%2e%2e/web`]) {
      const r = await runCli('pkg', ['--root', root, 'repo', 'add', 'other', url, '--fingerprint', fingerprint, '--json']);
      expect(r.json?.error?.code, url).toBe('E_UNSAFE_PATH');
    }
    expect(await treeHash(root)).toBe(before);

    // A package on the media that is a link to a file elsewhere on this machine.
    const lib = join(web, await publishedPath(web, 'lib-1.0.0-x86_64'));
    await copyFile(lib, join(d, 'outside.swpkg'));
    await rm(lib);
    await symlink(join(d, 'outside.swpkg'), lib);
    const linked = await runCli('pkg', ['--root', root, 'install', 'tool', '--yes', '--json']);
    expect(linked.json?.error?.code).toBe('E_UNSAFE_PATH');
    expect(await treeHash(root)).toBe(before);

    // A package cut short on the media.
    await rm(lib);
    await copyFile(join(d, 'outside.swpkg'), lib);
    await truncate(lib, 100);
    const cut = await runCli('pkg', ['--root', root, 'install', 'tool', '--yes', '--json']);
    expect(cut.json?.error?.code).toBe('E_HASH_MISMATCH');
    expect(await treeHash(root)).toBe(before);

    // A missing one is the 404 an HTTP server would answer (a network-class failure: the cache folder may stay for a resume).
    await rm(lib);
    const store = await treeHash(join(root, 'store'));
    const missing = await runCli('pkg', ['--root', root, 'install', 'tool', '--yes', '--json']);
    expect(missing.json?.error?.code).toBe('E_HTTP');
    expect(await treeHash(join(root, 'store'))).toBe(store);
    await expect(lstat(join(root, 'current'))).rejects.toThrow();
  });

  it('a copied package signed by a key the client trusts installs without --allow-untrusted', async () => {
    const d = await tempDir();
    const { web, fingerprint } = await releaseRepo(d);
    const root = join(d, 'pkgroot');
    const copy = join(d, 'copy.swpkg');
    await copyFile(join(web, await publishedPath(web, 'lib-1.0.0-x86_64')), copy);
    const untrusted = await runCli('pkg', ['--root', root, 'install', copy, '--yes', '--json']);
    expect(untrusted.json?.error?.code).toBe('E_UNKNOWN_KEY');
    await expect(lstat(join(root, 'current'))).rejects.toThrow();
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', web, '--fingerprint', fingerprint]);
    const r = await ok('pkg', ['--root', root, 'install', copy, '--yes']);
    expect(r.generation).toBe(1);
  });
});
