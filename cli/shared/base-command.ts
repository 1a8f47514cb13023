import { Command, Flags, type Interfaces } from '@oclif/core';
import { SwpkgError, toSwpkgError, ERROR_CODES } from '../../catalog/index.js';
import type { Reporter } from '../../catalog/index.js';
import { TerminalReporter } from './terminal-reporter.js';

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

  protected readonly warnings: string[] = [];

  /** The reporter library functions get: stderr progress for people, collected warnings for --json. */
  protected reporter(quiet = false): Reporter {
    const warnings = this.warnings;
    if (this.jsonEnabled() || quiet) {
      return { info() {}, warn: (m) => warnings.push(m), progress() {} };
    }
    return new TerminalReporter(process.stderr, (m) => warnings.push(m));
  }

  /** Flag and argument errors (unknown flag, missing file, bad value) are usage errors: exit 2. */
  protected override async parse<F extends Record<string, unknown>, B extends Record<string, unknown>, A extends Record<string, unknown>>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    try {
      return await super.parse(options, argv);
    } catch (e) {
      if (e instanceof SwpkgError) throw e;
      const id = (this.id ?? '').replaceAll(':', ' ');
      throw new SwpkgError('E_USAGE', (e as Error).message.split('\n')[0] ?? 'invalid arguments', {
        hint: `run \`${this.config.bin} ${id} --help\``,
        cause: e,
      });
    }
  }

  /** Renders the result for people; only called without --json. */
  protected abstract render(result: T): void;

  abstract override run(): Promise<T>;

  protected override async finally(err: Error | undefined): Promise<void> {
    await super.finally(err);
  }

  protected override toSuccessJson(result: unknown): unknown {
    return { ok: true, result, warnings: this.warnings };
  }

  protected override toErrorJson(err: unknown): unknown {
    return { ok: false, error: toSwpkgError(err).toJSON() };
  }

  override async _run<R>(): Promise<R> {
    const result = (await super._run()) as T;
    if (result !== undefined && !this.jsonEnabled()) this.render(result);
    return result as unknown as R;
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own parse errors (unknown flag, missing arg) are usage errors.
    const isParseError = err.oclif?.exit === 2 || /Unexpected argument|Nonexistent flag|Missing required|Expected/i.test(err.message ?? '');
    const coded =
      err instanceof SwpkgError
        ? err
        : isParseError
          ? new SwpkgError('E_USAGE', err.message, { hint: `run \`${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')} --help\`` })
          : toSwpkgError(err);
    process.exitCode = ERROR_CODES[coded.code];
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(coded));
      return undefined;
    }
    process.stderr.write(`error ${coded.code}: ${coded.message}\n`);
    if (coded.hint) process.stderr.write(`  fix: ${coded.hint}\n`);
    for (const [k, v] of Object.entries(coded.details)) {
      if (v !== undefined) process.stderr.write(`  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
    }
    return undefined;
  }

  override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  }
}
