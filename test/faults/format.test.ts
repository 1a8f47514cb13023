import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  canonicalBytes,
  catalogPayload,
  createRoot,
  encodeEnvelope,
  generateKeyPair,
  parseCatalog,
  signCatalog,
  signEnvelope,
  toPrivateKeyFile,
  toPublicKeyFile,
  PAYLOAD_TYPES,
  type CatalogDocument,
  type KeyPair,
} from '../../catalog/index.js';
import { publishRepository } from '../../publishing/index.js';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../helpers/http-table-server.js';
import { tempDir, treeHash } from '../helpers/tmp.js';
import { runCli } from '../helpers/run-cli.js';
import { addMainRepo, pkgJson } from '../integration/userland/helpers.js';
import { craftManifest, craftSignature, craftSwpkg, type CraftEntry } from './craft.js';

/**
 * Hostile bytes in every signed document (issue 10, "Bad input"), each fed
 * through a public command: `pkg update`, `pkg install ./FILE`,
 * `swpkg verify`, `swpkg repo verify-hosted` (folder and URL) and
 * `swpkg repo publish`. Each row names the code; each run checks that the
 * client root or the web root is byte-for-byte as before.
 */
let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({ packages: [{ name: 'alpha', version: '1.0.0', summary: 'first' }] });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-root-');
  await addMainRepo(root, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

async function genuine(): Promise<CatalogDocument> {
  return parseCatalog(await repo.bytes('catalog.json'));
}

/** The payload text of the next catalog version, as the publisher would sign it. */
async function nextPayloadText(over: Partial<CatalogDocument['signed']> = {}): Promise<string> {
  const g = await genuine();
  return catalogPayload({ ...g.signed, version: g.signed.version + 1, ...over }).toString('utf8');
}

/** Signs `payload` as a catalog with the repository's real catalog key. */
function signedCatalog(payload: string, key: KeyPair = repo.key, type: string = PAYLOAD_TYPES.catalog): Buffer {
  return encodeEnvelope(signEnvelope(type, utf8(payload), [key]));
}

function replaceOnce(s: string, from: string | RegExp, to: string): string {
  const out = s.replace(from, to);
  if (out === s) throw new Error(`test fixture: ${String(from)} not found`);
  return out;
}

async function expectUpdateRefused(body: Buffer, code: string, path = 'catalog.json'): Promise<void> {
  repo.table.set(path, { body });
  const before = await treeHash(root);
  const r = await pkgJson(root, ['update']);
  expect(r.json?.error?.code, r.stdout).toBe(code);
  expect(r.code).toBe(3);
  expect(await treeHash(root)).toBe(before);
}

describe('pkg update refuses a hostile catalog, the store unchanged', () => {
  const payloadCases: { name: string; code: string; edit: (p: string) => string }[] = [
    {
      name: 'a duplicate top-level payload key, forged value first',
      code: 'E_DUPLICATE_KEY',
      edit: (p) => replaceOnce(p, '{"type":"catalog"', '{"type":"catalog","repo":"evil"'),
    },
    {
      name: 'a duplicate top-level payload key, forged value second',
      code: 'E_DUPLICATE_KEY',
      edit: (p) => replaceOnce(p, /}$/, ',"repo":"evil"}'),
    },
    {
      name: 'a duplicate key inside a package entry',
      code: 'E_DUPLICATE_KEY',
      edit: (p) => replaceOnce(p, '"summary":"first"', '"summary":"evil","summary":"first"'),
    },
    { name: 'a lone surrogate', code: 'E_ENCODING', edit: (p) => replaceOnce(p, '"summary":"first"', '"summary":"\\ud800first"') },
    { name: '1e400', code: 'E_UNSAFE_NUMBER', edit: (p) => replaceOnce(p, '"format":1', '"format":1e400') },
    { name: '9007199254740993', code: 'E_UNSAFE_NUMBER', edit: (p) => replaceOnce(p, /"version":\d+/, '"version":9007199254740993') },
    { name: 'an unknown top-level payload field', code: 'E_UNKNOWN_FIELD', edit: (p) => replaceOnce(p, /}$/, ',"mirrorOf":"x"}') },
    {
      name: 'an unknown field in compatibility',
      code: 'E_UNKNOWN_FIELD',
      edit: (p) => replaceOnce(p, '"minClientFormat":2', '"minClientFormat":2,"maxClientFormat":9'),
    },
    {
      name: 'an unknown field in a package entry',
      code: 'E_UNKNOWN_FIELD',
      edit: (p) => replaceOnce(p, '"summary":"first"', '"summary":"first","postinst":"rm -rf /"'),
    },
    { name: 'a __proto__ key', code: 'E_RESERVED_KEY', edit: (p) => replaceOnce(p, /}$/, ',"__proto__":{"repo":"evil"}}') },
    { name: 'a constructor key', code: 'E_UNKNOWN_FIELD', edit: (p) => replaceOnce(p, /}$/, ',"constructor":{"repo":"evil"}}') },
  ];
  for (const c of payloadCases) {
    it(`${c.name}, signed by the real key (${c.code})`, async () => {
      await expectUpdateRefused(signedCatalog(c.edit(await nextPayloadText())), c.code);
    });
  }

  it('two payload fields in the envelope, forged first or forged second (E_DUPLICATE_KEY)', async () => {
    const good = JSON.parse((await repo.bytes('catalog.json')).toString()) as { payload: string; signatures: unknown[] };
    const evil = Buffer.from(await nextPayloadText({ repo: 'evil' })).toString('base64');
    const frame = (a: string, b: string): Buffer =>
      utf8(`{"payloadType":"${PAYLOAD_TYPES.catalog}","payload":"${a}","payload":"${b}","signatures":${JSON.stringify(good.signatures)}}`);
    await expectUpdateRefused(frame(evil, good.payload), 'E_DUPLICATE_KEY');
    await expectUpdateRefused(frame(good.payload, evil), 'E_DUPLICATE_KEY');
  });

  it('invalid UTF-8 and a BOM in the envelope (E_ENCODING)', async () => {
    const bytes = await repo.bytes('catalog.json');
    await expectUpdateRefused(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]), 'E_ENCODING');
    const broken = Buffer.from(bytes);
    broken[broken.indexOf(0x0a)] = 0xff;
    await expectUpdateRefused(broken, 'E_ENCODING');
  });

  it('a signature over different bytes than the payload (E_SIGNATURE)', async () => {
    const signedText = await nextPayloadText();
    const env = signEnvelope(PAYLOAD_TYPES.catalog, utf8(signedText), [repo.key]);
    await expectUpdateRefused(encodeEnvelope({ ...env, payload: utf8(signedText.replace('"first"', '"evil!"')) }), 'E_SIGNATURE');
  });

  it('a payload type that is not a catalog, even correctly signed (E_PAYLOAD_TYPE)', async () => {
    await expectUpdateRefused(signedCatalog(await nextPayloadText(), repo.key, PAYLOAD_TYPES.root), 'E_PAYLOAD_TYPE');
    await expectUpdateRefused(signedCatalog(await nextPayloadText(), repo.key, 'application/json'), 'E_PAYLOAD_TYPE');
  });

  it('a catalog in the first format ({signed, signatures}) with a clear migration refusal (E_INCOMPATIBLE)', async () => {
    const g = await genuine();
    const old = utf8(
      JSON.stringify({
        signed: { ...g.signed, version: g.signed.version + 1 },
        signatures: [{ keyid: repo.key.keyid, sig: 'ab'.repeat(64) }],
      }),
    );
    repo.table.set('catalog.json', { body: old });
    const r = await pkgJson(root, ['update']);
    expect(r.json?.error?.code).toBe('E_INCOMPATIBLE');
    expect(r.json?.error?.details['format']).toBe('swpkg-1');
    expect(r.json?.error?.hint).toMatch(/republish/);
  });

  it('a catalog of another repository signed by the same key (E_WRONG_REPO)', async () => {
    const g = await genuine();
    await expectUpdateRefused(
      encodeEnvelope(signCatalog({ ...g.signed, version: g.signed.version + 1, repo: 'other' }, [repo.key])),
      'E_WRONG_REPO',
    );
  });

  it('accepts the same payload re-framed (other whitespace, field and signature order, an extra outside signature): no equivocation', async () => {
    const g = await genuine();
    const stranger = signEnvelope(PAYLOAD_TYPES.catalog, g.payload, [generateKeyPair()]).signatures[0]!;
    const reframed = utf8(
      JSON.stringify({
        signatures: [...g.signatures, stranger].reverse(),
        payload: Buffer.from(g.payload).toString('base64'),
        payloadType: g.payloadType,
      }),
    );
    repo.table.set('catalog.json', { body: reframed });
    const r = await pkgJson(root, ['update']);
    expect(r.json?.ok, r.stdout).toBe(true);
    expect(r.json?.result.repos[0]).toMatchObject({ version: g.signed.version, changed: false });
    // Another payload under the same version is still equivocation.
    await expectUpdateRefused(
      signedCatalog(catalogPayload({ ...g.signed, expires: new Date(Date.now() + 86400_000).toISOString() }).toString()),
      'E_EQUIVOCATION',
    );
  });
});

describe('pkg update refuses a hostile root (roots/2.json signed by the real root key)', () => {
  async function rootPayloadText(): Promise<string> {
    const v2 = createRoot({
      rootKeys: [repo.rootKey],
      catalogKeys: [repo.key],
      version: 2,
      expires: new Date(Date.now() + 30 * 86400_000),
    });
    return Buffer.from(v2.payload).toString('utf8');
  }
  const signRoot = (payload: string): Buffer => encodeEnvelope(signEnvelope(PAYLOAD_TYPES.root, utf8(payload), [repo.rootKey]));
  const cases: { name: string; code: string; edit: (p: string) => string }[] = [
    {
      name: 'a duplicate key id in the key table, forged key first',
      code: 'E_DUPLICATE_KEY',
      edit: (p) =>
        replaceOnce(
          p,
          `"keys":{"${repo.key.keyid}":`,
          `"keys":{"${repo.key.keyid}":${JSON.stringify(toPublicKeyFile(generateKeyPair()))},"${repo.key.keyid}":`,
        ),
    },
    { name: 'an unknown top-level field', code: 'E_UNKNOWN_FIELD', edit: (p) => replaceOnce(p, /}$/, ',"mirrors":[]}') },
    { name: 'an unknown field in a role', code: 'E_UNKNOWN_FIELD', edit: (p) => replaceOnce(p, '"threshold":1}', '"threshold":1,"x":1}') },
    {
      name: 'an unknown field in a key entry',
      code: 'E_UNKNOWN_FIELD',
      edit: (p) => replaceOnce(p, '"type":"ed25519"}', '"type":"ed25519","x":1}'),
    },
    {
      name: 'a role naming the key "constructor"',
      code: 'E_BAD_ROOT',
      edit: (p) => replaceOnce(p, /"catalog":\{"keyids":\["[0-9a-f]+"\]/, '"catalog":{"keyids":["constructor"]'),
    },
    { name: 'a __proto__ key table entry', code: 'E_RESERVED_KEY', edit: (p) => replaceOnce(p, '"keys":{', '"keys":{"__proto__":{},') },
  ];
  for (const c of cases) {
    it(`${c.name} (${c.code})`, async () => {
      await expectUpdateRefused(signRoot(c.edit(await rootPayloadText())), c.code, 'roots/2.json');
    });
  }
});

describe('pkg install ./FILE refuses hostile package metadata, the store unchanged', () => {
  const entries: CraftEntry[] = [
    { path: 'bin', type: 'dir' },
    { path: 'bin/x', type: 'file', content: 'x\n' },
  ];
  async function trust(): Promise<{ dir: string; key: KeyPair }> {
    const dir = await tempDir();
    const key = generateKeyPair();
    await writeFile(join(dir, 'k.pub'), JSON.stringify(toPublicKeyFile(key)));
    expect((await pkgJson(root, ['key', 'add', join(dir, 'k.pub')])).json?.ok).toBe(true);
    return { dir, key };
  }
  const manifestText = Buffer.from(canonicalBytes(craftManifest('local', '1.0.0', entries))).toString();
  const cases: { name: string; code: string; manifest?: (m: string) => Buffer; signature?: (m: Buffer, k: KeyPair) => Buffer }[] = [
    {
      name: 'a duplicate manifest key, forged first, signed as is',
      code: 'E_DUPLICATE_KEY',
      manifest: (m) => utf8(replaceOnce(m, '{"abi"', '{"name":"evil","abi"')),
    },
    {
      name: 'a duplicate manifest key, forged second',
      code: 'E_DUPLICATE_KEY',
      manifest: (m) => utf8(replaceOnce(m, /}$/, ',"name":"evil"}')),
    },
    { name: 'a manifest with a BOM', code: 'E_ENCODING', manifest: (m) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(m)]) },
    {
      name: 'a manifest with invalid UTF-8',
      code: 'E_ENCODING',
      manifest: (m) => Buffer.concat([utf8(m.slice(0, -1)), Buffer.from([0xc3, 0x7d])]),
    },
    {
      name: 'a manifest with 1e400',
      code: 'E_UNSAFE_NUMBER',
      manifest: (m) => utf8(replaceOnce(m, /"installedSize":\d+/, '"installedSize":1e400')),
    },
    { name: 'a manifest with a __proto__ key', code: 'E_RESERVED_KEY', manifest: (m) => utf8(replaceOnce(m, /}$/, ',"__proto__":{}}')) },
    {
      name: 'a signature file with a duplicate key',
      code: 'E_DUPLICATE_KEY',
      signature: (m, k) => utf8(replaceOnce(craftSignature(m, k).toString(), '{"payloadType"', '{"signatures":[],"payloadType"')),
    },
    {
      name: 'a signature file with an unknown field',
      code: 'E_UNKNOWN_FIELD',
      signature: (m, k) => utf8(replaceOnce(craftSignature(m, k).toString(), /}$/, ',"payload":""}')),
    },
    {
      name: 'a signature with another payload type',
      code: 'E_PAYLOAD_TYPE',
      signature: (m, k) => utf8(craftSignature(m, k).toString().replace(PAYLOAD_TYPES.manifest, PAYLOAD_TYPES.catalog)),
    },
    {
      name: 'a signature in the first format',
      code: 'E_INCOMPATIBLE',
      signature: (_m, k) => utf8(JSON.stringify({ keyid: k.keyid, sig: 'ab'.repeat(64) })),
    },
    {
      name: 'a signature over other bytes (the same manifest re-spaced)',
      code: 'E_SIGNATURE',
      signature: (m, k) => craftSignature(utf8(` ${m.toString()}`), k),
    },
  ];
  for (const c of cases) {
    it(`${c.name} (${c.code})`, async () => {
      const { dir, key } = await trust();
      const manifestBytes = c.manifest ? c.manifest(manifestText) : utf8(manifestText);
      const signature = c.signature ? c.signature(manifestBytes, key) : craftSignature(manifestBytes, key);
      const file = join(dir, 'local.swpkg');
      await writeFile(file, craftSwpkg({ manifest: null, manifestBytes, signature, entries }));
      const before = await treeHash(root);
      const r = await pkgJson(root, ['install', file, '--yes']);
      expect(r.json?.error?.code, r.stdout).toBe(c.code);
      expect(r.code).toBe(3);
      expect(await treeHash(root)).toBe(before);
      if (c.code === 'E_DUPLICATE_KEY' || c.code === 'E_SIGNATURE') {
        // swpkg verify reads the same bytes the same way.
        const v = await runCli('swpkg', ['verify', file, '--key', join(dir, 'k.pub'), '--json']);
        expect(v.json?.error?.code).toBe(c.code);
        expect(v.code).toBe(3);
      }
    });
  }
});

describe('swpkg repo verify-hosted (folder and URL)', () => {
  async function bothWays(
    change: (put: (path: string, body: Buffer) => Promise<void>) => Promise<void>,
    args: string[] = [],
  ): Promise<{ checks: { name: string; ok: boolean; code?: string }[] }[]> {
    await repo.refresh();
    const web = await tempDir('web-');
    await cp(repo.dir, web, { recursive: true });
    await change(async (path, body) => {
      await writeFile(join(web, path), body);
      repo.table.set(path, { body });
    });
    const before = await treeHash(web);
    const out = [];
    for (const target of [web, server.url]) {
      const r = await runCli('swpkg', ['repo', 'verify-hosted', target, ...args, '--json']);
      expect(r.code, r.stdout).toBe(3);
      expect(r.json?.error?.code).toBe('E_HOSTED_CHECK');
      out.push(r.json.error.details as { checks: { name: string; ok: boolean; code?: string }[] });
    }
    expect(await treeHash(web)).toBe(before);
    return out;
  }
  const failedCodes = (r: { checks: { ok: boolean; code?: string }[] }): string[] => r.checks.filter((c) => !c.ok).map((c) => c.code ?? '');

  it('a repo-root.pub with a forged duplicate payload field, and a catalog with a lone surrogate', async () => {
    const rootText = (await repo.bytes('repo-root.pub')).toString();
    const forged = rootText.replace('"payload": "', `"payload": "${Buffer.from('{}').toString('base64')}", "payload": "`);
    const results = await bothWays(async (put) => {
      await put('repo-root.pub', utf8(forged));
      await put('catalog.json', signedCatalog(replaceOnce(await nextPayloadText(), '"summary":"first"', '"summary":"\\udc00"')));
    });
    for (const r of results) expect(failedCodes(r)).toEqual(expect.arrayContaining(['E_DUPLICATE_KEY', 'E_ENCODING']));
  });

  it('a catalog naming another repository than hosted-repo.json, or than --name (E_WRONG_REPO)', async () => {
    const g = await genuine();
    for (const r of await bothWays(async (put) =>
      put('catalog.json', encodeEnvelope(signCatalog({ ...g.signed, repo: 'other' }, [repo.key]))),
    ))
      expect(failedCodes(r)).toContain('E_WRONG_REPO');
    for (const r of await bothWays(async () => {}, ['--name', 'elsewhere'])) expect(failedCodes(r)).toEqual(['E_WRONG_REPO']);
  });

  it('a hosted-repo.json with an unknown field (E_UNKNOWN_FIELD)', async () => {
    const h = JSON.parse((await repo.bytes('hosted-repo.json')).toString()) as Record<string, unknown>;
    for (const r of await bothWays(async (put) => put('hosted-repo.json', utf8(JSON.stringify({ ...h, catalogUrl: 'http://evil/' })))))
      expect(failedCodes(r)).toContain('E_UNKNOWN_FIELD');
  });
});

describe('swpkg repo publish and key files', () => {
  async function keyFile(dir: string, key: KeyPair, mode = 0o600): Promise<string> {
    const p = join(dir, 'cat.key');
    await writeFile(p, JSON.stringify(toPrivateKeyFile(key)), { mode });
    await chmod(p, mode);
    return p;
  }
  async function publishRefused(web: string, key: string, code: string, exit = 3): Promise<void> {
    const before = await treeHash(web);
    const r = await runCli('swpkg', ['repo', 'publish', join(repo.buildDir), '--key', key, '--out', web, '--json']);
    expect(r.json?.error?.code, r.stdout + r.stderr).toBe(code);
    expect(r.code).toBe(exit);
    expect(await treeHash(web)).toBe(before);
  }

  it('refuses to build on a damaged existing root: duplicate key, altered payload, first format', async () => {
    const d = await tempDir();
    const key = await keyFile(d, repo.key);
    const web = join(d, 'web');
    await cp(repo.dir, web, { recursive: true });
    const rootText = (await readFile(join(web, 'roots/1.json'))).toString();
    await writeFile(join(web, 'roots/1.json'), rootText.replace('"payloadType"', '"payloadType": "x", "payloadType"'));
    await publishRefused(web, key, 'E_DUPLICATE_KEY');
    const env = JSON.parse(rootText) as { payload: string };
    const altered = Buffer.from(Buffer.from(env.payload, 'base64').toString().replace('"threshold":1', '"threshold":1 ')).toString(
      'base64',
    );
    await writeFile(join(web, 'roots/1.json'), rootText.replace(env.payload, altered));
    await publishRefused(web, key, 'E_SIGNATURE');
    await writeFile(join(web, 'roots/1.json'), JSON.stringify({ signed: repo.root.signed, signatures: [] }));
    await publishRefused(web, key, 'E_INCOMPATIBLE');
  });

  it('refuses a private key that group or others can read (E_KEY_PERMISSIONS, exit 2), writing nothing', async () => {
    const d = await tempDir();
    const web = join(d, 'web');
    await mkdir(web);
    const key = await keyFile(d, repo.key, 0o640);
    await publishRefused(web, key, 'E_KEY_PERMISSIONS', 2);
    const r = await runCli('swpkg', ['repo', 'publish', repo.buildDir, '--key', key, '--out', web]);
    expect(r.stderr).toContain(`chmod 600 ${key}`);
  });

  it('key generate refuses a folder holding only the .pub, and -q prints nothing', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'swpkg.pub'), JSON.stringify(toPublicKeyFile(generateKeyPair())));
    const before = await treeHash(d);
    const r = await runCli('swpkg', ['key', 'generate', '--out', d, '--json']);
    expect(r.json?.error?.code).toBe('E_USAGE');
    expect(r.code).toBe(2);
    expect(await treeHash(d)).toBe(before);
    const q = await runCli('swpkg', ['key', 'generate', '--out', join(d, 'new'), '-q']);
    expect(q.code).toBe(0);
    expect(q.stdout).toBe('');
    expect((await stat(join(d, 'new/swpkg.key'))).mode & 0o777).toBe(0o600);
    await stat(join(d, 'new/swpkg.pub'));
  });

  it('a publish over a good root still works (the refusals above are about the damage)', async () => {
    const d = await tempDir();
    const web = join(d, 'web');
    await cp(repo.dir, web, { recursive: true });
    const r = await publishRepository({ packagesDir: repo.buildDir, out: web, key: repo.key, name: 'main' });
    expect(r.rootFingerprint).toBe(repo.fingerprint);
  });
});
