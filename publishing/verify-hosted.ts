import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isSwpkgError } from '../catalog/index.js';
import { sha256Hex, sha256File } from '../catalog/index.js';
import { verifyPackageFile } from '../catalog/index.js';
import {
  assertRootCurrent,
  parseRoot,
  rootFingerprint,
  verifyRootSelfSigned,
  verifyRootUpdate,
  type RootDocument,
} from '../catalog/index.js';
import { verifyCatalog, type CatalogDocument } from '../catalog/index.js';
import { parseHostedRepo } from '../catalog/index.js';
import { silentReporter, type Reporter } from '../catalog/index.js';

/**
 * How verify-hosted reads a published root: a folder or a URL. Injected so
 * the same checks run against both, and the core never speaks HTTP itself.
 */
export interface RepoReader {
  /** The file's bytes, or undefined when it does not exist (404 / ENOENT). Small files only. */
  read(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
  /** Streams a (possibly large) file to `dest`; false when it does not exist. */
  download(path: string, dest: string, maxBytes: number): Promise<boolean>;
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
    checks.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e), ...(isSwpkgError(e) ? { code: e.code } : {}) });
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
  const need = async (path: string): Promise<Uint8Array> => {
    const b = await reader.read(path, SMALL);
    if (b === undefined) throw new Error(`${path} is missing`);
    return b;
  };

  const hosted = await check('hosted-repo.json', async () => {
    const h = parseHostedRepo(await need('hosted-repo.json'));
    return [h, `repository "${h.name}", catalog at ${h.catalog}`];
  });

  const pinned = await check('repo-root.pub', async () => {
    const root = parseRoot(await need('repo-root.pub'), 'repo-root.pub');
    verifyRootSelfSigned(root, now, 'repo-root.pub');
    const fp = rootFingerprint(root);
    if (hosted && hosted.rootFingerprint !== fp)
      throw new Error(`fingerprint ${fp} differs from hosted-repo.json's ${hosted.rootFingerprint}`);
    if (opts.pinnedFingerprint && opts.pinnedFingerprint !== fp)
      throw new Error(`fingerprint ${fp} differs from the pinned ${opts.pinnedFingerprint}`);
    return [root, `root v${root.signed.version}, fingerprint ${fp}`];
  });

  const chain: RootDocument[] = [];
  const root = await check('root chain (roots/N.json)', async () => {
    const first = parseRoot(await need('roots/1.json'), 'roots/1.json');
    verifyRootSelfSigned(first, new Date(0), 'roots/1.json');
    let trusted: RootDocument = first;
    chain.push(first);
    for (let n = 2; n < 10000; n++) {
      const b = await reader.read(`roots/${n}.json`, SMALL);
      if (b === undefined) break;
      trusted = verifyRootUpdate(trusted, b, `roots/${n}.json`);
      chain.push(trusted);
    }
    assertRootCurrent(trusted, now);
    if (pinned && rootFingerprint(pinned) !== rootFingerprint(trusted)) {
      throw new Error(`repo-root.pub is v${pinned.signed.version} but the chain ends at v${trusted.signed.version}`);
    }
    return [trusted, `roots 1..${trusted.signed.version} chain correctly`];
  });

  const catalogPath = hosted?.catalog ?? 'catalog.json';
  let catalogBytes: Uint8Array | undefined;
  const catalog = await check('catalog signature and freshness', async () => {
    catalogBytes = await need(catalogPath);
    const trust = root ?? pinned;
    if (!trust) throw new Error('no trusted root to check the catalog against');
    // The name the caller expects, else the hint's: a catalog signed for another repository is a failed check, not a warning.
    const name = opts.name ?? hosted?.name;
    const doc: CatalogDocument = verifyCatalog(catalogBytes, {
      root: trust,
      now,
      client: null,
      ...(name !== undefined ? { repo: name } : {}),
    });
    return [doc, `catalog v${doc.signed.version}, ${doc.signed.packages.length} package(s), expires ${doc.signed.expires}`];
  });

  if (catalog) {
    const left = Date.parse(catalog.signed.expires) - now.getTime();
    if (left < 7 * 86400 * 1000)
      warnings.push(`catalog expires in ${(left / 86400000).toFixed(1)} days (${catalog.signed.expires}): republish soon`);
  }

  const hashed = /^catalogs\/(\d+)-([0-9a-f]{64})\.json$/.exec(catalogPath);
  if (hashed) {
    // A content-addressed catalog is its own sidecar: its name is its hash.
    await check(`${catalogPath} named by its hash`, async () => {
      if (!catalogBytes) throw new Error('catalog unavailable');
      const actual = sha256Hex(catalogBytes);
      if (actual !== hashed[2]) throw new Error(`the name says ${hashed[2]}, the bytes hash to ${actual}`);
      if (catalog && String(catalog.signed.version) !== hashed[1])
        throw new Error(`the name says v${hashed[1]}, the catalog is v${catalog.signed.version}`);
      return [true, actual];
    });
  } else {
    warnings.push(`${catalogPath} is not content-addressed: republish with this swpkg so mirrors and CDNs never serve a torn state`);
  }

  // catalog.json (+ .sha256) is the copy older clients read; a publish in the current layout writes it after the pointer.
  const legacy = await reader.read('catalog.json', SMALL);
  if (legacy !== undefined || !hashed) {
    await check('catalog.json.sha256 sidecar', async () => {
      if (legacy === undefined) throw new Error('catalog.json is missing');
      const side = new TextDecoder()
        .decode(await need('catalog.json.sha256'))
        .trim()
        .split(/\s+/)[0];
      const actual = sha256Hex(legacy);
      if (side !== actual) throw new Error(`sidecar says ${side}, catalog hashes to ${actual}`);
      return [true, actual];
    });
  }
  if (legacy !== undefined && hashed) {
    await check('catalog.json (the copy older clients read)', async () => {
      // The same bytes as the current catalog were checked above; other bytes are checked for the reason, then refused.
      if (catalogBytes && sha256Hex(legacy) === sha256Hex(catalogBytes)) return [true, `same bytes as ${catalogPath}`];
      const trust = root ?? pinned;
      if (!trust) throw new Error('no trusted root to check the catalog against');
      const name = opts.name ?? hosted?.name;
      verifyCatalog(legacy, { root: trust, now, client: null, ...(name !== undefined ? { repo: name } : {}) });
      throw new Error(`differs from ${catalogPath}, the current catalog`);
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
          const dest = join(tmp, 'pkg.swpkg');
          if (!(await reader.download(p.path, dest, p.size))) throw new Error('missing');
          const { sha256, size } = await sha256File(dest);
          if (size !== p.size) throw new Error(`size ${size}, catalog says ${p.size}`);
          if (sha256 !== p.sha256) throw new Error(`SHA-256 ${sha256}, catalog says ${p.sha256}`);
          const v = await verifyPackageFile(dest);
          if (v.manifest.name !== p.name || v.manifest.version !== p.version)
            throw new Error(`contains ${v.manifest.name}@${v.manifest.version}`);
          const side = await reader.read(`${p.path}.sha256`, 4096);
          if (side === undefined) throw new Error('sidecar .sha256 missing');
          const sideHash = new TextDecoder().decode(side).trim().split(/\s+/)[0];
          if (sideHash !== sha256) throw new Error(`sidecar says ${sideHash}`);
          await rm(dest, { force: true });
          count++;
          return [true, `${sha256} (${size} bytes)`];
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
      if (!m) throw new Error('is not a content-addressed catalog name');
      const bytes = await need(c);
      const actual = sha256Hex(bytes);
      if (actual !== m[2]) throw new Error(`the name says ${m[2]}, the bytes hash to ${actual}`);
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
          firstError ??= e instanceof Error ? e : new Error(String(e));
        }
      }
      if (!doc) throw firstError ?? new Error('no trusted root to check the catalog against');
      const current = new Set(catalog?.signed.packages.map((p) => p.path) ?? []);
      let n = 0;
      for (const p of doc.signed.packages) {
        if (current.has(p.path)) continue;
        const dest = join(tmpdir(), `swpkg-verify-retained-${process.pid}.swpkg`);
        try {
          if (!(await reader.download(p.path, dest, p.size))) throw new Error(`${p.path} is missing`);
          const { sha256 } = await sha256File(dest);
          if (sha256 !== p.sha256) throw new Error(`${p.path}: SHA-256 ${sha256}, catalog says ${p.sha256}`);
        } finally {
          await rm(dest, { force: true });
        }
        n++;
      }
      return [
        true,
        `catalog v${doc.signed.version}: ${doc.signed.packages.length} package(s), ${n} not in the current catalog, all present`,
      ];
    });
  }

  const result: VerifyHostedResult = { ok: checks.every((c) => c.ok), checks, warnings, packages: count };
  if (catalog) {
    result.catalogVersion = catalog.signed.version;
    result.expires = catalog.signed.expires;
  }
  return result;
}
