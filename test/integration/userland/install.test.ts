import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lstat, readFile, readdir, readlink, realpath, writeFile, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { generateKeyPair, toPublicKeyFile } from '../../../catalog/index.js';
import { buildFakeRepo, buildPackage, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { addMainRepo, pkg, pkgJson } from './helpers.js';

/**
 * The install path end to end against a loopback repository: plan,
 * download, verify, store, generation, atomic switch; then remove, upgrade,
 * rollback, doctor and gc on the result.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'zlib', version: '1.3.0', files: { 'lib/libz.a': 'zlib 1.3.0 archive\n', 'include/zlib.h': '/* zlib */\n' } },
      {
        name: 'lua',
        version: '5.4.6',
        depends: { zlib: '^1.3.0' },
        files: {
          'bin/lua': '#!/bin/sh\necho Lua 5.4.6\n',
          'share/lua/5.4/init.lua': 'return 1\n',
          'lib/liblua.so': { symlink: 'liblua.so.5.4' },
          'lib/liblua.so.5.4': 'elf\n',
        },
      },
      { name: 'hello', version: '1.0.0', files: { 'bin/hello': '#!/bin/sh\necho hello\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function doctorOk(): Promise<void> {
  const d = await pkgJson(root, ['doctor']);
  expect(d.json?.ok, JSON.stringify(d.json, null, 2)).toBe(true);
}

describe('pkg install', () => {
  it('installs a package with its dependency into a new generation, with relative links', async () => {
    const dry = await pkgJson(root, ['install', 'lua', '--dry-run']);
    expect(dry.json?.result.dryRun).toBe(true);
    expect(dry.json?.result.plan.lines.map((l: { action: string; name: string }) => `${l.action} ${l.name}`)).toEqual([
      'install zlib',
      'install lua',
    ]);
    expect(dry.json?.result.plan.downloadBytes).toBe(repo.packages.get('lua@5.4.6')!.size + repo.packages.get('zlib@1.3.0')!.size);
    expect(await readdir(root)).not.toContain('current');

    const r = await pkgJson(root, ['install', 'lua', '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.result.generation).toBe(1);
    expect(await readlink(join(root, 'current'))).toBe('generations/1');
    const lua = join(root, 'current/bin/lua');
    // bin/ is lua's alone: linked whole into its store entry; lib/ is shared: a link per file.
    expect((await readlink(join(root, 'current/bin'))).startsWith('../../store/')).toBe(true);
    expect((await readlink(join(root, 'current/lib/liblua.so.5.4'))).startsWith('../../../store/')).toBe(true);
    expect(await readFile(lua, 'utf8')).toContain('Lua 5.4.6');
    expect(await readFile(join(root, 'current/lib/liblua.so'), 'utf8')).toBe('elf\n');
    expect(await readFile(join(root, 'current/lib/libz.a'), 'utf8')).toContain('zlib');
    // The store is read-only.
    const real = await realpath(lua);
    expect((await lstat(real)).mode & 0o222).toBe(0);

    const list = await pkgJson(root, ['list']);
    expect(list.json?.result.map((p: { name: string; explicit: boolean }) => `${p.name}:${p.explicit}`)).toEqual([
      'lua:true',
      'zlib:false',
    ]);
    const files = await pkgJson(root, ['files', 'lua']);
    expect(files.json?.result.files.map((f: { path: string }) => f.path)).toContain('bin/lua');
    const info = await pkgJson(root, ['info', 'lua']);
    expect(info.json?.result.installed.version).toBe('5.4.6');
    await doctorOk();
    expect(await readdir(join(root, 'cache'))).toEqual([]);
  });

  it('needs --yes without a terminal and changes nothing (E_CONFIRM)', async () => {
    const before = await treeHash(root);
    const r = await pkgJson(root, ['install', 'hello']);
    expect(r.json?.error?.code).toBe('E_CONFIRM');
    expect(r.code).toBe(2);
    expect(await treeHash(root)).toBe(before);
  });

  it('explains why nothing can be resolved', async () => {
    const r = await pkgJson(root, ['install', 'lua@^6', '--yes']);
    expect(r.json?.error?.code).toBe('E_RESOLVE');
    expect(r.code).toBe(4);
    expect(r.json?.error?.details['explanation'].join('\n')).toMatch(/lua/);
    const missing = await pkg(root, ['install', 'nosuch', '--yes']);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/^error E_RESOLVE: /m);
    expect(missing.stderr).toMatch(/fix: /);
  });

  it('removes, refusing while needed, cascading on request, cleaning orphans', async () => {
    await pkgJson(root, ['install', 'lua', 'hello', '--yes']);
    const before = await treeHash(root);
    const needed = await pkgJson(root, ['remove', 'zlib', '--yes']);
    expect(needed.json?.error?.code).toBe('E_NEEDED');
    expect(needed.json?.error?.details['dependents']).toEqual(['lua']);
    expect(await treeHash(root)).toBe(before);

    const rm = await pkgJson(root, ['remove', 'lua', '--yes']);
    expect(rm.json?.result.plan.lines.map((l: { action: string; name: string }) => `${l.action} ${l.name}`).sort()).toEqual([
      'remove lua',
      'remove zlib',
    ]);
    expect((await pkgJson(root, ['list'])).json?.result.map((p: { name: string }) => p.name)).toEqual(['hello']);
    await expect(lstat(join(root, 'current/bin/lua'))).rejects.toThrow();

    await pkgJson(root, ['install', 'lua', '--yes']);
    const cascade = await pkgJson(root, ['remove', 'zlib', '--cascade', '--yes']);
    expect(cascade.json?.ok).toBe(true);
    expect((await pkgJson(root, ['list'])).json?.result.map((p: { name: string }) => p.name)).toEqual(['hello']);
    await doctorOk();
  });

  it('upgrades, rolls back, rolls forward, and gc keeps what generations need', async () => {
    await pkgJson(root, ['install', 'lua', '--yes']);
    await repo.publish([
      { name: 'lua', version: '5.4.7', depends: { zlib: '^1.3.0' }, files: { 'bin/lua': '#!/bin/sh\necho Lua 5.4.7\n' } },
    ]);
    await pkgJson(root, ['update']);
    const upg = await pkgJson(root, ['list', '--upgradable']);
    expect(upg.json?.result).toMatchObject([{ name: 'lua', version: '5.4.6', latest: '5.4.7' }]);
    const r = await pkgJson(root, ['upgrade', '--yes']);
    expect(r.json?.result.plan.lines).toMatchObject([{ action: 'upgrade', name: 'lua', from: '5.4.6', to: '5.4.7' }]);
    expect(await readFile(join(root, 'current/bin/lua'), 'utf8')).toContain('5.4.7');
    await expect(lstat(join(root, 'current/share/lua/5.4/init.lua'))).rejects.toThrow();

    const back = await pkgJson(root, ['rollback', '--yes']);
    expect(back.json?.result).toMatchObject({ from: 2, to: 1, changed: true });
    expect(await readFile(join(root, 'current/bin/lua'), 'utf8')).toContain('5.4.6');
    const gens = await pkgJson(root, ['generations']);
    expect(gens.json?.result.map((g: { number: number; current: boolean }) => `${g.number}${g.current ? '*' : ''}`)).toEqual(['1*', '2']);
    const fwd = await pkgJson(root, ['rollback', '--to', '2', '--yes']);
    expect(fwd.json?.result.to).toBe(2);
    await doctorOk();

    const gc = await pkgJson(root, ['gc', '--keep', '0', '--yes']);
    expect(gc.json?.result.removedGenerations).toEqual([1]);
    expect(gc.json?.result.removedStoreEntries).toHaveLength(1);
    expect(await readFile(join(root, 'current/bin/lua'), 'utf8')).toContain('5.4.7');
    await doctorOk();
    expect((await pkgJson(root, ['rollback'])).json?.error?.code).toBe('E_NOT_FOUND');
  });

  it('refuses two packages that own the same file, naming both (E_FILE_CONFLICT)', async () => {
    await repo.publish([{ name: 'hello-fork', version: '1.0.0', files: { 'bin/hello': '#!/bin/sh\necho fork\n' } }]);
    await pkgJson(root, ['update']);
    await pkgJson(root, ['install', 'hello', '--yes']);
    const before = await treeHash(root);
    const r = await pkgJson(root, ['install', 'hello-fork', '--yes']);
    expect(r.json?.error?.code).toBe('E_FILE_CONFLICT');
    expect(r.json?.error?.details['owners']).toEqual(['hello@1.0.0', 'hello-fork@1.0.0']);
    expect(await treeHash(root)).toBe(before);
  });

  it('installs a local file only when a trusted key signed it', async () => {
    const signer = generateKeyPair();
    const dir = await tempDir();
    const signed = await buildPackage(dir, { name: 'local', version: '0.1.0', signWith: signer, files: { 'bin/local': 'x\n' } });
    const before = await treeHash(root);
    const refused = await pkgJson(root, ['install', signed.file, '--yes']);
    expect(refused.json?.error?.code).toBe('E_UNKNOWN_KEY');
    const unsigned = await buildPackage(dir, { name: 'plain', version: '0.1.0' });
    expect((await pkgJson(root, ['install', unsigned.file, '--yes'])).json?.error?.code).toBe('E_UNTRUSTED');
    expect(await treeHash(root)).toBe(before);

    const allowed = await pkg(root, ['install', unsigned.file, '--yes', '--allow-untrusted']);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/NOT signed by a trusted key/);

    const pub = join(dir, 'signer.pub');
    await writeFile(pub, JSON.stringify(toPublicKeyFile(signer)));
    expect((await pkgJson(root, ['key', 'add', pub])).json?.ok).toBe(true);
    const ok = await pkgJson(root, ['install', signed.file, '--yes']);
    expect(ok.json?.ok, ok.stdout).toBe(true);
    expect(await readFile(join(root, 'current/bin/local'), 'utf8')).toBe('x\n');
    const list = await pkgJson(root, ['list']);
    expect(list.json?.result.find((p: { name: string }) => p.name === 'local').repo).toBeNull();
    await doctorOk();
  });

  it('trusts a local file signed by a catalog key of a configured repository', async () => {
    const dir = await tempDir();
    const signed = await buildPackage(dir, { name: 'vendor', version: '1.0.0', signWith: repo.key });
    const r = await pkgJson(root, ['install', signed.file, '--yes']);
    expect(r.json?.ok, r.stdout).toBe(true);
  });

  it('doctor reports drift in the store and a dangling current', async () => {
    await pkgJson(root, ['install', 'hello', '--yes']);
    const target = await realpath(join(root, 'current/bin/hello'));
    await chmod(target, 0o755);
    await writeFile(target, 'changed\n');
    const d = await pkgJson(root, ['doctor']);
    expect(d.json?.error?.code).toBe('E_STORE');
    expect(d.json?.error?.details['report'].problems[0]).toMatchObject({ kind: 'drift', package: 'hello@1.0.0' });
    const { symlink, rm } = await import('node:fs/promises');
    await rm(join(root, 'current'));
    await symlink('generations/9', join(root, 'current'));
    const d2 = await pkgJson(root, ['doctor']);
    expect(d2.json?.error?.details['report'].problems.map((p: { kind: string }) => p.kind)).toContain('dangling-current');
    const fix = await pkgJson(root, ['rollback', '--to', '1', '--yes']);
    expect(fix.json?.ok).toBe(true);
  });

  it('doctor names files that nothing installed put into a store entry or a generation', async () => {
    await pkgJson(root, ['install', 'hello', '--yes']);
    const entry = dirname(dirname(await realpath(join(root, 'current/bin/hello'))));
    await writeFile(join(entry, 'bin/planted'), 'x\n');
    const generation = await realpath(join(root, 'current'));
    await writeFile(join(generation, 'stray'), 'x\n');
    const d = await pkgJson(root, ['doctor']);
    expect(d.json?.error?.code).toBe('E_STORE');
    const details = (d.json?.error?.details['report'].problems as { detail: string; path: string }[]).map((p) => `${p.path}: ${p.detail}`);
    expect(details.some((x) => x.includes('bin/planted') && x.includes('is not in the manifest'))).toBe(true);
    expect(details.some((x) => x.endsWith('/stray: is not part of any installed package'))).toBe(true);
  });

  it('refuses to install from an accepted catalog once it has expired, but installs local files without it', async () => {
    const later = { PKG_TEST_NOW: new Date(Date.now() + 30 * 86400_000).toISOString() };
    const before = await treeHash(root);
    const r = await pkgJson(root, ['install', 'hello', '--yes'], later);
    expect(r.json?.error?.code).toBe('E_EXPIRED');
    expect(await treeHash(root)).toBe(before);
    const dir = await tempDir();
    const local = await buildPackage(dir, { name: 'standalone', version: '1.0.0', signWith: repo.key });
    const ok = await pkgJson(root, ['install', local.file, '--yes'], later);
    expect(ok.json?.ok, ok.stdout).toBe(true);
    expect(ok.json?.warnings?.join('\n')).toMatch(/left out: E_EXPIRED/);
  });

  it('refuses a stored catalog whose bytes changed on disk (E_CORRUPT)', async () => {
    const dir = join(root, 'db/catalogs');
    const file = (await readdir(dir)).find((n) => n.endsWith('.catalog'))!;
    await writeFile(join(dir, file), (await readFile(join(dir, file), 'utf8')).replace('"payloadType"', '"payloadType" '));
    // pkg search reads the whole catalog; install reads the index (below).
    expect((await pkgJson(root, ['search', 'hello'])).json?.error?.code).toBe('E_CORRUPT');
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    expect((await pkgJson(root, ['search', 'hello'])).json?.ok).toBe(true);
  });

  it.each([
    ['its names table', (text: string) => text.replace('\nhello ', '\nhellp ')],
    ['its header', (text: string) => text.replace('"format":1', '"format":2')],
    [
      'an entry',
      (text: string) =>
        text.slice(0, text.lastIndexOf('"name":"hello"')) + '"name":"hellp"' + text.slice(text.lastIndexOf('"name":"hello"') + 14),
    ],
    ['its end cut off inside an entry', (text: string) => text.slice(0, text.lastIndexOf('"name":"hello"') + 5)],
  ])('refuses a stored catalog index with %s changed on disk (E_CORRUPT) and changes nothing', async (_what, damage) => {
    const dir = join(root, 'db/catalogs');
    const file = (await readdir(dir)).find((n) => n.endsWith('.index'))!;
    const text = await readFile(join(dir, file), 'utf8');
    expect(damage(text)).not.toBe(text);
    await writeFile(join(dir, file), damage(text));
    const before = await treeHash(root);
    expect((await pkgJson(root, ['install', 'hello', '--yes'])).json?.error?.code).toBe('E_CORRUPT');
    expect(await treeHash(root)).toBe(before);
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    expect((await pkgJson(root, ['install', 'hello', '--yes'])).json?.ok).toBe(true);
  });

  it('plans from the catalog index as from the whole catalog, and indexes a catalog accepted before indexes', async () => {
    // A state written before indexes has no indexSha256: the whole catalog is read.
    const state = join(root, 'db/catalogs/main.json');
    const s = JSON.parse(await readFile(state, 'utf8')) as Record<string, unknown>;
    delete s['indexSha256'];
    await writeFile(state, JSON.stringify(s));
    const whole = await pkgJson(root, ['install', 'lua', '--dry-run']);
    expect(whole.json?.ok, whole.stdout).toBe(true);
    // The same catalog, offered again, is kept, and its index written.
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    expect((JSON.parse(await readFile(state, 'utf8')) as { indexSha256?: string }).indexSha256).toMatch(/^[0-9a-f]{64}$/);
    // A refusal is explained from the whole catalog: the suggestion names an entry the request never reached.
    const missing = await pkgJson(root, ['install', 'helo', '--dry-run']);
    expect(missing.json?.error?.code).toBe('E_RESOLVE');
    expect(JSON.stringify(missing.json?.error)).toContain('hello');
    // With the whole catalog's bytes damaged only the index can make a plan: it is the same plan.
    const dir = join(root, 'db/catalogs');
    const file = (await readdir(dir)).find((n) => n.endsWith('.catalog'))!;
    await writeFile(join(dir, file), (await readFile(join(dir, file), 'utf8')).replace('"payloadType"', '"payloadType" '));
    const viaIndex = await pkgJson(root, ['install', 'lua', '--dry-run']);
    expect(viaIndex.json?.ok, viaIndex.stdout).toBe(true);
    expect(viaIndex.json?.result).toEqual(whole.json?.result);
  });
});
