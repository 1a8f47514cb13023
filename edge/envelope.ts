import { ERROR_CODES, SwpkgError, toSwpkgError, type ErrorCode } from '../catalog/errors.js';

/** `--json` success: the command's result and every warning it produced. */
export interface OkEnvelope<T> {
  ok: true;
  result: T;
  warnings: string[];
}

/** `--json` failure: the coded error exactly as the core raised it. */
export interface ErrorEnvelope {
  ok: false;
  error: { code: ErrorCode; message: string; hint?: string; details: Record<string, unknown> };
}

export function okEnvelope<T>(result: T, warnings: readonly string[] = []): OkEnvelope<T> {
  return { ok: true, result, warnings: [...warnings] };
}

export function errorEnvelope(e: unknown): ErrorEnvelope {
  return { ok: false, error: toSwpkgError(e).toJSON() };
}

/** The one JSON text every tool prints: two-space indented, one trailing newline, nothing escaped. */
export function jsonText(doc: unknown): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/** The exit code of anything thrown (a bug is 1). */
export function exitCodeOf(e: unknown): number {
  return e instanceof SwpkgError ? ERROR_CODES[e.code] : ERROR_CODES[toSwpkgError(e).code];
}
