import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  encodeEnvelope,
  fromFsError,
  parseCatalog,
  parseSystemRelease,
  sha256File,
  signSystemRelease,
  systemReleasePath,
  verifySystemRelease,
  SYSTEM_RELEASE_FORMAT,
  SYSTEM_RELEASE_MIN_CLIENT_FORMAT,
  type KeyPair,
  type SystemArtifactName,
  type SystemReleaseSigned,
} from '../catalog/index.js';
import { readLatestRoot } from './publish.js';
import { readFileIfExists } from './storage.js';

/** File names of a release's artifacts in `system/<arch>/<version>/` (the guest artifact set's names). */
export const SYSTEM_ARTIFACT_FILES: Record<SystemArtifactName, string> = {
  kernel: 'vmlinuz',
  initramfs: 'initramfs.cpio.gz',
  base: 'base.img',
};

export interface PublishSystemReleaseOptions {
  /** A published web root (it has roots/ and catalog.json). */
  out: string;
  /** Keys of the root's release role; the release is checked against the root before anything is written. */
  keys: KeyPair[];
  arch: string;
  files: Record<SystemArtifactName, string>;
  /** Default: the published release's version + 1 (1 for the first). */
  version?: number;
  /** Seconds until the document expires (as every other --expires). */
  expiresIn: number;
  now?: Date;
}

export interface PublishSystemReleaseResult {
  path: string;
  version: number;
  arch: string;
  repo: string;
  artifacts: SystemReleaseSigned['artifacts'];
}

/** Streams `src` to `dest` through a temp file, hashing the bytes written; the copy must hash as `expected`. */
async function copyVerified(src: string, dest: string, expected: { sha256: string; size: number }): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      createReadStream(src),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          hash.update(c);
          size += c.length;
          yield c;
        }
      },
      createWriteStream(tmp, { mode: 0o644 }),
    );
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    const sha256 = hash.digest('hex');
    // The source changed between hashing and copying: what is signed must be what is served.
    if (sha256 !== expected.sha256 || size !== expected.size) {
      throw new SwpkgError('E_HASH_MISMATCH', `${src} changed while it was being published`, {
        details: { path: src, expected, actual: { sha256, size } },
      });
    }
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof SwpkgError) throw e;
    throw fromFsError(e, `writing ${dest}`);
  }
}

/**
 * `swpkg system publish`: puts a kernel, initramfs and base image into
 * `system/<arch>/<version>/` and the signed release naming them at
 * `system/<arch>.json`. Everything is checked before the first byte is
 * written (the root trusts the keys as release keys, the version goes up, the
 * artifact folder is new); the artifacts land first and the document last,
 * so a client never sees a release that names a missing file. Earlier
 * versions' artifacts stay: a guest may still be staging one.
 */
export async function publishSystemRelease(o: PublishSystemReleaseOptions): Promise<PublishSystemReleaseResult> {
  const now = o.now ?? new Date();
  const root = await readLatestRoot(o.out);
  if (!root) {
    throw new SwpkgError('E_NOT_FOUND', `${o.out} has no published root`, {
      hint: 'publish the repository first (swpkg repo publish), and give the root a release key (swpkg repo rotate-root --release-key)',
      details: { path: o.out },
    });
  }
  const catalogBytes = await readFileIfExists(join(o.out, 'catalog.json'));
  if (!catalogBytes) {
    throw new SwpkgError('E_NOT_FOUND', `${o.out} has no catalog.json`, { hint: 'publish the repository first', details: { path: o.out } });
  }
  const repo = parseCatalog(catalogBytes, 'catalog.json').signed.repo;
  const docPath = systemReleasePath(o.arch);
  const previousBytes = await readFileIfExists(join(o.out, docPath));
  const previous = previousBytes ? parseSystemRelease(previousBytes, docPath).signed.version : 0;
  const version = o.version ?? previous + 1;
  if (!Number.isSafeInteger(version) || version < 1) throw new SwpkgError('E_USAGE', `version must be a positive integer, not ${version}`);
  if (!(o.expiresIn > 0)) throw new SwpkgError('E_USAGE', 'the system release must expire in the future (--expires)');
  if (version <= previous) {
    throw new SwpkgError('E_ROLLBACK', `system release ${version} for ${o.arch} is not newer than the published ${previous}`, {
      hint: 'omit --version to publish the next one',
      details: { offered: version, published: previous },
    });
  }
  const dir = `system/${o.arch}/${version}`;
  const artifacts = {} as SystemReleaseSigned['artifacts'];
  for (const name of ['kernel', 'initramfs', 'base'] as const) {
    const facts = await sha256File(o.files[name]).catch((e: unknown) => Promise.reject(fromFsError(e, o.files[name])));
    artifacts[name] = { path: `${dir}/${SYSTEM_ARTIFACT_FILES[name]}`, size: facts.size, sha256: facts.sha256 };
  }
  const signed: SystemReleaseSigned = {
    type: 'system',
    format: SYSTEM_RELEASE_FORMAT,
    repo,
    version,
    arch: o.arch,
    minClientFormat: SYSTEM_RELEASE_MIN_CLIENT_FORMAT,
    generated: now.toISOString(),
    expires: new Date(now.getTime() + o.expiresIn * 1000).toISOString(),
    artifacts,
  };
  const doc = signSystemRelease(signed, o.keys);
  const bytes = encodeEnvelope(doc);
  // The client's own gate, run by the publisher: a key the root does not trust as a release key fails here, before any write.
  verifySystemRelease(bytes, { root, now, arch: o.arch, repo });

  const target = join(o.out, dir);
  if (existsSync(target)) {
    throw new SwpkgError('E_IMMUTABLE', `${dir} already exists; a published version is never rewritten`, { details: { path: target } });
  }
  await mkdir(target, { recursive: true });
  for (const name of ['kernel', 'initramfs', 'base'] as const) {
    await copyVerified(o.files[name], join(target, SYSTEM_ARTIFACT_FILES[name]), artifacts[name]);
  }
  const tmp = join(o.out, `${docPath}.tmp-${process.pid}`);
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(o.out, docPath));
  } catch (e) {
    await rm(tmp, { force: true });
    throw fromFsError(e, `writing ${docPath}`);
  }
  return { path: docPath, version, arch: o.arch, repo, artifacts };
}
