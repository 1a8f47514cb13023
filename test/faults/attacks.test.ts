import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalBytes, encodeEnvelope, generateKeyPair, parseCatalog, signCatalog, toPublicKeyFile } from '../../catalog/index.js';
import { buildFakeRepo, buildPackage, cleanupFakeRepos, type FakeRepo } from '../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../helpers/http-table-server.js';
import { tempDir, treeHash } from '../helpers/tmp.js';
import { addMainRepo, pkgJson, spawnPkg } from '../integration/userland/helpers.js';
import { craftManifest, craftSignature, craftSwpkg, serveCrafted, type CraftEntry } from './craft.js';

/**
 * Every refusal of the core API reached through `pkg install` (the catalog
 * refusals through `pkg update` are in test/integration/userland/update.test.ts):
 * each asserts the error code and that the whole root is byte-for-byte as before.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      { name: 'base', version: '1.0.0', files: { 'bin/base': 'base\n' } },
      { name: 'other', version: '1.0.0', files: { 'bin/base': 'other\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
  expect((await pkgJson(root, ['install', 'base', '--yes'])).json?.ok).toBe(true);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

/** Runs `pkg update` (to accept the crafted catalog), then the install, and checks code + unchanged root. */
async function refused(args: string[], code: string, exit?: number): Promise<void> {
  expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
  const before = await treeHash(root);
  const r = await pkgJson(root, args);
  expect(r.json?.error?.code, r.stdout).toBe(code);
  if (exit !== undefined) expect(r.code).toBe(exit);
  expect(await treeHash(root)).toBe(before);
}

/** A new key pair whose public half `pkg key add` trusts, and a scratch folder. */
async function trustNewKey(): Promise<{ dir: string; trusted: ReturnType<typeof generateKeyPair> }> {
  const dir = await tempDir();
  const trusted = generateKeyPair();
  const pub = join(dir, 'trusted.pub');
  await writeFile(pub, JSON.stringify(toPublicKeyFile(trusted)));
  expect((await pkgJson(root, ['key', 'add', pub])).json?.ok).toBe(true);
  return { dir, trusted };
}

const ok: CraftEntry[] = [
  { path: 'bin', type: 'dir' },
  { path: 'bin/evil', type: 'file', content: 'x\n' },
];

describe('attacks through pkg install', () => {
  it('a package that unpacks to more than its signed catalog entry says (E_TOO_LARGE)', async () => {
    const big: CraftEntry[] = [
      { path: 'share', type: 'dir' },
      { path: 'share/blob', type: 'file', content: 'z'.repeat(256 * 1024) },
    ];
    const bytes = craftSwpkg({ manifest: craftManifest('bomb', '1.0.0', big), entries: big });
    await serveCrafted(repo, bytes, { name: 'bomb', version: '1.0.0', installedSize: 1024 });
    await refused(['install', 'bomb', '--yes'], 'E_TOO_LARGE', 3);
  });

  it('a store entry reused by hash whose catalog entry now declares another installed size (E_TOO_LARGE)', async () => {
    expect((await pkgJson(root, ['remove', 'base', '--yes'])).json?.ok).toBe(true);
    const doc = parseCatalog(await repo.bytes('catalog.json'));
    const packages = doc.signed.packages.map((p) => (p.name === 'base' ? { ...p, installedSize: 1 } : p));
    repo.table.set('catalog.json', {
      body: encodeEnvelope(signCatalog({ ...doc.signed, version: doc.signed.version + 1, packages }, [repo.key])),
    });
    const fetched = server.requests.length;
    await refused(['install', 'base', '--yes'], 'E_TOO_LARGE', 3);
    // Refused from the store entry itself: the package was not downloaded again.
    expect(server.requests.slice(fetched).filter((q) => q.path.endsWith('.swpkg'))).toEqual([]);
  });

  it('a package that unpacks to less than its signed catalog entry says (E_CORRUPT)', async () => {
    const bytes = craftSwpkg({ manifest: craftManifest('small', '1.0.0', ok), entries: ok });
    await serveCrafted(repo, bytes, { name: 'small', version: '1.0.0', installedSize: 1 << 30 });
    await refused(['install', 'small', '--yes'], 'E_CORRUPT', 3);
  });

  it('a package whose bytes differ from the catalog (E_HASH_MISMATCH)', async () => {
    await repo.publish([{ name: 'victim', version: '1.0.0' }]);
    const victim = repo.packages.get('victim@1.0.0')!.path;
    const real = await repo.bytes(victim);
    const forged = Buffer.from(real);
    forged[forged.length - 10] = forged[forged.length - 10]! ^ 0xff;
    repo.table.set(victim, { body: forged });
    await refused(['install', 'victim', '--yes'], 'E_HASH_MISMATCH');
  });

  it('a package larger than the catalog declares (E_TOO_LARGE)', async () => {
    await repo.publish([{ name: 'victim', version: '1.0.0' }]);
    const victim = repo.packages.get('victim@1.0.0')!.path;
    const real = await repo.bytes(victim);
    repo.table.set(victim, { body: Buffer.concat([real, Buffer.alloc(4096, 7)]), omitLength: true });
    await refused(['install', 'victim', '--yes'], 'E_TOO_LARGE');
  });

  it('a tar entry that climbs out of the package (E_UNSAFE_PATH)', async () => {
    const bytes = craftSwpkg({
      manifest: craftManifest('evil', '1.0.0', ok),
      entries: [...ok, { path: '../escape', type: 'file', content: 'owned\n' }],
    });
    await serveCrafted(repo, bytes, { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_UNSAFE_PATH');
  });

  it('a manifest listing an absolute symlink (E_UNSAFE_PATH)', async () => {
    const files: CraftEntry[] = [
      { path: 'etc', type: 'dir' },
      { path: 'etc/passwd', type: 'symlink', target: '/etc/passwd' },
    ];
    const bytes = craftSwpkg({ manifest: craftManifest('evil', '1.0.0', files), entries: files });
    await serveCrafted(repo, bytes, { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_UNSAFE_PATH');
  });

  it('a file whose content differs from its manifest entry (E_HASH_MISMATCH)', async () => {
    const manifest = craftManifest('evil', '1.0.0', ok);
    const bytes = craftSwpkg({
      manifest,
      entries: [
        { path: 'bin', type: 'dir' },
        { path: 'bin/evil', type: 'file', content: 'y\n' },
      ],
    });
    await serveCrafted(repo, bytes, { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_HASH_MISMATCH');
  });

  it('a package for another architecture listed as x86_64 (E_INCOMPATIBLE)', async () => {
    const bytes = craftSwpkg({ manifest: craftManifest('evil', '1.0.0', ok, { arch: 'aarch64' }), entries: ok });
    await serveCrafted(repo, bytes, { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_INCOMPATIBLE');
  });

  it('a package that is another one than the catalog says (E_CORRUPT)', async () => {
    const bytes = craftSwpkg({ manifest: craftManifest('trojan', '9.9.9', ok), entries: ok });
    await serveCrafted(repo, bytes, { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_CORRUPT');
  });

  it('two packages owning one file (E_FILE_CONFLICT naming both owners)', async () => {
    await refused(['install', 'other', '--yes'], 'E_FILE_CONFLICT');
    const r = await pkgJson(root, ['install', 'other', '--yes']);
    expect(r.json?.error?.details['owners']).toEqual(['base@1.0.0', 'other@1.0.0']);
  });

  it('a local file with a forged signature, an unknown key, or none (E_SIGNATURE, E_UNKNOWN_KEY, E_UNTRUSTED)', async () => {
    const { dir, trusted } = await trustNewKey();
    const manifest = craftManifest('local', '1.0.0', ok);
    // Signed by another key but claiming the trusted key's id.
    const forgedSig = craftSignature(canonicalBytes(manifest), generateKeyPair(), trusted.keyid);
    const forged = join(dir, 'forged.swpkg');
    await writeFile(forged, craftSwpkg({ manifest, signature: forgedSig, entries: ok }));
    await refused(['install', forged, '--yes', '--allow-untrusted'], 'E_SIGNATURE');
    const unknown = await buildPackage(dir, { name: 'stranger', version: '1.0.0', signWith: generateKeyPair() });
    await refused(['install', unknown.file, '--yes'], 'E_UNKNOWN_KEY');
    const unsigned = await buildPackage(dir, { name: 'plain', version: '1.0.0' });
    await refused(['install', unsigned.file, '--yes'], 'E_UNTRUSTED');
    const arm = await buildPackage(dir, { name: 'arm', version: '1.0.0', arch: 'aarch64', signWith: trusted });
    await refused(['install', arm.file, '--yes'], 'E_INCOMPATIBLE');
  });

  it('a trusted local file whose payload lies about its manifest (E_HASH_MISMATCH, E_UNSAFE_PATH)', async () => {
    // Trust comes from the header; the payload is checked while it is extracted, before anything is published.
    const { dir, trusted } = await trustNewKey();
    const manifest = craftManifest('local', '1.0.0', ok);
    const signature = craftSignature(canonicalBytes(manifest), trusted);
    const changed = join(dir, 'changed.swpkg');
    await writeFile(
      changed,
      craftSwpkg({
        manifest,
        signature,
        entries: [
          { path: 'bin', type: 'dir' },
          { path: 'bin/evil', type: 'file', content: 'y\n' },
        ],
      }),
    );
    await refused(['install', changed, '--yes'], 'E_HASH_MISMATCH');
    const climbing = join(dir, 'climbing.swpkg');
    await writeFile(
      climbing,
      craftSwpkg({ manifest, signature, entries: [...ok, { path: '../escape', type: 'file', content: 'owned\n' }] }),
    );
    await refused(['install', climbing, '--yes'], 'E_UNSAFE_PATH');
  });
});

describe('hostile manifests are verification refusals (exit 3), never usage errors', () => {
  it('a manifest listing one path twice (E_BAD_MANIFEST)', async () => {
    const files: CraftEntry[] = [...ok, { path: 'bin/evil', type: 'file', content: 'x\n' }];
    const manifest = craftManifest('evil', '1.0.0', ok);
    (manifest['files'] as unknown[]).push((manifest['files'] as unknown[])[1]);
    manifest['installedSize'] = 4;
    await serveCrafted(repo, craftSwpkg({ manifest, entries: files }), { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_BAD_MANIFEST', 3);
  });

  it('a manifest with a version that is not semver (E_BAD_MANIFEST)', async () => {
    const bytes = craftSwpkg({ manifest: craftManifest('evil', '1.0.0', ok, { version: 'v1' }), entries: ok });
    await serveCrafted(repo, bytes, { name: 'evil', version: '1.0.0' });
    await refused(['install', 'evil', '--yes'], 'E_BAD_MANIFEST', 3);
  });

  it('a sticky folder (E_UNSAFE_PATH)', async () => {
    const sticky: CraftEntry[] = [
      { path: 'tmp', type: 'dir', mode: 0o1777 },
      { path: 'tmp/x', type: 'file', content: 'x\n' },
    ];
    await serveCrafted(repo, craftSwpkg({ manifest: craftManifest('sticky', '1.0.0', sticky), entries: sticky }), {
      name: 'sticky',
      version: '1.0.0',
    });
    await refused(['install', 'sticky', '--yes'], 'E_UNSAFE_PATH', 3);
  });

  it('a world-writable file (E_BAD_MANIFEST)', async () => {
    const writable: CraftEntry[] = [{ path: 'w', type: 'file', mode: 0o666, content: 'x\n' }];
    await serveCrafted(repo, craftSwpkg({ manifest: craftManifest('writable', '1.0.0', writable), entries: writable }), {
      name: 'writable',
      version: '1.0.0',
    });
    await refused(['install', 'writable', '--yes'], 'E_BAD_MANIFEST', 3);
  });

  it('a local file with a hostile manifest (E_BAD_MANIFEST, exit 3)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'dup.swpkg');
    const manifest = craftManifest('dup', '1.0.0', ok);
    (manifest['files'] as unknown[]).push((manifest['files'] as unknown[])[1]);
    await writeFile(file, craftSwpkg({ manifest, entries: ok }));
    await refused(['install', file, '--yes', '--allow-untrusted'], 'E_BAD_MANIFEST', 3);
  });
});

describe('local files are verified whole before anything is written', () => {
  it('a trusted local file whose last entry lies is refused before extraction starts (E_HASH_MISMATCH)', async () => {
    const { dir, trusted } = await trustNewKey();
    const files: CraftEntry[] = [
      { path: 'a', type: 'file', content: 'first\n' },
      { path: 'b', type: 'file', content: 'second\n' },
      { path: 'z', type: 'file', content: 'last\n' },
    ];
    const manifest = craftManifest('late', '1.0.0', files);
    const file = join(dir, 'late.swpkg');
    await writeFile(
      file,
      craftSwpkg({
        manifest,
        signature: craftSignature(canonicalBytes(manifest), trusted),
        entries: [...files.slice(0, 2), { ...files[2]!, content: 'LAST\n' }],
      }),
    );
    const before = await treeHash(root);
    // A real process killed the moment extraction into the store would start: a refusal has to come first.
    const r = await spawnPkg(root, ['install', file, '--yes', '--json'], { PKG_TEST_CRASH_AT: 'store.extract' });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.json?.error?.code).toBe('E_HASH_MISMATCH');
    expect(r.code).toBe(3);
    expect(await treeHash(root)).toBe(before);
    // The same file untampered does reach extraction (the crash point proves the probe works).
    const good = join(dir, 'good.swpkg');
    await writeFile(good, craftSwpkg({ manifest, signature: craftSignature(canonicalBytes(manifest), trusted), entries: files }));
    expect((await spawnPkg(root, ['install', good, '--yes', '--json'], { PKG_TEST_CRASH_AT: 'store.extract' })).signal).toBe('SIGKILL');
  });
});
