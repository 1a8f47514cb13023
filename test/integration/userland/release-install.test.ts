/**
 * `pkg install --release` / `pkg upgrade --release` (issue 15) through the built binaries, from a
 * repository in a folder: exact sets, the generation's release record, doctor, rollback, and
 * every way a release is refused with the store unchanged.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  encodeEnvelope,
  generateKeyPair,
  parseRelease,
  releasePayload,
  signEnvelope,
  PAYLOAD_TYPES,
  type ReleaseSigned,
} from '../../../catalog/index.js';
import { readPrivateKey } from '../../../publishing/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { ok, pack, releaseRepo } from '../../helpers/release-repo.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

describe('pkg install --release', { timeout: 180_000 }, () => {
  it('installs exactly the set, records it, upgrades with a dry run first, rolls back, and refuses the older release after', async () => {
    const d = await tempDir();
    const { web, releaseKey, catalogKey, fingerprint } = await releaseRepo(d);
    const v1 = await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64']);
    const root = join(d, 'pkgroot');
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', web, '--fingerprint', fingerprint]);
    // No `pkg update`: a release needs no catalog.
    const installed = await ok('pkg', ['--root', root, 'install', '--release', join(web, v1.path), '--yes']);
    expect(installed).toMatchObject({ generation: 1, release: { id: 'edge', version: 1, digest: v1.digest, repo: 'main' } });
    const doc1 = await ok('pkg', ['--root', root, 'doctor']);
    expect(doc1.release).toEqual({ id: 'edge', version: 1, digest: v1.digest, repo: 'main' });
    expect(doc1.installed.map((p: { name: string; version: string }) => `${p.name}@${p.version}`)).toEqual(['lib@1.0.0', 'tool@1.0.0']);
    expect(doc1.installed.every((p: { sha256: string }) => /^[0-9a-f]{64}$/.test(p.sha256))).toBe(true);
    expect(doc1.verified.join('\n')).toContain(v1.digest);

    // tool 2.0.0 and a package no release names are published; release v2 pins tool 2.0.0 and lib.
    await pack(d, 'tool', '2.0.0', ['--depends', 'lib@^1']);
    await pack(d, 'extra', '1.0.0');
    await ok('swpkg', ['repo', 'publish', join(d, 'pkgs'), '--key', catalogKey, '--out', web]);
    const v2 = await ok('swpkg', [
      'release',
      'create',
      web,
      '--id',
      'edge',
      '--key',
      releaseKey,
      '--arch',
      'x86_64',
      '--package',
      'tool@2.0.0',
      '--package',
      'lib@1.0.0',
    ]);
    const before = await treeHash(root);
    const dry = await ok('pkg', ['--root', root, 'upgrade', '--release', `file://${join(web, v2.path)}`, '--dry-run']);
    expect(dry.dryRun).toBe(true);
    expect(dry.plan.release).toMatchObject({ id: 'edge', version: 2, digest: v2.digest });
    expect(dry.plan.lines.map((l: { action: string; name: string }) => `${l.action} ${l.name}`).sort()).toEqual([
      'keep lib',
      'upgrade tool',
    ]);
    expect(await treeHash(root)).toBe(before);
    const human = await runCli('pkg', ['--root', root, 'upgrade', '--release', join(web, v2.path), '--dry-run']);
    expect(human.stdout).toContain(`release edge v2 from main, manifest SHA-256 ${v2.digest}`);

    const up = await ok('pkg', ['--root', root, 'upgrade', '--release', join(web, v2.path), '--yes']);
    expect(up.generation).toBe(2);
    expect((await ok('pkg', ['--root', root, 'doctor'])).release.digest).toBe(v2.digest);
    const list = JSON.stringify(await ok('pkg', ['--root', root, 'list']));
    expect(list).not.toContain('extra');

    await ok('pkg', ['--root', root, 'rollback', '--yes']);
    expect((await ok('pkg', ['--root', root, 'doctor'])).release).toMatchObject({ version: 1, digest: v1.digest });

    // v2 was accepted: v1 is now a replay.
    const mid = await treeHash(root);
    const replay = await runCli('pkg', ['--root', root, 'install', '--release', join(web, v1.path), '--yes', '--json']);
    expect(replay.json?.error?.code).toBe('E_ROLLBACK');
    expect(await treeHash(root)).toBe(mid);
  });

  it('refuses bad releases with a code, and changes nothing', async () => {
    const d = await tempDir();
    const { web, releaseKey, fingerprint } = await releaseRepo(d);
    const v1 = await ok('swpkg', ['release', 'create', web, '--id', 'edge', '--key', releaseKey, '--arch', 'x86_64']);
    // Each bad release is version 2: v1 is accepted, and another v1 would be refused as equivocation first.
    const good = { ...parseRelease(await readFile(join(web, v1.path))).signed, version: 2 };
    const key = await readPrivateKey(releaseKey);
    const root = join(d, 'pkgroot');
    await ok('pkg', ['--root', root, 'repo', 'add', 'main', web, '--fingerprint', fingerprint]);
    // Installed first, so the root is complete and each refusal must leave it exactly as it was.
    await ok('pkg', ['--root', root, 'install', '--release', join(web, v1.path), '--yes']);
    await mkdir(join(d, 'bad'));
    const withLib = (over: Partial<ReleaseSigned['packages'][number]>): ReleaseSigned => ({
      ...good,
      packages: good.packages.map((p) => (p.name === 'lib' ? { ...p, ...over } : p)),
    });
    const cases: { name: string; signed: ReleaseSigned; keyOf?: 'unknown'; code: string }[] = [
      { name: 'another v1 (equivocation)', signed: { ...good, version: 1, sourceRevision: 'other' }, code: 'E_EQUIVOCATION' },
      { name: 'a hash that does not match the file', signed: withLib({ sha256: 'b'.repeat(64) }), code: 'E_HASH_MISMATCH' },
      { name: 'a missing file', signed: withLib({ location: 'packages/gone-1.0.0-x86_64.swpkg', sha256: 'c'.repeat(64) }), code: 'E_HTTP' },
      { name: 'an unknown signing key', signed: good, keyOf: 'unknown', code: 'E_UNKNOWN_KEY' },
      { name: 'expired', signed: { ...good, expires: '2020-01-01T00:00:00Z', created: '2019-01-01T00:00:00Z' }, code: 'E_EXPIRED' },
      { name: 'a wrong arch', signed: { ...good, arch: 'aarch64' }, code: 'E_INCOMPATIBLE' },
      {
        name: 'a location that climbs out of the media',
        signed: withLib({ location: `file://${web}/../etc/passwd` }),
        code: 'E_UNSAFE_PATH',
      },
      { name: 'an encoded climb', signed: withLib({ location: 'packages/%2e%2e/%2e%2e/etc/passwd' }), code: 'E_UNSAFE_PATH' },
    ];
    for (const c of cases) {
      const file = join(d, 'bad', `${c.name.replace(/\W+/g, '-')}.json`);
      // Written raw: signRelease would refuse a climbing location on the way out, as a publisher should.
      const signer = c.keyOf === 'unknown' ? generateKeyPair() : key;
      await writeFile(file, encodeEnvelope(signEnvelope(PAYLOAD_TYPES.release, releasePayload(c.signed), [signer])));
      const before = await treeHash(root);
      const r = await runCli('pkg', ['--root', root, 'install', '--release', file, '--yes', '--json']);
      expect(r.json?.error?.code, `${c.name}: ${r.stdout}${r.stderr}`).toBe(c.code);
      expect(await treeHash(root), c.name).toBe(before);
    }
  });
});
