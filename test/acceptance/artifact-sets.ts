import { existsSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sha256Hex } from '../../catalog/index.js';

/** The files of an artifact set (images/build-images.ts ARTIFACT_FILES). */
const SET_FILES = ['vmlinuz', 'initramfs.cpio.gz', 'base.img', 'store.img', 'manifest.json'];

export interface DeploymentRecord {
  current: { manifestSha256: string; at: string } | null;
  /** The artifact set that was in place before the current one, kept for rollback. */
  previous: { manifestSha256: string; dir: string; at: string } | null;
}

function setsDir(artifactsDir: string): string {
  return join(dirname(artifactsDir), `${basename(artifactsDir)}.sets`);
}

async function manifestSha(artifactsDir: string): Promise<string | null> {
  try {
    return sha256Hex(await readFile(join(artifactsDir, 'manifest.json')));
  } catch {
    return null;
  }
}

async function readRecord(artifactsDir: string): Promise<DeploymentRecord> {
  try {
    return JSON.parse(await readFile(join(setsDir(artifactsDir), 'deployed.json'), 'utf8')) as DeploymentRecord;
  } catch {
    return { current: null, previous: null };
  }
}

/**
 * Before a build: hard links of the set now in place, under
 * `<artifacts>.sets/<manifest-sha>/`. The image builder replaces files by
 * rename, so the links keep the old bytes whatever the build writes.
 * Returns the snapshot's manifest hash (null when there is no set yet).
 */
export async function snapshotArtifactSet(artifactsDir: string): Promise<string | null> {
  const sha = await manifestSha(artifactsDir);
  if (sha === null) return null;
  const dir = join(setsDir(artifactsDir), sha.slice(0, 16));
  if (existsSync(join(dir, 'manifest.json'))) return sha;
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const f of SET_FILES) {
    if (existsSync(join(artifactsDir, f))) await link(join(artifactsDir, f), join(tmp, f));
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return sha;
}

/**
 * After a build: when the set changed, the snapshot becomes the rollback
 * set; otherwise the earlier rollback set stays. Every other snapshot is
 * deleted, so at most one old set is kept beside the current one.
 */
export async function settleArtifactSets(artifactsDir: string, before: string | null): Promise<DeploymentRecord> {
  const after = await manifestSha(artifactsDir);
  const rec = await readRecord(artifactsDir);
  const now = new Date().toISOString();
  let previous = rec.previous && existsSync(join(rec.previous.dir, 'manifest.json')) ? rec.previous : null;
  if (before !== null && after !== null && before !== after) {
    previous = { manifestSha256: before, dir: join(setsDir(artifactsDir), before.slice(0, 16)), at: now };
  }
  const current = after === null ? null : rec.current?.manifestSha256 === after ? rec.current : { manifestSha256: after, at: now };
  const out: DeploymentRecord = { current, previous };
  const sd = setsDir(artifactsDir);
  if (existsSync(sd)) {
    for (const n of await readdir(sd)) {
      const p = join(sd, n);
      if (n === 'deployed.json' || p === previous?.dir) continue;
      await rm(p, { recursive: true, force: true });
    }
  }
  await mkdir(sd, { recursive: true });
  await writeFile(join(sd, 'deployed.json'), JSON.stringify(out, null, 2) + '\n');
  return out;
}
