import type { ProgressUnit, Reporter } from '../catalog/reporter.js';
import { formatQuantity } from './format.js';
import { escapeTerminal, escapeTerminalLines } from './terminal-text.js';

/** Where people read: stderr of a tool (or a test's capture). */
export type TerminalStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** A redrawn bar is drawn at most this often (ms); the final state is always drawn. */
const REDRAW_MS = 100;
/** Without a terminal, one line per quarter keeps logs short and readable. */
const LOG_STEP_PERCENT = 25;

/**
 * The one reporter for people, used by every tool: messages on the stream (stderr); on a terminal a
 * progress bar redrawn in place at most every 100 ms, otherwise a plain line at 0, 25, 50, 75 and
 * 100 %. Quantities are shown in their unit (bytes in IEC units, items as counts). `quiet` drops
 * info and progress; warnings always print. Every message and label is escaped for the terminal
 * (it may carry package names or server text).
 */
export class TerminalReporter implements Reporter {
  /** Every warning, for a JSON envelope or a summary. */
  readonly warnings: string[] = [];
  private label = '';
  private lastStep = -1;
  private lastDraw = -Infinity;
  private open = false;

  constructor(
    private readonly out: TerminalStream,
    private readonly opts: { quiet?: boolean; now?: () => number } = {},
  ) {}

  info(message: string): void {
    if (this.opts.quiet === true) return;
    this.endLine();
    this.out.write(`${escapeTerminalLines(message)}\n`);
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.endLine();
    this.out.write(`warning: ${escapeTerminalLines(message)}\n`);
  }

  progress(label: string, done: number, total?: number, unit: ProgressUnit = 'bytes'): void {
    if (this.opts.quiet === true) return;
    const known = total !== undefined && total > 0;
    const pct = known ? Math.min(100, Math.floor((done / total) * 100)) : undefined;
    if (label !== this.label) {
      this.endLine();
      this.label = label;
      this.lastStep = -1;
      this.lastDraw = -Infinity;
    }
    const shown = escapeTerminal(label);
    const amount = known ? `${formatQuantity(done, unit)} / ${formatQuantity(total, unit)}` : formatQuantity(done, unit);
    if (this.out.isTTY === true) {
      const now = (this.opts.now ?? Date.now)();
      if (now - this.lastDraw < REDRAW_MS && pct !== 100) return;
      this.lastDraw = now;
      const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - shown.length - 40));
      const fill = pct === undefined ? 0 : Math.round((pct / 100) * width);
      const bar = pct === undefined ? '' : `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}% `;
      this.out.write(`\r\x1b[K${shown} ${bar}${amount}`);
      this.open = true;
      if (pct === 100) this.endLine();
      return;
    }
    const step = pct === undefined ? -1 : Math.floor(pct / LOG_STEP_PERCENT);
    if (step === this.lastStep) return;
    this.lastStep = step;
    this.out.write(`${shown}: ${pct === undefined ? amount : `${pct}% (${amount})`}\n`);
  }

  /** Ends an open progress line; call before printing results. */
  finish(): void {
    this.endLine();
  }

  private endLine(): void {
    if (this.open) {
      this.out.write('\n');
      this.open = false;
    }
  }
}
