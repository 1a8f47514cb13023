/**
 * What a `Range` request header asks of a representation of `size` bytes
 * (RFC 9110 §14): one satisfiable byte range, an unsatisfiable one (→ 416),
 * or nothing usable (→ ignore the header and send 200 with the whole file).
 */
export type RangeRequest =
  | { kind: 'none'; reason: 'absent' | 'malformed' | 'multiple' | 'unit' }
  | { kind: 'range'; start: number; end: number /* inclusive */ }
  | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^(\d*)-(\d*)$/;

/**
 * Parses a `Range` header against a file of `size` bytes.
 *
 * Contract (RFC 9110 §14.1.1, §14.2, §15.5.17):
 * - `bytes=a-b` → [a, min(b, size-1)]; `bytes=a-` → [a, size-1]; `bytes=-n` → the last n bytes
 *   (the whole file when n ≥ size).
 * - a first-pos at or beyond the end, `bytes=-0`, or any suffix range of an empty file is
 *   unsatisfiable (416 with `Content-Range: bytes *\/size`).
 * - a syntactically invalid header (last-pos < first-pos, non-digits, a unit other than bytes,
 *   an empty spec) and a multi-range request are ignored: the server sends 200 with the whole
 *   representation, which §14.2 allows for any Range it chooses not to honour. We never send
 *   multipart/byteranges: clients of this server resume single downloads, and multi-range is
 *   a well-known amplification vector.
 * - numbers are attacker-controlled and may exceed 2^53: they are compared as JS numbers,
 *   which only loses precision far beyond any real file size (a huge first-pos stays
 *   ≥ size, a huge last-pos stays clamped), so no BigInt is needed.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none', reason: 'absent' };
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'none', reason: 'malformed' };
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none', reason: 'unit' };
  const set = header.slice(eq + 1);
  if (set.includes(',')) return { kind: 'none', reason: 'multiple' };
  const m = SINGLE_RANGE.exec(set.trim());
  if (!m) return { kind: 'none', reason: 'malformed' };
  const first = m[1] ?? '';
  const last = m[2] ?? '';
  if (first === '' && last === '') return { kind: 'none', reason: 'malformed' };

  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '') {
    const end = Number(last);
    if (end < start) return { kind: 'none', reason: 'malformed' };
    if (start >= size) return { kind: 'unsatisfiable' };
    return { kind: 'range', start, end: Math.min(end, size - 1) };
  }
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: size - 1 };
}
