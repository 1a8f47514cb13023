/**
 * A/B system update in the real guest (issue 14), booted through OVMF and
 * systemd-boot from a GPT system disk: the guest adds a repository whose
 * root names a release key, `pkg system update` stages a signed system
 * release into slot B, and after `reboot` the loader tries slot B, its init
 * runs the checks and marks it good; the package store is untouched.
 *
 * Slow by nature (several guest boots under TCG). Needs the same pinned
 * kernel as boot.test.ts, plus ovmf, systemd-boot-efi and mtools.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, toPublicKeyFile } from '../../../catalog/index.js';
import {
  ARTIFACT_FILES,
  buildImages,
  buildUefiDisk,
  createStoreImage,
  kernelAppend,
  startGuest,
  type BuildImagesResult,
  type GuestHandle,
} from '../../../images/index.js';
import { publishSystemRelease, rotatePublishedRoot } from '../../../publishing/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';

/** Serves a folder as it is on disk, streamed (the base image is 150 MB). */
function staticServer(dir: string): Server {
  return createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/'));
    if (path.includes('..')) {
      res.statusCode = 400;
      res.end();
      return;
    }
    const file = join(dir, path);
    stat(file).then(
      (s) => {
        if (!s.isFile()) throw new Error('not a file');
        res.setHeader('content-length', s.size);
        createReadStream(file).pipe(res);
      },
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
}

describe('A/B system update in the guest (UEFI boot)', () => {
  let tmp = '';
  let built: BuildImagesResult;
  let repo: FakeRepo;
  let guest: GuestHandle | undefined;
  let server: Server;
  let port = 0;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swpkg-uefi-update-test-'));
    built = await buildImages({ allowApt: false, pkg: 'bundle' });
    repo = await buildFakeRepo({ packages: [{ name: 'alpha', version: '1.0.0' }] });
    const releaseKey = generateKeyPair();
    await rotatePublishedRoot({
      out: repo.dir,
      oldRootKeys: [repo.rootKey],
      newRootKeys: [repo.rootKey],
      catalogKeys: [toPublicKeyFile(repo.key)],
      releaseKeys: [toPublicKeyFile(releaseKey)],
      expiresIn: 365 * 86400,
    });
    const a = built.outDir;
    // Release 1 is the same system as slot A: what the update proves is the path, not new bytes.
    await publishSystemRelease({
      out: repo.dir,
      keys: [releaseKey],
      arch: 'x86_64',
      files: { kernel: join(a, ARTIFACT_FILES.kernel), initramfs: join(a, ARTIFACT_FILES.initramfs), base: join(a, ARTIFACT_FILES.base) },
      expiresIn: 30 * 86400,
    });
    server = staticServer(repo.dir);
    port = await new Promise<number>((res) => server.listen(0, '127.0.0.1', () => res((server.address() as AddressInfo).port)));
  }, 300_000);

  afterAll(async () => {
    if (guest && !guest.exited) await guest.kill();
    server?.close();
    await cleanupFakeRepos();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('stages slot B, reboots into it, marks it good, and leaves the store as it was', async () => {
    const a = built.outDir;
    const disk = join(tmp, 'sys.img');
    await buildUefiDisk({
      out: disk,
      arch: 'x86_64',
      slots: {
        a: {
          kernel: join(a, ARTIFACT_FILES.kernel),
          initramfs: join(a, ARTIFACT_FILES.initramfs),
          base: join(a, ARTIFACT_FILES.base),
          version: 'installed',
        },
      },
      options: kernelAppend('restricted', 'swpkg'),
    });
    // Room for the staged 150 MB base image next to the packages.
    const store = (await createStoreImage({ path: join(tmp, 'store.img'), sizeMiB: 768 })).path;
    guest = await startGuest({
      artifactsDir: a,
      storeImage: store,
      boot: 'uefi',
      systemDisk: disk,
      hostPorts: [{ guest: 8080, host: port }],
      serialLog: join(tmp, 'serial.log'),
      timeoutMs: 400_000,
    });
    const con = guest.console;
    expect(guest.boot.firmwareMs).toBeGreaterThan(0);
    expect((await con.run('cat /proc/cmdline')).output).toContain('swpkg.slot=a');
    const ok = async (cmd: string, timeoutMs = 300_000): Promise<string> => {
      const r = await con.run(cmd, timeoutMs);
      expect(r.exitCode, `${cmd}\n${r.output}`).toBe(0);
      return r.output;
    };
    await ok(`pkg repo add main http://10.0.2.2:8080/ --fingerprint ${repo.fingerprint}`);
    await ok('pkg update');
    await ok('pkg install alpha --yes');
    const storeBefore = await ok('cd /pkg && find store generations -print | sort | md5sum');
    const status0 = JSON.parse(await ok('pkg system status --json')) as { result: { nextBoot: string; slots: Array<{ state: string }> } };
    expect(status0.result.nextBoot).toBe('a');
    expect(status0.result.slots.map((s) => s.state)).toEqual(['good', 'empty']);

    const up = JSON.parse(await ok('pkg system update --yes --json', 600_000)) as {
      result: { to: string; version: number; entry: string };
    };
    expect(up.result).toMatchObject({ to: 'b', version: 1, entry: 'slotB+3.conf' });
    expect((await ok('ls /boot/efi/loader/entries')).split(/\s+/).filter(Boolean).sort()).toEqual(['slotA.conf', 'slotB+3.conf']);

    const from = con.position;
    await guest.reboot({ timeoutMs: 600_000 });
    expect(con.transcript(from)).toMatch(/SWPKG-SYSTEM good slot=b/);
    expect((await con.run('cat /proc/cmdline')).output).toContain('swpkg.slot=b');
    const status1 = JSON.parse(await ok('pkg system status --json')) as {
      result: { active: string; nextBoot: string; lastFailure: unknown; slots: Array<{ state: string; version: string }> };
    };
    expect(status1.result).toMatchObject({ active: 'b', nextBoot: 'b', lastFailure: null });
    expect(status1.result.slots.map((s) => [s.state, s.version])).toEqual([
      ['good', 'installed'],
      ['good', '1'],
    ]);
    expect(await ok('cd /pkg && find store generations -print | sort | md5sum')).toBe(storeBefore);
    await ok('pkg doctor');
    const stop = await guest.stop();
    expect(stop.clean).toBe(true);
  }, 1_800_000);
});
