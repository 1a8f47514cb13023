import { closeSync, mkdirSync, openSync, readSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { dirname, join } from 'node:path';
import {
  SwpkgError,
  fromFsError,
  assertNotExpired,
  openVerifiedCatalog,
  parseEnvelope,
  sha256Hex,
  PAYLOAD_TYPES,
  NAME_RE,
  type CatalogDocument,
  type CatalogPackage,
  type VerifiedCatalogSummary,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { readJsonIfExists, writeFileAtomic, listDir } from './fs-util.js';
import { commitFile, tempPathFor } from '../catalog/index.js';

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
  /** SHA-256 of that index's header and tables, checked each time it is opened (openCatalogIndex). */
  indexHeaderSha256?: string;
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

/**
 * Records a verified catalog as the last accepted one for `repo`: its bytes, the index built from
 * its entries as they were verified (CatalogIndexBuilder fed by verifyCatalogStream), then the state.
 */
export async function saveAcceptedCatalog(
  ctx: PkgContext,
  repo: string,
  fetched: { sha256: string; bytes: Iterable<Uint8Array> },
  catalog: VerifiedCatalogSummary,
  entries: CatalogIndexBuilder,
  o: { rootVersion: number; source: string },
): Promise<CatalogState> {
  const { sha256 } = fetched;
  const previous = await readCatalogState(ctx, repo);
  await writeFileAtomic(bytesPath(ctx, repo, sha256), fetched.bytes);
  const index = await entries.writeTo(indexPath(ctx, repo, sha256), sha256, catalog.signed);
  const state: CatalogState = {
    format: 1,
    repo,
    version: catalog.signed.version,
    sha256,
    payloadSha256: catalog.payloadSha256,
    expires: catalog.signed.expires,
    generated: catalog.signed.generated,
    acceptedAt: ctx.now().toISOString(),
    rootVersion: o.rootVersion,
    source: o.source,
    packages: catalog.packages,
    indexSha256: index.sha256,
    indexHeaderSha256: index.headSha256,
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

/** Size of the stored catalog bytes `sha256` names, or undefined when there are none. */
export async function storedSize(ctx: PkgContext, repo: string, sha256: string): Promise<number | undefined> {
  try {
    return (await stat(bytesPath(ctx, repo, sha256))).size;
  } catch {
    return undefined;
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
 * The indexed local form of a verified catalog: a header, two sorted tables, then one JSON line per
 * entry in the catalog's order. The tables map each name, and each name a provide offers, to where
 * its entries are, so a command reads the header and the entries it needs and parses nothing else
 * (65 000 entries take about half a second to parse and check; a request touches a few hundred).
 * The tables are looked up by binary search where they lie, not parsed: a 65 000-key object costs
 * tens of milliseconds to build. Written from the verified, validated document, so an entry read
 * back is what verifyCatalog accepted. Damage is caught without reading the whole file: the state
 * keeps the SHA-256 of everything before the entries (checked on every open) and the names table
 * each entry's CRC-32 (checked as it is read); `pkg update` checks the whole file (indexSha256).
 *
 *   <length of the header JSON, 10 digits>\n<header JSON>\n
 *   <names table: `NAME START:LENGTH:CRC32[,…]\n` per name, sorted by NAME's bytes>
 *   <provides table: `NAME PROVIDER[,…]\n` per provided name (without `@VERSION`), sorted>
 *   <entry JSON>\n<entry JSON>\n…          (START counts from the first entry)
 */
interface IndexHeader {
  format: 1;
  /** SHA-256 of the envelope this index was made from. */
  catalogSha256: string;
  version: number;
  expires: string;
  namesBytes: number;
  providesBytes: number;
}

const HEADER_DIGITS = 10;

/** Rows of `KEY VALUE\n`: every key and value is a NAME_RE name, so none holds a space, comma or newline. */
function table<V>(map: Map<string, V[]>, value: (v: V[]) => string): Buffer {
  // NAME_RE names are ASCII, so sorting the strings by UTF-16 unit is sorting their bytes, without a buffer per row.
  const keys = [...map.keys()].sort();
  return Buffer.from(keys.map((k) => `${k} ${value(map.get(k)!)}\n`).join(''));
}

/** START:LENGTH:CRC32 of each entry of a name, from the flat triples the builder keeps. */
function placesOf(triples: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < triples.length; i += 3) out.push(`${triples[i]}:${triples[i + 1]}:${triples[i + 2]!.toString(16)}`);
  return out.join(',');
}

/** Entry lines are packed into a buffer of this size (a line longer than it gets its own). */
const ENTRY_CHUNK = 1024 * 1024;

/**
 * Builds the index of a catalog from its entries one at a time, in catalog order, as
 * verifyCatalogStream hands them over. Only the tables stay in memory: the entry lines go through
 * one buffer into a temp file in the catalogs folder (`.tmp-…`, removed by discard, or by the next
 * writer after a crash, strayCatalogFiles), so the 27 MB of lines of a 65 000-entry catalog are
 * never held beside its bytes and payload. Entries arrive before verification ends: write the
 * index (writeTo) only once the catalog verified, and discard the builder in every case.
 */
export class CatalogIndexBuilder {
  /** Per name, START, LENGTH, CRC32 of each of its entries, flat: numbers kept in the array, not a string per entry. */
  private readonly names = new Map<string, number[]>();
  private readonly provides = new Map<string, string[]>();
  private chunk = Buffer.allocUnsafe(ENTRY_CHUNK);
  private used = 0;
  private at = 0;
  private fd: number | undefined;
  private readonly spill: string;
  private madeDir: string | undefined;

  constructor(private readonly dir: string) {
    this.spill = tempPathFor(join(dir, 'entries'));
  }

  add(p: CatalogPackage): void {
    const line = `${JSON.stringify(p)}\n`;
    // A UTF-16 unit is at most 3 bytes of UTF-8; the exact length is counted only near a chunk's end.
    if (this.used + line.length * 3 > this.chunk.length) {
      const need = Buffer.byteLength(line);
      if (this.used + need > this.chunk.length) {
        this.flush();
        if (need > this.chunk.length) this.chunk = Buffer.allocUnsafe(need);
      }
    }
    const n = this.chunk.write(line, this.used);
    const crc = crc32(this.chunk.subarray(this.used, this.used + n));
    const got = this.names.get(p.name);
    if (got) got.push(this.at, n, crc);
    else this.names.set(p.name, [this.at, n, crc]);
    this.used += n;
    this.at += n;
    for (const v of p.provides) {
      const virt = v.includes('@') ? v.slice(0, v.indexOf('@')) : v;
      // The schema takes any string here, but requests and dependencies are names (NAME_RE): another provide meets nothing.
      if (!NAME_RE.test(virt)) continue;
      const list = this.provides.get(virt) ?? [];
      if (!list.includes(p.name)) list.push(p.name);
      this.provides.set(virt, list);
    }
  }

  /** Synchronous: entries are handed over inside the (synchronous) verification. */
  private flush(): void {
    if (this.used === 0) return;
    if (this.fd === undefined) {
      // A folder made here is removed again by discard if nothing is kept: a refused update changes nothing.
      this.madeDir = mkdirSync(this.dir, { recursive: true }) === undefined ? undefined : this.dir;
      this.fd = openSync(this.spill, 'wx+', 0o644);
    }
    writeAll(this.fd, this.chunk.subarray(0, this.used));
    this.used = 0;
  }

  /**
   * Writes the whole index to `path` crash-safely (temp file, fsync, rename): header and tables,
   * then the entry lines. Returns its SHA-256 and that of its head (header and tables).
   */
  async writeTo(
    path: string,
    catalogSha256: string,
    signed: { version: number; expires: string },
  ): Promise<{ sha256: string; headSha256: string }> {
    this.flush();
    const namesTable = table(this.names, placesOf);
    const providesTable = table(this.provides, (v) => v.join(','));
    const header: IndexHeader = {
      format: 1,
      catalogSha256,
      version: signed.version,
      expires: signed.expires,
      namesBytes: namesTable.length,
      providesBytes: providesTable.length,
    };
    const json = Buffer.from(`${JSON.stringify(header)}\n`);
    const head = Buffer.concat([Buffer.from(`${String(json.length).padStart(HEADER_DIGITS, '0')}\n`), json, namesTable, providesTable]);
    const sha256 = createHash('sha256').update(head);
    const tmp = tempPathFor(path);
    let out: number | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true });
      out = openSync(tmp, 'wx', 0o644);
      writeAll(out, head);
      if (this.fd !== undefined) {
        // The entries' bytes, read back through the one buffer and hashed after the head, as the whole file is.
        let pos = 0;
        for (;;) {
          const n = readSync(this.fd, this.chunk, 0, this.chunk.length, pos);
          if (n === 0) break;
          const data = this.chunk.subarray(0, n);
          sha256.update(data);
          writeAll(out, data);
          pos += n;
        }
      }
      closeSync(out);
      out = undefined;
    } catch (e) {
      if (out !== undefined) closeSync(out);
      rmSync(tmp, { force: true });
      throw fromFsError(e, `writing ${path}`);
    }
    await commitFile(tmp, path);
    this.madeDir = undefined;
    return { sha256: sha256.digest('hex'), headSha256: sha256Hex(head) };
  }

  /** Removes the temp file of entries (and a catalogs folder it created for nothing). Safe to call twice. */
  discard(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      rmSync(this.spill, { force: true });
    }
    if (this.madeDir !== undefined) {
      try {
        rmdirSync(this.madeDir);
      } catch {
        // Not empty: something else was written there meanwhile, so it stays.
      }
      this.madeDir = undefined;
    }
  }
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off);
}

/** The value of `key` in a table of sorted `KEY VALUE\n` rows, by binary search over its bytes. */
function lookup(tbl: Buffer, key: string): string | undefined {
  const k = Buffer.from(key);
  let lo = 0;
  let hi = tbl.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const start = mid === 0 ? 0 : tbl.lastIndexOf(10, mid - 1) + 1;
    const space = tbl.indexOf(32, start);
    const end = tbl.indexOf(10, space);
    if (space < 0 || end < 0) return undefined;
    const c = Buffer.compare(tbl.subarray(start, space), k);
    if (c === 0) return tbl.toString('utf8', space + 1, end);
    if (c < 0) lo = end + 1;
    else hi = start;
  }
  return undefined;
}

/** An accepted catalog opened through its index: entries are read and parsed only when asked for. */
export interface CatalogIndex {
  repo: string;
  state: CatalogState;
  /** Every entry named `name`, in catalog order, with its position in the catalog (for ordering across names). */
  entries(name: string): Promise<{ at: number; pkg: CatalogPackage }[]>;
  /** Names of the entries that provide `name`. */
  providers(name: string): readonly string[];
  close(): Promise<void>;
}

/**
 * Opens the index of `repo`'s accepted catalog. Undefined when there is none to use (never updated,
 * or a state written before indexes): the caller then loads the whole catalog (loadCatalog). A
 * missing or damaged index is refused as damaged catalog bytes are (E_CORRUPT; `pkg update` writes
 * it again). With `fresh`, an expired catalog is refused as loadCatalog refuses it. The caller closes it.
 */
export async function openCatalogIndex(ctx: PkgContext, repo: string, o: { fresh: boolean }): Promise<CatalogIndex | undefined> {
  const state = await readCatalogState(ctx, repo);
  if (!state?.indexSha256 || !state.indexHeaderSha256) return undefined;
  const damaged = (): SwpkgError =>
    new SwpkgError('E_CORRUPT', `the stored index of the catalog of ${repo} is damaged or missing`, {
      hint: 'run `pkg update` to write it again',
      details: { repo, path: indexPath(ctx, repo, state.sha256) },
    });
  let fh: FileHandle;
  try {
    fh = await open(indexPath(ctx, repo, state.sha256), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw damaged();
    throw fromFsError(e, `reading the catalog index of ${repo}`);
  }
  const read = async (start: number, length: number): Promise<Buffer> => {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, start);
    if (bytesRead !== length) throw damaged();
    return buf;
  };
  try {
    const prefix = await read(0, HEADER_DIGITS + 1);
    const length = Number(prefix.toString('latin1', 0, HEADER_DIGITS));
    if (!Number.isSafeInteger(length) || length < 2 || prefix[HEADER_DIGITS] !== 10) throw damaged();
    const json = await read(HEADER_DIGITS + 1, length);
    const header = JSON.parse(json.toString('utf8')) as IndexHeader;
    if (!Number.isSafeInteger(header.namesBytes) || !Number.isSafeInteger(header.providesBytes)) throw damaged();
    const tables = await read(HEADER_DIGITS + 1 + length, header.namesBytes + header.providesBytes);
    if (sha256Hex(Buffer.concat([prefix, json, tables])) !== state.indexHeaderSha256) throw damaged();
    // Equal bytes are what saveAcceptedCatalog wrote for this very catalog; the check guards against a format change.
    if (header.format !== 1 || header.catalogSha256 !== state.sha256) throw damaged();
    if (o.fresh) assertNotExpired(header.expires, ctx.now(), `catalog v${header.version} of ${repo}`);
    const names = tables.subarray(0, header.namesBytes);
    const provides = tables.subarray(header.namesBytes);
    const base = HEADER_DIGITS + 1 + length + tables.length;
    return {
      repo,
      state,
      async entries(name) {
        const where = lookup(names, name);
        if (where === undefined) return [];
        const out: { at: number; pkg: CatalogPackage }[] = [];
        for (const w of where.split(',')) {
          const [start, len, crc] = w.split(':') as [string, string, string];
          const line = await read(base + Number(start), Number(len));
          if (crc32(line).toString(16) !== crc) throw damaged();
          out.push({ at: Number(start), pkg: JSON.parse(line.toString('utf8')) as CatalogPackage });
        }
        return out;
      },
      providers: (name) => lookup(provides, name)?.split(',') ?? [],
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
