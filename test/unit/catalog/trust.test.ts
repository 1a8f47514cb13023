import { describe, expect, it } from 'vitest';
import * as ed from '@noble/ed25519';
import { createHash } from 'node:crypto';
import {
  CLIENT_FORMAT,
  createRoot,
  rotateRoot,
  verifyRootUpdate,
  verifyRootSelfSigned,
  parseRoot,
  signCatalog,
  verifyCatalog,
  generateKeyPair,
  canonicalJson,
  canonicalBytes,
  verifyBytes,
  signBytes,
  bytesToHex,
  rootFingerprint,
  encodeEnvelope,
  catalogPayload,
  signEnvelope,
  PAYLOAD_TYPES,
  type CatalogSigned,
  type KeyPair,
} from '../../../catalog/index.js';
import { catalogPackage, catalogSigned } from '../../helpers/catalog-fixture.js';

const NOW = new Date('2026-11-24T12:00:00Z');
const LATER = (days: number) => new Date(NOW.getTime() + days * 86400000);

const pkg = catalogPackage;
const catalog = (version: number, over: Partial<CatalogSigned> = {}): CatalogSigned => catalogSigned(NOW, version, over);

const enc = encodeEnvelope;

function setup(): { rootKey: KeyPair; catKey: KeyPair; root: ReturnType<typeof createRoot> } {
  const rootKey = generateKeyPair();
  const catKey = generateKeyPair();
  return { rootKey, catKey, root: createRoot({ rootKeys: [rootKey], catalogKeys: [catKey], expires: LATER(365) }) };
}

describe('canonical JSON (RFC 8785)', () => {
  it('matches the RFC 8785 test vectors', () => {
    // RFC 8785 §3.2.2 and Appendix B number serialisation examples.
    expect(
      canonicalJson({
        numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
        string: '€$\u000f\u000aA\'\u0042\u0022\u005c\\"/',
        literals: [null, true, false],
      }),
    ).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
    expect(
      canonicalJson({
        '\u20ac': 'Euro Sign',
        '\r': 'Carriage Return',
        '\ufb33': 'Hebrew Letter Dalet With Dagesh',
        '1': 'One',
        '\ud83d\ude00': 'Emoji: Grinning Face',
        '\u0080': 'Control',
        '\u00f6': 'Latin Small Letter O With Diaeresis',
      }),
    ).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });
});

describe('Ed25519 strictness', () => {
  it('refuses a signature whose S is not canonical (S + L)', () => {
    const k = generateKeyPair();
    const msg = canonicalBytes({ a: 1 });
    const sig = signBytes(msg, k);
    expect(verifyBytes(msg, sig.sig, bytesToHex(k.publicKey))).toBe(true);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const bytes = Buffer.from(sig.sig, 'base64');
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(bytes[i]!);
    let s2 = s + L;
    for (let i = 32; i < 64; i++) {
      bytes[i] = Number(s2 & 0xffn);
      s2 >>= 8n;
    }
    expect(verifyBytes(msg, bytes.toString('base64'), bytesToHex(k.publicKey))).toBe(false);
  });

  it('refuses a root listing a small-order public key', () => {
    const { root, rootKey } = setup();
    const smallOrder = bytesToHex(ed.Point.ZERO.toBytes()); // identity point: order 1
    const keyid = createHash('sha256').update(Buffer.from(smallOrder, 'hex')).digest('hex');
    const evil = structuredClone(root.signed) as unknown as { keys: Record<string, unknown>; roles: { catalog: { keyids: string[] } } };
    evil.keys[keyid] = { type: 'ed25519', public: smallOrder };
    evil.roles.catalog.keyids.push(keyid);
    const bytes = encodeEnvelope(signEnvelope(PAYLOAD_TYPES.root, canonicalBytes(evil), [rootKey]));
    expect(() => parseRoot(bytes, 'evil root')).toThrow(expect.objectContaining({ code: 'E_INVALID_KEY' }));
  });
});

describe('roots', () => {
  it('a new root is self-signed and has a stable fingerprint', () => {
    const { root } = setup();
    expect(() => verifyRootSelfSigned(root, NOW)).not.toThrow();
    expect(rootFingerprint(root)).toMatch(/^[0-9a-f]{64}$/);
    expect(() => verifyRootSelfSigned(root, LATER(400))).toThrow(expect.objectContaining({ code: 'E_EXPIRED' }));
  });

  it('rotation needs the old and the new root keys', () => {
    const { rootKey, catKey, root } = setup();
    const newRoot = generateKeyPair();
    const v2 = rotateRoot({ current: root, oldRootKeys: [rootKey], newRootKeys: [newRoot], expires: LATER(365) });
    expect(verifyRootUpdate(root, enc(v2)).signed.version).toBe(2);
    // Signed only by the new key: the old root did not approve it.
    const rogue = createRoot({ rootKeys: [newRoot], catalogKeys: [catKey], version: 2, expires: LATER(365) });
    expect(() => verifyRootUpdate(root, enc(rogue))).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_KEY' }));
    // Signed only by the old key: the new keys did not accept it.
    const half = { ...v2, signatures: v2.signatures.filter((s) => s.keyid === rootKey.keyid) };
    expect(() => verifyRootUpdate(root, enc(half))).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_KEY' }));
    // Skipping a version or replaying v1 is refused.
    expect(() => verifyRootUpdate(root, enc(root))).toThrow(expect.objectContaining({ code: 'E_ROLLBACK' }));
    const v3 = createRoot({ rootKeys: [rootKey], catalogKeys: [catKey], version: 3, expires: LATER(365) });
    expect(() => verifyRootUpdate(root, enc(v3))).toThrow(expect.objectContaining({ code: 'E_BAD_ROOT' }));
  });

  it('a threshold of 2 needs two distinct valid signatures', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const cat = generateKeyPair();
    const root = createRoot({ rootKeys: [a, b], catalogKeys: [cat], rootThreshold: 2, expires: LATER(30) });
    expect(() => verifyRootSelfSigned(root, NOW)).not.toThrow();
    const one = { ...root, signatures: [root.signatures[0]!, root.signatures[0]!] };
    expect(() => verifyRootSelfSigned(one, NOW)).toThrow(expect.objectContaining({ code: 'E_THRESHOLD' }));
  });
});

describe('verifyCatalog: one case per attack', () => {
  const { catKey, root } = setup();
  const good = signCatalog(catalog(100), [catKey]);
  const goodBytes = enc(good);
  const table: { name: string; bytes: () => Uint8Array; opts?: object; code: string }[] = [
    {
      name: 'a changed payload under the old signature',
      code: 'E_SIGNATURE',
      bytes: () => enc({ ...good, payload: catalogPayload({ ...good.signed, repo: 'mainx' }) }),
    },
    { name: 'a missing signature', code: 'E_THRESHOLD', bytes: () => enc({ ...good, signatures: [] }) },
    { name: 'a signature by an unknown key', code: 'E_UNKNOWN_KEY', bytes: () => enc(signCatalog(catalog(100), [generateKeyPair()])) },
    {
      name: 'an expired catalog (freeze)',
      code: 'E_EXPIRED',
      bytes: () => enc(signCatalog(catalog(100, { expires: LATER(-1).toISOString() }), [catKey])),
    },
    {
      name: 'a lower version (rollback)',
      code: 'E_ROLLBACK',
      bytes: () => goodBytes,
      opts: { lastAccepted: { version: 101, payloadSha256: 'b'.repeat(64) } },
    },
    {
      name: 'the same version with another signed payload (equivocation)',
      code: 'E_EQUIVOCATION',
      bytes: () => goodBytes,
      opts: { lastAccepted: { version: 100, payloadSha256: 'b'.repeat(64) } },
    },
    {
      name: 'another arch',
      code: 'E_INCOMPATIBLE',
      bytes: () =>
        enc(signCatalog(catalog(100, { compatibility: { arch: ['aarch64'], abi: ['linux-musl-static'], minClientFormat: 1 } }), [catKey])),
    },
    {
      name: 'another abi',
      code: 'E_INCOMPATIBLE',
      bytes: () =>
        enc(signCatalog(catalog(100, { compatibility: { arch: ['x86_64'], abi: ['linux-gnu'], minClientFormat: 1 } }), [catKey])),
    },
    {
      name: 'a newer client format',
      code: 'E_INCOMPATIBLE',
      bytes: () =>
        enc(
          signCatalog(
            catalog(100, { compatibility: { arch: ['x86_64'], abi: ['linux-musl-static'], minClientFormat: CLIENT_FORMAT + 1 } }),
            [catKey],
          ),
        ),
    },
    { name: 'a catalog over the size cap', code: 'E_TOO_LARGE', bytes: () => goodBytes, opts: { maxBytes: 100 } },
    { name: 'garbage', code: 'E_MALFORMED', bytes: () => new TextEncoder().encode('{"payload": ') },
    {
      name: 'a catalog naming another repository',
      code: 'E_WRONG_REPO',
      bytes: () => enc(signCatalog(catalog(100, { repo: 'other' }), [catKey])),
      opts: { repo: 'main' },
    },
    { name: 'a root served as the catalog', code: 'E_PAYLOAD_TYPE', bytes: () => enc(root) },
    {
      name: 'a package version that is not semver (the server is at fault: exit 3, not 2)',
      code: 'E_BAD_CATALOG',
      bytes: () => enc(signCatalog(catalog(100, { packages: [pkg('x', '1.0')] }), [catKey])),
    },
    {
      name: 'a package path escaping packages/',
      code: 'E_UNSAFE_PATH',
      bytes: () => enc(signCatalog(catalog(100, { packages: [{ ...pkg('x'), path: '../../etc/passwd' }] }), [catKey])),
    },
  ];
  for (const c of table) {
    it(`refuses ${c.name} with ${c.code}`, () => {
      expect(() => verifyCatalog(c.bytes(), { root, now: NOW, ...c.opts })).toThrow(expect.objectContaining({ code: c.code }));
    });
  }
  it('accepts a good catalog, a newer one, and the same bytes again', () => {
    expect(verifyCatalog(goodBytes, { root, now: NOW }).signed.version).toBe(100);
    const sha = createHash('sha256').update(good.payload).digest('hex');
    expect(verifyCatalog(goodBytes, { root, now: NOW, lastAccepted: { version: 100, payloadSha256: sha } }).signed.version).toBe(100);
    expect(
      verifyCatalog(enc(signCatalog(catalog(101), [catKey])), { root, now: NOW, lastAccepted: { version: 100, payloadSha256: sha } }).signed
        .version,
    ).toBe(101);
  });
});
