/**
 * Progress and messages go through an injected Reporter: catalog/ and userland/
 * never write to stdout themselves. The CLI edge picks a terminal, JSON or
 * silent implementation.
 */
export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
  /**
   * Called repeatedly for long work; `total` may be unknown. `unit` says what `done` counts
   * (default bytes), so a count of packages is never shown as bytes.
   */
  progress(label: string, done: number, total?: number, unit?: ProgressUnit): void;
}

/** What a progress count measures: bytes (shown in IEC units) or items (files, packages; plain counts). */
export type ProgressUnit = 'bytes' | 'items';

export const silentReporter: Reporter = {
  info() {},
  warn() {},
  progress() {},
};

/** Collects messages; used by JSON output (warnings land in the envelope) and tests. */
export class CollectingReporter implements Reporter {
  readonly infos: string[] = [];
  readonly warnings: string[] = [];
  info(message: string): void {
    this.infos.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
  progress(): void {}
}
