/**
 * System releases (issue 14): the one gate before `pkg system update` writes
 * a byte of the inactive slot. One row per rule: what is offered, what the
 * machine has accepted, and the code it must be refused with.
 */
import { describe, expect, it } from 'vitest';
import {
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  parseSystemRelease,
  payloadSha256,
  signEnvelope,
  signSystemRelease,
  systemReleasePath,
  systemReleasePayload,
  verifySystemRelease,
  PAYLOAD_TYPES,
  type KeyPair,
  type SystemReleaseSigned,
} from '../../../catalog/index.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;
const rootKey = generateKeyPair();
const catalogKey = generateKeyPair();
const releaseKey = generateKeyPair();
const strangerKey = generateKeyPair();
const root = createRoot({
  rootKeys: [rootKey],
  catalogKeys: [catalogKey],
  releaseKeys: [releaseKey],
  expires: new Date(NOW.getTime() + 365 * DAY),
});
const rootWithoutReleases = createRoot({ rootKeys: [rootKey], catalogKeys: [catalogKey], expires: new Date(NOW.getTime() + 365 * DAY) });

const HASH = 'ab'.repeat(32);
function release(over: Partial<SystemReleaseSigned> = {}): SystemReleaseSigned {
  return {
    type: 'system',
    format: 1,
    repo: 'main',
    version: 5,
    arch: 'x86_64',
    minClientFormat: 1,
    generated: NOW.toISOString(),
    expires: new Date(NOW.getTime() + 30 * DAY).toISOString(),
    artifacts: {
      kernel: { path: 'system/x86_64/5/vmlinuz', size: 100, sha256: HASH },
      initramfs: { path: 'system/x86_64/5/initramfs.cpio.gz', size: 50, sha256: HASH },
      base: { path: 'system/x86_64/5/base.img', size: 4096, sha256: HASH },
    },
    ...over,
  };
}
const bytesOf = (s: SystemReleaseSigned, keys: KeyPair[] = [releaseKey]): Uint8Array => encodeEnvelope(signSystemRelease(s, keys));
/** Signed as given, bypassing the writer's own parse: for payloads the writer refuses to produce. */
const rawBytes = (payload: unknown, keys: KeyPair[] = [releaseKey]): Uint8Array =>
  encodeEnvelope(signEnvelope(PAYLOAD_TYPES.system, Buffer.from(JSON.stringify(payload)), keys));

describe('system release: accepted', () => {
  it('a release signed by the release key, for this arch, newer than the last accepted', () => {
    const accepted = signSystemRelease(release({ version: 4 }), [releaseKey]);
    const doc = verifySystemRelease(bytesOf(release()), {
      root,
      now: NOW,
      arch: 'x86_64',
      repo: 'main',
      lastAccepted: { version: 4, payloadSha256: payloadSha256(accepted) },
    });
    expect(doc.signed).toEqual(release());
    expect(parseSystemRelease(bytesOf(release())).signed.version).toBe(5);
    expect(systemReleasePayload(release()).equals(systemReleasePayload(release()))).toBe(true);
    expect(systemReleasePath('aarch64')).toBe('system/aarch64.json');
  });

  it('the same version again with the same bytes (a rerun after a power cut)', () => {
    const b = bytesOf(release());
    const sha = payloadSha256(parseSystemRelease(b));
    expect(
      verifySystemRelease(b, { root, now: NOW, arch: 'x86_64', lastAccepted: { version: 5, payloadSha256: sha } }).signed.version,
    ).toBe(5);
  });
});

describe('system release: refused', () => {
  const opts = { root, now: NOW, arch: 'x86_64', repo: 'main' };
  const cases: Array<[string, () => Uint8Array, Partial<Parameters<typeof verifySystemRelease>[1]>, string]> = [
    ['unsigned', () => rawBytes(release(), []), {}, 'E_THRESHOLD'],
    ['signed by a key the root does not know', () => bytesOf(release(), [strangerKey]), {}, 'E_UNKNOWN_KEY'],
    ['signed by the catalog key (not a release key)', () => bytesOf(release(), [catalogKey]), {}, 'E_UNKNOWN_KEY'],
    ['a root that names no release keys', () => bytesOf(release()), { root: rootWithoutReleases }, 'E_UNKNOWN_KEY'],
    ['expired', () => bytesOf(release({ expires: new Date(NOW.getTime() - 1000).toISOString() })), {}, 'E_EXPIRED'],
    [
      'replayed: lower than the version accepted',
      () => bytesOf(release({ version: 3 })),
      { lastAccepted: { version: 4, payloadSha256: HASH } },
      'E_ROLLBACK',
    ],
    [
      'the same version with other bytes',
      () => bytesOf(release()),
      { lastAccepted: { version: 5, payloadSha256: HASH } },
      'E_EQUIVOCATION',
    ],
    ['for another arch', () => bytesOf(release({ arch: 'aarch64' })), {}, 'E_WRONG_ARCH'],
    ['for another repository', () => bytesOf(release({ repo: 'other' })), {}, 'E_WRONG_REPO'],
    ['needs a newer client', () => bytesOf(release({ minClientFormat: 99 })), {}, 'E_INCOMPATIBLE'],
    ['a newer document format', () => bytesOf(release({ format: 2 })), {}, 'E_INCOMPATIBLE'],
    [
      'a catalog payload type',
      () => encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, systemReleasePayload(release()), [releaseKey])),
      {},
      'E_PAYLOAD_TYPE',
    ],
    ['an unknown field', () => rawBytes({ ...release(), extra: 1 }), {}, 'E_UNKNOWN_FIELD'],
    [
      'a missing artifact',
      () => rawBytes({ ...release(), artifacts: { kernel: release().artifacts.kernel, initramfs: release().artifacts.initramfs } }),
      {},
      'E_BAD_SYSTEM_RELEASE',
    ],
    [
      'an artifact path climbing out of system/',
      () => rawBytes({ ...release(), artifacts: { ...release().artifacts, base: { path: 'system/../root.json', size: 1, sha256: HASH } } }),
      {},
      'E_UNSAFE_PATH',
    ],
    [
      'an absolute artifact path',
      () => rawBytes({ ...release(), artifacts: { ...release().artifacts, base: { path: '/etc/passwd', size: 1, sha256: HASH } } }),
      {},
      'E_UNSAFE_PATH',
    ],
    [
      'a size that is not a positive integer',
      () => rawBytes({ ...release(), artifacts: { ...release().artifacts, base: { path: 'system/b', size: 0, sha256: HASH } } }),
      {},
      'E_BAD_SYSTEM_RELEASE',
    ],
    [
      'a hash that is not SHA-256',
      () => rawBytes({ ...release(), artifacts: { ...release().artifacts, base: { path: 'system/b', size: 1, sha256: 'abc' } } }),
      {},
      'E_BAD_SYSTEM_RELEASE',
    ],
    ['a version of 0', () => rawBytes({ ...release(), version: 0 }), {}, 'E_BAD_SYSTEM_RELEASE'],
    ['a document larger than any release', () => Buffer.alloc(70_000, 0x20), {}, 'E_TOO_LARGE'],
  ];
  it.each(cases.map(([name, make, over, code]) => [`${name} → ${code}`, make, over, code] as const))('%s', (_name, make, over, code) => {
    expect(() => verifySystemRelease(make(), { ...opts, ...over })).toThrow(expect.objectContaining({ code }));
  });

  it('a tampered payload fails its signature', () => {
    const env = signSystemRelease(release(), [releaseKey]);
    const tampered = systemReleasePayload(release({ version: 6 }));
    expect(() => verifySystemRelease(encodeEnvelope({ ...env, payload: tampered }), opts)).toThrow(
      expect.objectContaining({ code: 'E_SIGNATURE' }),
    );
  });

  it('the writer refuses to sign what the reader would refuse', () => {
    expect(() => signSystemRelease(release({ version: 0 }), [releaseKey])).toThrow(
      expect.objectContaining({ code: 'E_BAD_SYSTEM_RELEASE' }),
    );
    expect(() => systemReleasePath('../x')).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});
