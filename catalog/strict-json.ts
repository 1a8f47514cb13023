import { isUtf8 } from 'node:buffer';
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
  return parseStrictJsonBytes(bytes, what);
}

/** The same rules over text (a lone surrogate in it, escaped or not, is refused as in bytes). */
export function parseStrictJsonText(text: string, what: string): unknown {
  if (!text.isWellFormed()) throw refuse('E_ENCODING', { what }, 'is not valid UTF-8', { reason: 'utf8' });
  return parseStrictJsonBytes(Buffer.from(text, 'utf8'), what);
}

/**
 * A top-level string value left in the input: its bytes are `bytes[start, end)`, between the
 * quotes, and hold no escape, so they are the string's UTF-8 exactly.
 */
export class RawJsonString {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}
}

/** A top-level array whose elements went to `onElement` one by one and were not kept. */
export class StreamedJsonArray {
  constructor(readonly length: number) {}
}

/**
 * How a large document is read without building all of it: both apply only to keys of the
 * top-level object, and nothing else about parsing changes (every rule above still holds for
 * every byte, and a document that breaks one is refused whatever the hooks).
 */
export interface StrictJsonHooks {
  /** This key's string value, when it has no escape, comes back as a RawJsonString instead of a copy. */
  rawString?: string;
  /**
   * This key's array value is handed over element by element, in order, each element parsed
   * under the same rules, and comes back as a StreamedJsonArray. Elements before a refusal
   * further on have been handed over already: the caller must hold them until the parse returns.
   */
  streamArray?: { key: string; onElement: (value: unknown, index: number) => void };
}

/**
 * Parses untrusted JSON bytes under the rules above, straight from the bytes: no copy of the
 * whole text is made, each string is decoded on its own.
 */
export function parseStrictJsonBytes(bytes: Uint8Array, what: string, hooks: StrictJsonHooks = {}): unknown {
  // isUtf8 checks without decoding; on failure the decoder gives the refusal (and the BOM is refused first, as it always was).
  if (!isUtf8(bytes) || (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)) decodeStrictUtf8(bytes, what);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return new StrictParser(b as Slicing, what, hooks).parseDocument();
}

/** Strings up to this many bytes go through the parser's cache; its size is a power of two. */
const SHORT_STRING = 40;
const SHORT_CACHE_SIZE = 4096;

/** Buffer's decoders without toString's argument handling: called once per string. */
interface Slicing extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

class StrictParser {
  private pos = 0;
  private readonly path: (string | number)[] = [];
  private readonly w: Where;
  private readonly short: (string | undefined)[] = new Array<string | undefined>(SHORT_CACHE_SIZE);

  constructor(
    private readonly b: Slicing,
    what: string,
    private readonly hooks: StrictJsonHooks,
  ) {
    this.w = { what };
  }

  parseDocument(): unknown {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.b.length) throw this.syntax('unexpected data after the JSON value');
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

  /** The character starting at `p`, for a message (the input is valid UTF-8). */
  private charAt(p: number): string {
    const cp = this.b.toString('utf8', p, Math.min(p + 4, this.b.length)).codePointAt(0) ?? 0xfffd;
    return String.fromCodePoint(cp);
  }

  private ws(): void {
    const b = this.b;
    let p = this.pos;
    for (;;) {
      const c = b[p];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private value(depth: number): unknown {
    const c = this.b[this.pos] ?? -1;
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1, undefined);
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
        throw this.syntax(c === -1 ? 'unexpected end' : `unexpected character ${JSON.stringify(this.charAt(this.pos))}`);
    }
  }

  private literal<T>(word: string, v: T): T {
    const b = this.b;
    for (let i = 0; i < word.length; i++) if (b[this.pos + i] !== word.charCodeAt(i)) throw this.syntax('invalid literal');
    this.pos += word.length;
    return v;
  }

  private object(depth: number): Record<string, unknown> {
    if (depth > MAX_DEPTH)
      throw refuse('E_MALFORMED', this.w, `nests deeper than ${MAX_DEPTH} levels`, { reason: 'depth', at: this.where() });
    const b = this.b;
    this.pos++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (b[this.pos] === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      if (b[this.pos] !== 0x22) throw this.syntax('expected a string key');
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
      if (b[this.pos] !== 0x3a) throw this.syntax('expected ":"');
      this.pos++;
      this.ws();
      this.path.push(key);
      out[key] = depth === 1 ? this.topLevelValue(key) : this.value(depth);
      this.path.pop();
      this.ws();
      const c = b[this.pos];
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

  /** A value of the top-level object, where the hooks apply. */
  private topLevelValue(key: string): unknown {
    const c = this.b[this.pos];
    if (c === 0x22 && this.hooks.rawString === key) {
      const raw = this.rawString();
      if (raw) return raw;
    }
    const stream = this.hooks.streamArray;
    if (c === 0x5b && stream?.key === key) return new StreamedJsonArray(this.array(2, stream.onElement).length);
    return this.value(1);
  }

  /** An escape-free string as its byte range (quotes excluded); undefined, with nothing consumed, when it has an escape. */
  private rawString(): RawJsonString | undefined {
    const b = this.b;
    const start = this.pos + 1;
    const end = b.indexOf(0x22, start);
    if (end < 0) return undefined;
    for (let p = start; p < end; p++) {
      const c = b[p]!;
      if (c === 0x5c || c < 0x20) return undefined;
    }
    this.pos = end + 1;
    return new RawJsonString(start, end);
  }

  /** With `onElement`, each element goes there instead of into the (then empty) result. */
  private array(depth: number, onElement: ((value: unknown, index: number) => void) | undefined): unknown[] {
    if (depth > MAX_DEPTH)
      throw refuse('E_MALFORMED', this.w, `nests deeper than ${MAX_DEPTH} levels`, { reason: 'depth', at: this.where() });
    const b = this.b;
    this.pos++;
    const out: unknown[] = [];
    let n = 0;
    this.ws();
    if (b[this.pos] === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.path.push(n);
      const v = this.value(depth);
      if (onElement) onElement(v, n);
      else out.push(v);
      n++;
      this.path.pop();
      this.ws();
      const c = b[this.pos];
      if (c === 0x2c) {
        this.pos++;
        this.ws();
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        // Streamed elements are not kept; the length is all the caller gets of them.
        if (onElement) out.length = n;
        return out;
      }
      throw this.syntax('expected "," or "]"');
    }
  }

  private string(): string {
    const b = this.b;
    const start = this.pos + 1;
    let p = start;
    let high = 0;
    let h = 0;
    // Fast path: no escapes, which is nearly every string.
    for (;;) {
      const c = b[p] ?? -1;
      if (c === 0x22) {
        this.pos = p + 1;
        return high < 0x80 ? this.ascii(start, p, h) : this.b.utf8Slice(start, p);
      }
      if (c === 0x5c) break;
      if (c < 0x20) {
        this.pos = p;
        throw this.syntax(c === -1 ? 'unterminated string' : 'control character in a string');
      }
      high |= c;
      h = (h * 31 + c) | 0;
      p++;
    }
    let out = b.toString('utf8', start, p);
    let run = p;
    for (;;) {
      const c = b[p] ?? -1;
      if (c === 0x22) {
        this.pos = p + 1;
        return out + b.toString('utf8', run, p);
      }
      if (c < 0x20) {
        this.pos = p;
        throw this.syntax(c === -1 ? 'unterminated string' : 'control character in a string');
      }
      if (c !== 0x5c) {
        p++;
        continue;
      }
      // Escapes are ASCII, so a run of unescaped bytes always ends on a whole UTF-8 character.
      out += b.toString('utf8', run, p);
      const e = b[p + 1];
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
            const lo = b[p] === 0x5c && b[p + 1] === 0x75 ? this.hex4(p + 2) : -1;
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
      run = p;
    }
  }

  /**
   * An ASCII string's bytes as a string. Short ones (keys, names, versions: the same few thousand
   * again and again in a catalog) come from a small cache, checked byte for byte, so the parse
   * does not allocate a new copy of "version" for each of 65 000 entries.
   */
  private ascii(start: number, end: number, h: number): string {
    const b = this.b;
    const n = end - start;
    if (n > SHORT_STRING) return b.latin1Slice(start, end);
    const slot = (h ^ (h >>> 12)) & (SHORT_CACHE_SIZE - 1);
    const hit = this.short[slot];
    if (hit !== undefined && hit.length === n) {
      let i = 0;
      while (i < n && hit.charCodeAt(i) === b[start + i]) i++;
      if (i === n) return hit;
    }
    const s = b.latin1Slice(start, end);
    this.short[slot] = s;
    return s;
  }

  private hex4(at: number): number {
    let u = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.b[at + i] ?? -1;
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
      if (d < 0) {
        this.pos = at;
        throw this.syntax('invalid \\u escape');
      }
      u = u * 16 + d;
    }
    return u;
  }

  private loneSurrogate(u: number): SwpkgError {
    return refuse('E_ENCODING', this.w, `has a lone surrogate \\u${u.toString(16)} in a string at ${this.where()}`, {
      reason: 'surrogate',
      at: this.where(),
    });
  }

  private number(): number {
    const b = this.b;
    const start = this.pos;
    let p = start;
    if (b[p] === 0x2d) p++;
    const first = b[p] ?? -1;
    const digit = (q: number): boolean => {
      const c = b[q] ?? -1;
      return c >= 0x30 && c <= 0x39;
    };
    if (first === 0x30) p++;
    else if (first >= 0x31 && first <= 0x39) {
      while (digit(p)) p++;
    } else {
      this.pos = p;
      throw this.syntax('invalid number');
    }
    const next = b[p];
    if (next === 0x2e || next === 0x65 || next === 0x45) {
      // Consume the rest only to name it; no schema here has a fraction or an exponent.
      let q = p + 1;
      while (/[0-9eE+\-.]/.test(String.fromCharCode(b[q] ?? 0))) q++;
      const text = b.toString('latin1', start, q);
      throw refuse('E_UNSAFE_NUMBER', this.w, `has the number ${text} at ${this.where()}; only integers are allowed`, {
        number: text,
        at: this.where(),
      });
    }
    const text = b.toString('latin1', start, p);
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
