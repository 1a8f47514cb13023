import { renderExplanation, STRUCTURED_EXPLANATION_KEYS } from './explanation.js';
import { escapeTerminal, escapeTerminalLines } from './terminal-text.js';

/** What is rendered: a SwpkgError or its JSON form. */
export interface ErrorView {
  code: string;
  message: string;
  hint?: string | undefined;
  details: Record<string, unknown>;
}

/** A detail longer than this is cut on a terminal (the whole value is in --json). */
const MAX_DETAIL_CHARS = 400;
/** Details that are a command's whole result (doctor's report), already printed above the error. */
const PRINTED_ELSEWHERE = new Set(['report']);

function detailText(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return escapeTerminal(text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}...` : text);
}

/**
 * The one rendering of a coded error for people, the same in every tool:
 *
 *     error CODE: message
 *       fix: hint
 *       why:
 *         explanation line (resolver refusals)
 *       key: value
 *       key:
 *         list item
 *
 * Every value is escaped for the terminal (details carry names, paths and server text).
 */
export function renderError(e: ErrorView): string {
  const lines = [`error ${e.code}: ${escapeTerminalLines(e.message)}`];
  if (e.hint) lines.push(`  fix: ${escapeTerminalLines(e.hint)}`);
  lines.push(...renderExplanation(e.details, e.message));
  for (const [k, v] of Object.entries(e.details)) {
    if (v === undefined || PRINTED_ELSEWHERE.has(k) || STRUCTURED_EXPLANATION_KEYS.has(k)) continue;
    const key = escapeTerminal(k);
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) {
      lines.push(`  ${key}:`, ...v.map((x) => `    ${detailText(x)}`));
      continue;
    }
    lines.push(`  ${key}: ${detailText(v)}`);
  }
  return lines.join('\n') + '\n';
}

/** A warning line for people. */
export function renderWarning(message: string): string {
  return `warning: ${escapeTerminalLines(message)}\n`;
}
