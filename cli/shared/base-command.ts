import { Command, Flags, type Interfaces } from '@oclif/core';
import { SwpkgError, toSwpkgError, ERROR_CODES, didYouMean } from '../../catalog/index.js';
import type { Reporter } from '../../catalog/index.js';
import {
  CollectingReporter,
  TerminalReporter,
  escapeTerminalLines,
  jsonText,
  okEnvelope,
  errorEnvelope,
  renderError,
} from '../../edge/index.js';

/**
 * oclif's parse error text as one coded error: its lines joined (without the "See more help" and
 * "The following errors occurred" frames and colour codes); a missing file or folder is E_NOT_FOUND.
 */
export function usageError(message: string, hint: string, cause?: unknown, flagNames: Iterable<string> = []): SwpkgError {
  const lines = message
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^See more help with --help$/.test(l) && !/^The following errors? occurred:$/.test(l));
  const text =
    lines
      .join('; ')
      .replace(/^Parsing (--[a-z0-9-]+);/, '$1:')
      .replace(/:; /g, ': ')
      .replace(/ {2,}/g, ' ') || 'invalid arguments';
  const missing = /No (file|directory) found at (.+?)(;|$)/.exec(text);
  if (missing) {
    return new SwpkgError('E_NOT_FOUND', text, {
      hint: `give the path of an existing ${missing[1]}`,
      details: { path: missing[2] },
      cause,
    });
  }
  // `--yse` for `--yes`: the nearest flag the command has, as pkg and the command names do.
  const unknownFlags = /Nonexistent flags?: (.+?)(;|$)/.exec(text)?.[1]?.split(/,\s*/) ?? [];
  const names = [...flagNames];
  const near = unknownFlags
    .map((f) => [f, didYouMean(f.replace(/^-+/, '').replace(/=.*$/, ''), names)] as const)
    .filter((p): p is readonly [string, string] => p[1] !== undefined);
  if (near.length > 0) {
    const hintText = unknownFlags.length === 1 ? `\`--${near[0]![1]}\`` : near.map(([f, n]) => `\`--${n}\` for \`${f}\``).join(', ');
    return new SwpkgError('E_USAGE', text, { hint: `did you mean ${hintText}? (${hint})`, cause });
  }
  return new SwpkgError('E_USAGE', text, { hint, cause });
}

/**
 * Base of every host command. A command parses flags, calls one library
 * function and returns data; this base prints it for people or wraps it as
 * `{ok:true, result, warnings}` with --json, and renders coded errors as
 * `{ok:false, error:{code, message, hint, details}}` with the registry's exit code.
 */
export abstract class BaseCommand<T> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    quiet: Flags.boolean({ char: 'q', summary: 'Print only errors.', helpGroup: 'GLOBAL' }),
  };

  private made: (Reporter & { readonly warnings: string[] }) | undefined;

  /** Every warning the command's reporter received, for the JSON envelope. */
  protected get warnings(): string[] {
    return this.ownReporter().warnings;
  }

  /** -q / --quiet: only errors (and warnings) print; the result is not rendered. */
  protected get quiet(): boolean {
    return this.argv.some((a) => a === '-q' || a === '--quiet');
  }

  /** The reporter library functions get: stderr progress for people (none with -q), collected warnings for --json. */
  protected reporter(): Reporter {
    return this.ownReporter();
  }

  private ownReporter(): Reporter & { readonly warnings: string[] } {
    this.made ??= this.jsonEnabled() ? new CollectingReporter() : new TerminalReporter(process.stderr, { quiet: this.quiet });
    return this.made;
  }

  /**
   * Flag and argument errors (unknown flag, bad value) are usage errors (exit 2); a file or folder
   * that does not exist is E_NOT_FOUND, as in pkg. oclif's whole message is kept (its first line
   * alone says only "Parsing --key").
   */
  protected override async parse<F extends Record<string, unknown>, B extends Record<string, unknown>, A extends Record<string, unknown>>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    try {
      return await super.parse(options, argv);
    } catch (e) {
      if (e instanceof SwpkgError) throw e;
      throw usageError(
        (e as Error).message ?? '',
        `run \`${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')} --help\``,
        e,
        this.flagNames(),
      );
    }
  }

  /** Every flag this command takes (its own, the global ones, --json), for did-you-mean. */
  private flagNames(): string[] {
    const ctor = this.constructor as typeof Command;
    return [...Object.keys(ctor.flags ?? {}), ...Object.keys(ctor.baseFlags ?? {}), 'json', 'help'];
  }

  /** Renders the result for people; only called without --json. */
  protected abstract render(result: T): void;

  abstract override run(): Promise<T>;

  protected override async finally(err: Error | undefined): Promise<void> {
    await super.finally(err);
  }

  protected override toSuccessJson(result: unknown): unknown {
    return okEnvelope(result, this.warnings);
  }

  protected override toErrorJson(err: unknown): unknown {
    return errorEnvelope(err);
  }

  override async _run<R>(): Promise<R> {
    const result = (await super._run()) as T;
    if (this.made instanceof TerminalReporter) this.made.finish();
    if (result !== undefined && !this.jsonEnabled() && !this.quiet) this.render(result);
    return result as unknown as R;
  }

  /** Results carry names, summaries and server text: escaped for the terminal (never under --json, which uses logJson). */
  override log(message = '', ...args: unknown[]): void {
    super.log(escapeTerminalLines(message), ...args);
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own parse errors (unknown flag, missing arg) are usage errors.
    const isParseError = err.oclif?.exit === 2 || /Unexpected argument|Nonexistent flag|Missing required|Expected/i.test(err.message ?? '');
    const coded =
      err instanceof SwpkgError
        ? err
        : isParseError
          ? usageError(err.message, `run \`${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')} --help\``, err, this.flagNames())
          : toSwpkgError(err);
    process.exitCode = ERROR_CODES[coded.code];
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(coded));
      return undefined;
    }
    if (this.made instanceof TerminalReporter) this.made.finish();
    process.stderr.write(renderError(coded));
    return undefined;
  }

  override logJson(json: unknown): void {
    process.stdout.write(jsonText(json));
  }
}
