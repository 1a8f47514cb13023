import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  CLIENT_FORMAT,
  ERROR_CODES,
  catalogPayload,
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  parseCatalog,
  signCatalog,
  type CatalogDocument,
  type Envelope,
  type ErrorCode,
} from '../../../catalog/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { pkgJson } from './helpers.js';

/**
 * `pkg repo add` and `pkg update` against a real signed repository on a
 * loopback server: every refusal of the trust rules reached through the
 * client, each asserting the error code and that nothing under the root
 * changed.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'alpha', version: '1.0.0' },
      { name: 'beta', version: '2.0.0', depends: { alpha: '^1' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

async function addAndUpdate(): Promise<void> {
  const add = await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
  expect(add.json?.ok, JSON.stringify(add.json)).toBe(true);
  const up = await pkgJson(root, ['update']);
  expect(up.json?.ok, up.stdout + up.stderr).toBe(true);
}

/** Replaces the served catalog with `doc`'s envelope, or with raw bytes. */
function serveCatalog(doc: Envelope | Buffer): void {
  repo.table.set('catalog.json', { body: Buffer.isBuffer(doc) ? doc : encodeEnvelope(doc) });
}

async function currentCatalog(): Promise<CatalogDocument> {
  return parseCatalog(await repo.bytes('catalog.json'));
}

async function expectRefused(code: string, env: Record<string, string> = {}): Promise<void> {
  const before = await treeHash(root);
  const r = await pkgJson(root, ['update'], env);
  expect(r.json?.error?.code, r.stdout).toBe(code);
  expect(await treeHash(root)).toBe(before);
}

describe('pkg repo add', () => {
  it('pins by fingerprint or by root file, and lists the repository', async () => {
    const a = await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    expect(a.json?.result).toMatchObject({ name: 'main', rootVersion: 1, pinnedFingerprint: repo.fingerprint });
    const b = await pkgJson(root, ['repo', 'add', 'other', server.url, '--key', repo.rootFile]);
    expect(b.json?.ok).toBe(true);
    const l = await pkgJson(root, ['repo', 'list']);
    expect(l.json?.result.map((r: { name: string }) => r.name)).toEqual(['main', 'other']);
  });

  it('refuses a root that is not JSON from the server with exit 3, not a usage error', async () => {
    repo.table.set('repo-root.pub', { body: Buffer.from('<html>not a root</html>') });
    const before = await treeHash(root);
    const r = await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    expect(r.code, r.stdout).toBe(3);
    expect(ERROR_CODES[r.json?.error?.code as ErrorCode]).toBe(3);
    expect(await treeHash(root)).toBe(before);
  });

  it('refuses a wrong fingerprint, a missing trust anchor and a duplicate name', async () => {
    const before = await treeHash(root);
    const wrong = await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', 'ab'.repeat(32)]);
    expect(wrong.json?.error?.code).toBe('E_BAD_ROOT');
    expect(await treeHash(root)).toBe(before);
    const none = await pkgJson(root, ['repo', 'add', 'main', server.url]);
    expect(none.json?.error?.code).toBe('E_USAGE');
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    const dup = await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    expect(dup.json?.error?.code).toBe('E_USAGE');
  });

  it('removes a repository with its root and catalog', async () => {
    await addAndUpdate();
    const r = await pkgJson(root, ['repo', 'remove', 'main']);
    expect(r.json?.ok).toBe(true);
    expect((await pkgJson(root, ['repo', 'list'])).json?.result).toEqual([]);
    expect((await pkgJson(root, ['repo', 'remove', 'main'])).json?.error?.code).toBe('E_NOT_FOUND');
  });
});

describe('pkg update', () => {
  it('accepts the catalog, keeps it, and reports "current" the second time', async () => {
    await addAndUpdate();
    const again = await pkgJson(root, ['update']);
    expect(again.json?.result.repos[0]).toMatchObject({ repo: 'main', version: repo.catalogVersion, changed: false, packages: 2 });
    await repo.publish([{ name: 'gamma', version: '0.1.0' }]);
    const next = await pkgJson(root, ['update']);
    expect(next.json?.result.repos[0]).toMatchObject({ changed: true, version: repo.catalogVersion, packages: 3 });
    const search = await pkgJson(root, ['search', 'gam']);
    expect(search.json?.result.map((h: { name: string }) => h.name)).toEqual(['gamma']);
  });

  it('refuses a catalog whose signed part was altered (E_SIGNATURE)', async () => {
    await addAndUpdate();
    const doc = await currentCatalog();
    doc.signed.version += 1;
    doc.signed.packages[0]!.summary = 'tampered';
    serveCatalog({ ...doc, payload: catalogPayload(doc.signed) });
    await expectRefused('E_SIGNATURE');
  });

  it('refuses a catalog signed by a key the root does not list (E_UNKNOWN_KEY)', async () => {
    await addAndUpdate();
    const doc = await currentCatalog();
    serveCatalog(signCatalog({ ...doc.signed, version: doc.signed.version + 1 }, [generateKeyPair()]));
    await expectRefused('E_UNKNOWN_KEY');
  });

  it('refuses an expired catalog (freeze attack)', async () => {
    await addAndUpdate();
    const doc = await currentCatalog();
    serveCatalog(signCatalog({ ...doc.signed, version: doc.signed.version + 1, expires: '2001-01-01T00:00:00Z' }, [repo.key]));
    await expectRefused('E_EXPIRED');
  });

  it('refuses an older catalog than the one accepted (rollback), i.e. a stale mirror', async () => {
    const old = await repo.bytes('catalog.json');
    await repo.publish([{ name: 'gamma', version: '0.1.0' }]);
    await addAndUpdate();
    repo.table.set('catalog.json', { body: old });
    await expectRefused('E_ROLLBACK');
  });

  it('refuses the same version with different content (E_EQUIVOCATION)', async () => {
    await addAndUpdate();
    const doc = await currentCatalog();
    serveCatalog(signCatalog({ ...doc.signed, packages: doc.signed.packages.slice(1) }, [repo.key]));
    await expectRefused('E_EQUIVOCATION');
  });

  it('refuses an incompatible catalog (architecture, client format)', async () => {
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    await expectRefused('E_INCOMPATIBLE', { PKG_CLIENT_ARCH: 'aarch64' });
    const doc = await currentCatalog();
    serveCatalog(
      signCatalog({ ...doc.signed, compatibility: { ...doc.signed.compatibility, minClientFormat: CLIENT_FORMAT + 1 } }, [repo.key]),
    );
    await expectRefused('E_INCOMPATIBLE');
  });

  it('refuses a malformed catalog from the server as a verification refusal (exit 3), never a usage error', async () => {
    await addAndUpdate();
    const doc = await currentCatalog();
    const malformed = [
      Buffer.from('{"signed": '),
      // Signed by the repository's own key, so only the schema can refuse it.
      encodeEnvelope(
        signCatalog(
          { ...doc.signed, version: doc.signed.version + 1, packages: doc.signed.packages.map((p) => ({ ...p, version: '1.0' })) },
          [repo.key],
        ),
      ),
    ];
    for (const body of malformed) {
      repo.table.set('catalog.json', { body });
      const before = await treeHash(root);
      const r = await pkgJson(root, ['update']);
      expect(r.code, r.stdout).toBe(3);
      expect(r.json?.error?.code).not.toBe('E_SIGNATURE');
      expect(ERROR_CODES[r.json?.error?.code as ErrorCode]).toBe(3);
      expect(await treeHash(root)).toBe(before);
    }
  });

  it('refuses an oversized catalog (endless data)', async () => {
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    await expectRefused('E_TOO_LARGE', { PKG_MAX_CATALOG_BYTES: '100' });
  });

  it('reports HTTP failures with E_HTTP and an unreachable server with E_NETWORK', async () => {
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    repo.table.set('catalog.json', { status: 500 });
    await expectRefused('E_HTTP');
    repo.table.delete('catalog.json');
    await expectRefused('E_HTTP');
    await server.close();
    await expectRefused('E_NETWORK');
    server = await startTableServer(repo.table);
  });

  it('reports a catalog that stalls as E_STALLED', async () => {
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    repo.table.set('catalog.json', { body: await repo.bytes('catalog.json'), stallAfter: 10 });
    await expectRefused('E_STALLED', { PKG_STALL_TIMEOUT: '0.5' });
  });

  it('fails over to a mirror when the first is down or stale', async () => {
    const mirror = await startTableServer(repo.table);
    const dead = await startTableServer(new Map());
    await dead.close();
    try {
      const add = await pkgJson(root, ['repo', 'add', 'main', dead.url, '--key', repo.rootFile, '--mirror', mirror.url]);
      expect(add.json?.ok).toBe(true);
      const up = await pkgJson(root, ['update']);
      const hint = JSON.parse((await repo.bytes('hosted-repo.json')).toString()) as { catalog: string };
      expect(up.json?.result.repos[0].source).toBe(`${mirror.url}${hint.catalog}`);
      expect(up.json?.warnings?.join('\n')).toMatch(/trying the next mirror/);
    } finally {
      await mirror.close();
    }
  });

  it('keeps the index of the copy that verified when a copy refused late (E_WRONG_REPO, after its entries were read) sent it to a mirror', async () => {
    const doc = await currentCatalog();
    const zeta = { ...doc.signed.packages[0]!, name: 'zeta', path: 'packages/zeta-1.0.0-x86_64.swpkg' };
    const other = signCatalog({ ...doc.signed, repo: 'other', packages: [zeta, ...doc.signed.packages] }, [repo.key]);
    // The first server has no pointer, so it is asked for catalog.json, and serves another repository's catalog.
    const table = new Map(repo.table);
    table.delete('hosted-repo.json');
    table.set('catalog.json', { body: encodeEnvelope(other) });
    const first = await startTableServer(table);
    try {
      const add = await pkgJson(root, ['repo', 'add', 'main', first.url, '--key', repo.rootFile, '--mirror', server.url]);
      expect(add.json?.ok).toBe(true);
      const up = await pkgJson(root, ['update']);
      expect(up.json?.result.repos[0], up.stdout).toMatchObject({ repo: 'main', packages: 2 });
      expect(up.json?.warnings?.join('\n')).toMatch(/E_WRONG_REPO/);
      const beta = await pkgJson(root, ['install', 'beta', '--dry-run']);
      expect(beta.json?.ok, beta.stdout).toBe(true);
      const z = await pkgJson(root, ['install', 'zeta', '--dry-run']);
      expect(z.json?.error?.code, z.stdout).toBe('E_RESOLVE');
    } finally {
      await first.close();
    }
  });

  it('a catalog whose entries spill to a temp file: refused late, it leaves nothing (not even the catalogs folder); accepted, its index answers', async () => {
    const doc = await currentCatalog();
    const base = doc.signed.packages[0]!;
    // Over 1 MiB of index lines, so the builder writes its temp file of entries before the refusal.
    const many = Array.from({ length: 6000 }, (_, i) => ({
      ...base,
      name: `bulk${i}`,
      path: `packages/bulk${i}-1.0.0-x86_64.swpkg`,
      summary: 'x'.repeat(100),
    }));
    const big = { ...doc.signed, version: doc.signed.version + 1, packages: [...doc.signed.packages, ...many] };
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    serveCatalog(signCatalog({ ...big, repo: 'other' }, [repo.key]));
    await expectRefused('E_WRONG_REPO');
    serveCatalog(signCatalog(big, [repo.key]));
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0], up.stdout).toMatchObject({ packages: 6002 });
    const plan = await pkgJson(root, ['install', 'bulk5999', '--dry-run']);
    expect(plan.json?.ok, plan.stdout).toBe(true);
    expect(JSON.stringify(plan.json?.result)).toContain('bulk5999');
  });

  it('follows a root rotation and keeps the new root', async () => {
    await addAndUpdate();
    await repo.rotateRoot();
    await repo.publish();
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0]).toMatchObject({ rootVersion: 2, rotatedRoots: [2] });
    const list = await pkgJson(root, ['repo', 'list']);
    expect(list.json?.result[0].rootVersion).toBe(2);
  });

  it('refuses a rotated root not signed by the old root keys, keeping the old root', async () => {
    await addAndUpdate();
    const rogue = generateKeyPair();
    const forged = createRoot({ rootKeys: [rogue], catalogKeys: [rogue], version: 2, expires: new Date(Date.now() + 86400_000) });
    repo.table.set('roots/2.json', { body: encodeEnvelope(forged) });
    await expectRefused('E_UNKNOWN_KEY');
  });

  it('stops at an expired root', async () => {
    await addAndUpdate();
    await expectRefused('E_EXPIRED', { PKG_TEST_NOW: new Date(Date.now() + 400 * 86400_000).toISOString() });
  });
});

describe('the catalog compressed on the wire', () => {
  /** The gzip sibling hosted-repo.json names (publish writes one beside every content-addressed catalog). */
  async function gzPath(): Promise<string> {
    const hint = JSON.parse((await repo.bytes('hosted-repo.json')).toString()) as { catalog: string; catalogGzip?: string };
    expect(hint.catalogGzip).toBe(`${hint.catalog}.gz`);
    return hint.catalogGzip!;
  }

  it('reads the gzip sibling the pointer names instead of the catalog, and the catalog when the sibling is missing', async () => {
    const gz = await gzPath();
    const plain = gz.slice(0, -3);
    expect(gunzipSync(await repo.bytes(gz))).toEqual(await repo.bytes(plain));
    await addAndUpdate();
    const fetched = server.requests.map((r) => r.path);
    expect(fetched).toContain(gz);
    expect(fetched).not.toContain(plain);
    // An older web root, or a mirror that copied only the plain file: the sibling answers 404.
    await repo.publish([{ name: 'gamma', version: '0.1.0' }]);
    repo.table.delete(await gzPath());
    const up = await pkgJson(root, ['update']);
    expect(up.json?.result.repos[0]).toMatchObject({ changed: true, packages: 3 });
  });

  it('refuses a gzip sibling that inflates to other bytes than the catalog its name hashes (E_HASH_MISMATCH), storing nothing', async () => {
    const gz = await gzPath();
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    // Another valid catalog of the same repository: only the hash in the name tells it apart.
    const other = await repo.bytes(gz.slice(0, -3));
    repo.table.set(gz, { body: gzipSync(Buffer.concat([other, Buffer.from('\n')])) });
    await expectRefused('E_HASH_MISMATCH');
  });

  it('stops a gzip bomb at the catalog size cap (E_TOO_LARGE), storing nothing', async () => {
    const gz = await gzPath();
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    // 64 MiB of zeros in about 64 KiB: the cap is 1 MiB, so inflating must stop long before the end.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    expect(bomb.length).toBeLessThan(1024 * 1024);
    repo.table.set(gz, { body: bomb });
    await expectRefused('E_TOO_LARGE', { PKG_MAX_CATALOG_BYTES: String(1024 * 1024) });
  });

  it('refuses a truncated or non-gzip sibling as a corrupt download (E_CORRUPT), storing nothing', async () => {
    const gz = await gzPath();
    await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
    const whole = await repo.bytes(gz);
    repo.table.set(gz, { body: whole.subarray(0, Math.floor(whole.length / 2)) });
    await expectRefused('E_CORRUPT');
    repo.table.set(gz, { body: await repo.bytes(gz.slice(0, -3)) });
    await expectRefused('E_CORRUPT');
  });
});
