import { describe, expect, it } from 'vitest';
import {
  canonicalBytes,
  checkReleaseThreshold,
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  parseRoot,
  PAYLOAD_TYPES,
  rotateRoot,
  signEnvelope,
  verifyRootSelfSigned,
  verifyRootUpdate,
  type KeyPair,
  type RootSigned,
} from '../../../catalog/index.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const LATER = (days: number) => new Date(NOW.getTime() + days * 86400000);
const RELEASE_TYPE = 'application/vnd.swpkg.release+json;version=1';

function releaseEnvelope(keys: KeyPair[]) {
  return signEnvelope(RELEASE_TYPE, new TextEncoder().encode('{"type":"release"}'), keys);
}

/** A root whose payload is `signed` exactly as given, self-signed by `rootKey`. */
function rootFrom(signed: unknown, rootKey: KeyPair) {
  return encodeEnvelope(signEnvelope(PAYLOAD_TYPES.root, canonicalBytes(signed), [rootKey]));
}

describe('root: the optional release role', () => {
  it('an old root has no release role, and writing one without release keys leaves the payload as it was', () => {
    const rootKey = generateKeyPair();
    const cat = generateKeyPair();
    const root = createRoot({ rootKeys: [rootKey], catalogKeys: [cat], expires: LATER(365) });
    expect(root.signed.roles.release).toBeUndefined();
    expect(new TextDecoder().decode(root.payload)).not.toContain('release');
    const reparsed = parseRoot(encodeEnvelope(root), 'root');
    expect(reparsed.signed.roles).toEqual({ root: root.signed.roles.root, catalog: root.signed.roles.catalog });
    // No release role means no release is trusted, not that the catalog keys stand in for it.
    expect(() => checkReleaseThreshold(releaseEnvelope([cat]), root, 'release')).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_KEY' }),
    );
  });

  it('release documents are verified against the release keys with the threshold rule', () => {
    const rootKey = generateKeyPair();
    const cat = generateKeyPair();
    const r1 = generateKeyPair();
    const r2 = generateKeyPair();
    const root = createRoot({ rootKeys: [rootKey], catalogKeys: [cat], releaseKeys: [r1, r2], releaseThreshold: 2, expires: LATER(365) });
    const parsed = parseRoot(encodeEnvelope(root), 'root');
    expect(parsed.signed.roles.release).toEqual({ keyids: [r1.keyid, r2.keyid].sort(), threshold: 2 });
    verifyRootSelfSigned(parsed, NOW);
    expect(() => checkReleaseThreshold(releaseEnvelope([r1, r2]), parsed, 'release')).not.toThrow();
    expect(() => checkReleaseThreshold(releaseEnvelope([r1]), parsed, 'release')).toThrow(expect.objectContaining({ code: 'E_THRESHOLD' }));
    // The catalog key and the root key are other roles: they cannot sign a release.
    expect(() => checkReleaseThreshold(releaseEnvelope([cat]), parsed, 'release')).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_KEY' }),
    );
    expect(() => checkReleaseThreshold(releaseEnvelope([rootKey]), parsed, 'release')).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_KEY' }),
    );
    const tampered = { ...releaseEnvelope([r1, r2]), payload: new TextEncoder().encode('{"type":"release","x":1}') };
    expect(() => checkReleaseThreshold(tampered, parsed, 'release')).toThrow(expect.objectContaining({ code: 'E_SIGNATURE' }));
  });

  it('the release role is parsed as strictly as the others', () => {
    const rootKey = generateKeyPair();
    const rel = generateKeyPair();
    const good = createRoot({ rootKeys: [rootKey], catalogKeys: [rootKey], releaseKeys: [rel], expires: LATER(30) }).signed;
    const variants: { name: string; signed: RootSigned | Record<string, unknown>; code: string }[] = [
      {
        name: 'a key the root does not list',
        signed: { ...good, roles: { ...good.roles, release: { keyids: ['ab'.repeat(32)], threshold: 1 } } },
        code: 'E_BAD_ROOT',
      },
      {
        name: 'a threshold above its keys',
        signed: { ...good, roles: { ...good.roles, release: { keyids: [rel.keyid], threshold: 2 } } },
        code: 'E_BAD_ROOT',
      },
      {
        name: 'a zero threshold',
        signed: { ...good, roles: { ...good.roles, release: { keyids: [rel.keyid], threshold: 0 } } },
        code: 'E_BAD_ROOT',
      },
      { name: 'null instead of a role', signed: { ...good, roles: { ...good.roles, release: null } }, code: 'E_BAD_ROOT' },
      {
        name: 'an unknown field in the role',
        signed: { ...good, roles: { ...good.roles, release: { keyids: [rel.keyid], threshold: 1, extra: true } } },
        code: 'E_UNKNOWN_FIELD',
      },
      {
        name: 'an unknown role',
        signed: { ...good, roles: { ...good.roles, mirror: { keyids: [rel.keyid], threshold: 1 } } },
        code: 'E_UNKNOWN_FIELD',
      },
    ];
    expect(() => parseRoot(rootFrom(good, rootKey), 'good')).not.toThrow();
    for (const v of variants) {
      expect(() => parseRoot(rootFrom(v.signed, rootKey), v.name), v.name).toThrow(expect.objectContaining({ code: v.code }));
    }
  });

  it('rotation keeps, replaces, or adds the release keys, and clients walking roots accept the result', () => {
    const rootKey = generateKeyPair();
    const cat = generateKeyPair();
    const rel = generateKeyPair();
    const v1 = createRoot({ rootKeys: [rootKey], catalogKeys: [cat], expires: LATER(365) });
    const v2 = rotateRoot({ current: v1, oldRootKeys: [rootKey], newRootKeys: [rootKey], releaseKeys: [rel], expires: LATER(365) });
    const walked = verifyRootUpdate(v1, encodeEnvelope(v2));
    expect(walked.signed.roles.release).toEqual({ keyids: [rel.keyid], threshold: 1 });
    expect(() => checkReleaseThreshold(releaseEnvelope([rel]), walked, 'release')).not.toThrow();

    // A rotation that says nothing about releases keeps the role, threshold included.
    const rel2 = generateKeyPair();
    const v3 = rotateRoot({
      current: walked,
      oldRootKeys: [rootKey],
      newRootKeys: [rootKey],
      releaseKeys: [rel, rel2],
      releaseThreshold: 2,
      expires: LATER(365),
    });
    const v4 = rotateRoot({ current: v3, oldRootKeys: [rootKey], newRootKeys: [rootKey], expires: LATER(365) });
    expect(v4.signed.roles.release).toEqual({ keyids: [rel.keyid, rel2.keyid].sort(), threshold: 2 });

    // Replacing the key retires the old one.
    const v5 = rotateRoot({ current: v4, oldRootKeys: [rootKey], newRootKeys: [rootKey], releaseKeys: [rel2], expires: LATER(365) });
    expect(v5.signed.roles.release).toEqual({ keyids: [rel2.keyid], threshold: 1 });
    expect(() => checkReleaseThreshold(releaseEnvelope([rel]), v5, 'release')).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_KEY' }));
  });
});
