import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  fromFsError,
  assertNotExpired,
  openVerifiedCatalog,
  parseEnvelope,
  payloadSha256,
  sha256Hex,
  PAYLOAD_TYPES,
  type CatalogDocument,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { readJsonIfExists, writeFileAtomic, listDir } from './fs-util.js';

/**
 * What the client last accepted for a repository (`db/catalogs/<repo>.json`).
 * The catalog bytes live beside it, content-addressed
 * (`<repo>-<sha256>.catalog`): they are written first and this small state
 * file is renamed over the old one last, so a crash leaves either the old
 * accepted catalog or the new one, never a mix.
 */
export interface CatalogState {
  format: 1;
  repo: string;
  version: number;
  /** SHA-256 of the stored envelope bytes (names the file beside this state). */
  sha256: string;
  /** SHA-256 of the signed payload: what equivocation compares. Absent in state written before envelopes. */
  payloadSha256?: string;
  expires: string;
  generated: string;
  acceptedAt: string;
  rootVersion: number;
  source: string;
  packages: number;
}

function statePath(ctx: PkgContext, repo: string): string {
  return join(ctx.paths.catalogsDir, `${repo}.json`);
}

function bytesPath(ctx: PkgContext, repo: string, sha256: string): string {
  return join(ctx.paths.catalogsDir, `${repo}-${sha256}.catalog`);
}

export async function readCatalogState(ctx: PkgContext, repo: string): Promise<CatalogState | undefined> {
  const v = (await readJsonIfExists(statePath(ctx, repo))) as CatalogState | undefined;
  if (v === undefined) return undefined;
  if (!v || v.format !== 1 || typeof v.version !== 'number' || typeof v.sha256 !== 'string') {
    throw new SwpkgError('E_STORE', `${statePath(ctx, repo)} is damaged`, {
      hint: `run \`pkg update\`; if it persists remove the file (the rollback protection for ${repo} restarts from the next catalog)`,
      details: { path: statePath(ctx, repo) },
    });
  }
  return v;
}

/** Records a verified catalog as the last accepted one for `repo`. */
export async function saveAcceptedCatalog(
  ctx: PkgContext,
  repo: string,
  bytes: Uint8Array,
  doc: CatalogDocument,
  o: { rootVersion: number; source: string },
): Promise<CatalogState> {
  const sha256 = sha256Hex(bytes);
  const previous = await readCatalogState(ctx, repo);
  await writeFileAtomic(bytesPath(ctx, repo, sha256), bytes);
  const state: CatalogState = {
    format: 1,
    repo,
    version: doc.signed.version,
    sha256,
    payloadSha256: payloadSha256(doc),
    expires: doc.signed.expires,
    generated: doc.signed.generated,
    acceptedAt: ctx.now().toISOString(),
    rootVersion: o.rootVersion,
    source: o.source,
    packages: doc.signed.packages.length,
  };
  await writeFileAtomic(statePath(ctx, repo), JSON.stringify(state, null, 2) + '\n');
  if (previous && previous.sha256 !== sha256) await rm(bytesPath(ctx, repo, previous.sha256), { force: true });
  return state;
}

export interface LoadedCatalog {
  repo: string;
  state: CatalogState;
  doc: CatalogDocument;
}

/**
 * Reads the accepted catalog of `repo` from disk. The bytes must hash to the
 * SHA-256 recorded when the catalog passed verifyCatalog (signatures,
 * thresholds, version, compatibility, structure): equal bytes are that
 * verified envelope, so its signatures are not checked again. With `fresh`, mutations also refuse it
 * once expired (a frozen repository must not keep serving installs); queries
 * skip that so `pkg search` works offline.
 */
export async function loadCatalog(ctx: PkgContext, repo: string, o: { fresh: boolean }): Promise<LoadedCatalog | undefined> {
  const state = await readCatalogState(ctx, repo);
  if (!state) return undefined;
  let bytes: Buffer;
  try {
    bytes = await readFile(bytesPath(ctx, repo, state.sha256));
  } catch (e) {
    throw fromFsError(e, `reading the accepted catalog of ${repo}`);
  }
  if (sha256Hex(bytes) !== state.sha256) {
    throw new SwpkgError('E_CORRUPT', `the stored catalog of ${repo} does not match its recorded SHA-256`, {
      hint: 'run `pkg update` to fetch it again',
      details: { repo, expected: state.sha256 },
    });
  }
  // Equal bytes are the verified envelope, so its signatures are not checked again; the payload is still parsed strictly.
  const doc = openVerifiedCatalog(parseEnvelope(bytes, PAYLOAD_TYPES.catalog, `catalog of ${repo}`));
  if (o.fresh) assertNotExpired(doc.signed.expires, ctx.now(), `catalog v${doc.signed.version} of ${repo}`);
  return { repo, state, doc };
}

/** True when the bytes the state points at are present and hash right (a damaged copy is rewritten by `pkg update`). */
export async function storedCatalogIntact(ctx: PkgContext, repo: string, state: CatalogState): Promise<boolean> {
  try {
    return sha256Hex(await readFile(bytesPath(ctx, repo, state.sha256))) === state.sha256;
  } catch {
    return false;
  }
}

/** Catalog files no state points at (a crash between the two writes); removed by the next writer. */
export async function strayCatalogFiles(ctx: PkgContext): Promise<string[]> {
  const names = await listDir(ctx.paths.catalogsDir);
  const keep = new Set<string>();
  for (const n of names) {
    if (!n.endsWith('.json') || n.startsWith('.')) continue;
    const repo = n.slice(0, -5);
    const s = await readCatalogState(ctx, repo).catch(() => undefined);
    if (s) keep.add(`${repo}-${s.sha256}.catalog`);
  }
  return names.filter((n) => (n.endsWith('.catalog') && !keep.has(n)) || n.startsWith('.tmp-')).map((n) => join(ctx.paths.catalogsDir, n));
}
