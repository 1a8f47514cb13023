import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildFakeRepo, buildPackage, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { pkgJson } from './helpers.js';

/**
 * A package of the other architecture never reaches the store: from a
 * repository (a catalog for that arch only, or a multi-arch catalog where the
 * name exists only for that arch) or as a local file, `pkg` refuses with
 * E_INCOMPATIBLE naming the package's arch and the machine's, and the root is
 * byte for byte what it was. Both directions: PKG_CLIENT_ARCH makes the root an
 * aarch64 machine on this x86_64 host.
 */
const DIRECTIONS = [
  { machine: 'x86_64', other: 'aarch64' },
  { machine: 'aarch64', other: 'x86_64' },
] as const;

let server: TableServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});
afterAll(cleanupFakeRepos);

async function serve(repo: FakeRepo): Promise<string> {
  server = await startTableServer(repo.table);
  return server.url;
}

describe.each(DIRECTIONS)('an $other package on an $machine root', ({ machine, other }) => {
  const env = { PKG_CLIENT_ARCH: machine };

  it('from a repository whose catalog is for the other arch only: pkg update refuses, naming both arches', async () => {
    const repo = await buildFakeRepo({ packages: [{ name: 'hello', version: '1.0.0', arch: other }] });
    const url = await serve(repo);
    const root = await tempDir('pkg-root-');
    expect((await pkgJson(root, ['repo', 'add', 'main', url, '--fingerprint', repo.fingerprint], env)).json?.ok).toBe(true);
    const before = await treeHash(root);
    const r = await pkgJson(root, ['update'], env);
    expect(r.code).toBe(3);
    expect(r.json?.error?.code).toBe('E_INCOMPATIBLE');
    expect(r.json?.error?.details).toMatchObject({ catalogArch: [other], clientArch: machine });
    expect(await treeHash(root)).toBe(before);
    const i = await pkgJson(root, ['install', 'hello', '--yes'], env);
    expect(i.json?.error?.code).not.toBe(undefined);
    expect(await treeHash(root)).toBe(before);
  });

  it('from a multi-arch repository where the name exists only for the other arch: install refuses, naming both', async () => {
    const repo = await buildFakeRepo({
      packages: [
        { name: 'hello', version: '1.0.0', arch: other },
        { name: 'tool', version: '1.0.0', arch: machine },
      ],
    });
    const url = await serve(repo);
    const root = await tempDir('pkg-root-');
    expect((await pkgJson(root, ['repo', 'add', 'main', url, '--fingerprint', repo.fingerprint], env)).json?.ok).toBe(true);
    expect((await pkgJson(root, ['update'], env)).json?.ok).toBe(true);
    // Something of this arch installed first, so "unchanged" covers a live generation too.
    expect((await pkgJson(root, ['install', 'tool', '--yes'], env)).json?.ok).toBe(true);
    const before = await treeHash(root);
    for (const spec of ['hello', 'hello@1.0.0']) {
      const r = await pkgJson(root, ['install', spec, '--yes'], env);
      expect(r.code, r.stdout).toBe(3);
      expect(r.json?.error?.code).toBe('E_INCOMPATIBLE');
      expect(r.json?.error?.details).toMatchObject({ package: 'hello', arches: [other], clientArch: machine, repos: ['main'] });
      expect(await treeHash(root)).toBe(before);
    }
    // A name nobody offers stays the resolver's to explain.
    expect((await pkgJson(root, ['install', 'nosuch', '--yes'], env)).json?.error?.code).toBe('E_RESOLVE');
    expect(await treeHash(root)).toBe(before);
  });

  it('as a local file signed by a trusted key: install refuses, naming both arches', async () => {
    const repo = await buildFakeRepo({ packages: [{ name: 'tool', version: '1.0.0', arch: machine }] });
    const url = await serve(repo);
    const root = await tempDir('pkg-root-');
    expect((await pkgJson(root, ['repo', 'add', 'main', url, '--fingerprint', repo.fingerprint], env)).json?.ok).toBe(true);
    expect((await pkgJson(root, ['update'], env)).json?.ok).toBe(true);
    const dir = await tempDir('local-');
    // Signed by the repository's catalog key, which the client trusts: the arch is the only objection.
    const file = await buildPackage(dir, { name: 'foreign', version: '1.0.0', arch: other, signWith: repo.key });
    const before = await treeHash(root);
    for (const extra of [[], ['--allow-untrusted']]) {
      const r = await pkgJson(root, ['install', file.file, '--yes', ...extra], env);
      expect(r.code, r.stdout).toBe(3);
      expect(r.json?.error?.code).toBe('E_INCOMPATIBLE');
      expect(r.json?.error?.details).toMatchObject({ arch: other, clientArch: machine });
      expect(await treeHash(root)).toBe(before);
    }
  });
});
