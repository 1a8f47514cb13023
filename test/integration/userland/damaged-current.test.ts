import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, readlink, realpath, rm, symlink, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkGeneration, createContext, planTree, readGeneration, readStoreManifest } from '../../../userland/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { addMainRepo, pkgJson } from './helpers.js';

/**
 * A damaged `current` (pointing at a generation that is gone) is repaired by
 * the next writer: it falls back to the newest complete generation and says
 * so; with none left it changes nothing and says how to start over.
 * checkGeneration is the completeness rule the boot-time fallback reuses.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'one', version: '1.0.0', files: { 'bin/one': 'one\n', 'lib/one.so': { symlink: 'one.so.1' }, 'lib/one.so.1': 'elf\n' } },
      { name: 'two', version: '1.0.0', files: { 'bin/two': 'two\n' } },
      { name: 'three', version: '1.0.0', files: { 'bin/three': 'three\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
  expect((await pkgJson(root, ['install', 'one', '--yes'])).json?.result.generation).toBe(1);
  expect((await pkgJson(root, ['install', 'two', '--yes'])).json?.result.generation).toBe(2);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

describe('a damaged current', () => {
  it('falls back to the newest complete generation on the next install, with a warning', async () => {
    await rm(join(root, 'generations/2'), { recursive: true });
    const r = await pkgJson(root, ['install', 'three', '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.warnings?.join('\n')).toMatch(/current now points at generation 1, the newest complete one/);
    // Built on generation 1: one and three, not the lost two.
    expect((await pkgJson(root, ['list'])).json?.result.map((p: { name: string }) => p.name)).toEqual(['one', 'three']);
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
  });

  it('skips an incomplete generation when choosing where to fall back', async () => {
    expect((await pkgJson(root, ['install', 'three', '--yes'])).json?.result.generation).toBe(3);
    // Generation 2 loses a link; generation 3 (current) is deleted: only 1 is complete.
    await unlink(join(root, 'generations/2/bin/two'));
    await rm(join(root, 'generations/3'), { recursive: true });
    const r = await pkgJson(root, ['gc', '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.warnings?.join('\n')).toMatch(/generation 1, the newest complete one/);
    expect(await readlink(join(root, 'current'))).toBe('generations/1');
  });

  it('with no complete generation left, refuses with E_STORE saying how to start over, and changes nothing', async () => {
    for (const n of ['1', '2']) await rm(join(root, 'generations', n), { recursive: true });
    await rm(join(root, 'current'));
    await symlink('generations/2', join(root, 'current'));
    const before = await treeHash(root);
    const r = await pkgJson(root, ['install', 'three', '--yes']);
    expect(r.json?.error?.code).toBe('E_STORE');
    expect(r.json?.error?.hint).toContain(`rm ${join(root, 'current')}`);
    expect(await treeHash(root)).toBe(before);
    const d = await pkgJson(root, ['doctor']);
    expect(d.json?.error?.details['report'].problems[0].detail).toMatch(/no complete generation is left/);
  });

  it('--dry-run reports the damage and changes nothing', async () => {
    await rm(join(root, 'generations/2'), { recursive: true });
    const before = await treeHash(root);
    expect((await pkgJson(root, ['install', 'three', '--dry-run'])).json?.error?.code).toBe('E_STORE');
    expect(await treeHash(root)).toBe(before);
  });
});

describe('checkGeneration (the completeness rule, cheap: no re-hash)', () => {
  it('is complete for a generation pkg built, and names what is missing or wrong otherwise', async () => {
    const ctx = createContext({ root });
    expect(await checkGeneration(ctx, 2)).toEqual({ generation: 2, complete: true, problems: [] });
    expect((await checkGeneration(ctx, 7)).complete).toBe(false);

    // A store file gone.
    const stored = await realpath(join(root, 'generations/2/bin/one'));
    const entry = dirname(dirname(stored));
    await chmod(dirname(stored), 0o755);
    await rm(stored);
    const c = await checkGeneration(ctx, 2);
    expect(c.complete).toBe(false);
    expect(c.problems[0]).toMatch(/bin\/one: is missing/);

    // A link pointing elsewhere (generation 1 only has `one`, whose store entry is now damaged too).
    expect((await checkGeneration(ctx, 1)).complete).toBe(false);
    await chmod(entry, 0o755);
    await rm(entry, { recursive: true, force: true });
    expect((await checkGeneration(ctx, 1)).problems[0]).toMatch(/store\/.*one@1\.0\.0/);

    // A wrong link in the tree of an otherwise complete generation.
    const fresh = await tempDir('pkg-root-');
    await addMainRepo(fresh, server.url, repo.fingerprint);
    expect((await pkgJson(fresh, ['install', 'two', '--yes'])).json?.ok).toBe(true);
    // `two` alone has anything in bin/: the generation links that folder whole into its store entry.
    await unlink(join(fresh, 'generations/1/bin'));
    await symlink('../../etc', join(fresh, 'generations/1/bin'));
    const w = await checkGeneration(createContext({ root: fresh }), 1);
    expect(w.complete).toBe(false);
    expect(w.problems[0]).toMatch(/bin: points to \.\.\/\.\.\/etc/);
    expect(await readFile(join(fresh, 'generations/1/generation.json'), 'utf8')).toContain('"two"');
  });

  it('accepts a generation written before folder links (a link per file) and still finds damage in it', async () => {
    const ctx = createContext({ root });
    const gen = join(root, 'generations/1');
    const inputs = await Promise.all(
      (await readGeneration(ctx, 1)).packages.map(async (p) => ({ pkg: p, manifest: await readStoreManifest(ctx, p.store) })),
    );
    // Rewrite generation 1 as pkg wrote it before: real folders and one link per file where folder links are now.
    const folders = planTree(inputs).links.filter((l) => l.folder);
    expect(folders.map((l) => l.path)).toEqual(['bin', 'lib']);
    const flat = planTree(inputs, { folderLinks: false });
    for (const l of folders) await unlink(join(gen, l.path));
    for (const d of flat.dirs) await mkdir(join(gen, d), { recursive: true });
    for (const l of flat.links) await symlink(l.target, join(gen, l.path));
    expect(await checkGeneration(ctx, 1)).toEqual({ generation: 1, complete: true, problems: [] });
    expect((await pkgJson(root, ['doctor'])).json?.ok).toBe(true);
    const back = await pkgJson(root, ['rollback', '--to', '1', '--yes']);
    expect(back.json?.ok, back.stdout).toBe(true);
    expect(await readFile(join(root, 'current/bin/one'), 'utf8')).toBe('one\n');

    await unlink(join(gen, 'lib/one.so.1'));
    const c = await checkGeneration(ctx, 1);
    expect(c.complete).toBe(false);
    expect(c.problems[0]).toMatch(/lib\/one\.so\.1: link is missing/);
  });
});
