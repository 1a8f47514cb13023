import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../helpers/http-table-server.js';
import { treeHash } from '../helpers/tmp.js';
import { addMainRepo, pkgJson } from '../integration/userland/helpers.js';

/**
 * Disk full: the pkg root is a 2 MiB tmpfs mounted by the test (we run as
 * root). A download that does not fit and an extraction that does not fit
 * (a small archive of a large file) both fail with E_DISK_FULL (exit 7),
 * leave the root exactly as it was, and a package that fits installs after.
 */
let repo: FakeRepo;
let server: TableServer;
let mount: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'huge', version: '1.0.0', files: { 'share/huge/blob': randomBytes(3 * 1024 * 1024) } },
      { name: 'bomb', version: '1.0.0', files: { 'share/bomb/zeros': Buffer.alloc(4 * 1024 * 1024) } },
      { name: 'small', version: '1.0.0', files: { 'bin/small': 'small\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  mount = await mkdtemp(join(tmpdir(), 'pkg-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
  await addMainRepo(mount, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
  execFileSync('umount', [mount]);
  await rm(mount, { recursive: true, force: true });
});
afterAll(cleanupFakeRepos);

describe('disk full', () => {
  for (const [name, where] of [
    ['huge', 'while downloading'],
    ['bomb', 'while extracting into the store'],
  ] as const) {
    it(`fails with E_DISK_FULL ${where}, changing nothing`, async () => {
      const before = await treeHash(mount);
      const r = await pkgJson(mount, ['install', name, '--yes']);
      expect(r.json?.error?.code, r.stdout).toBe('E_DISK_FULL');
      expect(r.code).toBe(7);
      expect(r.json?.error?.hint).toMatch(/free space/);
      expect(await treeHash(mount)).toBe(before);
      const ok = await pkgJson(mount, ['install', 'small', '--yes']);
      expect(ok.json?.ok, ok.stdout).toBe(true);
      expect((await pkgJson(mount, ['doctor'])).json?.ok).toBe(true);
    });
  }
});
