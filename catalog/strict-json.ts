import { SwpkgError, type ErrorCode } from './errors.js';

/**
 * The one JSON parser for bytes that are signed or come from the network
 * (I-JSON, RFC 7493, made stricter): UTF-8 only (fatal decoder, no BOM),
 * no duplicate object keys at any depth, no lone surrogates (escaped ones
 * included), numbers only as safe integers (no fraction, no exponent, no
 * magnitude past 2^53), no `__proto__` key, bounded nesting. Every
 * violation is a verification refusal (exit 3) with a code naming it:
 * bytes from a server are never the user's mistake.
 *
 * `JSON.parse` keeps the last of two duplicate keys while other readers keep
 * the first, so a document could mean two things; that is why this parser
 * exists instead of a reviver. Objects are plain objects built by own-property
 * assignment, and `__proto__` (the one key whose assignment changes the
 * prototype) is refused, so no key has a prototype effect.
 */

/** Deep enough for every format here (catalog entries sit at depth 4), shallow enough to keep recursion far from the stack limit. */
const MAX_DEPTH = 32;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface Where {
  what: string;
}

function refuse(code: ErrorCode, w: Where, why: string, details: Record<string, unknown> = {}): SwpkgError {
  return new SwpkgError(code, `${w.what}: ${why}`, {
    hint: 'this document was not produced by swpkg or was altered on the way; do not use it, and tell the publisher if it persists',
    details: { what: w.what, ...details },
  });
}

/** Decodes bytes as UTF-8, refusing a BOM and any invalid sequence (E_ENCODING). */
export function decodeStrictUtf8(bytes: Uint8Array, what: string): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw refuse('E_ENCODING', { what }, 'starts with a byte order mark (BOM)', { reason: 'bom' });
  }
  try {
    return fatalUtf8.decode(bytes);
  } catch (e) {
    throw new SwpkgError('E_ENCODING', `${what}: is not valid UTF-8`, {
      hint: 'this document was not produced by swpkg or was altered on the way',
      details: { what, reason: 'utf8' },
      cause: e,
    });
  }
}

/** Parses untrusted JSON bytes under the rules above. */
export function parseStrictJson(bytes: Uint8Array, what: string): unknown {
  return parseStrictJsonText(decodeStrictUtf8(bytes, what), what);
}

/** The same rules over text already decoded strictly (a lone surrogate can only arrive escaped). */
export function parseStrictJsonText(text: string, what: string): unknown {
  return new StrictParser(text, what).parseDocument();
}

class StrictParser {
  private pos = 0;
  private readonly path: (string | number)[] = [];
  private readonly w: Where;

  constructor(
    private readonly s: string,
    what: string,
  ) {
    this.w = { what };
  }

  parseDocument(): unknown {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.s.length) throw this.syntax('unexpected data after the JSON value');
    return v;
  }

  private where(): string {
    return this.path.length === 0 ? '(top level)' : this.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
  }

  private syntax(why: string): SwpkgError {
    return refuse('E_MALFORMED', this.w, `is not valid JSON: ${why} at byte offset ~${this.pos}`, {
      reason: 'syntax',
      offset: this.pos,
      at: this.where(),
    });
  }

  private ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private value(depth: number): unknown {
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        throw this.syntax(Number.isNaN(c) ? 'unexpected end' : `unexpected character ${JSON.stringify(this.s[this.pos])}`);
    }
  }

  private literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) throw this.syntax('invalid literal');
    this.pos += word.length;
    return v;
  }

  private object(depth: number): Record<string, unknown> {
    if (depth > MAX_DEPTH)
      throw refuse('E_MALFORMED', this.w, `nests deeper than ${MAX_DEPTH} levels`, { reason: 'depth', at: this.where() });
    this.pos++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      if (this.s.charCodeAt(this.pos) !== 0x22) throw this.syntax('expected a string key');
      const keyAt = this.pos;
      const key = this.string();
      if (key === '__proto__') {
        throw refuse('E_RESERVED_KEY', this.w, `has the key "__proto__" at ${this.where()}, which no swpkg document uses`, {
          key,
          at: this.where(),
          offset: keyAt,
        });
      }
      // `out` starts empty and only gets own properties, so an own property here is the key seen before.
      if (Object.hasOwn(out, key)) {
        throw refuse('E_DUPLICATE_KEY', this.w, `has the key ${JSON.stringify(key)} twice in one object at ${this.where()}`, {
          key,
          at: this.where(),
          offset: keyAt,
        });
      }
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x3a) throw this.syntax('expected ":"');
      this.pos++;
      this.ws();
      this.path.push(key);
      out[key] = this.value(depth);
      this.path.pop();
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.ws();
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return out;
      }
      throw this.syntax('expected "," or "}"');
    }
  }

  private array(depth: number): unknown[] {
    if (depth > MAX_DEPTH)
      throw refuse('E_MALFORMED', this.w, `nests deeper than ${MAX_DEPTH} levels`, { reason: 'depth', at: this.where() });
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.path.push(out.length);
      out.push(this.value(depth));
      this.path.pop();
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.ws();
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return out;
      }
      throw this.syntax('expected "," or "]"');
    }
  }

  private string(): string {
    const s = this.s;
    const start = this.pos + 1;
    let p = start;
    // Fast path: no escapes, which is nearly every string (and the whole base64 payload of an envelope).
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return s.slice(start, p);
      }
      if (c === 0x5c) break;
      if (c < 0x20 || Number.isNaN(c)) {
        this.pos = p;
        throw this.syntax(Number.isNaN(c) ? 'unterminated string' : 'control character in a string');
      }
      p++;
    }
    let out = s.slice(start, p);
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out;
      }
      if (Number.isNaN(c) || c < 0x20) {
        this.pos = p;
        throw this.syntax(Number.isNaN(c) ? 'unterminated string' : 'control character in a string');
      }
      if (c !== 0x5c) {
        out += s[p];
        p++;
        continue;
      }
      const e = s.charCodeAt(p + 1);
      p += 2;
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const u = this.hex4(p);
          p += 4;
          if (u >= 0xd800 && u <= 0xdbff) {
            // A high surrogate must be followed by an escaped low one; anything else is a lone surrogate.
            const lo = s.charCodeAt(p) === 0x5c && s.charCodeAt(p + 1) === 0x75 ? this.hex4(p + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) throw this.loneSurrogate(u);
            out += String.fromCharCode(u, lo);
            p += 6;
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            throw this.loneSurrogate(u);
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          this.pos = p - 2;
          throw this.syntax('invalid escape in a string');
      }
    }
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.pos = at;
      throw this.syntax('invalid \\u escape');
    }
    return parseInt(h, 16);
  }

  private loneSurrogate(u: number): SwpkgError {
    return refuse('E_ENCODING', this.w, `has a lone surrogate \\u${u.toString(16)} in a string at ${this.where()}`, {
      reason: 'surrogate',
      at: this.where(),
    });
  }

  private number(): number {
    const s = this.s;
    const start = this.pos;
    let p = start;
    if (s.charCodeAt(p) === 0x2d) p++;
    const first = s.charCodeAt(p);
    if (first === 0x30) p++;
    else if (first >= 0x31 && first <= 0x39) {
      while (s.charCodeAt(p) >= 0x30 && s.charCodeAt(p) <= 0x39) p++;
    } else {
      this.pos = p;
      throw this.syntax('invalid number');
    }
    const next = s.charCodeAt(p);
    if (next === 0x2e || next === 0x65 || next === 0x45) {
      // Consume the rest only to name it; no schema here has a fraction or an exponent.
      let q = p + 1;
      while (/[0-9eE+\-.]/.test(s[q] ?? '')) q++;
      throw refuse('E_UNSAFE_NUMBER', this.w, `has the number ${s.slice(start, q)} at ${this.where()}; only integers are allowed`, {
        number: s.slice(start, q),
        at: this.where(),
      });
    }
    const text = s.slice(start, p);
    const n = Number(text);
    if (!Number.isSafeInteger(n)) {
      throw refuse('E_UNSAFE_NUMBER', this.w, `has the number ${text} at ${this.where()}, outside ±(2^53-1) where it would be rounded`, {
        number: text,
        at: this.where(),
      });
    }
    this.pos = p;
    // -0 would read back as 0: one value, one spelling.
    return n === 0 ? 0 : n;
  }
}

/** A non-null, non-array object from the strict parser (or any plain object). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Refuses any key of `obj` outside `allowed` (E_UNKNOWN_FIELD): a field the
 * code does not know is content nobody checks, so it is never silently kept
 * or dropped.
 */
export function assertKnownFields(obj: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new SwpkgError('E_UNKNOWN_FIELD', `${what}: unknown field ${JSON.stringify(k)}`, {
        hint: 'this document was made by another program or altered; a newer format needs a newer client',
        details: { what, field: k, allowed },
      });
    }
  }
}
