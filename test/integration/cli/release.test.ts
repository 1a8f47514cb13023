/**
 * Pinned releases through the built binaries (issue 15): the release role in the root, and the
 * commands that write, publish, mirror and install releases.
 */
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRelease, parseRoot } from '../../../catalog/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { ok, pack, releaseRepo } from '../../helpers/release-repo.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { publishedPath } from '../../helpers/published.js';

describe('swpkg release keys', { timeout: 180_000 }, () => {
  it('rotate-root --release-key adds a release role that later rotations keep', async () => {
    const d = await tempDir();
    const { web, catalogKey } = await releaseRepo(d);
    const v2 = parseRoot(await readFile(join(web, 'roots/2.json')), 'v2');
    expect(v2.signed.roles.release?.keyids).toHaveLength(1);
    expect(v2.signed.roles.release?.keyids[0]).not.toBe(v2.signed.roles.catalog.keyids[0]);
    await ok('swpkg', ['repo', 'rotate-root', web, '--old-key', catalogKey, '--new-key', catalogKey]);
    expect(parseRoot(await readFile(join(web, 'roots/3.json')), 'v3').signed.roles.release).toEqual(v2.signed.roles.release);
  });
});

describe('swpkg release create', { timeout: 180_000 }, () => {
  it('pins the exact set, lists it in releases/index.json and index.html, and never rewrites a published version', async () => {
    const d = await tempDir();
    const { web, releaseKey } = await releaseRepo(d);
    const r = await ok('swpkg', [
      'release',
      'create',
      web,
      '--id',
      'edge',
      '--key',
      releaseKey,
      '--arch',
      'x86_64',
      '--source-revision',
      'rev1',
    ]);
    expect(r).toMatchObject({ id: 'edge', version: 1, path: 'releases/edge/1.json', supersedes: null });
    const doc = parseRelease(await readFile(join(web, r.path)));
    expect(doc.signed.packages.map((p) => `${p.name}@${p.version}`)).toEqual(['lib@1.0.0', 'tool@1.0.0']);
    expect(doc.signed).toMatchObject({ repo: 'main', arch: 'x86_64', sourceRevision: 'rev1' });
    const listing = JSON.parse(await readFile(join(web, 'releases/index.json'), 'utf8'));
    expect(listing.releases).toEqual([expect.objectContaining({ id: 'edge', version: 1, digest: r.digest, path: r.path, packages: 2 })]);
    const html = await readFile(join(web, 'index.html'), 'utf8');
    expect(html).toContain('releases/edge/1.json');
    expect(html).toContain(r.digest);

    const before = await treeHash(web);
    const again = await runCli('swpkg', [
      'release',
      'create',
      web,
      '--id',
      'edge',
      '--version',
      '1',
      '--key',
      releaseKey,
      '--arch',
      'x86_64',
      '--json',
    ]);
    expect(again.json.error.code).toBe('E_IMMUTABLE');
    expect(await treeHash(web)).toBe(before);

    const next = await ok('swpkg', [
      'release',
      'create',
      web,
      '--id',
      'edge',
      '--key',
      releaseKey,
      '--arch',
      'x86_64',
      '--package',
      'lib@1.0.0',
    ]);
    expect(next).toMatchObject({ version: 2, supersedes: { id: 'edge', version: 1 } });
    const older = await runCli('swpkg', [
      'release',
      'create',
      web,
      '--id',
      'edge',
      '--version',
      '1',
      '--key',
      releaseKey,
      '--arch',
      'x86_64',
      '--json',
    ]);
    expect(older.json.error.code).toBe('E_ROLLBACK');
  });

  it('refuses a key the root does not name, a package missing or altered in the web root, an open dependency: nothing written', async () => {
    const d = await tempDir();
    const { web, releaseKey, catalogKey } = await releaseRepo(d);
    const cases: { name: string; args: string[]; code: string; before?: () => Promise<void> }[] = [
      { name: 'the catalog key', args: ['--key', catalogKey], code: 'E_UNKNOWN_KEY' },
      { name: 'an unknown package', args: ['--key', releaseKey, '--package', 'nope@1.0.0'], code: 'E_NOT_FOUND' },
      { name: 'a set whose dependency is left out', args: ['--key', releaseKey, '--package', 'tool@1.0.0'], code: 'E_RESOLVE' },
      { name: 'a climbing id', args: ['--key', releaseKey, '--id', '../x'], code: 'E_USAGE' },
      {
        name: 'an altered package file',
        args: ['--key', releaseKey],
        code: 'E_HASH_MISMATCH',
        before: async () => writeFile(join(web, await publishedPath(web, 'lib-1.0.0-x86_64')), 'not the package'),
      },
      {
        name: 'a missing package file',
        args: ['--key', releaseKey],
        code: 'E_NOT_FOUND',
        before: async () => rm(join(web, await publishedPath(web, 'lib-1.0.0-x86_64'))),
      },
    ];
    for (const c of cases) {
      await c.before?.();
      const before = await treeHash(web);
      const args = c.args.includes('--id') ? c.args : ['--id', 'edge', ...c.args];
      const r = await runCli('swpkg', ['release', 'create', web, ...args, '--arch', 'x86_64', '--json']);
      expect(r.json?.error?.code, `${c.name}: ${r.stdout} ${r.stderr}`).toBe(c.code);
      expect(await treeHash(web), c.name).toBe(before);
    }
  });

  it('publish keeps a package a live release names past its retention window, and deletes the others', async () => {
    const d = await tempDir();
    const { web, releaseKey, catalogKey } = await releaseRepo(d);
    await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64', '--package', 'lib@1.0.0']);
    const tool = await publishedPath(web, 'tool-1.0.0-x86_64');
    const lib = await publishedPath(web, 'lib-1.0.0-x86_64');
    // The next set drops both packages: tool goes at once, lib stays because release edge v1 pins it.
    await rm(join(d, 'pkgs'), { recursive: true });
    await mkdir(join(d, 'pkgs'));
    await pack(d, 'other', '1.0.0');
    const pub = await ok('swpkg', ['repo', 'publish', join(d, 'pkgs'), '--key', catalogKey, '--out', web, '--retain', '0s']);
    expect(pub.deleted).toEqual([tool]);
    expect(pub.retained).toEqual([lib]);
    expect(await readFile(join(web, 'index.html'), 'utf8')).toContain('releases/edge/1.json');
  });
});

describe('swpkg repo mirror', { timeout: 180_000 }, () => {
  it('copies a whole repository or one release, verified, and pkg installs the release from the copy', async () => {
    const d = await tempDir();
    const { web, releaseKey, fingerprint } = await releaseRepo(d);
    const v1 = await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64']);
    const full = await ok('swpkg', ['repo', 'mirror', web, join(d, 'full'), '--fingerprint', fingerprint]);
    expect(full.releases).toEqual([{ id: 'edge', version: 1, digest: v1.digest }]);
    const tool = await publishedPath(web, 'tool-1.0.0-x86_64');
    expect(await readFile(join(d, 'full', tool))).toEqual(await readFile(join(web, tool)));
    // A client that follows the copy's pointer (hosted-repo.json) finds the catalog it names.
    const fullRoot = join(d, 'fullroot');
    await ok('pkg', ['--root', fullRoot, 'repo', 'add', 'main', join(d, 'full'), '--fingerprint', fingerprint]);
    const upd = await ok('pkg', ['--root', fullRoot, 'update']);
    expect(JSON.stringify(upd)).toContain('"main"');

    const media = join(d, 'media');
    const one = await ok('swpkg', ['repo', 'mirror', web, media, '--release', 'edge@1']);
    expect(one.releases).toEqual([{ id: 'edge', version: 1, digest: v1.digest }]);
    const root = join(d, 'pkgroot');
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', media, '--fingerprint', fingerprint]);
    const inst = await ok('pkg', ['--root', root, 'install', '--release', join(media, v1.path), '--yes']);
    expect(inst.release.digest).toBe(v1.digest);
  });

  it('refuses a source whose pointer names a catalog with other bytes or a path that is not a catalog, writing nothing', async () => {
    const d = await tempDir();
    const { web } = await releaseRepo(d);
    const pointerFile = join(web, 'hosted-repo.json');
    const pointer = JSON.parse(await readFile(pointerFile, 'utf8')) as { catalog: string };
    const current = join(web, pointer.catalog);
    const good = await readFile(current);
    await writeFile(current, Buffer.concat([good, Buffer.from('\n')]));
    const swapped = await runCli('swpkg', ['repo', 'mirror', web, join(d, 'out'), '--json']);
    expect(swapped.json?.error?.code).toBe('E_HASH_MISMATCH');
    await writeFile(current, good);
    await writeFile(pointerFile, JSON.stringify({ ...pointer, catalog: '../outside.json' }));
    const escaped = await runCli('swpkg', ['repo', 'mirror', web, join(d, 'out'), '--json']);
    expect(escaped.json?.error?.code).toBe('E_CORRUPT');
    expect((await readdir(d)).filter((n) => n.startsWith('out'))).toEqual([]);
  });

  it('refuses a source with an altered package, a link, or another root, and writes nothing', async () => {
    const d = await tempDir();
    const { web, releaseKey } = await releaseRepo(d);
    await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64']);
    const wrongFp = await runCli('swpkg', ['repo', 'mirror', web, join(d, 'out'), '--fingerprint', 'a'.repeat(64), '--json']);
    expect(wrongFp.json?.error?.code).toBe('E_BAD_ROOT');
    const lib = join(web, await publishedPath(web, 'lib-1.0.0-x86_64'));
    const good = await readFile(lib);
    await writeFile(lib, Buffer.concat([good.subarray(0, good.length - 1), Buffer.from([good[good.length - 1]! ^ 1])]));
    const altered = await runCli('swpkg', ['repo', 'mirror', web, join(d, 'out'), '--json']);
    expect(altered.json?.error?.code).toBe('E_HASH_MISMATCH');
    await rm(lib);
    await writeFile(join(d, 'lib.swpkg'), good);
    await symlink(join(d, 'lib.swpkg'), lib);
    const linked = await runCli('swpkg', ['repo', 'mirror', web, join(d, 'out'), '--release', 'edge', '--json']);
    expect(linked.json?.error?.code).toBe('E_UNSAFE_PATH');
    expect(await readdir(d)).not.toContain('out');
    expect((await readdir(d)).filter((n) => n.startsWith('out'))).toEqual([]);
  });
});
