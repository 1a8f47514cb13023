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
  type CatalogPackage,
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
  /** SHA-256 of the indexed local form beside the bytes (`<repo>-<sha256>.index`). Absent in state written before it. */
  indexSha256?: string;
}

function statePath(ctx: PkgContext, repo: string): string {
  return join(ctx.paths.catalogsDir, `${repo}.json`);
}

function bytesPath(ctx: PkgContext, repo: string, sha256: string): string {
  return join(ctx.paths.catalogsDir, `${repo}-${sha256}.catalog`);
}

/** Named after the envelope it was made from, so a state never pairs an index with another catalog. */
function indexPath(ctx: PkgContext, repo: string, sha256: string): string {
  return join(ctx.paths.catalogsDir, `${repo}-${sha256}.index`);
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
  const index = encodeCatalogIndex(doc, sha256);
  await writeFileAtomic(indexPath(ctx, repo, sha256), index);
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
    indexSha256: sha256Hex(index),
  };
  // The state is renamed in last: a crash before it leaves the old state, its bytes and index intact.
  await writeFileAtomic(statePath(ctx, repo), JSON.stringify(state, null, 2) + '\n');
  if (previous && previous.sha256 !== sha256) {
    await rm(bytesPath(ctx, repo, previous.sha256), { force: true });
    await rm(indexPath(ctx, repo, previous.sha256), { force: true });
  }
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

/**
 * True when the bytes the state points at are present and hash right, and so does their index (a
 * damaged copy, or a state written before indexes, is rewritten by `pkg update`).
 */
export async function storedCatalogIntact(ctx: PkgContext, repo: string, state: CatalogState): Promise<boolean> {
  try {
    if (state.indexSha256 === undefined || sha256Hex(await readFile(indexPath(ctx, repo, state.sha256))) !== state.indexSha256)
      return false;
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
    if (s) {
      keep.add(`${repo}-${s.sha256}.catalog`);
      keep.add(`${repo}-${s.sha256}.index`);
    }
  }
  return names
    .filter((n) => ((n.endsWith('.catalog') || n.endsWith('.index')) && !keep.has(n)) || n.startsWith('.tmp-'))
    .map((n) => join(ctx.paths.catalogsDir, n));
}

/**
 * The indexed local form of a verified catalog: one JSON header line, then one line per entry in the
 * catalog's order. The header maps each name, and each name a provide offers, to the byte ranges of
 * its entries, so a command reads the entries it needs and parses nothing else (65 000 entries take
 * about half a second to parse and check; a request touches a few hundred). Written from the
 * verified, validated document, so an entry read back is what verifyCatalog accepted; the state's
 * SHA-256 over the whole file catches a damaged copy.
 */
interface IndexHeader {
  format: 1;
  /** SHA-256 of the envelope this index was made from. */
  catalogSha256: string;
  version: number;
  expires: string;
  /** name → [start, length] of each entry line with that name, in catalog order (starts relative to the first entry line). */
  names: Record<string, [number, number][]>;
  /** A provided name (without `@VERSION`) → the names of the entries providing it. */
  provides: Record<string, string[]>;
}

function encodeCatalogIndex(doc: CatalogDocument, catalogSha256: string): Buffer {
  const names: Record<string, [number, number][]> = Object.create(null) as Record<string, [number, number][]>;
  const provides: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  const lines: Buffer[] = [];
  let at = 0;
  for (const p of doc.signed.packages) {
    const line = Buffer.from(`${JSON.stringify(p)}\n`);
    (names[p.name] ??= []).push([at, line.length]);
    for (const v of p.provides) {
      const virt = v.includes('@') ? v.slice(0, v.indexOf('@')) : v;
      const list = (provides[virt] ??= []);
      if (!list.includes(p.name)) list.push(p.name);
    }
    lines.push(line);
    at += line.length;
  }
  const header: IndexHeader = { format: 1, catalogSha256, version: doc.signed.version, expires: doc.signed.expires, names, provides };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), ...lines]);
}

/** An accepted catalog opened through its index: entries are parsed only when asked for. */
export interface CatalogIndex {
  repo: string;
  state: CatalogState;
  /** Every entry named `name`, in catalog order, with its position in the catalog (for ordering across names). */
  entries(name: string): { at: number; pkg: CatalogPackage }[];
  /** Names of the entries that provide `name`. */
  providers(name: string): readonly string[];
  /** Does the catalog list any entry under this name? */
  has(name: string): boolean;
}

/**
 * Opens the index of `repo`'s accepted catalog. Undefined when there is none to use (never updated,
 * or a state written before indexes): the caller then loads the whole catalog (loadCatalog). A
 * missing or damaged index is refused as damaged catalog bytes are (E_CORRUPT; `pkg update` writes
 * it again). With `fresh`, an expired catalog is refused as loadCatalog refuses it.
 */
export async function openCatalogIndex(ctx: PkgContext, repo: string, o: { fresh: boolean }): Promise<CatalogIndex | undefined> {
  const state = await readCatalogState(ctx, repo);
  if (!state?.indexSha256) return undefined;
  const damaged = (): SwpkgError =>
    new SwpkgError('E_CORRUPT', `the stored index of the catalog of ${repo} is missing or does not match its recorded SHA-256`, {
      hint: 'run `pkg update` to write it again',
      details: { repo, expected: state.indexSha256 },
    });
  let bytes: Buffer;
  try {
    bytes = await readFile(indexPath(ctx, repo, state.sha256));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw damaged();
    throw fromFsError(e, `reading the catalog index of ${repo}`);
  }
  if (sha256Hex(bytes) !== state.indexSha256) throw damaged();
  const nl = bytes.indexOf(10);
  const header = JSON.parse(bytes.toString('utf8', 0, nl)) as IndexHeader;
  // Equal bytes are what saveAcceptedCatalog wrote for this very catalog; the check guards against a format change.
  if (header.format !== 1 || header.catalogSha256 !== state.sha256) throw damaged();
  if (o.fresh) assertNotExpired(header.expires, ctx.now(), `catalog v${header.version} of ${repo}`);
  const base = nl + 1;
  const cache = new Map<string, { at: number; pkg: CatalogPackage }[]>();
  const has = (name: string): boolean => Object.hasOwn(header.names, name);
  return {
    repo,
    state,
    has,
    entries(name) {
      if (!has(name)) return [];
      let got = cache.get(name);
      if (!got) {
        got = header.names[name]!.map(([start, length]) => ({
          at: start,
          pkg: JSON.parse(bytes.toString('utf8', base + start, base + start + length)) as CatalogPackage,
        }));
        cache.set(name, got);
      }
      return got;
    },
    providers: (name) => (Object.hasOwn(header.provides, name) ? header.provides[name]! : []),
  };
}
