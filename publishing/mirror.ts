import { copyFile, lstat, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  SwpkgError,
  assertRootCurrent,
  checkReleaseThreshold,
  fromFsError,
  parseEnvelope,
  parseRelease,
  parseRoot,
  releaseDigest,
  rootFingerprint,
  sha256File,
  verifyCatalog,
  verifyPackageFile,
  verifyRootSelfSigned,
  verifyRootUpdate,
  assertNotExpired,
  PAYLOAD_TYPES,
  type RootDocument,
} from '../catalog/index.js';
import { readReleases, writeReleaseListing } from './release.js';

export interface MirrorOptions {
  /** A published web root (a folder). */
  source: string;
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

async function regularFile(root: string, rel: string): Promise<string> {
  const path = join(root, rel);
  const st = await lstat(path).catch(() => undefined);
  if (!st) throw new SwpkgError('E_NOT_FOUND', `${rel} is missing from ${root}`, { details: { path: rel } });
  // A link could make the copy carry any file of this machine onto the media.
  if (!st.isFile())
    throw new SwpkgError('E_UNSAFE_PATH', `${rel} in ${root} is not a regular file (a link or a folder)`, { details: { path: rel } });
  return path;
}

/**
 * `swpkg repo mirror`: copies a published repository, or one release's closure, into a new folder
 * that can be burnt to media, verifying everything on the way as a client would: the root chain
 * (each root N+1 signed by N's root keys and its own, the newest unexpired, optionally pinned by
 * fingerprint), the catalog against it, every release against its release keys, and every package
 * file fully (hash, size, every entry). The copy is built beside DEST and renamed into place.
 */
export async function mirrorRepository(o: MirrorOptions): Promise<MirrorResult> {
  const now = o.now ?? new Date();
  if (await lstat(o.dest).catch(() => undefined)) {
    throw new SwpkgError('E_USAGE', `${o.dest} already exists; mirror into a new folder`, { details: { dest: o.dest } });
  }
  // 1. Roots: 1..N, each vouched for by the one before.
  const rootNames = (await readdir(join(o.source, 'roots')).catch(() => [] as string[])).filter((n) => /^[1-9]\d*\.json$/.test(n));
  const versions = rootNames.map((n) => Number(n.slice(0, -5))).sort((a, b) => a - b);
  if (versions.length === 0 || versions[0] !== 1 || versions[versions.length - 1] !== versions.length) {
    throw new SwpkgError('E_BAD_ROOT', `${o.source}/roots must hold 1.json to N.json without gaps`, { details: { versions } });
  }
  let root: RootDocument = parseRoot(await readFile(await regularFile(o.source, 'roots/1.json')), 'roots/1.json');
  verifyRootSelfSigned(root, new Date(0));
  const fingerprints = [rootFingerprint(root)];
  for (const v of versions.slice(1)) {
    root = verifyRootUpdate(root, await readFile(await regularFile(o.source, `roots/${v}.json`)), `roots/${v}.json`);
    fingerprints.push(rootFingerprint(root));
  }
  assertRootCurrent(root, now);
  if (o.fingerprint !== undefined && !fingerprints.includes(o.fingerprint.toLowerCase())) {
    throw new SwpkgError('E_BAD_ROOT', `no root of ${o.source} has fingerprint ${o.fingerprint}`, {
      hint: 'check the fingerprint with the publisher; do not copy a repository you cannot confirm',
      details: { expected: o.fingerprint, offered: fingerprints },
    });
  }
  const pub = await readFile(await regularFile(o.source, 'repo-root.pub'));
  if (rootFingerprint(parseRoot(pub, 'repo-root.pub')) !== rootFingerprint(root)) {
    throw new SwpkgError('E_BAD_ROOT', `repo-root.pub of ${o.source} is not its newest root, roots/${root.signed.version}.json`);
  }

  // 2. The catalog and the packages it lists (all of them, or none for a release's closure).
  const catalogBytes = await readFile(await regularFile(o.source, 'catalog.json'));
  const catalog = verifyCatalog(catalogBytes, { root, now, client: null });
  const files = new Map<string, { sha256: string; size: number }>();
  const add = (path: string, want: { sha256: string; size: number }): void => {
    const prev = files.get(path);
    if (prev && prev.sha256 !== want.sha256) {
      throw new SwpkgError('E_HASH_MISMATCH', `${path} is named with two different hashes`, { details: { path } });
    }
    files.set(path, want);
  };
  if (o.release === undefined) for (const p of catalog.signed.packages) add(p.path, p);

  // 3. Releases: every one (a full mirror) or the one asked for.
  const wanted = o.release === undefined ? undefined : /^([^@]+)(?:@(\d+))?$/.exec(o.release);
  if (o.release !== undefined && !wanted)
    throw new SwpkgError('E_USAGE', `--release ${JSON.stringify(o.release)} must be ID or ID@VERSION`);
  let releases = await readReleases(o.source);
  if (wanted) {
    const ofId = releases.filter((r) => r.doc.signed.id === wanted[1]);
    const pick = wanted[2] !== undefined ? ofId.find((r) => r.doc.signed.version === Number(wanted[2])) : ofId[ofId.length - 1];
    if (!pick) throw new SwpkgError('E_NOT_FOUND', `${o.source} has no release ${o.release}`, { details: { release: o.release } });
    releases = [pick];
  }
  const copiedReleases: MirrorResult['releases'] = [];
  for (const r of releases) {
    const env = parseEnvelope(await readFile(await regularFile(o.source, r.path)), PAYLOAD_TYPES.release, r.path);
    checkReleaseThreshold(env, root, r.path);
    const doc = parseRelease(await readFile(join(o.source, r.path)), r.path);
    // An expired release is still copied when the whole repository is (it is history); one asked for must be live.
    if (wanted) assertNotExpired(doc.signed.expires, now, `release ${doc.signed.id} v${doc.signed.version}`);
    files.set(r.path, { sha256: '', size: -1 });
    for (const p of doc.signed.packages) if (!/^[a-z]+:\/\//.test(p.location)) add(p.location, p);
    copiedReleases.push({ id: doc.signed.id, version: doc.signed.version, digest: releaseDigest(doc) });
  }

  // 4. Every package file verified in full before anything is written.
  for (const [path, want] of files) {
    if (want.size < 0) continue;
    const src = await regularFile(o.source, path);
    const got = await sha256File(src);
    if (got.sha256 !== want.sha256 || got.size !== want.size) {
      throw new SwpkgError('E_HASH_MISMATCH', `${path} in ${o.source} is not the file its signed metadata names`, {
        details: { path, expected: want.sha256, actual: got.sha256, expectedSize: want.size, actualSize: got.size },
      });
    }
    await verifyPackageFile(src);
  }

  // 5. Copy into a staging folder, then rename it into place.
  const tmp = `${o.dest}.tmp-${process.pid}`;
  const meta = ['repo-root.pub', 'catalog.json', ...versions.map((v) => `roots/${v}.json`)];
  for (const extra of ['hosted-repo.json', 'catalog.json.sha256'])
    if (await lstat(join(o.source, extra)).catch(() => undefined)) meta.push(extra);
  let bytes = 0;
  try {
    await rm(tmp, { recursive: true, force: true });
    for (const rel of [...meta, ...files.keys()]) {
      const to = join(tmp, rel);
      await mkdir(dirname(to), { recursive: true });
      await copyFile(await regularFile(o.source, rel), to);
      bytes += (await lstat(to)).size;
    }
    await writeReleaseListing(tmp);
    await rename(tmp, o.dest);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e instanceof SwpkgError ? e : fromFsError(e, `writing ${o.dest}`);
  }
  return {
    dest: o.dest,
    rootVersion: root.signed.version,
    rootFingerprint: rootFingerprint(root),
    files: meta.length + files.size,
    bytes,
    releases: copiedReleases,
  };
}
