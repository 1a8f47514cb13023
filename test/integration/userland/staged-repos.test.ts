import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, createRoot, encodeEnvelope, generateKeyPair, parseRoot } from '../../../catalog/index.js';
import { stagedRepoFile } from '../../../userland/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { pkgJson, spawnPkg } from './helpers.js';

/**
 * Repositories staged by the image: `ROOT/repos.d/NAME.json` on a host root
 * (`/usr/lib/pkg/repos.d` in the guest), written with the image builder's own
 * function, read by `pkg` beside its `db/`. Real signed repository on a
 * loopback server; every refusal asserts its code and an unchanged root.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;
let stagedDir: string;

beforeEach(async () => {
  repo = await buildFakeRepo({ packages: [{ name: 'alpha', version: '1.0.0' }] });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  stagedDir = join(root, 'repos.d');
  await mkdir(stagedDir);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function stage(name: string, spec: { fingerprint?: string; rootFile?: string; url?: string }): Promise<string> {
  const file = join(stagedDir, `${name}.json`);
  const bytes = stagedRepoFile(name, {
    url: spec.url ?? server.url,
    ...(spec.fingerprint !== undefined ? { fingerprint: spec.fingerprint } : {}),
    ...(spec.rootFile !== undefined ? { rootBytes: await readFile(spec.rootFile) } : {}),
  });
  await writeFile(file, bytes);
  return file;
}

async function expectRefused(args: string[], code: string): Promise<{ details: Record<string, unknown> }> {
  const before = await treeHash(root);
  const r = await pkgJson(root, args);
  expect(r.json?.error?.code, r.stdout + r.stderr).toBe(code);
  expect(r.code).toBe(ERROR_CODES[code as keyof typeof ERROR_CODES]);
  expect(await treeHash(root)).toBe(before);
  return { details: r.json!.error!.details };
}

describe('a staged repository', () => {
  it('pinned by fingerprint: update and install need no repo add; list marks it staged', async () => {
    const file = await stage('main', { fingerprint: repo.fingerprint });
    const before = await pkgJson(root, ['repo', 'list']);
    // The root is fetched only by `pkg update`: before that the list knows the pin, not the root's version.
    expect(before.json?.result).toEqual([expect.objectContaining({ name: 'main', staged: file, pinnedFingerprint: repo.fingerprint })]);
    expect(before.json?.result[0].rootVersion).toBeUndefined();
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0], up.stdout).toMatchObject({ repo: 'main', rootVersion: 1, changed: true });
    const inst = await pkgJson(root, ['install', 'alpha', '--yes']);
    expect(inst.json?.ok, inst.stdout).toBe(true);
    const list = await pkgJson(root, ['repo', 'list']);
    expect(list.json?.result[0]).toMatchObject({ name: 'main', staged: file, rootVersion: 1, catalogVersion: repo.catalogVersion });
    // The image's file is configuration, not state: db/repos.json never names it.
    expect(existsSync(join(root, 'db', 'repos.json'))).toBe(false);
  });

  it('pinned by its root document: the list shows the root before any network use', async () => {
    const file = await stage('main', { rootFile: repo.rootFile });
    const list = await pkgJson(root, ['repo', 'list']);
    expect(list.json?.result[0]).toMatchObject({ name: 'main', staged: file, rootVersion: 1, pinnedFingerprint: repo.fingerprint });
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    expect((await pkgJson(root, ['install', 'alpha', '--yes'])).json?.ok).toBe(true);
  });

  it('is a starting point: a rotation is followed from it and kept in db/', async () => {
    await stage('main', { rootFile: repo.rootFile });
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    await repo.rotateRoot();
    await repo.publish();
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0], up.stdout).toMatchObject({ rootVersion: 2, rotatedRoots: [2] });
    await repo.rotateRoot();
    await repo.publish();
    // The walk continues from the accepted v2, not from the staged v1.
    const again = await pkgJson(root, ['update']);
    expect(again.json?.result.repos[0]).toMatchObject({ rootVersion: 3, rotatedRoots: [3] });
    const kept = parseRoot(await readFile(join(root, 'db', 'roots', 'main.json')), 'kept');
    expect(kept.signed.version).toBe(3);
  });

  it('rotated before the first update: the walk starts at the staged root', async () => {
    await stage('main', { fingerprint: repo.fingerprint });
    await repo.rotateRoot();
    await repo.publish();
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0], up.stdout).toMatchObject({ rootVersion: 2, rotatedRoots: [2] });
  });

  it('with the wrong fingerprint is refused at pkg update with E_BAD_ROOT, nothing written', async () => {
    await stage('main', { fingerprint: 'ab'.repeat(32) });
    // The first writer creates the root's skeleton (db/, the lock); no trust state may appear.
    const first = await pkgJson(root, ['update']);
    expect(first.json?.error?.code, first.stdout).toBe('E_BAD_ROOT');
    expect(first.code).toBe(3);
    expect(existsSync(join(root, 'db', 'roots', 'main.json'))).toBe(false);
    expect(existsSync(join(root, 'db', 'catalogs', 'main.json'))).toBe(false);
    await expectRefused(['update'], 'E_BAD_ROOT');
  });

  it('an image rebuilt with another pin starts again from the new pin', async () => {
    await stage('main', { fingerprint: repo.fingerprint });
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    await stage('main', { fingerprint: 'cd'.repeat(32) });
    // The root accepted under the old pin is not trusted for the new one, nor the catalog it accepted.
    await expectRefused(['update'], 'E_BAD_ROOT');
    expect((await pkgJson(root, ['search', 'alpha'])).json?.result).toEqual([]);
    const inst = await pkgJson(root, ['install', 'alpha', '--yes']);
    expect(inst.json?.error?.code, inst.stdout).toBe('E_RESOLVE');
  });

  it('is overridden by repo set, with a warning, and comes back when the override is removed', async () => {
    const file = await stage('main', { fingerprint: 'ab'.repeat(32) });
    const set = await pkgJson(root, ['repo', 'set', 'main', server.url, '--fingerprint', repo.fingerprint]);
    expect(set.json?.result, set.stdout).toMatchObject({ name: 'main', overridesStaged: file, pinnedFingerprint: repo.fingerprint });
    expect(set.json?.warnings?.join('\n')).toContain(file);
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    const again = await pkgJson(root, ['repo', 'set', 'main', server.url]);
    expect(again.json?.result, again.stdout).toMatchObject({ overridesStaged: file, pinnedFingerprint: repo.fingerprint });
    const list = await pkgJson(root, ['repo', 'list']);
    expect(list.json?.result).toHaveLength(1);
    expect(list.json?.result[0]).toMatchObject({ name: 'main', overridesStaged: file });
    expect(list.json?.result[0].staged).toBeUndefined();
    const rm = await pkgJson(root, ['repo', 'remove', 'main']);
    expect(rm.json?.result).toEqual({ removed: 'main', stagedAgain: file });
    expect(rm.json?.warnings?.join('\n')).toContain(file);
    // Back on the staged (wrong) pin: the override's accepted root is gone with it.
    await expectRefused(['update'], 'E_BAD_ROOT');
    await expectRefused(['repo', 'remove', 'main'], 'E_USAGE');
  });

  it('repo set without a new root keeps the staged trust and the accepted catalog', async () => {
    await stage('main', { fingerprint: repo.fingerprint });
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
    const set = await pkgJson(root, ['repo', 'set', 'main', server.url]);
    expect(set.json?.result, set.stdout).toMatchObject({
      pinnedFingerprint: repo.fingerprint,
      rootVersion: 1,
      catalogVersion: repo.catalogVersion,
    });
    expect(set.json?.warnings?.join('\n')).toMatch(/overrides/);
  });

  it('repo add of a staged name pinned by fingerprint only fetches the staged root from the new URL', async () => {
    await stage('main', { fingerprint: repo.fingerprint, url: 'http://127.0.0.1:9/' });
    const add = await pkgJson(root, ['repo', 'add', 'main', server.url]);
    expect(add.json?.result, add.stdout).toMatchObject({ pinnedFingerprint: repo.fingerprint, rootVersion: 1 });
    expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
  });
});

describe('a kill during the first update from a staged pin', () => {
  for (const point of ['update.catalog-verified', 'update.staged-root-saved', 'update.root-saved', 'update.saved']) {
    it(`at ${point}: the next update accepts the repository and install works`, async () => {
      await stage('main', { fingerprint: repo.fingerprint });
      const killed = await spawnPkg(root, ['update', '--json'], { PKG_TEST_CRASH_AT: point });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const up = await pkgJson(root, ['update']);
      expect(up.json?.result.repos[0], up.stdout).toMatchObject({ repo: 'main', rootVersion: 1, version: repo.catalogVersion });
      expect((await pkgJson(root, ['install', 'alpha', '--yes'])).json?.ok).toBe(true);
      expect((await readFile(join(root, 'db', 'roots', 'main.staged-pin'), 'utf8')).trim()).toBe(repo.fingerprint);
    });
  }
});

describe('a malformed staged file is E_BAD_CONFIG naming the file, and changes nothing', () => {
  const goodUrl = (): string => server.url;
  const cases: Array<{ why: string; name: string; body: () => string | Buffer; check: string }> = [
    { why: 'not JSON', name: 'main.json', body: () => '{"format": 1,', check: 'E_MALFORMED' },
    {
      why: 'an unknown field',
      name: 'main.json',
      body: () => JSON.stringify({ format: 1, url: goodUrl(), fingerprint: repo.fingerprint, trust: 'all' }),
      check: 'E_UNKNOWN_FIELD',
    },
    {
      why: 'a duplicate key',
      name: 'main.json',
      body: () => `{"format": 1, "url": "${goodUrl()}", "fingerprint": "${'ab'.repeat(32)}", "fingerprint": "${repo.fingerprint}"}`,
      check: 'E_DUPLICATE_KEY',
    },
    {
      why: 'another format',
      name: 'main.json',
      body: () => JSON.stringify({ format: 2, url: goodUrl(), fingerprint: repo.fingerprint }),
      check: 'format',
    },
    {
      why: 'a file URL',
      name: 'main.json',
      body: () => JSON.stringify({ format: 1, url: 'file:///etc/', fingerprint: repo.fingerprint }),
      check: 'url',
    },
    { why: 'no trust at all', name: 'main.json', body: () => JSON.stringify({ format: 1, url: goodUrl() }), check: 'trust' },
    {
      why: 'both a fingerprint and a root',
      name: 'main.json',
      body: () =>
        JSON.stringify({
          format: 1,
          url: goodUrl(),
          fingerprint: repo.fingerprint,
          root: JSON.parse(encodeEnvelope(repo.root).toString()) as unknown,
        }),
      check: 'trust',
    },
    {
      why: 'a short fingerprint',
      name: 'main.json',
      body: () => JSON.stringify({ format: 1, url: goodUrl(), fingerprint: 'abc' }),
      check: 'fingerprint',
    },
    {
      why: 'a root signed by a key it does not list',
      name: 'main.json',
      body: () => {
        const env = JSON.parse(encodeEnvelope(repo.root).toString()) as { signatures: Array<{ keyid: string; sig: string }> };
        const other = createRoot({
          rootKeys: [generateKeyPair()],
          catalogKeys: [generateKeyPair()],
          version: 1,
          expires: new Date(Date.now() + 86400_000),
        });
        env.signatures = other.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig }));
        return JSON.stringify({ format: 1, url: goodUrl(), root: env });
      },
      check: 'E_UNKNOWN_KEY',
    },
    {
      why: 'a file not named NAME.json',
      name: 'Main.conf',
      body: () => JSON.stringify({ format: 1, url: goodUrl(), fingerprint: repo.fingerprint }),
      check: 'file-name',
    },
  ];
  for (const c of cases) {
    it(`${c.why} (${c.check})`, async () => {
      // An added repository beside it: the broken image file still stops every command that reads repositories.
      expect((await pkgJson(root, ['repo', 'add', 'other', server.url, '--fingerprint', repo.fingerprint])).json?.ok).toBe(true);
      const file = join(stagedDir, c.name);
      await writeFile(file, c.body());
      for (const args of [['update'], ['repo', 'list'], ['install', 'alpha', '--yes']]) {
        const { details } = await expectRefused(args, 'E_BAD_CONFIG');
        expect(details).toMatchObject({ path: file, check: c.check });
      }
    });
  }
});
