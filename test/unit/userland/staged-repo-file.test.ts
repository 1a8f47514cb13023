import { describe, expect, it } from 'vitest';
import { createRoot, encodeEnvelope, generateKeyPair, rootFingerprint } from '../../../catalog/index.js';
import { parseStagedRepo, stagedRepoFile, type StagedRepoSpec } from '../../../userland/index.js';
import { thrown } from '../../helpers/failure.js';

/**
 * The image builder's side of a staged repository: `stagedRepoFile` refuses
 * what the client would refuse (its own input, so usage errors), and what it
 * writes parses back to the same pin.
 */
const key = generateKeyPair();
const root = createRoot({ rootKeys: [key], catalogKeys: [key], expires: new Date(Date.now() + 86400_000) });
const rootBytes = encodeEnvelope(root);
const fp = rootFingerprint(root);
const URL = 'http://10.0.2.2:8080';

describe('stagedRepoFile', () => {
  it('writes a fingerprint pin and a root pin that parse back to the same fingerprint, deterministically', () => {
    const a = stagedRepoFile('main', { url: URL, fingerprint: fp.toUpperCase(), mirrors: ['http://10.0.2.2:8081'] });
    expect(stagedRepoFile('main', { url: URL, fingerprint: fp.toUpperCase(), mirrors: ['http://10.0.2.2:8081'] })).toEqual(a);
    const pa = parseStagedRepo(a, 'main', 'main.json', new Date(0).toISOString());
    expect(pa).toMatchObject({ url: `${URL}/`, mirrors: ['http://10.0.2.2:8081/'], fingerprint: fp });
    expect(pa.root).toBeUndefined();
    const b = parseStagedRepo(stagedRepoFile('main', { url: URL, rootBytes }), 'main', 'main.json', new Date(0).toISOString());
    expect(b.fingerprint).toBe(fp);
    expect(b.root?.signed.version).toBe(1);
  });

  const forged = (): Buffer => {
    const other = generateKeyPair();
    const r = createRoot({ rootKeys: [other], catalogKeys: [other], expires: new Date(Date.now() + 86400_000) });
    return encodeEnvelope({ ...r, signatures: root.signatures });
  };
  const cases: Array<{ why: string; name: string; spec: () => StagedRepoSpec; code: string }> = [
    { why: 'a name with a slash', name: '../main', spec: () => ({ url: URL, fingerprint: fp }), code: 'E_USAGE' },
    { why: 'a file URL', name: 'main', spec: () => ({ url: 'file:///srv/repo/', fingerprint: fp }), code: 'E_USAGE' },
    { why: 'a mirror that is no URL', name: 'main', spec: () => ({ url: URL, mirrors: ['mirror'], fingerprint: fp }), code: 'E_USAGE' },
    { why: 'neither pin', name: 'main', spec: () => ({ url: URL }), code: 'E_USAGE' },
    { why: 'both pins', name: 'main', spec: () => ({ url: URL, fingerprint: fp, rootBytes }), code: 'E_USAGE' },
    { why: 'a short fingerprint', name: 'main', spec: () => ({ url: URL, fingerprint: fp.slice(2) }), code: 'E_USAGE' },
    {
      why: 'a root file that is not a root',
      name: 'main',
      spec: () => ({ url: URL, rootBytes: Buffer.from('{}') }),
      code: 'E_PAYLOAD_TYPE',
    },
    { why: 'a root not signed by its own keys', name: 'main', spec: () => ({ url: URL, rootBytes: forged() }), code: 'E_UNKNOWN_KEY' },
  ];
  for (const c of cases) {
    it(`refuses ${c.why} (${c.code})`, () => {
      expect(thrown(() => stagedRepoFile(c.name, c.spec())).code).toBe(c.code);
    });
  }
});
