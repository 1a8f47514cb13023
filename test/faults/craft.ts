import { gunzipSync, gzipSync } from 'node:zlib';
import {
  canonicalBytes,
  encodeDetachedSignature,
  encodeEnvelope,
  padding,
  parseCatalog,
  sha256Hex,
  signCatalog,
  signEnvelope,
  tarHeader,
  TAR_END,
  PAYLOAD_TYPES,
  type CatalogPackage,
  type KeyPair,
} from '../../catalog/index.js';
import type { FakeRepo } from '../helpers/fake-repo.js';

/**
 * Malformed packages our writer refuses to produce (STYLE rule 12: static or
 * hand-made fixtures only for those), built with the product's own tar
 * header code so only the part under test is wrong.
 */
export interface CraftEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode?: number;
  content?: string;
  target?: string;
}

/** `.SWPKG/signature.json` bytes: `key` signs `manifestBytes`; `claimKeyid` puts another key's id on the signature (a forgery). */
export function craftSignature(manifestBytes: Uint8Array, key: KeyPair, claimKeyid?: string): Buffer {
  const env = signEnvelope(PAYLOAD_TYPES.manifest, manifestBytes, [key]);
  const signatures = env.signatures.map((s) => ({ keyid: claimKeyid ?? s.keyid, sig: s.sig }));
  return encodeDetachedSignature({ payloadType: env.payloadType, signatures });
}

/**
 * `manifest` is written as canonical JSON unless `manifestBytes` gives the
 * exact entry bytes; `signature` is the exact `.SWPKG/signature.json` bytes.
 */
export function craftSwpkg(o: { manifest: unknown; manifestBytes?: Uint8Array; signature?: Uint8Array; entries: CraftEntry[] }): Buffer {
  const parts: Buffer[] = [];
  const add = (path: string, type: CraftEntry['type'], mode: number, data?: Buffer, linkTarget?: string): void => {
    parts.push(tarHeader({ path, type, mode, size: data?.length ?? 0, mtime: 0, ...(linkTarget !== undefined ? { linkTarget } : {}) }));
    if (data) parts.push(data, padding(data.length));
  };
  const m = Buffer.from(o.manifestBytes ?? canonicalBytes(o.manifest));
  add('.SWPKG/manifest.json', 'file', 0o644, m);
  if (o.signature) add('.SWPKG/signature.json', 'file', 0o644, Buffer.from(o.signature));
  for (const e of o.entries)
    add(
      e.path,
      e.type,
      e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644),
      e.type === 'file' ? Buffer.from(e.content ?? '') : undefined,
      e.target,
    );
  parts.push(TAR_END);
  return gzipSync(Buffer.concat(parts));
}

/** A manifest for `files` as the reader expects (sorted, hashed, sized). */
export function craftManifest(
  name: string,
  version: string,
  files: CraftEntry[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const list = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((f) =>
      f.type === 'file'
        ? {
            path: f.path,
            type: 'file',
            mode: f.mode ?? 0o644,
            size: Buffer.byteLength(f.content ?? ''),
            sha256: sha256Hex(f.content ?? ''),
          }
        : f.type === 'dir'
          ? { path: f.path, type: 'dir', mode: f.mode ?? 0o755 }
          : { path: f.path, type: 'symlink', mode: 0o777, target: f.target },
    );
  return {
    format: 1,
    name,
    version,
    arch: 'x86_64',
    abi: 'linux-musl-static',
    summary: `crafted ${name}`,
    license: 'MIT',
    depends: {},
    provides: [],
    conflicts: [],
    installedSize: list.reduce((n, f) => n + ((f as { size?: number }).size ?? 0), 0),
    files: list,
    ...extra,
  };
}

/** The installedSize a crafted package's manifest (its first tar entry) declares, or 0 when it has none. */
function declaredInstalledSize(bytes: Buffer): number {
  try {
    const tar = gunzipSync(bytes);
    const size = parseInt(tar.subarray(124, 136).toString('ascii').replace(/\0.*$/, '').trim(), 8);
    const m = JSON.parse(tar.subarray(512, 512 + size).toString('utf8')) as { installedSize?: unknown };
    return typeof m.installedSize === 'number' ? m.installedSize : 0;
  } catch {
    return 0;
  }
}

/**
 * Lists `bytes` in the repository's catalog under `entry` (a new catalog
 * version signed by the repository's real key) and serves the file: the
 * client accepts the catalog, so only the package's own checks can refuse it.
 */
export async function serveCrafted(
  repo: FakeRepo,
  bytes: Buffer,
  entry: Pick<CatalogPackage, 'name' | 'version'> & Partial<CatalogPackage>,
): Promise<void> {
  const doc = parseCatalog(await repo.bytes('catalog.json'));
  const path = entry.path ?? `packages/${entry.name}-${entry.version}-x86_64.swpkg`;
  const pkg: CatalogPackage = {
    arch: 'x86_64',
    abi: 'linux-musl-static',
    depends: {},
    provides: [],
    conflicts: [],
    size: bytes.length,
    installedSize: declaredInstalledSize(bytes),
    sha256: sha256Hex(bytes),
    summary: 'crafted',
    license: 'MIT',
    ...entry,
    path,
  };
  const signed = { ...doc.signed, version: doc.signed.version + 1, packages: [...doc.signed.packages, pkg] };
  repo.table.set('catalog.json', { body: encodeEnvelope(signCatalog(signed, [repo.key])) });
  repo.table.set(path, { body: bytes });
}
