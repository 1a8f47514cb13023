import { lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  SwpkgError,
  assertNotExpired,
  assertRootCurrent,
  checkReleaseThreshold,
  fromFsError,
  isJsonObject,
  parseEnvelope,
  parseHostedRepo,
  refusedFromServer,
  sha256Hex,
  parseRelease,
  parseRoot,
  parseStrictJson,
  releaseDigest,
  rootFingerprint,
  sha256File,
  verifyCatalog,
  verifyPackageFile,
  verifyRootSelfSigned,
  verifyRootUpdate,
  DEFAULT_MAX_CATALOG_BYTES,
  MAX_RELEASE_BYTES,
  PAYLOAD_TYPES,
  type RootDocument,
} from '../catalog/index.js';
import { writeReleaseListing } from './release.js';
import { FolderTarget } from './storage.js';
import type { RepoReader } from './verify-hosted.js';

export interface MirrorOptions {
  /** Reads the published web root: a folder or a URL (the CLI picks, as for verify-hosted). */
  reader: RepoReader;
  /** The source as the user named it, for messages. */
  source: string;
  /** When the source is a folder: every file read must be a regular file in it, not a link. */
  sourceDir?: string;
  /** A folder that does not exist yet: the copy appears there whole, or not at all. */
  dest: string;
  /** Pin: the copy is refused unless the source's root chain contains a root with this fingerprint. */
  fingerprint?: string;
  /** `ID` (newest version) or `ID@VERSION`: copy only that release's closure. */
  release?: string;
  now?: Date;
}

export interface MirrorResult {
  dest: string;
  rootVersion: number;
  rootFingerprint: string;
  files: number;
  bytes: number;
  releases: { id: string; version: number; digest: string }[];
}

const MAX_ROOT_BYTES = 1024 * 1024;
const MAX_ROOTS = 1000;

/**
 * `swpkg repo mirror`: copies a published repository, or one release's closure, into a new folder
 * that can be burnt to media, verifying everything as a client would: the root chain (each root
 * N+1 signed by N's root keys and its own, the newest unexpired and equal to repo-root.pub,
 * optionally pinned by fingerprint), the catalog against it, every release against its release
 * keys, and every package file in full (hash, size, every entry). Everything lands in DEST.tmp-PID
 * first, is verified there, and the folder is renamed to DEST only when all of it passed.
 */
export async function mirrorRepository(o: MirrorOptions): Promise<MirrorResult> {
  const now = o.now ?? new Date();
  if (await lstat(o.dest).catch(() => undefined)) {
    throw new SwpkgError('E_USAGE', `${o.dest} already exists; mirror into a new folder`, { details: { dest: o.dest } });
  }
  const tmp = `${o.dest}.tmp-${process.pid}`;
  const written: string[] = [];
  let bytes = 0;
  const linkCheck = async (rel: string): Promise<void> => {
    if (o.sourceDir === undefined) return;
    const st = await lstat(join(o.sourceDir, rel)).catch(() => undefined);
    // A link could carry any file of this machine onto the media.
    if (st && !st.isFile()) {
      throw new SwpkgError('E_UNSAFE_PATH', `${rel} in ${o.source} is not a regular file (a link or a folder)`, { details: { path: rel } });
    }
  };
  const read = async (rel: string, max: number): Promise<Uint8Array | undefined> => {
    await linkCheck(rel);
    return o.reader.read(rel, max);
  };
  const need = async (rel: string, max: number): Promise<Uint8Array> => {
    const b = await read(rel, max);
    if (b === undefined) throw new SwpkgError('E_NOT_FOUND', `${rel} is missing from ${o.source}`, { details: { path: rel } });
    return b;
  };
  const keep = async (rel: string, data: Uint8Array): Promise<void> => {
    await mkdir(dirname(join(tmp, rel)), { recursive: true });
    await writeFile(join(tmp, rel), data);
    written.push(rel);
    bytes += data.length;
  };

  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    // 1. Roots 1..N, each vouched for by the one before; N is where the walk finds no next root.
    const first = await need('roots/1.json', MAX_ROOT_BYTES);
    let root: RootDocument = parseRoot(first, 'roots/1.json');
    verifyRootSelfSigned(root, new Date(0));
    await keep('roots/1.json', first);
    const fingerprints = [rootFingerprint(root)];
    for (let v = 2; v <= MAX_ROOTS; v++) {
      const next = await read(`roots/${v}.json`, MAX_ROOT_BYTES);
      if (next === undefined) break;
      root = verifyRootUpdate(root, next, `roots/${v}.json`);
      fingerprints.push(rootFingerprint(root));
      await keep(`roots/${v}.json`, next);
    }
    assertRootCurrent(root, now);
    if (o.fingerprint !== undefined && !fingerprints.includes(o.fingerprint.toLowerCase())) {
      throw new SwpkgError('E_BAD_ROOT', `no root of ${o.source} has fingerprint ${o.fingerprint}`, {
        hint: 'check the fingerprint with the publisher; do not copy a repository you cannot confirm',
        details: { expected: o.fingerprint, offered: fingerprints },
      });
    }
    const pub = await need('repo-root.pub', MAX_ROOT_BYTES);
    if (rootFingerprint(parseRoot(pub, 'repo-root.pub')) !== rootFingerprint(root)) {
      throw new SwpkgError('E_BAD_ROOT', `repo-root.pub of ${o.source} is not its newest root, roots/${root.signed.version}.json`);
    }
    await keep('repo-root.pub', pub);

    // 2. The catalog the source's pointer names (clients follow it), else catalog.json; its packages
    // are copied for a whole mirror, not for one release's closure.
    const hostedBytes = await read('hosted-repo.json', MAX_ROOT_BYTES);
    let hosted: ReturnType<typeof parseHostedRepo> | undefined;
    if (hostedBytes !== undefined) {
      try {
        hosted = parseHostedRepo(hostedBytes);
      } catch (e) {
        throw refusedFromServer(e, 'hosted-repo.json');
      }
    }
    const catalogRel = hosted?.catalog ?? 'catalog.json';
    const addressed = /^catalogs\/\d+-([0-9a-f]{64})\.json$/.exec(catalogRel);
    if (catalogRel !== 'catalog.json' && !addressed) {
      throw new SwpkgError('E_CORRUPT', `hosted-repo.json of ${o.source} names ${JSON.stringify(catalogRel)}, not a catalog path`, {
        details: { path: catalogRel },
      });
    }
    const catalogBytes = await need(catalogRel, DEFAULT_MAX_CATALOG_BYTES);
    const catalogSha256 = sha256Hex(catalogBytes);
    if (addressed && addressed[1] !== catalogSha256) {
      throw new SwpkgError('E_HASH_MISMATCH', `${catalogRel} of ${o.source} hashes to ${catalogSha256}, not the hash in its name`, {
        details: { path: catalogRel, sha256: catalogSha256 },
      });
    }
    const catalog = verifyCatalog(catalogBytes, { root, now, client: null });
    await keep(catalogRel, catalogBytes);
    if (addressed) {
      // The copy older clients read, with its sidecar made from these bytes (the source's could be a publish behind).
      await keep('catalog.json', catalogBytes);
      await keep('catalog.json.sha256', Buffer.from(`${catalogSha256}  catalog.json\n`));
      // The gzip sibling only when it inflates to exactly these bytes; clients read the plain catalog otherwise.
      const gzRel = hosted?.catalogGzip === `${catalogRel}.gz` ? hosted.catalogGzip : undefined;
      const gz = gzRel === undefined ? undefined : await read(gzRel, DEFAULT_MAX_CATALOG_BYTES);
      let gzipKept = false;
      if (gzRel !== undefined && gz !== undefined) {
        let inflated: Buffer | undefined;
        try {
          inflated = gunzipSync(gz, { maxOutputLength: DEFAULT_MAX_CATALOG_BYTES });
        } catch {
          inflated = undefined;
        }
        if (inflated !== undefined && sha256Hex(inflated) === catalogSha256) {
          await keep(gzRel, gz);
          gzipKept = true;
        }
      }
      // The copy's own pointer: this catalog only (older ones are not copied), and the sibling if it came along.
      const { catalogGzip: _dropped, ...rest } = hosted!;
      const pointer = { ...rest, retainedCatalogs: [], ...(gzipKept ? { catalogGzip: gzRel } : {}) };
      await keep('hosted-repo.json', Buffer.from(JSON.stringify(pointer, null, 2) + '\n'));
    } else {
      for (const extra of ['hosted-repo.json', 'catalog.json.sha256']) {
        const b = await read(extra, MAX_ROOT_BYTES);
        if (b !== undefined) await keep(extra, b);
      }
    }
    const files = new Map<string, { sha256: string; size: number }>();
    const add = (path: string, want: { sha256: string; size: number }): void => {
      const prev = files.get(path);
      if (prev && prev.sha256 !== want.sha256) {
        throw new SwpkgError('E_HASH_MISMATCH', `${path} is named with two different hashes`, { details: { path } });
      }
      files.set(path, want);
    };
    if (o.release === undefined) for (const p of catalog.signed.packages) add(p.path, p);

    // 3. Releases, found through releases/index.json (unsigned: each document is verified itself).
    const wanted = o.release === undefined ? undefined : /^([^@]+)(?:@(\d+))?$/.exec(o.release);
    if (o.release !== undefined && !wanted)
      throw new SwpkgError('E_USAGE', `--release ${JSON.stringify(o.release)} must be ID or ID@VERSION`);
    const listing = await read('releases/index.json', MAX_RELEASE_BYTES);
    let paths: { id: string; version: number; path: string }[] = [];
    if (listing !== undefined) {
      const v = parseStrictJson(listing, 'releases/index.json');
      const list = isJsonObject(v) && Array.isArray(v['releases']) ? (v['releases'] as unknown[]) : [];
      paths = list.flatMap((r) =>
        isJsonObject(r) && typeof r['id'] === 'string' && typeof r['version'] === 'number' && Number.isSafeInteger(r['version'])
          ? [{ id: r['id'], version: r['version'], path: `releases/${r['id']}/${r['version']}.json` }]
          : [],
      );
    }
    if (wanted) {
      const ofId = paths.filter((p) => p.id === wanted[1]).sort((a, b) => a.version - b.version);
      const pick = wanted[2] !== undefined ? ofId.find((p) => p.version === Number(wanted[2])) : ofId[ofId.length - 1];
      if (!pick) throw new SwpkgError('E_NOT_FOUND', `${o.source} lists no release ${o.release}`, { details: { release: o.release } });
      paths = [pick];
    }
    const copiedReleases: MirrorResult['releases'] = [];
    for (const r of paths) {
      const docBytes = await need(r.path, MAX_RELEASE_BYTES);
      checkReleaseThreshold(parseEnvelope(docBytes, PAYLOAD_TYPES.release, r.path), root, r.path);
      const doc = parseRelease(docBytes, r.path);
      if (doc.signed.id !== r.id || doc.signed.version !== r.version) {
        throw new SwpkgError('E_BAD_RELEASE', `${r.path} holds release ${doc.signed.id} v${doc.signed.version}`, {
          details: { path: r.path },
        });
      }
      // An expired release is still copied with the whole repository (it is history); one asked for must be live.
      if (wanted) assertNotExpired(doc.signed.expires, now, `release ${doc.signed.id} v${doc.signed.version}`);
      for (const p of doc.signed.packages) if (!/^[a-z]+:\/\//.test(p.location)) add(p.location, p);
      await keep(r.path, docBytes);
      copiedReleases.push({ id: doc.signed.id, version: doc.signed.version, digest: releaseDigest(doc) });
    }

    // 4. Every package: copied into the staging folder, then hashed and read in full there.
    for (const [path, want] of files) {
      await linkCheck(path);
      const to = join(tmp, path);
      await mkdir(dirname(to), { recursive: true });
      if (!(await o.reader.download(path, to, want))) {
        throw new SwpkgError('E_NOT_FOUND', `${path} is missing from ${o.source}`, { details: { path } });
      }
      const got = await sha256File(to);
      if (got.sha256 !== want.sha256 || got.size !== want.size) {
        throw new SwpkgError('E_HASH_MISMATCH', `${path} in ${o.source} is not the file its signed metadata names`, {
          details: { path, expected: want.sha256, actual: got.sha256, expectedSize: want.size, actualSize: got.size },
        });
      }
      await verifyPackageFile(to);
      written.push(path);
      bytes += got.size;
    }
    await writeReleaseListing(new FolderTarget(tmp));
    await rename(tmp, o.dest);
    return {
      dest: o.dest,
      rootVersion: root.signed.version,
      rootFingerprint: rootFingerprint(root),
      files: written.length,
      bytes,
      releases: copiedReleases,
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e instanceof SwpkgError ? e : fromFsError(e, `mirroring ${o.source} into ${o.dest}`);
  }
}
