import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import {
  SwpkgError,
  isSwpkgError,
  parseHostedRepo,
  parseRoot,
  refusedFromServer,
  rootFingerprint,
  sha256File,
  sha256Hex,
  silentReporter,
  verifyCatalog,
  verifyPackageFile,
  verifyRootSelfSigned,
  walkTrust,
  MAX_ROOT_BYTES,
  type CatalogDocument,
  type CatalogPackage,
  type MetadataFetcher,
  type Reporter,
  type RootDocument,
  checkReleaseThreshold,
  isJsonObject,
  parseEnvelope,
  parseRelease,
  parseStrictJson,
  MAX_RELEASE_BYTES,
  NAME_RE,
  PAYLOAD_TYPES,
} from '../catalog/index.js';
import { HASHED_PACKAGE } from './publish.js';

/**
 * How verify-hosted reads a published root: a folder or a URL. Injected so
 * the same checks run against both, and the core never speaks HTTP itself.
 */
export interface RepoReader {
  /** The file's bytes, or undefined when it does not exist (404 / ENOENT). Small files only. */
  read(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
  /**
   * Streams a (possibly large) file to `dest`, refusing more than `expect.size`
   * bytes; false when it does not exist. A reader may refuse bytes that do not
   * hash to `expect.sha256`; the caller checks them again either way.
   */
  download(path: string, dest: string, expect: { size: number; sha256: string }): Promise<boolean>;
  /** Frees what the reader holds (connections). */
  close?(): Promise<void>;
}

export interface HostedCheck {
  name: string;
  ok: boolean;
  detail: string;
  code?: string;
}

export interface VerifyHostedResult {
  ok: boolean;
  checks: HostedCheck[];
  warnings: string[];
  catalogVersion?: number;
  expires?: string;
  packages: number;
}

const SMALL = 64 * 1024 * 1024;

// Every FAIL row carries a code, so `--json` readers branch on codes as they do for every other refusal.
const missing = (path: string): SwpkgError =>
  new SwpkgError('E_FETCH', `${path} is missing`, { hint: 'publish the repository again, or check the URL', details: { path } });
const hashMismatch = (message: string, details: Record<string, unknown>): SwpkgError =>
  new SwpkgError('E_HASH_MISMATCH', message, { details });
const mismatch = (message: string, details: Record<string, unknown>): SwpkgError =>
  new SwpkgError('E_UNTRUSTED', message, {
    hint: 'pin the fingerprint the publisher announces, and republish if the hint is stale',
    details,
  });

/**
 * Checks a published repository from the outside, the way a client would:
 * hints, root chain, catalog signature and freshness, sidecars, and every
 * package's bytes against the catalog. Each check is reported, none stops
 * the others (except where later checks need an earlier result).
 */
export async function verifyHosted(
  reader: RepoReader,
  opts: { now?: Date; reporter?: Reporter; pinnedFingerprint?: string; name?: string } = {},
): Promise<VerifyHostedResult> {
  const now = opts.now ?? new Date();
  const reporter = opts.reporter ?? silentReporter;
  const checks: HostedCheck[] = [];
  const warnings: string[] = [];
  const pass = (name: string, detail: string): void => {
    checks.push({ name, ok: true, detail });
  };
  const failCheck = (name: string, e: unknown): void => {
    checks.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e), code: isSwpkgError(e) ? e.code : 'E_INTERNAL' });
  };
  const check = async <T>(name: string, fn: () => Promise<[T, string]>): Promise<T | undefined> => {
    try {
      const [value, detail] = await fn();
      pass(name, detail);
      return value;
    } catch (e) {
      failCheck(name, e);
      return undefined;
    }
  };
  // Every file here came from the server: a document that fails to parse is refused (exit 3), not a usage error.
  const fromServer = <T>(path: string, parse: () => T): T => {
    try {
      return parse();
    } catch (e) {
      throw refusedFromServer(e, path);
    }
  };
  const need = async (path: string, maxBytes = SMALL): Promise<Uint8Array> => {
    const b = await reader.read(path, maxBytes);
    if (b === undefined) throw missing(path);
    return b;
  };
  const fetched = new Map<string, Uint8Array>();
  const fetcher: MetadataFetcher = async (path, o, accept) => {
    const b = await reader.read(path, o.maxBytes);
    if (b === undefined) {
      if (o.optional) return undefined;
      throw missing(path);
    }
    fetched.set(path, b);
    return accept(b);
  };

  const hosted = await check('hosted-repo.json', async () => {
    const bytes = await need('hosted-repo.json');
    const h = fromServer('hosted-repo.json', () => parseHostedRepo(bytes));
    return [h, `repository "${h.name}", catalog at ${h.catalog}`];
  });

  const pinned = await check('repo-root.pub', async () => {
    const bytes = await need('repo-root.pub', MAX_ROOT_BYTES);
    const root = fromServer('repo-root.pub', () => parseRoot(bytes, 'repo-root.pub'));
    verifyRootSelfSigned(root, now, 'repo-root.pub');
    const fp = rootFingerprint(root);
    if (hosted && hosted.rootFingerprint !== fp)
      throw mismatch(`fingerprint ${fp} differs from hosted-repo.json's ${hosted.rootFingerprint}`, {
        fingerprint: fp,
        hint: hosted.rootFingerprint,
      });
    if (opts.pinnedFingerprint && opts.pinnedFingerprint !== fp)
      throw mismatch(`fingerprint ${fp} differs from the pinned ${opts.pinnedFingerprint}`, {
        fingerprint: fp,
        pinned: opts.pinnedFingerprint,
      });
    return [root, `root v${root.signed.version}, fingerprint ${fp}`];
  });

  // The chain starts at roots/1.json, as a client pinned to the first root would; its expiry is moot once later roots exist.
  const catalogPath = hosted?.catalog ?? 'catalog.json';
  const chainName = 'root chain (roots/N.json)';
  const catalogName = 'catalog signature and freshness';
  const walked: { root?: RootDocument } = {};
  // Every root the walk accepted, oldest first: a retained catalog may be signed under one before a rotation.
  const chain: RootDocument[] = [];
  let catalog: CatalogDocument | undefined;
  try {
    const bytes = await need('roots/1.json', MAX_ROOT_BYTES);
    const first = fromServer('roots/1.json', () => parseRoot(bytes, 'roots/1.json'));
    verifyRootSelfSigned(first, new Date(0), 'roots/1.json');
    chain.push(first);
    // The name the caller expects, else the hint's: a catalog signed for another repository is a failed check, not a warning.
    const name = opts.name ?? hosted?.name;
    const walk = await walkTrust({
      trusted: first,
      fetch: fetcher,
      catalogPath,
      now,
      catalog: { client: null, maxBytes: SMALL, ...(name !== undefined ? { repo: name } : {}) },
      onRoot: (root) => {
        walked.root = root;
        // The walker verified each roots/N.json it fetched; they are read back only to know the older keys.
        for (let n = 2; n <= root.signed.version; n++) {
          const b = fetched.get(`roots/${n}.json`);
          if (b) chain.push(parseRoot(b, `roots/${n}.json`));
        }
        if (pinned && rootFingerprint(pinned) !== rootFingerprint(root)) {
          failCheck(chainName, mismatch(`repo-root.pub is v${pinned.signed.version} but the chain ends at v${root.signed.version}`, {}));
        } else pass(chainName, `roots 1..${root.signed.version} chain correctly`);
      },
    });
    catalog = walk.catalog;
    pass(
      catalogName,
      `catalog v${catalog.signed.version}, ${catalog.signed.packages.length} package(s), expires ${catalog.signed.expires}`,
    );
  } catch (e) {
    if (walked.root === undefined) {
      failCheck(chainName, e);
      failCheck(catalogName, new SwpkgError('E_UNTRUSTED', 'not checked: no trusted root to check the catalog against'));
    } else failCheck(catalogName, e);
  }
  const catalogBytes = fetched.get(catalogPath);

  if (catalog) {
    const left = Date.parse(catalog.signed.expires) - now.getTime();
    if (left < 7 * 86400 * 1000)
      warnings.push(`catalog expires in ${(left / 86400000).toFixed(1)} days (${catalog.signed.expires}): republish soon`);
  }

  const hashed = /^catalogs\/(\d+)-([0-9a-f]{64})\.json$/.exec(catalogPath);
  if (hashed) {
    // A content-addressed catalog is its own sidecar: its name is its hash.
    await check(`${catalogPath} named by its hash`, async () => {
      if (!catalogBytes) throw missing(catalogPath);
      const actual = sha256Hex(catalogBytes);
      if (actual !== hashed[2])
        throw hashMismatch(`the name says ${hashed[2]}, the bytes hash to ${actual}`, { named: hashed[2], sha256: actual });
      if (catalog && String(catalog.signed.version) !== hashed[1])
        throw new SwpkgError('E_CORRUPT', `the name says v${hashed[1]}, the catalog is v${catalog.signed.version}`, {
          details: { path: catalogPath, version: catalog.signed.version },
        });
      return [true, actual];
    });
  } else {
    warnings.push(`${catalogPath} is not content-addressed: republish with this swpkg so mirrors and CDNs never serve a torn state`);
  }

  // The gzip sibling clients read instead of the catalog when the pointer names it: it must inflate to the same bytes.
  const gzipPath = hosted?.catalogGzip;
  if (gzipPath !== undefined) {
    await check(`${gzipPath} (the compressed catalog)`, async () => {
      const gz = await need(gzipPath);
      let inflated: Buffer;
      try {
        inflated = gunzipSync(gz, { maxOutputLength: SMALL });
      } catch (e) {
        throw new SwpkgError('E_CORRUPT', `does not inflate within ${SMALL} bytes: ${(e as Error).message}`, {
          cause: e,
          details: { path: gzipPath },
        });
      }
      const expected = hashed?.[2] ?? (catalogBytes ? sha256Hex(catalogBytes) : undefined);
      if (expected === undefined) throw missing(catalogPath);
      const actual = sha256Hex(inflated);
      if (actual !== expected)
        throw hashMismatch(`inflates to bytes hashing to ${actual}, the catalog is ${expected}`, { expected, sha256: actual });
      return [true, `${gz.length} bytes, inflates to the catalog (${inflated.length} bytes)`];
    });
  }

  const unhashed = catalog?.signed.packages.filter((p) => !HASHED_PACKAGE.test(p.path)).length ?? 0;
  if (unhashed > 0)
    warnings.push(`${unhashed} package(s) are not named by their hash: republish with this swpkg so a cached name never changes its bytes`);

  // catalog.json (+ .sha256) is the copy older clients read; a publish in the current layout writes it after the pointer.
  const legacy = await reader.read('catalog.json', SMALL);
  if (legacy !== undefined || !hashed) {
    await check('catalog.json.sha256 sidecar', async () => {
      if (legacy === undefined) throw missing('catalog.json');
      const side = await readSidecar(reader, 'catalog.json.sha256');
      const actual = sha256Hex(legacy);
      if (side !== actual) throw hashMismatch(`sidecar says ${side}, catalog hashes to ${actual}`, { sidecar: side, sha256: actual });
      return [true, actual];
    });
  }
  if (legacy !== undefined && hashed) {
    await check('catalog.json (the copy older clients read)', async () => {
      // The same bytes as the current catalog were checked above; other bytes are checked for the reason, then refused.
      if (catalogBytes && sha256Hex(legacy) === sha256Hex(catalogBytes)) return [true, `same bytes as ${catalogPath}`];
      const trust = walked.root ?? pinned;
      if (!trust) throw new SwpkgError('E_UNTRUSTED', 'no trusted root to check the catalog against');
      const name = opts.name ?? hosted?.name;
      fromServer('catalog.json', () =>
        verifyCatalog(legacy, { root: trust, now, client: null, ...(name !== undefined ? { repo: name } : {}) }),
      );
      throw new SwpkgError('E_CORRUPT', `differs from ${catalogPath}, the current catalog`, { details: { path: 'catalog.json' } });
    });
  }

  await check('index.html', async () => {
    const b = await need('index.html');
    return [true, `${b.length} bytes`];
  });

  let count = 0;
  if (catalog) {
    const tmp = await mkdtemp(join(tmpdir(), 'swpkg-verify-'));
    try {
      let i = 0;
      for (const p of catalog.signed.packages) {
        reporter.progress('checking packages', ++i, catalog.signed.packages.length, 'items');
        await check(p.path, async () => {
          const detail = await checkPackageFile(reader, p, join(tmp, 'pkg.swpkg'));
          count++;
          return [true, detail];
        });
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  // Retained catalogs: a client or mirror still holding an older pointer must find everything it names.
  for (const c of hosted?.retainedCatalogs ?? []) {
    const m = /^catalogs\/(\d+)-([0-9a-f]{64})\.json$/.exec(c);
    await check(`retained ${c}`, async () => {
      if (!m) throw new SwpkgError('E_CORRUPT', 'is not a content-addressed catalog name', { details: { path: c } });
      const bytes = await need(c);
      const actual = sha256Hex(bytes);
      if (actual !== m[2]) throw hashMismatch(`the name says ${m[2]}, the bytes hash to ${actual}`, { named: m[2], sha256: actual });
      // Signature only, by any root of the chain (it may predate a rotation): an older catalog may
      // have expired since, and its version is older by design.
      const roots = chain.length > 0 ? [...chain].reverse() : pinned ? [pinned] : [];
      let doc: CatalogDocument | undefined;
      let firstError: Error | undefined;
      for (const r of roots) {
        try {
          doc = verifyCatalog(bytes, { root: r, now: new Date(0), client: null, ...(hosted ? { repo: hosted.name } : {}) });
          break;
        } catch (e) {
          const refused = refusedFromServer(e, c);
          firstError ??= refused instanceof Error ? refused : new Error(String(refused));
        }
      }
      if (!doc) throw firstError ?? new SwpkgError('E_UNTRUSTED', 'no trusted root to check the catalog against');
      const current = new Set(catalog?.signed.packages.map((p) => p.path) ?? []);
      let n = 0;
      for (const p of doc.signed.packages) {
        if (current.has(p.path)) continue;
        await presentWithHash(reader, p.path, p);
        n++;
      }
      return [
        true,
        `catalog v${doc.signed.version}: ${doc.signed.packages.length} package(s), ${n} not in the current catalog, all present`,
      ];
    });
  }

  // Releases: each listed document signed by the release role of the newest root, and every package a
  // live one pins present with the right hash (publish keeps them past retention for exactly this).
  const listing = await check('releases/index.json', async () => {
    const bytes = await reader.read('releases/index.json', MAX_RELEASE_BYTES);
    if (bytes === undefined) return [[], 'no releases published'];
    const v = fromServer('releases/index.json', () => parseStrictJson(bytes, 'releases/index.json'));
    const list = isJsonObject(v) && Array.isArray(v['releases']) ? (v['releases'] as unknown[]) : undefined;
    if (list === undefined) throw new SwpkgError('E_CORRUPT', 'has no "releases" list', { details: { path: 'releases/index.json' } });
    const ids = list.flatMap((r) =>
      isJsonObject(r) &&
      typeof r['id'] === 'string' &&
      NAME_RE.test(r['id']) &&
      typeof r['version'] === 'number' &&
      Number.isSafeInteger(r['version']) &&
      r['version'] > 0
        ? [{ id: r['id'], version: r['version'] }]
        : [],
    );
    if (ids.length !== list.length)
      throw new SwpkgError('E_CORRUPT', 'lists an entry without a plain id and a positive version', {
        details: { path: 'releases/index.json' },
      });
    return [ids, `${ids.length} release(s)`];
  });
  const verifiedAbove = new Map(catalog?.signed.packages.map((p) => [p.path, p.sha256]) ?? []);
  for (const r of listing ?? []) {
    const path = `releases/${r.id}/${r.version}.json`;
    await check(path, async () => {
      const trust = walked.root ?? pinned;
      if (!trust) throw new SwpkgError('E_UNTRUSTED', 'no trusted root to check the release against');
      const bytes = await need(path, MAX_RELEASE_BYTES);
      checkReleaseThreshold(
        fromServer(path, () => parseEnvelope(bytes, PAYLOAD_TYPES.release, path)),
        trust,
        path,
      );
      const doc = fromServer(path, () => parseRelease(bytes, path));
      if (doc.signed.id !== r.id || doc.signed.version !== r.version)
        throw new SwpkgError('E_BAD_RELEASE', `holds release ${doc.signed.id} v${doc.signed.version}`, { details: { path } });
      if (Date.parse(doc.signed.expires) <= now.getTime()) return [true, `expired ${doc.signed.expires}: its packages may be gone`];
      let n = 0;
      for (const p of doc.signed.packages) {
        if (/^[a-z]+:/.test(p.location)) continue;
        if (verifiedAbove.get(p.location) !== p.sha256) await presentWithHash(reader, p.location, p);
        n++;
      }
      return [true, `release ${r.id} v${r.version}: ${doc.signed.packages.length} package(s), ${n} in this repository, all present`];
    });
  }

  const result: VerifyHostedResult = { ok: checks.every((c) => c.ok), checks, warnings, packages: count };
  if (catalog) {
    result.catalogVersion = catalog.signed.version;
    result.expires = catalog.signed.expires;
  }
  return result;
}

/** A package file that a retained catalog or a release names: present, its bytes as named. */
async function presentWithHash(reader: RepoReader, path: string, want: { size: number; sha256: string }): Promise<void> {
  const dest = join(tmpdir(), `swpkg-verify-named-${process.pid}-${Math.random().toString(36).slice(2)}.swpkg`);
  try {
    if (!(await reader.download(path, dest, want))) throw missing(path);
    const { sha256 } = await sha256File(dest);
    if (sha256 !== want.sha256)
      throw hashMismatch(`${path}: SHA-256 ${sha256}, signed metadata says ${want.sha256}`, { sha256, expected: want.sha256 });
    checkNamedHash({ path, sha256: want.sha256 });
  } finally {
    await rm(dest, { force: true });
  }
}

/**
 * A package named by its hash (packages/STEM.SHA256.swpkg) must carry its catalog hash in the name: a
 * mirror or CDN caches that name forever, so a name that lies about its bytes is refused.
 */
function checkNamedHash(p: { path: string; sha256: string }): void {
  const named = HASHED_PACKAGE.exec(p.path)?.[1];
  if (named !== undefined && named !== p.sha256)
    throw hashMismatch(`${p.path}: the name says ${named}, the catalog says ${p.sha256}`, { path: p.path, named, expected: p.sha256 });
}

/** The first word of a `.sha256` sidecar (`HEX  NAME`). */
async function readSidecar(reader: RepoReader, path: string): Promise<string | undefined> {
  const bytes = await reader.read(path, 4096);
  if (bytes === undefined) throw missing(path);
  return new TextDecoder().decode(bytes).trim().split(/\s+/)[0];
}

/**
 * One package as a client meets it: downloaded to `dest` (bounded by the catalog's size), its
 * size and SHA-256 against the catalog, its contents verified, the name and version inside
 * against the entry, and its sidecar. Returns the PASS detail; `dest` is removed either way.
 */
async function checkPackageFile(reader: RepoReader, p: CatalogPackage, dest: string): Promise<string> {
  try {
    if (!(await reader.download(p.path, dest, { size: p.size, sha256: p.sha256 }))) throw missing(p.path);
    const { sha256, size } = await sha256File(dest);
    if (size !== p.size) throw hashMismatch(`size ${size}, catalog says ${p.size}`, { size, expected: p.size });
    if (sha256 !== p.sha256) throw hashMismatch(`SHA-256 ${sha256}, catalog says ${p.sha256}`, { sha256, expected: p.sha256 });
    checkNamedHash(p);
    const v = await verifyPackageFile(dest);
    if (v.manifest.name !== p.name || v.manifest.version !== p.version)
      throw new SwpkgError('E_CORRUPT', `contains ${v.manifest.name}@${v.manifest.version}`, {
        details: { path: p.path, name: v.manifest.name, version: v.manifest.version },
      });
    const sideHash = await readSidecar(reader, `${p.path}.sha256`);
    if (sideHash !== sha256) throw hashMismatch(`sidecar says ${sideHash}`, { sidecar: sideHash, sha256 });
    return `${sha256} (${size} bytes)`;
  } finally {
    await rm(dest, { force: true });
  }
}
