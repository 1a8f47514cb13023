/**
 * Text from outside (package names and summaries, paths in an archive, server messages, error
 * details) may carry terminal control sequences: ESC sequences can move the cursor, rewrite earlier
 * lines, set the window title or hide text; a NUL or a carriage return can hide what follows. On a
 * terminal every such character is shown as a visible escape instead; `--json` output is exact and
 * never passes through here.
 */

/** C0 controls (tab and newline included: a value is one line), DEL, C1 controls, line/paragraph separators, bidi overrides. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\0': '\\0', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\x1b': '\\e' };

function visible(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** One line of text made safe for a terminal: every control character becomes a visible escape (`\e`, `\0`, `\x9b`, `\n`). */
export function escapeTerminal(text: string): string {
  return text.replace(UNSAFE, visible);
}

/**
 * Text of several lines: each line escaped on its own, the line breaks kept. For output the tools
 * compose themselves (a rendered table or plan); a value that must stay on one line goes through
 * `escapeTerminal`, which also escapes `\n`.
 */
export function escapeTerminalLines(text: string): string {
  return text
    .split('\n')
    .map((line) => escapeTerminal(line))
    .join('\n');
}
