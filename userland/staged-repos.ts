import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  NAME_RE,
  SHA256_HEX,
  assertKnownFields,
  checkThreshold,
  isJsonObject,
  parseRoot,
  parseStrictJson,
  rootFingerprint,
  type RootDocument,
} from '../catalog/index.js';

/**
 * A repository the image staged: `STAGED_DIR/NAME.json`, read-only
 * configuration that `pkg` reads beside its own `db/`. The file pins trust
 * the way `pkg repo add` does, either by the root document itself or by its
 * fingerprint (then the root is fetched from the URL at `pkg update` and must
 * match).
 *
 * ```json
 * {"format": 1, "url": "http://10.0.2.2:8080/", "mirrors": [], "fingerprint": "<64 hex>"}
 * {"format": 1, "url": "http://10.0.2.2:8080/", "root": {"payloadType": "...", "payload": "...", "signatures": [...]}}
 * ```
 */
export interface StagedRepo {
  name: string;
  url: string;
  mirrors: string[];
  /** SHA-256 of the staged root's payload (given, or computed from `root`). */
  fingerprint: string;
  /** The staged root document, when the file carries it rather than only its fingerprint. */
  root?: RootDocument;
  /** The file it came from. */
  file: string;
  /** The file's modification time (the image's build epoch): when the image pinned it. */
  stagedAt: string;
}

/** What a staged file may say; `stagedRepoFile` writes it, `readStagedRepos` reads it. */
export interface StagedRepoSpec {
  url: string;
  mirrors?: string[];
  fingerprint?: string;
  /** The root document's bytes (`repo-root.pub`), checked before it is written. */
  rootBytes?: Uint8Array;
}

export const STAGED_REPO_FORMAT = 1;
/** A root envelope is a few KiB; the cap bounds what a damaged image can make pkg read. */
const MAX_STAGED_FILE_BYTES = 1024 * 1024;
const FIELDS = ['format', 'url', 'mirrors', 'fingerprint', 'root'] as const;

function bad(file: string, check: string, message: string, cause?: unknown): SwpkgError {
  return new SwpkgError('E_BAD_CONFIG', `staged repository file ${file}: ${message}`, {
    hint: 'the image carries this file read-only: rebuild the image with a correct staged repository, or point PKG_STAGED_REPOS_DIR at a corrected copy',
    details: { path: file, check },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A base URL as `pkg repo add` keeps it (http or https, one trailing slash), or undefined. */
export function normaliseRepoUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  return u.toString().replace(/\/?$/, '/');
}

/**
 * Checks and parses one staged file's bytes. Every failure is E_BAD_CONFIG
 * naming the file, with `details.check` the rule (the strict parser's own code
 * for bytes that are not strict JSON, a root's code for a bad root).
 */
export function parseStagedRepo(bytes: Uint8Array, name: string, file: string, stagedAt: string): StagedRepo {
  let v: unknown;
  try {
    v = parseStrictJson(bytes, file);
  } catch (e) {
    if (e instanceof SwpkgError) throw bad(file, e.code, e.message, e);
    throw e;
  }
  if (!isJsonObject(v)) throw bad(file, 'not-object', 'is not a JSON object');
  try {
    assertKnownFields(v, FIELDS, file);
  } catch (e) {
    if (e instanceof SwpkgError) throw bad(file, e.code, e.message, e);
    throw e;
  }
  if (v['format'] !== STAGED_REPO_FORMAT) throw bad(file, 'format', `format must be ${STAGED_REPO_FORMAT}`);
  const url = typeof v['url'] === 'string' ? normaliseRepoUrl(v['url']) : undefined;
  if (url === undefined) throw bad(file, 'url', 'url must be an http:// or https:// URL');
  const rawMirrors = v['mirrors'] ?? [];
  if (!Array.isArray(rawMirrors)) throw bad(file, 'mirrors', 'mirrors must be a list of URLs');
  const mirrors: string[] = [];
  for (const m of rawMirrors) {
    const n = typeof m === 'string' ? normaliseRepoUrl(m) : undefined;
    if (n === undefined) throw bad(file, 'mirrors', `mirror ${JSON.stringify(m)} is not an http:// or https:// URL`);
    mirrors.push(n);
  }
  const fp = v['fingerprint'];
  const rawRoot = v['root'];
  if ((fp === undefined) === (rawRoot === undefined)) throw bad(file, 'trust', 'give exactly one of fingerprint and root');
  if (fp !== undefined) {
    if (typeof fp !== 'string' || !SHA256_HEX.test(fp)) throw bad(file, 'fingerprint', 'fingerprint must be 64 lowercase hex digits');
    return { name, url, mirrors, fingerprint: fp, file, stagedAt };
  }
  if (!isJsonObject(rawRoot)) throw bad(file, 'root', 'root must be a root document (a signed envelope)');
  let root: RootDocument;
  try {
    // The strict parse above already refused duplicates and unsafe numbers; the envelope's own checks run on its text again.
    root = parseRoot(Buffer.from(JSON.stringify(rawRoot)), `${file} root`);
    checkThreshold(root, root.signed.roles.root, root.signed.keys, `${file} root`);
  } catch (e) {
    if (e instanceof SwpkgError) throw bad(file, e.code, e.message, e);
    throw e;
  }
  return { name, url, mirrors, fingerprint: rootFingerprint(root), root, file, stagedAt };
}

/**
 * Every repository staged in `dir`, sorted by name. A missing folder stages
 * none. Dotfiles are skipped (editor and install leftovers); any other entry
 * must be `NAME.json`, a regular file: a misnamed one is refused rather than
 * ignored, so a typo cannot silently drop a repository the image meant to trust.
 */
export async function readStagedRepos(dir: string): Promise<StagedRepo[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw bad(dir, 'read', `cannot be read (${code ?? String(e)})`, e);
  }
  const out: StagedRepo[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.')) continue;
    const file = join(dir, n);
    const name = n.endsWith('.json') ? n.slice(0, -'.json'.length) : '';
    if (!NAME_RE.test(name)) throw bad(file, 'file-name', 'the name must be NAME.json, NAME 1-64 characters of a-z, 0-9, +, ., _, -');
    let bytes: Buffer;
    let mtime: Date;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw bad(file, 'file-type', 'is not a regular file');
      if (st.size > MAX_STAGED_FILE_BYTES) throw bad(file, 'size', `is ${st.size} bytes; at most ${MAX_STAGED_FILE_BYTES}`);
      mtime = st.mtime;
      bytes = await readFile(file);
    } catch (e) {
      if (e instanceof SwpkgError) throw e;
      throw bad(file, 'read', `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e);
    }
    out.push(parseStagedRepo(bytes, name, file, mtime.toISOString()));
  }
  return out;
}

/**
 * The bytes of a staged repository file, for the image builder. Checks what
 * `readStagedRepos` checks (a root file must parse and carry a threshold of
 * its own root keys), so an image never ships a file its client refuses.
 * Deterministic: the same spec gives the same bytes.
 */
export function stagedRepoFile(name: string, spec: StagedRepoSpec): Buffer {
  if (!NAME_RE.test(name)) {
    throw new SwpkgError('E_USAGE', `repository name ${JSON.stringify(name)} must be 1-64 characters of a-z, 0-9, +, ., _, -`, {
      details: { name },
    });
  }
  const url = normaliseRepoUrl(spec.url);
  if (url === undefined)
    throw new SwpkgError('E_USAGE', `${JSON.stringify(spec.url)} is not an http:// or https:// URL`, { details: { url: spec.url } });
  const mirrors = (spec.mirrors ?? []).map((m) => {
    const n = normaliseRepoUrl(m);
    if (n === undefined)
      throw new SwpkgError('E_USAGE', `mirror ${JSON.stringify(m)} is not an http:// or https:// URL`, { details: { url: m } });
    return n;
  });
  if ((spec.fingerprint === undefined) === (spec.rootBytes === undefined)) {
    throw new SwpkgError('E_USAGE', `staging ${name} needs exactly one of a root file and a fingerprint`, { details: { name } });
  }
  const doc: Record<string, unknown> = { format: STAGED_REPO_FORMAT, url, mirrors };
  if (spec.fingerprint !== undefined) {
    const fp = spec.fingerprint.toLowerCase();
    if (!SHA256_HEX.test(fp)) {
      throw new SwpkgError('E_USAGE', 'a staged fingerprint must be 64 hex digits (SHA-256 of the root)', {
        details: { fingerprint: spec.fingerprint },
      });
    }
    doc['fingerprint'] = fp;
  } else {
    const root = parseRoot(spec.rootBytes!, `root of ${name}`);
    checkThreshold(root, root.signed.roles.root, root.signed.keys, `root of ${name}`);
    doc['root'] = JSON.parse(Buffer.from(spec.rootBytes!).toString('utf8')) as unknown;
  }
  const bytes = Buffer.from(JSON.stringify(doc, null, 2) + '\n');
  // Round trip: what the builder writes is what the client accepts.
  parseStagedRepo(bytes, name, `${name}.json`, new Date(0).toISOString());
  return bytes;
}
