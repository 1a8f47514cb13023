/**
 * A/B system slots on the host (issue 14): a real GPT disk image for the
 * base partitions, a folder standing for the mounted ESP, a signed system
 * release and its artifacts in a folder standing for the repository. Every
 * refusal is checked for its code and for the ESP and the disk being
 * exactly as they were.
 */
import { appendFile, mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  sha256Hex,
  signEnvelope,
  signSystemRelease,
  systemReleasePayload,
  PAYLOAD_TYPES,
  type KeyPair,
  type SystemReleaseSigned,
} from '../../../catalog/index.js';
import { GPT_TYPES, readGptDisk, writeGptDisk } from '../../../images/index.js';
import {
  entryText,
  folderArtifactSource,
  markSlotGood,
  readSystemStatus,
  rollbackSlot,
  stageSystemUpdate,
  type SystemLayout,
} from '../../../userland/index.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;
const rootKey = generateKeyPair();
const releaseKey = generateKeyPair();
const strangerKey = generateKeyPair();
const root = createRoot({
  rootKeys: [rootKey],
  catalogKeys: [generateKeyPair()],
  releaseKeys: [releaseKey],
  expires: new Date(NOW.getTime() + 365 * DAY),
});
const OPTIONS = 'console=ttyS0 swpkg.net=restricted';

let d: string;
let repo: string;
let layout: SystemLayout;
let disk: string;
let files: { kernel: Buffer; initramfs: Buffer; base: Buffer };

async function state(): Promise<string> {
  return `${await treeHash(layout.esp)} ${sha256Hex(await readFile(disk))}`;
}

function release(over: Partial<SystemReleaseSigned> = {}): SystemReleaseSigned {
  const v = over.version ?? 5;
  const art = (name: string, b: Buffer) => ({ path: `system/x86_64/${v}/${name}`, size: b.length, sha256: sha256Hex(b) });
  return {
    type: 'system',
    format: 1,
    repo: 'main',
    version: v,
    arch: 'x86_64',
    minClientFormat: 1,
    generated: NOW.toISOString(),
    expires: new Date(NOW.getTime() + 30 * DAY).toISOString(),
    artifacts: {
      kernel: art('vmlinuz', files.kernel),
      initramfs: art('initramfs.cpio.gz', files.initramfs),
      base: art('base.img', files.base),
    },
    ...over,
  };
}

async function publish(s: SystemReleaseSigned, keys: KeyPair[] = [releaseKey]): Promise<Uint8Array> {
  const dir = join(repo, `system/x86_64/${s.version}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'vmlinuz'), files.kernel);
  await writeFile(join(dir, 'initramfs.cpio.gz'), files.initramfs);
  await writeFile(join(dir, 'base.img'), files.base);
  return encodeEnvelope(signSystemRelease(s, keys));
}

const stage = (releaseBytes: Uint8Array, over: Partial<Parameters<typeof stageSystemUpdate>[0]> = {}) =>
  stageSystemUpdate({
    layout,
    releaseBytes,
    root,
    now: NOW,
    arch: 'x86_64',
    repo: 'main',
    source: folderArtifactSource(repo),
    stagingDir: join(d, 'staging'),
    options: OPTIONS,
    ...over,
  });

beforeEach(async () => {
  d = await tempDir();
  repo = join(d, 'repo');
  files = { kernel: Buffer.from('kernel v5'), initramfs: Buffer.from('initramfs v5'), base: Buffer.alloc(300_000, 5) };
  // The installed system: slot A good (release 0), slot B empty.
  const esp = join(d, 'esp');
  await mkdir(join(esp, 'loader/entries'), { recursive: true });
  await mkdir(join(esp, 'slotA'));
  await writeFile(join(esp, 'slotA/vmlinuz'), 'kernel A');
  await writeFile(join(esp, 'slotA/initramfs.cpio.gz'), 'initramfs A');
  await writeFile(join(esp, 'loader/entries/slotA.conf'), entryText({ slot: 'a', version: 'installed', release: 0, options: OPTIONS }));
  await writeFile(join(d, 'base-a.img'), Buffer.alloc(200_000, 0xaa));
  disk = join(d, 'sys.img');
  await writeGptDisk({
    out: disk,
    partitions: [
      { name: 'swpkg-base-a', type: GPT_TYPES.linuxData, sizeMiB: 1, source: join(d, 'base-a.img') },
      { name: 'swpkg-base-b', type: GPT_TYPES.linuxData, sizeMiB: 1 },
    ],
  });
  const [a, b] = await readGptDisk(disk);
  if (!a || !b) throw new Error('test disk has no partitions');
  layout = {
    esp,
    active: 'a',
    slots: { a: { path: disk, offset: a.offset, size: a.size }, b: { path: disk, offset: b.offset, size: b.size } },
  };
});

describe('pkg system update (staging into the inactive slot)', () => {
  it('writes slot B and its counted entry, leaves slot A as it was, and B boots next', async () => {
    const slotABefore = sha256Hex((await readFile(disk)).subarray(layout.slots.a.offset, layout.slots.a.offset + layout.slots.a.size));
    const espA = await treeHash(join(layout.esp, 'slotA'));
    const aEntry = await readFile(join(layout.esp, 'loader/entries/slotA.conf'));
    const r = await stage(await publish(release()));
    expect(r).toMatchObject({ slot: 'b', version: 5, entry: 'slotB+3.conf' });
    const img = await readFile(disk);
    expect(sha256Hex(img.subarray(layout.slots.b.offset, layout.slots.b.offset + files.base.length))).toBe(sha256Hex(files.base));
    expect(sha256Hex(img.subarray(layout.slots.a.offset, layout.slots.a.offset + layout.slots.a.size))).toBe(slotABefore);
    expect(await treeHash(join(layout.esp, 'slotA'))).toBe(espA);
    expect(await readFile(join(layout.esp, 'loader/entries/slotA.conf'))).toEqual(aEntry);
    expect(await readFile(join(layout.esp, 'slotB/vmlinuz'), 'utf8')).toBe('kernel v5');
    expect((await readdir(join(layout.esp, 'loader/entries'))).sort()).toEqual(['slotA.conf', 'slotB+3.conf']);
    expect(await readFile(join(layout.esp, 'loader/entries/slotB+3.conf'), 'utf8')).toContain(`options ${OPTIONS} swpkg.slot=b\n`);
    const s = await readSystemStatus(layout);
    expect(s.nextBoot).toBe('b');
    expect(s.slots).toEqual([
      expect.objectContaining({ slot: 'a', active: true, state: 'good', version: 'installed' }),
      expect.objectContaining({ slot: 'b', active: false, state: 'trying', version: '5', triesLeft: 3, triesDone: 0 }),
    ]);
    expect(existsSync(join(d, 'staging'))).toBe(false);
  });

  it('after a boot of B, mark-good drops the counter; B keeps booting first', async () => {
    await stage(await publish(release()));
    // What systemd-boot does as it starts slot B.
    await rename(join(layout.esp, 'loader/entries/slotB+3.conf'), join(layout.esp, 'loader/entries/slotB+2-1.conf'));
    const booted = { ...layout, active: 'b' as const };
    expect(await markSlotGood(booted)).toEqual({ slot: 'b', changed: true, entry: 'slotB.conf' });
    expect(await markSlotGood(booted)).toEqual({ slot: 'b', changed: false, entry: 'slotB.conf' });
    const s = await readSystemStatus(booted);
    expect(s.nextBoot).toBe('b');
    expect(s.slots.map((x) => x.state)).toEqual(['good', 'good']);
    // Rollback from B: A boots next, with nothing of A written.
    const espA = await treeHash(join(layout.esp, 'slotA'));
    expect(await rollbackSlot(booted)).toEqual({ from: 'b', to: 'a' });
    const after = await readSystemStatus(booted);
    expect(after.nextBoot).toBe('a');
    // Set aside by hand, not failed: no boot of B ran out of tries.
    expect(after.slots[1]).toMatchObject({ slot: 'b', state: 'set-aside', entry: 'slotB+0.conf', triesLeft: 0 });
    expect(after.lastFailure).toBeNull();
    expect(await treeHash(join(layout.esp, 'slotA'))).toBe(espA);
  });

  it('tries used up: the loader falls back to A and status names the failure', async () => {
    await stage(await publish(release()));
    await rename(join(layout.esp, 'loader/entries/slotB+3.conf'), join(layout.esp, 'loader/entries/slotB+0-3.conf'));
    const s = await readSystemStatus(layout);
    expect(s.nextBoot).toBe('a');
    expect(s.lastFailure).toEqual({ slot: 'b', version: '5', triesDone: 3 });
    // A newer release can be staged over the failed slot.
    files.kernel = Buffer.from('kernel v6');
    const r = await stage(await publish(release({ version: 6 })));
    expect(r.entry).toBe('slotB+3.conf');
    expect((await readdir(join(layout.esp, 'loader/entries'))).sort()).toEqual(['slotA.conf', 'slotB+3.conf']);
  });

  it('the same release again is accepted (a rerun after a power cut)', async () => {
    const bytes = await publish(release());
    const first = await stage(bytes);
    await expect(stage(bytes, { lastAccepted: { version: 5, payloadSha256: first.payloadSha256 } })).resolves.toMatchObject({
      slot: 'b',
      entry: 'slotB+3.conf',
    });
  });

  it('rollback with no other system, and any command without an ESP, are refused and change nothing', async () => {
    const before = await state();
    await expect(rollbackSlot(layout)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(markSlotGood({ ...layout, esp: join(d, 'no-esp') })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(readSystemStatus({ ...layout, esp: join(d, 'no-esp') })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(await state()).toBe(before);
  });
});

describe('pkg system update refuses before the inactive slot is touched', () => {
  const cases: Array<[string, () => Promise<{ bytes: Uint8Array; over?: Partial<Parameters<typeof stageSystemUpdate>[0]> }>, string]> = [
    [
      'unsigned',
      async () => ({ bytes: encodeEnvelope(signEnvelope(PAYLOAD_TYPES.system, systemReleasePayload(release()), [])) }),
      'E_THRESHOLD',
    ],
    ['signed by an unknown key', async () => ({ bytes: await publish(release(), [strangerKey]) }), 'E_UNKNOWN_KEY'],
    ['expired', async () => ({ bytes: await publish(release({ expires: new Date(NOW.getTime() - 1).toISOString() })) }), 'E_EXPIRED'],
    [
      'replayed (lower version)',
      async () => ({
        bytes: await publish(release({ version: 4 })),
        over: { lastAccepted: { version: 5, payloadSha256: 'ab'.repeat(32) } },
      }),
      'E_ROLLBACK',
    ],
    ['for another arch', async () => ({ bytes: await publish(release({ arch: 'aarch64' })) }), 'E_WRONG_ARCH'],
    [
      'an artifact whose hash does not match',
      async () => {
        const bytes = await publish(release());
        await writeFile(join(repo, 'system/x86_64/5/base.img'), Buffer.alloc(files.base.length, 6));
        return { bytes };
      },
      'E_HASH_MISMATCH',
    ],
    [
      'an artifact larger than declared',
      async () => {
        const bytes = await publish(release());
        await appendFile(join(repo, 'system/x86_64/5/vmlinuz'), 'more');
        return { bytes };
      },
      'E_TOO_LARGE',
    ],
    [
      'a base image larger than the slot (full slot)',
      async () => {
        files.base = Buffer.alloc((1 << 20) + 1, 5);
        return { bytes: await publish(release()) };
      },
      'E_DISK_FULL',
    ],
  ];
  it.each(cases.map(([name, make, code]) => [`${name} → ${code}`, make, code] as const))('%s', async (_name, make, code) => {
    const { bytes, over } = await make();
    const before = await state();
    await expect(stage(bytes, over ?? {})).rejects.toMatchObject({ code });
    expect(await state()).toBe(before);
    expect(existsSync(join(d, 'staging'))).toBe(false);
  });
});
