import { describe, expect, it } from 'vitest';
import {
  SwpkgError,
  createRoot,
  rotateRoot,
  signCatalog,
  encodeEnvelope,
  generateKeyPair,
  signEnvelope,
  canonicalBytes,
  PAYLOAD_TYPES,
  walkTrust,
  MAX_ROOT_BYTES,
  type CatalogSigned,
  type KeyPair,
  type MetadataFetcher,
  type RootDocument,
} from '../../../catalog/index.js';
import { failure } from '../../helpers/failure.js';
import { catalogSigned } from '../../helpers/catalog-fixture.js';

const NOW = new Date('2026-11-24T12:00:00Z');
const LATER = (days: number): Date => new Date(NOW.getTime() + days * 86400000);

const catalog = (version: number): CatalogSigned => catalogSigned(NOW, version, { packages: [] });

/** A repository as a table of files, and the fetcher contract over it: 404 is undefined when optional, E_HTTP otherwise. */
function tableFetcher(files: Map<string, Uint8Array>, asked: { path: string; maxBytes: number }[] = []): MetadataFetcher {
  return (path, o, accept) => {
    asked.push({ path, maxBytes: o.maxBytes });
    const b = files.get(path);
    if (b === undefined) {
      if (o.optional) return Promise.resolve(undefined);
      return Promise.reject(new SwpkgError('E_HTTP', `${path} answered HTTP 404`, { details: { status: 404 } }));
    }
    return Promise.resolve(accept(b));
  };
}

function repo(): { rootKey: KeyPair; catKey: KeyPair; root1: RootDocument; files: Map<string, Uint8Array> } {
  const rootKey = generateKeyPair();
  const catKey = generateKeyPair();
  const root1 = createRoot({ rootKeys: [rootKey], catalogKeys: [catKey], expires: LATER(365) });
  const files = new Map<string, Uint8Array>([
    ['roots/1.json', encodeEnvelope(root1)],
    ['catalog.json', encodeEnvelope(signCatalog(catalog(1), [catKey]))],
  ]);
  return { rootKey, catKey, root1, files };
}

describe('walkTrust: the one walk of roots/N.json and the catalog', () => {
  it('follows rotations one signed step at a time, then verifies the catalog under the newest root', async () => {
    const { rootKey, root1, files } = repo();
    const rootKey2 = generateKeyPair();
    const catKey2 = generateKeyPair();
    const root2 = rotateRoot({
      current: root1,
      oldRootKeys: [rootKey],
      newRootKeys: [rootKey2],
      catalogKeys: [catKey2],
      expires: LATER(365),
    });
    const root3 = rotateRoot({ current: root2, oldRootKeys: [rootKey2], newRootKeys: [rootKey2], expires: LATER(365) });
    files.set('roots/2.json', encodeEnvelope(root2));
    files.set('roots/3.json', encodeEnvelope(root3));
    files.set('catalog.json', encodeEnvelope(signCatalog(catalog(4), [catKey2])));
    const asked: { path: string; maxBytes: number }[] = [];
    const seen: number[][] = [];
    const walk = await walkTrust({
      trusted: root1,
      fetch: tableFetcher(files, asked),
      catalogPath: 'catalog.json',
      now: NOW,
      catalog: { repo: 'main' },
      onRoot: (_root, rotated) => seen.push(rotated),
    });
    expect(walk.root.signed.version).toBe(3);
    expect(walk.rotated).toEqual([2, 3]);
    expect(walk.catalog.signed.version).toBe(4);
    expect(seen).toEqual([[2, 3]]);
    expect(asked.map((a) => a.path)).toEqual(['roots/2.json', 'roots/3.json', 'roots/4.json', 'catalog.json']);
    expect(asked.filter((a) => a.path.startsWith('roots/')).every((a) => a.maxBytes === MAX_ROOT_BYTES)).toBe(true);
  });

  it('refuses a catalog signed by keys the rotated root dropped (E_UNKNOWN_KEY)', async () => {
    const { rootKey, root1, files } = repo();
    const root2 = rotateRoot({
      current: root1,
      oldRootKeys: [rootKey],
      newRootKeys: [rootKey],
      catalogKeys: [generateKeyPair()],
      expires: LATER(365),
    });
    files.set('roots/2.json', encodeEnvelope(root2));
    const e = await failure(walkTrust({ trusted: root1, fetch: tableFetcher(files), catalogPath: 'catalog.json', now: NOW }));
    expect(['E_UNKNOWN_KEY', 'E_THRESHOLD']).toContain(e.code);
    expect(e.exitCode).toBe(3);
  });

  it('refuses a next root that only its own new keys signed, and never reaches the catalog', async () => {
    const { root1, files } = repo();
    const thief = generateKeyPair();
    files.set('roots/2.json', encodeEnvelope(createRoot({ rootKeys: [thief], catalogKeys: [thief], version: 2, expires: LATER(365) })));
    const asked: { path: string; maxBytes: number }[] = [];
    let reached = false;
    const e = await failure(
      walkTrust({
        trusted: root1,
        fetch: tableFetcher(files, asked),
        catalogPath: 'catalog.json',
        now: NOW,
        onRoot: () => {
          reached = true;
        },
      }),
    );
    expect(['E_UNKNOWN_KEY', 'E_THRESHOLD']).toContain(e.code);
    expect(reached).toBe(false);
    expect(asked.map((a) => a.path)).toEqual(['roots/2.json']);
  });

  it('re-codes a server document that fails a usage-class parse rule as E_CORRUPT (exit 3), naming the file', async () => {
    const { rootKey, root1, files } = repo();
    // Signed by the trusted keys, so the parse of the payload is what refuses it: a key that is not hex is E_INVALID_KEY (usage).
    const payload = canonicalBytes({
      type: 'root',
      version: 2,
      expires: LATER(365).toISOString(),
      keys: { ['ab'.repeat(32)]: { type: 'ed25519', public: 'not-hex' } },
      roles: { root: { keyids: ['ab'.repeat(32)], threshold: 1 }, catalog: { keyids: ['ab'.repeat(32)], threshold: 1 } },
    });
    files.set('roots/2.json', encodeEnvelope(signEnvelope(PAYLOAD_TYPES.root, Buffer.from(payload), [rootKey])));
    const e = await failure(walkTrust({ trusted: root1, fetch: tableFetcher(files), catalogPath: 'catalog.json', now: NOW }));
    expect(e.code).toBe('E_CORRUPT');
    expect(e.exitCode).toBe(3);
    expect(e.details).toMatchObject({ source: 'roots/2.json', check: 'E_INVALID_KEY' });
  });

  it('refuses an expired newest root before asking for the catalog (E_EXPIRED)', async () => {
    const { root1, files } = repo();
    const asked: { path: string; maxBytes: number }[] = [];
    const e = await failure(walkTrust({ trusted: root1, fetch: tableFetcher(files, asked), catalogPath: 'catalog.json', now: LATER(400) }));
    expect(e.code).toBe('E_EXPIRED');
    expect(asked.map((a) => a.path)).toEqual(['roots/2.json']);
  });

  it('passes the catalog options through: another repository is E_WRONG_REPO, an older version E_ROLLBACK', async () => {
    const { root1, files } = repo();
    const fetch = tableFetcher(files);
    expect(
      (await failure(walkTrust({ trusted: root1, fetch, catalogPath: 'catalog.json', now: NOW, catalog: { repo: 'other' } }))).code,
    ).toBe('E_WRONG_REPO');
    expect(
      (
        await failure(
          walkTrust({ trusted: root1, fetch, catalogPath: 'catalog.json', now: NOW, catalog: { lastAccepted: { version: 2 } } }),
        )
      ).code,
    ).toBe('E_ROLLBACK');
  });

  it("a missing catalog is the fetcher's own error, not a pass", async () => {
    const { root1, files } = repo();
    files.delete('catalog.json');
    expect((await failure(walkTrust({ trusted: root1, fetch: tableFetcher(files), catalogPath: 'catalog.json', now: NOW }))).code).toBe(
      'E_HTTP',
    );
  });
});
