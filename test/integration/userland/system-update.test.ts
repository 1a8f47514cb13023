/**
 * `pkg system update` end to end on the host (issue 14): a real signed
 * repository on a loopback server whose root names a release key, a system
 * release published with `publishSystemRelease`, a real GPT disk image and a
 * folder standing for the ESP. A refusal leaves the ESP and the disk as they
 * were.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPair, sha256Hex, toPublicKeyFile, type KeyPair } from '../../../catalog/index.js';
import { GPT_TYPES, writeGptDisk } from '../../../images/index.js';
import { publishSystemRelease, rotatePublishedRoot } from '../../../publishing/index.js';
import { entryText, readGptDisk } from '../../../userland/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { pkgJson } from './helpers.js';

let repo: FakeRepo;
let server: TableServer;
let releaseKey: KeyPair;
let d: string;
let root: string;
let esp: string;
let disk: string;
const base = Buffer.alloc(400_000, 0x5b);

async function state(): Promise<string> {
  return `${await treeHash(esp)} ${sha256Hex(await readFile(disk))}`;
}

beforeEach(async () => {
  repo = await buildFakeRepo({ packages: [{ name: 'alpha', version: '1.0.0' }] });
  releaseKey = generateKeyPair();
  await rotatePublishedRoot({
    out: repo.dir,
    oldRootKeys: [repo.rootKey],
    newRootKeys: [repo.rootKey],
    catalogKeys: [toPublicKeyFile(repo.key)],
    releaseKeys: [toPublicKeyFile(releaseKey)],
    expiresIn: 365 * 86400,
  });
  d = await tempDir();
  await writeFile(join(d, 'vmlinuz'), 'kernel 1');
  await writeFile(join(d, 'initramfs.cpio.gz'), 'initramfs 1');
  await writeFile(join(d, 'base.img'), base);
  await publishSystemRelease({
    out: repo.dir,
    keys: [releaseKey],
    arch: 'x86_64',
    files: { kernel: join(d, 'vmlinuz'), initramfs: join(d, 'initramfs.cpio.gz'), base: join(d, 'base.img') },
    expiresIn: 30 * 86400,
  });
  await repo.refresh();
  server = await startTableServer(repo.table);
  root = join(d, 'root');
  await mkdir(root);
  esp = join(d, 'esp');
  await mkdir(join(esp, 'loader/entries'), { recursive: true });
  await writeFile(
    join(esp, 'loader/entries/slotA.conf'),
    entryText({ slot: 'a', version: 'installed', release: 0, options: 'console=ttyS0 quiet' }),
  );
  disk = join(d, 'sys.img');
  await writeGptDisk({
    out: disk,
    partitions: [
      { name: 'swpkg-base-a', type: GPT_TYPES.linuxData, sizeMiB: 1 },
      { name: 'swpkg-base-b', type: GPT_TYPES.linuxData, sizeMiB: 1 },
    ],
  });
  const add = await pkgJson(root, ['repo', 'add', 'main', server.url, '--fingerprint', repo.fingerprint]);
  expect(add.json?.ok, JSON.stringify(add.json)).toBe(true);
  const up = await pkgJson(root, ['update']);
  expect(up.json?.ok, up.stdout + up.stderr).toBe(true);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

const update = (extra: string[] = []) => pkgJson(root, ['system', 'update', '--esp', esp, '--slot', 'a', '--disk', disk, ...extra]);

describe('pkg system update', () => {
  it('dry run changes nothing; the update writes slot B, its counted entry and the same kernel options', async () => {
    const before = await state();
    const dry = await update(['--dry-run']);
    expect(dry.json?.result).toMatchObject({ repo: 'main', from: 'a', to: 'b', version: 1, entry: 'slotB+3.conf', dryRun: true });
    expect(await state()).toBe(before);
    const r = await update(['--yes', '--tries', '2']);
    expect(r.json?.ok, r.stdout + r.stderr).toBe(true);
    expect(r.json?.result).toMatchObject({ to: 'b', version: 1, entry: 'slotB+2.conf' });
    expect((await readdir(join(esp, 'loader/entries'))).sort()).toEqual(['slotA.conf', 'slotB+2.conf']);
    expect(await readFile(join(esp, 'loader/entries/slotB+2.conf'), 'utf8')).toContain('options console=ttyS0 quiet swpkg.slot=b\n');
    expect(await readFile(join(esp, 'slotB/vmlinuz'), 'utf8')).toBe('kernel 1');
    const b = (await readGptDisk(disk)).find((p) => p.name === 'swpkg-base-b');
    const img = await readFile(disk);
    expect(sha256Hex(img.subarray(b?.offset ?? 0, (b?.offset ?? 0) + base.length))).toBe(sha256Hex(base));
    const s = await pkgJson(root, ['system', 'status', '--esp', esp, '--slot', 'a']);
    expect(s.json?.result).toMatchObject({ nextBoot: 'b', slots: [{ state: 'good' }, { state: 'trying', triesLeft: 2, version: '1' }] });
    // The same release again (a rerun after a power cut) is accepted.
    expect((await update(['--yes'])).json?.ok).toBe(true);
  });

  it('an artifact the mirror altered is refused before the inactive slot is touched', async () => {
    repo.table.set('system/x86_64/1/base.img', { body: Buffer.alloc(base.length, 0x00) });
    const before = await state();
    const r = await update(['--yes']);
    expect(r.json?.error?.code).toBe('E_HASH_MISMATCH');
    expect(await state()).toBe(before);
  });

  it('a disk without slot partitions is refused before anything is written', async () => {
    const plain = join(d, 'plain.img');
    await writeGptDisk({ out: plain, partitions: [{ name: 'data', type: GPT_TYPES.linuxData, sizeMiB: 1 }] });
    const before = await state();
    const r = await pkgJson(root, ['system', 'update', '--esp', esp, '--slot', 'a', '--disk', plain, '--yes']);
    expect(r.json?.error?.code).toBe('E_NOT_FOUND');
    expect(await state()).toBe(before);
  });
});
