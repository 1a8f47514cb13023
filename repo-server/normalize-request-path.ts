/** The longest request target we look at; longer ones get 414 before any decoding. */
export const MAX_TARGET_LENGTH = 4096;

export type RequestPath =
  | {
      ok: true;
      /** Decoded path segments below ROOT; never empty strings, never starting with '.'. */
      segments: string[];
      /** The target ended with '/' (a folder was asked for). */
      directory: boolean;
    }
  | { ok: false; status: 400 | 404 | 414; reason: RequestPathRefusal };

export type RequestPathRefusal =
  | 'too-long'
  | 'not-origin-form'
  | 'bad-encoding'
  | 'encoded-separator'
  | 'nul'
  | 'control-character'
  | 'backslash'
  | 'dot-segment'
  | 'hidden';

const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;
// %2F and %5C would let a decoded segment carry a separator; %00 truncates paths in C.
const ENCODED_FORBIDDEN = /%(2f|5c|00)/i;
// C0 controls and DEL: never part of a file name we publish, and a log-injection vector.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Turns an HTTP request target (the raw `req.url`) into path segments below the
 * served root, or says why it is refused. The input is attacker-controlled.
 *
 * Contract:
 * - the path is percent-decoded exactly once; `%252e%252e` therefore names a file literally
 *   called `%2e%2e` and can never become `..`;
 * - refused with 400: a target that is not origin-form (or absolute-form http/https), bad
 *   percent-encoding, encoded `/` or `\` (`%2F`, `%5C`), NUL (`%00`), control characters,
 *   a literal backslash, and `.`/`..` segments however they are spelt (`..`, `%2e%2e`, `.%2E`);
 * - refused with 404: any segment starting with '.' (dotfiles and dot-folders such as `.git`),
 *   so their existence is not revealed;
 * - 414 for targets longer than MAX_TARGET_LENGTH;
 * - empty segments (`//`) are dropped; the query and fragment are ignored.
 * It does not look at the filesystem: symlinks are checked by the server against ROOT's realpath.
 */
export function normalizeRequestPath(target: string): RequestPath {
  if (target.length > MAX_TARGET_LENGTH) return refuse(414, 'too-long');
  let raw = target;
  const absolute = ABSOLUTE_FORM.exec(raw);
  if (absolute) raw = raw.slice(absolute[0].length) || '/';
  if (!raw.startsWith('/')) return refuse(400, 'not-origin-form');
  const cut = raw.search(/[?#]/);
  if (cut >= 0) raw = raw.slice(0, cut);

  if (CONTROL.test(raw)) return refuse(400, 'control-character');
  if (raw.includes('\\')) return refuse(400, 'backslash');
  const forbidden = ENCODED_FORBIDDEN.exec(raw);
  if (forbidden) return refuse(400, forbidden[1] === '00' ? 'nul' : 'encoded-separator');

  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return refuse(400, 'bad-encoding');
  }
  // Already excluded in encoded form above; kept as a second line in case a future edit
  // changes the decoding step.
  if (decoded.includes('\0')) return refuse(400, 'nul');
  if (CONTROL.test(decoded)) return refuse(400, 'control-character');
  if (decoded.includes('\\')) return refuse(400, 'backslash');

  const parts = decoded.split('/');
  const segments: string[] = [];
  for (const part of parts) {
    if (part === '') continue;
    if (part === '.' || part === '..') return refuse(400, 'dot-segment');
    if (part.startsWith('.')) return refuse(404, 'hidden');
    segments.push(part);
  }
  return { ok: true, segments, directory: decoded.endsWith('/') };
}

function refuse(status: 400 | 404 | 414, reason: RequestPathRefusal): RequestPath {
  return { ok: false, status, reason };
}

/** Re-encodes segments into an origin-form path (for Location headers and logs). */
export function encodePath(segments: readonly string[], directory: boolean): string {
  const body = segments.map((s) => encodeURIComponent(s)).join('/');
  if (body === '') return '/';
  return '/' + body + (directory ? '/' : '');
}
