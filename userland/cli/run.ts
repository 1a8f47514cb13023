import { resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { parseTokens, UsageProblem, type FlagSpec } from './args.js';
import { COMMANDS, renderPlan, type CommandDef } from './commands.js';
import { GLOBAL_FLAGS, commandHelp, globalHelp, topicHelp } from './help.js';
import { JsonReporter, TerminalReporter } from './terminal-reporter.js';
import { pkgVersion } from './version.js';
import type { PkgContext, PlanView } from '../index.js';

/** The process edges, injectable so tests run the CLI in-process. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

interface ErrorLike {
  code: string;
  message: string;
  hint?: string | undefined;
  details: Record<string, unknown>;
}

/** Global flags that take a value: needed to find the command words before the command is known. */
const VALUE_GLOBALS = new Set(GLOBAL_FLAGS.filter((f) => f.type !== 'boolean').map((f) => `--${f.name}`));

function findCommand(tokens: string[]): { cmd?: CommandDef; words: string[]; rest: string[] } {
  const words: string[] = [];
  const idx: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '--') break;
    if (t.startsWith('-')) {
      if (VALUE_GLOBALS.has(t)) i++;
      if (words.length > 0) break;
      continue;
    }
    words.push(t);
    idx.push(i);
    if (words.length === 2) break;
  }
  for (const n of [2, 1]) {
    const cmd = COMMANDS.find((c) => c.words.length === n && c.words.every((w, k) => words[k] === w));
    if (cmd) {
      const drop = new Set(idx.slice(0, n));
      return { cmd, words: words.slice(0, n), rest: tokens.filter((_, i) => !drop.has(i)) };
    }
  }
  return { words, rest: tokens };
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageProblem(`${name}=${v} is not a non-negative number`);
  return n;
}

function renderError(e: ErrorLike, write: (s: string) => void): void {
  write(`error ${e.code}: ${e.message}\n`);
  if (e.hint) write(`  fix: ${e.hint}\n`);
  for (const [k, v] of Object.entries(e.details)) {
    if (v === undefined || k === 'report') continue;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
      write(`  ${k}:\n`);
      for (const line of v) write(`    ${line}\n`);
      continue;
    }
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    write(`  ${k}: ${text.length > 400 ? `${text.slice(0, 400)}...` : text}\n`);
  }
}

async function ask(io: CliIo, question: string): Promise<boolean> {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  try {
    io.stderr.write(question);
    const answer = await new Promise<string>((res) => {
      rl.once('line', res);
      rl.once('close', () => res(''));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/**
 * Runs one pkg command line and returns the exit code. The only place in
 * userland that prints: results on stdout, progress and errors on stderr,
 * or exactly one JSON document on stdout with --json.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const out = (s: string): void => void io.stdout.write(s);
  const err = (s: string): void => void io.stderr.write(s);
  const wantsJson = argv.includes('--json');
  const fail = async (e: unknown): Promise<number> => {
    const { toSwpkgError, ERROR_CODES, SwpkgError } = await import('../../catalog/index.js');
    const coded = e instanceof UsageProblem ? new SwpkgError('E_USAGE', e.message, e.hint ? { hint: e.hint } : {}) : toSwpkgError(e);
    if (wantsJson) out(JSON.stringify({ ok: false, error: coded.toJSON() }, null, 2) + '\n');
    else renderError(coded, err);
    return ERROR_CODES[coded.code];
  };

  let found: ReturnType<typeof findCommand>;
  try {
    found = findCommand(argv);
  } catch (e) {
    return fail(e);
  }
  const { cmd, words, rest } = found;
  if (!cmd) {
    const hasHelp = argv.includes('--help') || argv.includes('-h') || words[0] === 'help';
    if (argv.includes('--version') || argv.includes('-V')) {
      out(wantsJson ? JSON.stringify({ ok: true, result: { version: pkgVersion() }, warnings: [] }) + '\n' : `pkg ${pkgVersion()}\n`);
      return 0;
    }
    const topic = words[0] === 'help' ? words[1] : words[0];
    if (topic !== undefined && COMMANDS.some((c) => c.words[0] === topic && c.words.length === 2)) {
      const sub = words[0] === 'help' ? COMMANDS.find((c) => c.words[0] === topic && c.words[1] === words[2]) : undefined;
      const text = sub ? commandHelp(sub) : topicHelp(topic, COMMANDS);
      if (hasHelp) {
        out(text);
        return 0;
      }
      err(text);
      return fail(
        new UsageProblem(
          `\`pkg ${topic}\` needs a command: ${COMMANDS.filter((c) => c.words[0] === topic)
            .map((c) => c.words[1])
            .join(', ')}`,
        ),
      );
    }
    if (words[0] === 'help' && topic !== undefined) {
      const c = COMMANDS.find((x) => x.words.length === 1 && x.words[0] === topic);
      if (c) {
        out(commandHelp(c));
        return 0;
      }
    }
    if (words.length === 0 || hasHelp) {
      out(globalHelp(COMMANDS, pkgVersion()));
      return words.length === 0 && !hasHelp ? 2 : 0;
    }
    return fail(new UsageProblem(`unknown command \`${words.join(' ')}\``, 'run `pkg --help` for the list of commands'));
  }
  const name = `pkg ${cmd.words.join(' ')}`;
  if (rest.includes('--help') || rest.includes('-h')) {
    out(commandHelp(cmd));
    return 0;
  }

  let parsed;
  try {
    parsed = parseTokens(
      rest,
      [...cmd.flags, ...GLOBAL_FLAGS.filter((f: FlagSpec) => !cmd.flags.some((c) => c.name === f.name))],
      cmd.args,
      name,
    );
  } catch (e) {
    return fail(e);
  }
  const g = parsed.flags;
  const json = g['json'] === true;
  const reporter = json ? new JsonReporter() : new TerminalReporter(io.stderr, g['quiet'] === true);
  let ctx: PkgContext | undefined;
  try {
    const api = await import('../index.js');
    const env = io.env;
    const stall = typeof g['stall-timeout'] === 'number' ? g['stall-timeout'] : envNumber(env, 'PKG_STALL_TIMEOUT');
    const lock = typeof g['lock-timeout'] === 'number' ? g['lock-timeout'] : envNumber(env, 'PKG_LOCK_TIMEOUT');
    const minBytes = envNumber(env, 'PKG_STALL_MIN_BYTES');
    const minRate = typeof g['min-rate'] === 'number' ? g['min-rate'] : envNumber(env, 'PKG_MIN_RATE');
    const deadline = typeof g['fetch-deadline'] === 'number' ? g['fetch-deadline'] : envNumber(env, 'PKG_FETCH_DEADLINE');
    const retries = envNumber(env, 'PKG_FETCH_RETRIES');
    const maxCatalog = envNumber(env, 'PKG_MAX_CATALOG_BYTES');
    const now = env['PKG_TEST_NOW'];
    const root = typeof g['root'] === 'string' ? g['root'] : env['PKG_ROOT'] || '/pkg';
    const { DEFAULT_CLIENT } = await import('../../catalog/index.js');
    ctx = api.createContext({
      root: resolvePath(root),
      reporter,
      command: ['pkg', ...argv.filter((a) => a !== '--json')].join(' '),
      client: {
        arch: env['PKG_CLIENT_ARCH'] || DEFAULT_CLIENT.arch,
        abi: env['PKG_CLIENT_ABI'] || DEFAULT_CLIENT.abi,
        format: envNumber(env, 'PKG_CLIENT_FORMAT') ?? DEFAULT_CLIENT.format,
      },
      limits: {
        ...(stall !== undefined ? { stallMs: Math.max(1, Math.round(stall * 1000)) } : {}),
        ...(minBytes !== undefined ? { minBytes } : {}),
        ...(minRate !== undefined ? { minBytesPerSecond: minRate } : {}),
        ...(deadline !== undefined ? { deadlineMs: Math.round(deadline * 1000) } : {}),
      },
      ...(retries !== undefined ? { retries: Math.floor(retries) } : {}),
      ...(lock !== undefined ? { lockTimeoutMs: Math.round(lock * 1000) } : {}),
      ...(maxCatalog !== undefined ? { maxCatalogBytes: maxCatalog } : {}),
      ...(env['PKG_HEALTH_DIR'] ? { healthDir: resolvePath(env['PKG_HEALTH_DIR']) } : {}),
      ...(now ? { now: () => new Date(now) } : {}),
    });

    const print = (line: string): void => out(`${line}\n`);
    let confirm: ((plan: PlanView) => Promise<boolean>) | undefined;
    if (cmd.confirms && g['dry-run'] !== true) {
      const yes = g['yes'] === true;
      const interactive = !json && io.stdin.isTTY === true && io.stderr.isTTY === true;
      confirm = async (plan) => {
        if (!json) renderPlan(plan, print);
        if (yes) return true;
        if (!interactive) {
          const { SwpkgError } = await import('../../catalog/index.js');
          throw new SwpkgError('E_CONFIRM', `${name} changes the installed set; without a terminal it needs --yes`, {
            hint: `review the plan (${name} --dry-run), then rerun with --yes`,
            details: { actions: plan.lines.length, downloadBytes: plan.downloadBytes },
          });
        }
        return ask(io, 'Proceed? [y/N] ');
      };
    }
    // Installs, doctor's re-hashing, update of a large catalog: buffer garbage stays bounded (memory-guard.ts).
    const stopGuard = (await import('./memory-guard.js')).startMemoryGuard();
    let result: unknown;
    try {
      result = await cmd.run({ api, ctx, confirm }, parsed);
    } finally {
      stopGuard();
    }
    if (reporter instanceof TerminalReporter) reporter.finish();
    const failure = cmd.failure?.(result);
    if (failure) {
      if (!json) cmd.render(result, print);
      const { SwpkgError } = await import('../../catalog/index.js');
      return fail(new SwpkgError(failure.code, failure.message, { hint: failure.hint, details: { report: result } }));
    }
    if (json) out(JSON.stringify({ ok: true, result, warnings: reporter.warnings }, null, 2) + '\n');
    else cmd.render(result, print);
    return 0;
  } catch (e) {
    if (reporter instanceof TerminalReporter) reporter.finish();
    return fail(e);
  } finally {
    await ctx?.close().catch(() => {});
  }
}
