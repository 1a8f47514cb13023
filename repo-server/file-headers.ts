import { extname } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.swpkg': 'application/octet-stream',
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.pub': 'text/plain; charset=utf-8',
  '.sha256': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.gz': 'application/gzip',
  '.tar': 'application/x-tar',
};

/** Content-Type by file extension; unknown extensions are opaque bytes (with nosniff sent alongside). */
export function contentTypeFor(name: string): string {
  return CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/** Packages never change once published (DESIGN.md: NAME-VERSION-ARCH is immutable). */
export const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Metadata changes on every publish: caches must revalidate (cheap with ETag → 304). */
export const REVALIDATE = 'no-cache';

/**
 * The Cache-Control policy of a published root (DESIGN.md "Static web root"):
 * `packages/*` (packages and their sidecars) are immutable; everything else —
 * catalog.json and its sidecar, hosted-repo.json, repo-root.pub, index.html and
 * roots/N.json (a client probes roots/N+1 until a 404, so a cached answer would
 * hide a rotation) — is revalidated on every use.
 */
export function defaultCacheControl(segments: readonly string[]): string {
  if (segments.length >= 2 && segments[0] === 'packages') return IMMUTABLE;
  return REVALIDATE;
}

/**
 * Strong entity tag from what identifies one version of a file: size, mtime in
 * nanoseconds and inode. Publishing replaces files by rename, which changes the
 * inode, so a same-size rewrite inside one mtime tick still gets a new tag.
 */
export function etagFor(stat: { size: bigint; mtimeNs: bigint; ino: bigint }): string {
  return `"${stat.size.toString(16)}-${stat.mtimeNs.toString(16)}-${stat.ino.toString(16)}"`;
}

/** Splits an If-None-Match / If-Match list into entity tags (`*` stays `*`). */
export function parseEtagList(header: string): string[] {
  const out: string[] = [];
  const re = /\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(header)) !== null) {
    if (m[1] !== undefined) out.push(m[1]);
    if (re.lastIndex >= header.length) break;
  }
  return out;
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2). */
export function noneMatchHits(header: string, etag: string): boolean {
  return parseEtagList(header).some((t) => t === '*' || opaque(t) === opaque(etag));
}

/**
 * If-Range (RFC 9110 §13.1.5): an entity tag must match strongly (a weak tag never
 * does); an HTTP-date must equal Last-Modified exactly. Anything else means "send
 * the whole file", which is always safe.
 */
export function ifRangeHolds(header: string, etag: string, lastModified: string): boolean {
  const v = header.trim();
  if (v.startsWith('W/')) return false;
  if (v.startsWith('"')) return v === etag;
  const when = Date.parse(v);
  return !Number.isNaN(when) && when === Date.parse(lastModified);
}
