import type { Reporter } from '../../catalog/index.js';

/** Human reporter: messages to stderr, a redrawn progress line on a TTY, a line per 10% otherwise. */
export class TerminalReporter implements Reporter {
  private lastLabel = '';
  private lastDecile = -1;
  private lineOpen = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly onWarn: (m: string) => void = () => {},
  ) {}

  info(message: string): void {
    this.endLine();
    this.out.write(message + '\n');
  }

  warn(message: string): void {
    this.onWarn(message);
    this.endLine();
    this.out.write(`warning: ${message}\n`);
  }

  progress(label: string, done: number, total?: number): void {
    const pct = total ? Math.min(100, Math.floor((done / total) * 100)) : undefined;
    if (this.out.isTTY) {
      const text =
        pct === undefined
          ? `${label} ${formatBytes(done)}`
          : `${label} ${bar(pct)} ${pct}% ${formatBytes(done)}/${formatBytes(total ?? 0)}`;
      this.out.write(`\r\x1b[K${text}`);
      this.lineOpen = true;
      if (pct === 100) this.endLine();
      return;
    }
    const decile = pct === undefined ? -1 : Math.floor(pct / 10);
    if (label !== this.lastLabel) {
      this.lastLabel = label;
      this.lastDecile = -1;
    }
    if (pct !== undefined && decile !== this.lastDecile) {
      this.lastDecile = decile;
      if (decile === 10 || decile === 0) this.out.write(`${label} ${pct}%\n`);
    }
  }

  private endLine(): void {
    if (this.lineOpen) {
      this.out.write('\n');
      this.lineOpen = false;
    }
  }
}

function bar(pct: number): string {
  const n = Math.round(pct / 5);
  return '[' + '#'.repeat(n) + '.'.repeat(20 - n) + ']';
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
