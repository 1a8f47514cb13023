import canonicalizeImpl from 'canonicalize';
import { SwpkgError } from './errors.js';

/**
 * RFC 8785 (JCS) canonical form: the bytes every signature covers. Uses the
 * `canonicalize` package by the RFC's author so the RFC's test vectors apply.
 */
export function canonicalJson(value: unknown): string {
  const out: string | undefined = canonicalizeImpl(value);
  if (out === undefined) throw new SwpkgError('E_INVALID_JSON', 'value has no canonical JSON form');
  return out;
}

export function canonicalBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}

/** Parses JSON from untrusted bytes, turning syntax errors into E_INVALID_JSON with where it came from. */
export function parseJson(text: string | Uint8Array, what: string): unknown {
  const s = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: false }).decode(text);
  try {
    return JSON.parse(s) as unknown;
  } catch (e) {
    throw new SwpkgError('E_INVALID_JSON', `${what} is not valid JSON: ${(e as Error).message}`, {
      details: { what },
      cause: e,
    });
  }
}
