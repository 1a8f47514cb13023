import { describe, expect, it } from 'vitest';
import {
  CLIENT_FORMAT,
  assertReleaseLocation,
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  parseRelease,
  releaseDigest,
  releasePayload,
  signEnvelope,
  signRelease,
  verifyRelease,
  PAYLOAD_TYPES,
  type ReleasePackage,
  type ReleaseSigned,
} from '../../../catalog/index.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const LATER = (days: number) => new Date(NOW.getTime() + days * 86400000);
const CLIENT = { arch: 'x86_64', abi: 'linux-musl-static', format: 1 };

function pkg(name: string, over: Partial<ReleasePackage> = {}): ReleasePackage {
  return {
    name,
    version: '1.0.0',
    arch: 'x86_64',
    abi: 'linux-musl-static',
    depends: {},
    provides: [],
    conflicts: [],
    size: 10,
    installedSize: 10,
    sha256: 'a'.repeat(64),
    location: `packages/${name}-1.0.0-x86_64.swpkg`,
    summary: 's',
    license: 'MIT',
    ...over,
  };
}

function release(over: Partial<ReleaseSigned> = {}): ReleaseSigned {
  return {
    type: 'release',
    format: 1,
    id: 'edge',
    version: 2,
    repo: 'main',
    arch: 'x86_64',
    abi: 'linux-musl-static',
    minClientFormat: 1,
    created: '2026-12-01T00:00:00Z',
    expires: '2027-01-01T00:00:00Z',
    supersedes: { id: 'edge', version: 1 },
    sourceRevision: 'abc123',
    packages: [pkg('tool'), pkg('lib')],
    ...over,
  };
}

function keys() {
  const rootKey = generateKeyPair();
  const cat = generateKeyPair();
  const rel = generateKeyPair();
  const root = createRoot({ rootKeys: [rootKey], catalogKeys: [cat], releaseKeys: [rel], expires: LATER(365) });
  return { rootKey, cat, rel, root };
}

describe('release documents', () => {
  it('round-trip: signed, encoded, parsed and verified to the same fields, with a stable digest', () => {
    const { rel, root } = keys();
    const doc = signRelease(release(), [rel]);
    const bytes = encodeEnvelope(doc);
    expect(parseRelease(bytes).signed).toEqual(doc.signed);
    const v = verifyRelease(bytes, { root, now: NOW, client: CLIENT, repo: 'main' });
    expect(v.signed.packages.map((p) => p.name)).toEqual(['lib', 'tool']);
    expect(releaseDigest(v)).toMatch(/^[0-9a-f]{64}$/);
    expect(releaseDigest(signRelease(release(), [rel]))).toBe(releaseDigest(v));
  });

  it('verifyRelease: one case per attack', () => {
    const { rel, cat, root } = keys();
    const good = encodeEnvelope(signRelease(release(), [rel]));
    const accepted = { version: 2, digest: releaseDigest(parseRelease(good)) };
    const cases: { name: string; bytes: Uint8Array; o?: object; code: string }[] = [
      { name: 'signed by the catalog key', bytes: encodeEnvelope(signRelease(release(), [cat])), code: 'E_UNKNOWN_KEY' },
      { name: 'signed by an unknown key', bytes: encodeEnvelope(signRelease(release(), [generateKeyPair()])), code: 'E_UNKNOWN_KEY' },
      {
        name: 'payload changed under the signature',
        bytes: encodeEnvelope({ ...signRelease(release(), [rel]), payload: releasePayload(release({ version: 3 })) }),
        code: 'E_SIGNATURE',
      },
      { name: 'expired', bytes: encodeEnvelope(signRelease(release({ expires: '2026-12-01T00:00:00Z' }), [rel])), code: 'E_EXPIRED' },
      {
        name: 'older than accepted',
        bytes: encodeEnvelope(signRelease(release({ version: 1, supersedes: null }), [rel])),
        o: { lastAccepted: accepted },
        code: 'E_ROLLBACK',
      },
      {
        name: 'same version, other content',
        bytes: encodeEnvelope(signRelease(release({ sourceRevision: 'other' }), [rel])),
        o: { lastAccepted: accepted },
        code: 'E_EQUIVOCATION',
      },
      { name: 'wrong arch', bytes: encodeEnvelope(signRelease(release({ arch: 'aarch64' }), [rel])), code: 'E_INCOMPATIBLE' },
      {
        name: 'a package of the wrong arch',
        bytes: encodeEnvelope(signRelease(release({ packages: [pkg('tool', { arch: 'aarch64' })] }), [rel])),
        code: 'E_INCOMPATIBLE',
      },
      {
        name: 'a newer client format',
        bytes: encodeEnvelope(signRelease(release({ minClientFormat: CLIENT_FORMAT + 1 }), [rel])),
        code: 'E_INCOMPATIBLE',
      },
      { name: 'another repository', bytes: good, o: { repo: 'other' }, code: 'E_WRONG_REPO' },
      {
        name: 'a catalog in its place',
        bytes: encodeEnvelope(signEnvelope(PAYLOAD_TYPES.catalog, releasePayload(release()), [rel])),
        code: 'E_PAYLOAD_TYPE',
      },
    ];
    expect(() => verifyRelease(good, { root, now: NOW, client: CLIENT, repo: 'main', lastAccepted: accepted })).not.toThrow();
    for (const c of cases) {
      expect(() => verifyRelease(c.bytes, { root, now: NOW, client: CLIENT, repo: 'main', ...c.o }), c.name).toThrow(
        expect.objectContaining({ code: c.code }),
      );
    }
  });

  it('a root without release keys trusts no release', () => {
    const rootKey = generateKeyPair();
    const root = createRoot({ rootKeys: [rootKey], catalogKeys: [rootKey], expires: LATER(30) });
    const bytes = encodeEnvelope(signRelease(release(), [rootKey]));
    expect(() => verifyRelease(bytes, { root, now: NOW, client: CLIENT, repo: 'main' })).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_KEY' }),
    );
  });

  it('the payload is parsed strictly', () => {
    const { rel } = keys();
    const raw = (o: object) => encodeEnvelope(signEnvelope(PAYLOAD_TYPES.release, Buffer.from(JSON.stringify(o)), [rel]));
    const base = JSON.parse(releasePayload(release()).toString()) as Record<string, unknown>;
    const cases: { name: string; o: object; code: string }[] = [
      { name: 'unknown field', o: { ...base, extra: 1 }, code: 'E_UNKNOWN_FIELD' },
      { name: 'version 0', o: { ...base, version: 0 }, code: 'E_BAD_RELEASE' },
      { name: 'a bad id', o: { ...base, id: '../x' }, code: 'E_BAD_RELEASE' },
      { name: 'a bad created time', o: { ...base, created: 'yesterday' }, code: 'E_BAD_RELEASE' },
      { name: 'a package twice', o: { ...base, packages: [pkg('a'), pkg('a', { version: '2.0.0' })] }, code: 'E_BAD_RELEASE' },
      { name: 'a short hash', o: { ...base, packages: [pkg('a', { sha256: 'ab' })] }, code: 'E_BAD_RELEASE' },
      { name: 'a bad package version', o: { ...base, packages: [pkg('a', { version: 'one' })] }, code: 'E_BAD_RELEASE' },
      { name: 'a climbing location', o: { ...base, packages: [pkg('a', { location: '../etc/passwd' })] }, code: 'E_UNSAFE_PATH' },
    ];
    for (const c of cases) expect(() => parseRelease(raw(c.o)), c.name).toThrow(expect.objectContaining({ code: c.code }));
  });

  it('locations: relative under the web root or absolute http(s)/file URLs, never climbing', () => {
    for (const ok of [
      'packages/a.swpkg',
      'pool/x/a-1.0.0.swpkg',
      'https://example.test/p/a.swpkg',
      'file:///media/repo/packages/a.swpkg',
    ]) {
      expect(assertReleaseLocation(ok, 'l')).toBe(ok);
    }
    for (const bad of [
      '../a.swpkg',
      'packages/../../a.swpkg',
      'packages/%2e%2e/a.swpkg',
      'packages/%2E%2E/%2e%2E/a.swpkg',
      'packages%2f..%2fa.swpkg',
      'packages\\..\\a.swpkg',
      '/etc/passwd',
      'file:///media/../etc/passwd',
      'file:///media/%2e%2e/etc/passwd',
      'http://h/a/../../b.swpkg',
      'ftp://h/a.swpkg',
      './a.swpkg',
      '',
      'a//b.swpkg',
    ]) {
      expect(() => assertReleaseLocation(bad, 'l'), bad).toThrow(expect.objectContaining({ code: 'E_UNSAFE_PATH' }));
    }
  });
});
