import type { Reporter } from '../../catalog/index.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = u === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : 1);
  return `${n < 0 ? '-' : ''}${s} ${units[u]}`;
}

/**
 * People's reporter: messages on stderr; on a TTY a progress bar redrawn in
 * place (at most ~10 times a second), otherwise a plain line at every
 * quarter, so logs stay readable.
 */
export class TerminalReporter implements Reporter {
  private label = '';
  private lastStep = -1;
  private lastDraw = 0;
  private open = false;
  readonly warnings: string[] = [];

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly quiet = false,
  ) {}

  private endLine(): void {
    if (this.open) {
      this.out.write('\n');
      this.open = false;
    }
  }

  info(message: string): void {
    if (this.quiet) return;
    this.endLine();
    this.out.write(`${message}\n`);
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.endLine();
    this.out.write(`warning: ${message}\n`);
  }

  progress(label: string, done: number, total?: number): void {
    if (this.quiet) return;
    const pct = total ? Math.min(100, Math.floor((done / total) * 100)) : undefined;
    if (label !== this.label) {
      this.endLine();
      this.label = label;
      this.lastStep = -1;
    }
    if (this.out.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && pct !== 100) return;
      this.lastDraw = now;
      const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - label.length - 40));
      const fill = pct === undefined ? 0 : Math.round((pct / 100) * width);
      const bar = pct === undefined ? '' : `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}% `;
      this.out.write(`\r\x1b[K${label} ${bar}${formatBytes(done)}${total ? ` / ${formatBytes(total)}` : ''}`);
      this.open = true;
      if (pct === 100) this.endLine();
      return;
    }
    const step = pct === undefined ? -1 : Math.floor(pct / 25);
    if (step === this.lastStep) return;
    this.lastStep = step;
    this.out.write(`${label}: ${pct === undefined ? formatBytes(done) : `${pct}% of ${formatBytes(total ?? 0)}`}\n`);
  }

  finish(): void {
    this.endLine();
  }
}

/** --json: nothing on the terminal; warnings are collected into the envelope. */
export class JsonReporter implements Reporter {
  readonly warnings: string[] = [];
  info(): void {}
  warn(message: string): void {
    this.warnings.push(message);
  }
  progress(): void {}
}
