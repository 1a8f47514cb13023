import { describe, expect, it } from 'vitest';
import { mkdir, writeFile, readFile, readdir, stat, rm, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  CLIENT_FORMAT,
  packPackage,
  generateKeyPair,
  parseRoot,
  parseCatalog,
  encodeEnvelope,
  signEnvelope,
  canonicalBytes,
  PAYLOAD_TYPES,
  ERROR_CODES,
  sha256Hex,
  signCatalog,
  parseRelease,
  ExitCode,
  verifyCatalog,
  type ErrorCode,
  verifyRootSelfSigned,
  type KeyPair,
  type PackageMeta,
} from '../../../catalog/index.js';
import {
  FolderTarget,
  buildCatalog,
  createRelease,
  publishRepository,
  verifyHosted,
  rotatePublishedRoot,
} from '../../../publishing/index.js';
import { startStaticServer } from '../../../repo-server/index.js';
import { DirRepoReader, HttpRepoReader } from '../../../cli/shared/repo-readers.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { hashedName, publishedPath } from '../../helpers/published.js';

async function makePackage(
  dir: string,
  name: string,
  version: string,
  extra: Partial<PackageMeta> = {},
  content = `${name} ${version}\n`,
): Promise<string> {
  const src = join(dir, `src-${name}-${version}`);
  await mkdir(join(src, 'bin'), { recursive: true });
  await writeFile(join(src, 'bin', name), content);
  const out = join(dir, 'pkgs', `${name}-${version}.swpkg`);
  await mkdir(join(dir, 'pkgs'), { recursive: true });
  await packPackage({
    dir: src,
    meta: { name, version, arch: 'x86_64', abi: 'linux-musl-static', summary: `${name} tool`, license: 'MIT', ...extra },
    out,
  });
  return out;
}

async function setup(): Promise<{ d: string; key: KeyPair; web: string }> {
  const d = await tempDir();
  await makePackage(d, 'zlib', '1.2.13');
  await makePackage(d, 'curl', '7.88.1', { depends: { zlib: '^1.2.0' } });
  return { d, key: generateKeyPair(), web: join(d, 'web') };
}

describe('repo publish', () => {
  it('writes a complete web root that verifies from a folder and over HTTP', async () => {
    const { d, key, web } = await setup();
    const r = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, name: 'main' });
    expect(r.packages.map((p) => p.path)).toEqual([
      expect.stringMatching(hashedName('curl-7.88.1-x86_64')),
      expect.stringMatching(hashedName('zlib-1.2.13-x86_64')),
    ]);
    // The name carries the bytes' hash: a cache may keep it forever.
    for (const p of r.packages) expect(p.path).toBe(`packages/${p.name}-${p.version}-${p.arch}.${p.sha256}.swpkg`);
    const files = (await readdir(web)).sort();
    expect(files).toEqual([
      'catalog.json',
      'catalog.json.sha256',
      'catalogs',
      'hosted-repo.json',
      'index.html',
      'packages',
      'repo-root.pub',
      'retention.json',
      'roots',
    ]);
    // no private key material anywhere in the web root
    for (const f of ['repo-root.pub', 'hosted-repo.json', 'catalog.json', 'roots/1.json']) {
      expect(await readFile(join(web, f), 'utf8')).not.toContain(Buffer.from(key.seed).toString('hex'));
    }
    const local = await verifyHosted(new DirRepoReader(web));
    expect(local.checks.filter((c) => !c.ok)).toEqual([]);
    expect(local.packages).toBe(2);
    // Packages are zstd, which a format-1 pkg cannot read: the catalog asks for this client format,
    // so such a client refuses the whole catalog at update instead of each package as corrupt.
    const root = parseRoot(await readFile(join(web, 'roots/1.json')), 'root');
    const catalogBytes = await readFile(join(web, 'catalog.json'));
    expect(verifyCatalog(catalogBytes, { root, now: new Date() }).signed.compatibility.minClientFormat).toBe(CLIENT_FORMAT);
    expect(CLIENT_FORMAT).toBeGreaterThanOrEqual(2);
    const old = { arch: 'x86_64', abi: 'linux-musl-static', format: 1 };
    expect(() => verifyCatalog(catalogBytes, { root, now: new Date(), client: old })).toThrow(
      expect.objectContaining({ code: 'E_INCOMPATIBLE' }),
    );
    const server = await startStaticServer({ root: web });
    const reader = new HttpRepoReader(server.url);
    try {
      const remote = await verifyHosted(reader);
      expect(remote.ok).toBe(true);
      expect(remote.warnings).toEqual([]);
    } finally {
      await reader.close();
      await server.close();
    }
  });

  it('always increases the catalog version, even from an empty folder', async () => {
    const { d, key, web } = await setup();
    const now = new Date('2026-11-24T00:00:00Z');
    const a = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now });
    const b = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now });
    expect(b.catalogVersion).toBe(a.catalogVersion + 1);
    const fresh = await publishRepository({ packagesDir: join(d, 'pkgs'), out: join(d, 'web2'), key, now: new Date(now.getTime() + 1000) });
    expect(fresh.catalogVersion).toBeGreaterThan(a.catalogVersion);
  });

  it('refuses different bytes under a published name and writes nothing', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const before = await treeHash(web);
    await rm(join(d, 'pkgs', 'zlib-1.2.13.swpkg'));
    await makePackage(d, 'zlib', '1.2.13', {}, 'different bytes\n');
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key })).rejects.toMatchObject({ code: 'E_IMMUTABLE' });
    expect(await treeHash(web)).toBe(before);
  });

  it('a web root in the layout before hash names: other bytes under the old name are refused, the same bytes move and the old name expires', async () => {
    const { d, key, web } = await setup();
    const t0 = new Date('2026-11-24T00:00:00Z');
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: t0 });
    // What a publish before hash names left: packages/NAME-VERSION-ARCH.swpkg.
    const oldName = 'packages/zlib-1.2.13-x86_64.swpkg';
    await writeFile(join(web, oldName), 'bytes an older publish wrote');
    const before = await treeHash(web);
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: t0 })).rejects.toMatchObject({
      code: 'E_IMMUTABLE',
    });
    expect(await treeHash(web)).toBe(before);

    const current = await publishedPath(web, 'zlib-1.2.13-x86_64');
    await copyFile(join(web, current), join(web, oldName));
    const r1 = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: new Date(t0.getTime() + 1000) });
    expect(r1.packages.find((p) => p.name === 'zlib')?.path).toBe(current);
    expect(r1.retained).toEqual([oldName]);
    const r2 = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: new Date(t0.getTime() + 8 * 86400000) });
    expect(r2.deleted).toEqual([oldName]);
    await expect(stat(join(web, oldName))).rejects.toThrow();
  });

  it('refuses a corrupt package and a key the root does not accept, writing nothing', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const before = await treeHash(web);
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key: generateKeyPair() })).rejects.toMatchObject({
      code: 'E_UNKNOWN_KEY',
    });
    await writeFile(join(d, 'pkgs', 'broken.swpkg'), 'not a package');
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key })).rejects.toMatchObject({ code: 'E_CORRUPT' });
    expect(await treeHash(web)).toBe(before);
  });

  it('keeps superseded packages for the retention window, then deletes them', async () => {
    const { d, key, web } = await setup();
    const t0 = new Date('2026-11-24T00:00:00Z');
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: t0 });
    await rm(join(d, 'pkgs', 'zlib-1.2.13.swpkg'));
    await makePackage(d, 'zlib', '1.3.0');
    const old = await publishedPath(web, 'zlib-1.2.13-x86_64');
    const r1 = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: new Date(t0.getTime() + 1000) });
    expect(r1.retained).toEqual([old]);
    await stat(join(web, old));
    const r2 = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: new Date(t0.getTime() + 8 * 86400000) });
    expect(r2.deleted).toEqual([old]);
    await expect(stat(join(web, old))).rejects.toThrow();
    await expect(stat(join(web, `${old}.sha256`))).rejects.toThrow();
  });

  it('rotates the root: v2 chains from v1 and signs later catalogs with a new catalog key', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const newRoot = generateKeyPair();
    const newCatalog = generateKeyPair();
    const r = await rotatePublishedRoot({
      out: web,
      oldRootKeys: [key],
      newRootKeys: [newRoot],
      catalogKeys: [{ type: 'ed25519', public: Buffer.from(newCatalog.publicKey).toString('hex') }],
      expiresIn: 86400 * 365,
    });
    expect(r.version).toBe(2);
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key })).rejects.toMatchObject({ code: 'E_UNKNOWN_KEY' });
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key: newCatalog });
    const root2 = parseRoot(await readFile(join(web, 'repo-root.pub')), 'repo-root.pub');
    verifyRootSelfSigned(root2, new Date());
    verifyCatalog(await readFile(join(web, 'catalog.json')), { root: root2, now: new Date() });
    const v = await verifyHosted(new DirRepoReader(web));
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('verify-hosted reports a missing package and a wrong sidecar as FAIL', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const zlib = await publishedPath(web, 'zlib-1.2.13-x86_64');
    await rm(join(web, zlib));
    await writeFile(join(web, 'catalog.json.sha256'), `${'0'.repeat(64)}  catalog.json\n`);
    const v = await verifyHosted(new DirRepoReader(web));
    expect(v.ok).toBe(false);
    const failed = v.checks
      .filter((c) => !c.ok)
      .map((c) => c.name)
      .sort();
    expect(failed).toEqual(['catalog.json.sha256 sidecar', zlib]);
  });

  it('verify-hosted checks the compressed catalog: other bytes or a truncated gzip are a FAIL with its code', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const hosted = JSON.parse(await readFile(join(web, 'hosted-repo.json'), 'utf8')) as { catalog: string; catalogGzip?: string };
    expect(hosted.catalogGzip).toBe(`${hosted.catalog}.gz`);
    const name = `${hosted.catalogGzip} (the compressed catalog)`;
    const row = async (): Promise<{ ok: boolean; code?: string } | undefined> =>
      (await verifyHosted(new DirRepoReader(web))).checks.find((c) => c.name === name);
    expect(await row()).toMatchObject({ ok: true });
    const gz = join(web, hosted.catalogGzip!);
    const good = await readFile(gz);
    await writeFile(gz, gzipSync(Buffer.from('{"other":"bytes"}')));
    expect(await row()).toMatchObject({ ok: false, code: 'E_HASH_MISMATCH' });
    await writeFile(gz, good.subarray(0, good.length >> 1));
    expect(await row()).toMatchObject({ ok: false, code: 'E_CORRUPT' });
    await rm(gz);
    expect(await row()).toMatchObject({ ok: false, code: 'E_FETCH' });
  });

  it('verify-hosted fails a flipped byte in a package and in the catalog', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const curl = await publishedPath(web, 'curl-7.88.1-x86_64');
    const p = join(web, curl);
    const bytes = await readFile(p);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(p, bytes);
    // The catalog clients follow: the content-addressed one hosted-repo.json names.
    const current = join(web, (JSON.parse(await readFile(join(web, 'hosted-repo.json'), 'utf8')) as { catalog: string }).catalog);
    const cat = parseCatalog(await readFile(current));
    await copyFile(current, join(d, 'catalog.bak'));
    // One character of the payload changed, the signature kept.
    const payload = Buffer.from(Buffer.from(cat.payload).toString('utf8').replace('"curl tool"', '"curl tooL"'));
    await writeFile(current, encodeEnvelope({ ...cat, payload }));
    const v = await verifyHosted(new DirRepoReader(web));
    const failed = v.checks.filter((c) => !c.ok);
    expect(failed.find((c) => c.name === 'catalog signature and freshness')?.code).toBe('E_SIGNATURE');
    // Its name is its hash: the altered bytes no longer match it.
    expect(failed.map((c) => c.name)).toContain(`${current.slice(web.length + 1)} named by its hash`);
    await copyFile(join(d, 'catalog.bak'), current);
    const v2 = await verifyHosted(new DirRepoReader(web));
    expect(v2.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([curl]);
  });

  it('verify-hosted over HTTP reads through the client transport: every FAIL row carries a code', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const zlib = await publishedPath(web, 'zlib-1.2.13-x86_64');
    const curl = await publishedPath(web, 'curl-7.88.1-x86_64');
    await rm(join(web, zlib));
    const p = join(web, curl);
    const bytes = await readFile(p);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(p, bytes);
    const before = await treeHash(web);
    const server = await startStaticServer({ root: web });
    const reader = new HttpRepoReader(server.url);
    try {
      const v = await verifyHosted(reader);
      expect(v.ok).toBe(false);
      const failed = Object.fromEntries(v.checks.filter((c) => !c.ok).map((c) => [c.name, c.code]));
      expect(failed).toEqual({
        [zlib]: 'E_FETCH',
        [curl]: 'E_HASH_MISMATCH',
      });
    } finally {
      await reader.close();
      await server.close();
    }
    expect(await treeHash(web)).toBe(before);
  });

  it('verify-hosted refuses server documents that fail to parse as verification refusals, not usage errors', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    await writeFile(join(web, 'hosted-repo.json'), '{"format": 1, "name": ');
    // A root whose key is not hex fails the key parser (E_INVALID_KEY, usage class) before any signature is read.
    const payload = canonicalBytes({
      type: 'root',
      version: 1,
      expires: new Date(Date.now() + 86400000).toISOString(),
      keys: { ['ab'.repeat(32)]: { type: 'ed25519', public: 'not-hex' } },
      roles: { root: { keyids: ['ab'.repeat(32)], threshold: 1 }, catalog: { keyids: ['ab'.repeat(32)], threshold: 1 } },
    });
    await writeFile(join(web, 'repo-root.pub'), encodeEnvelope(signEnvelope(PAYLOAD_TYPES.root, Buffer.from(payload), [key])));
    const v = await verifyHosted(new DirRepoReader(web));
    const rows = Object.fromEntries(v.checks.map((c) => [c.name, c.code]));
    expect(rows['hosted-repo.json']).toBe('E_MALFORMED');
    expect(rows['repo-root.pub']).toBe('E_CORRUPT');
    for (const c of v.checks.filter((x) => !x.ok)) expect(ERROR_CODES[c.code as ErrorCode], c.name).not.toBe(ExitCode.USAGE);
  });

  it('refuses a folder that holds files but no repository, writing nothing (E_NOT_REPOSITORY)', async () => {
    const { d, key, web } = await setup();
    await mkdir(web, { recursive: true });
    await writeFile(join(web, 'notes.txt'), 'my own files');
    const before = await treeHash(web);
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key })).rejects.toMatchObject({ code: 'E_NOT_REPOSITORY' });
    expect(await treeHash(web)).toBe(before);
  });

  it('a folder pointer changed during the publish: E_PUBLISH_RACE, the pointer and catalog.json stay the winner’s', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, name: 'main' });
    let winner: Awaited<ReturnType<typeof publishRepository>> | undefined;
    class Interleaved extends FolderTarget {
      override async swapPointer(path: string, bytes: Uint8Array | string, token: string | null): Promise<void> {
        winner ??= await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
        return super.swapPointer(path, bytes, token);
      }
    }
    await expect(publishRepository({ packagesDir: join(d, 'pkgs'), out: web, target: new Interleaved(web), key })).rejects.toMatchObject({
      code: 'E_PUBLISH_RACE',
    });
    const hint = JSON.parse(await readFile(join(web, 'hosted-repo.json'), 'utf8')) as { catalog: string };
    expect(hint.catalog).toBe(winner!.catalogPath);
    expect((await verifyHosted(new DirRepoReader(web))).checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('verify-hosted checks retained catalogs: a package only an older kept catalog names, when missing, is a FAIL', async () => {
    const { d, key, web } = await setup();
    const t0 = new Date();
    const r1 = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: t0 });
    const zlib = await publishedPath(web, 'zlib-1.2.13-x86_64');
    await rm(join(d, 'pkgs', 'zlib-1.2.13.swpkg'));
    await makePackage(d, 'zlib', '1.3.0');
    const r2 = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, now: new Date(t0.getTime() + 1000) });
    expect(r2.retainedCatalogs).toEqual([r1.catalogPath]);
    const ok = await verifyHosted(new DirRepoReader(web), { now: new Date(t0.getTime() + 2000) });
    expect(ok.checks.filter((c) => !c.ok)).toEqual([]);
    expect(ok.checks.map((c) => c.name)).toContain(`retained ${r1.catalogPath}`);
    await rm(join(web, zlib));
    const v = await verifyHosted(new DirRepoReader(web), { now: new Date(t0.getTime() + 2000) });
    expect(v.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([`retained ${r1.catalogPath}`]);
  });

  it('verify-hosted checks releases: each signed by the release role, every package a live one pins present with its hash', async () => {
    const { d, key, web } = await setup();
    const rel = generateKeyPair();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    await rotatePublishedRoot({
      out: web,
      oldRootKeys: [key],
      newRootKeys: [key],
      releaseKeys: [{ type: 'ed25519', public: Buffer.from(rel.publicKey).toString('hex') }],
      expiresIn: 365 * 86400,
    });
    const r = await createRelease({ out: web, id: 'edge', keys: [rel], arch: 'x86_64', expiresIn: 86400, packages: ['zlib@1.2.13'] });
    const zlib = r.packages[0]!.location;
    // The catalog moves on without zlib 1.2.13; the release alone keeps it.
    await rm(join(d, 'pkgs', 'zlib-1.2.13.swpkg'));
    await makePackage(d, 'zlib', '1.3.0');
    const pub = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, keepCatalogs: 1, retainSeconds: 0 });
    expect(pub.retained).toEqual([zlib]);
    const good = await verifyHosted(new DirRepoReader(web));
    expect(good.checks.filter((c) => !c.ok)).toEqual([]);
    expect(good.checks.find((c) => c.name === r.path)?.detail).toMatch(/1 package\(s\), 1 in this repository, all present/);

    await rm(join(web, zlib));
    const gone = await verifyHosted(new DirRepoReader(web));
    expect(gone.checks.filter((c) => !c.ok).map((c) => [c.name, c.code])).toEqual([[r.path, 'E_FETCH']]);

    // A release whose payload was changed after signing (signature kept).
    const relFile = join(web, r.path);
    const relDoc = parseRelease(await readFile(relFile), r.path);
    const payload = Buffer.from(Buffer.from(relDoc.payload).toString('utf8').replace('"edge"', '"edgy"'));
    await writeFile(relFile, encodeEnvelope({ ...relDoc, payload }));
    const forged = await verifyHosted(new DirRepoReader(web));
    expect(forged.checks.filter((c) => !c.ok).map((c) => [c.name, c.code])).toEqual([[r.path, 'E_SIGNATURE']]);
  });

  it('verify-hosted refuses a package whose hash name is not its catalog hash', async () => {
    const { d, key, web } = await setup();
    const r = await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key });
    const zlib = r.packages.find((p) => p.name === 'zlib')!;
    // A publisher (or a broken tool) signs a catalog whose name for zlib claims other bytes.
    const liar = zlib.path.replace(zlib.sha256, 'f'.repeat(64));
    await copyFile(join(web, zlib.path), join(web, liar));
    await copyFile(join(web, `${zlib.path}.sha256`), join(web, `${liar}.sha256`));
    const current = JSON.parse(await readFile(join(web, 'hosted-repo.json'), 'utf8')) as { catalog: string };
    const packages = parseCatalog(await readFile(join(web, current.catalog))).signed.packages.map((p) =>
      p.name === 'zlib' ? { ...p, path: liar } : p,
    );
    const signed = buildCatalog({ repo: 'web', packages, now: new Date(), expiresIn: 14 * 86400, previousVersion: r.catalogVersion });
    const text = encodeEnvelope(signCatalog(signed, [key]));
    const path = `catalogs/${signed.version}-${sha256Hex(text)}.json`;
    await writeFile(join(web, path), text);
    // The new pointer names no gzip sibling: the old one inflates to the old catalog (verify-hosted would say so).
    await writeFile(
      join(web, 'hosted-repo.json'),
      JSON.stringify({ ...current, catalog: path, retainedCatalogs: [], catalogGzip: undefined }),
    );
    await rm(join(web, 'catalog.json'));
    await rm(join(web, 'catalog.json.sha256'));
    const v = await verifyHosted(new DirRepoReader(web));
    expect(v.checks.filter((c) => !c.ok).map((c) => [c.name, c.code])).toEqual([[liar, 'E_HASH_MISMATCH']]);
  });

  it('warns when the catalog expires within 7 days', async () => {
    const { d, key, web } = await setup();
    await publishRepository({ packagesDir: join(d, 'pkgs'), out: web, key, expiresIn: 3 * 86400 });
    const v = await verifyHosted(new DirRepoReader(web));
    expect(v.ok).toBe(true);
    expect(v.warnings.join()).toMatch(/expires in/);
  });
});
