import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parseTokens, UsageProblem, type FlagSpec } from './args.js';
import { COMMANDS, type CommandDef } from './commands.js';
import { GLOBAL_FLAGS, commandHelp, globalHelp, topicHelp } from './help.js';
import { CollectingReporter, TerminalReporter, escapeTerminalLines, jsonText, okEnvelope, renderError } from '../../edge/index.js';
import { pkgVersion } from './version.js';
import type { PkgContext, PkgOptions, PlanGate } from '../index.js';
import type { Reporter } from '../../catalog/index.js';

/**
 * The package arch of the machine pkg runs on, from Node's `process.arch`
 * (the same bundle runs in the x86_64 and the aarch64 guest). Another arch
 * keeps Node's name, which no package carries: every catalog is then refused
 * as incompatible instead of installing programs this machine cannot run.
 * PKG_CLIENT_ARCH overrides it.
 */
export function machineArch(nodeArch: string): string {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'aarch64' : nodeArch;
}

/** The process edges, injectable so tests run the CLI in-process. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
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

async function ask(io: CliIo, question: string): Promise<boolean> {
  // Loaded here, not at start-up: only an interactive confirmation needs readline.
  const { createInterface } = await import('node:readline');
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
    const { toSwpkgError, ERROR_CODES, SwpkgError, didYouMean } = await import('../../catalog/index.js');
    let coded;
    if (e instanceof UsageProblem) {
      const among = e.unknown?.among ?? [];
      const near = [e.unknown?.word ?? []].flat().reduce<string | undefined>((found, w) => found ?? didYouMean(w, among), undefined);
      const hint = near ? `did you mean \`${near}\`? (${e.hint ?? 'see --help'})` : e.hint;
      coded = new SwpkgError('E_USAGE', e.message, hint ? { hint } : {});
    } else coded = toSwpkgError(e);
    if (wantsJson) out(jsonText({ ok: false, error: coded.toJSON() }));
    else err(renderError(coded));
    return ERROR_CODES[coded.code];
  };

  let found: ReturnType<typeof findCommand>;
  try {
    const last = argv[argv.length - 1];
    if (last !== undefined && VALUE_GLOBALS.has(last)) {
      const spec = GLOBAL_FLAGS.find((f) => `--${f.name}` === last);
      throw new UsageProblem(`${last} needs a value (${spec?.value ?? 'VALUE'})`, 'run `pkg --help`');
    }
    found = findCommand(argv);
  } catch (e) {
    return fail(e);
  }
  const { cmd, words, rest } = found;
  if (!cmd) return answerWithoutCommand(argv, words, { out, err, fail, wantsJson });
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
  const reporter = json ? new CollectingReporter() : new TerminalReporter(io.stderr, { quiet: g['quiet'] === true });
  let ctx: PkgContext | undefined;
  try {
    const api = await import('../index.js');
    ctx = api.createContext(await contextOptions(argv, g, io.env, reporter));

    if (cmd.reads === true && !existsSync(ctx.paths.root)) {
      reporter.warn(
        `${ctx.paths.root} does not exist: nothing is installed there and no repository is configured (check --root or PKG_ROOT)`,
      );
    }
    // Results carry names, summaries and paths from packages and servers: escaped for the terminal.
    const print = (line: string): void => out(`${escapeTerminalLines(line)}\n`);
    const gate = planGate(cmd, g, { json, io, name, print });
    // Installs, doctor's re-hashing, update of a large catalog: buffer garbage stays bounded (memory-guard.ts).
    const stopGuard = (await import('./memory-guard.js')).startMemoryGuard();
    let result: unknown;
    try {
      result = await cmd.run({ api, ctx, gate }, parsed);
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
    if (json) out(jsonText(okEnvelope(result, reporter.warnings)));
    else cmd.render(result, print);
    return 0;
  } catch (e) {
    if (reporter instanceof TerminalReporter) reporter.finish();
    return fail(e);
  } finally {
    await ctx?.close().catch(() => {});
  }
}

/** No command matched: the version, help for the tool, a topic or a command, or a usage error with a near miss. */
async function answerWithoutCommand(
  argv: string[],
  words: string[],
  o: { out: (s: string) => void; err: (s: string) => void; fail: (e: unknown) => Promise<number>; wantsJson: boolean },
): Promise<number> {
  const { out, err, fail, wantsJson } = o;
  const hasHelp = argv.includes('--help') || argv.includes('-h') || words[0] === 'help';
  if (argv.includes('--version') || argv.includes('-V')) {
    out(wantsJson ? jsonText(okEnvelope({ version: pkgVersion() })) : `pkg ${pkgVersion()}\n`);
    return 0;
  }
  const topic = words[0] === 'help' ? words[1] : words[0];
  if (topic !== undefined && COMMANDS.some((c) => c.words[0] === topic && c.words.length === 2)) {
    const sub = words[0] === 'help' ? COMMANDS.find((c) => c.words[0] === topic && c.words[1] === words[2]) : undefined;
    const text = sub ? commandHelp(sub) : topicHelp(topic, COMMANDS);
    const given = words[0] === 'help' ? undefined : words[1];
    if (given !== undefined && !hasHelp) {
      // `pkg repo ad`: a near miss of one of the topic's commands, said as for a top-level command.
      const subs = COMMANDS.filter((c) => c.words[0] === topic).map((c) => `pkg ${c.words.join(' ')}`);
      return fail(
        new UsageProblem(`unknown command \`pkg ${topic} ${given}\``, `run \`pkg ${topic} --help\` for its commands`, {
          word: `pkg ${topic} ${given}`,
          among: subs,
        }),
      );
    }
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
  return fail(
    new UsageProblem(`unknown command \`${words.join(' ')}\``, 'run `pkg --help` for the list of commands', {
      word: [words.join(' '), words[0]!],
      among: [...new Set(COMMANDS.flatMap((c) => [c.words.join(' '), ...(c.words.length === 2 ? [c.words[0]!] : [])]))],
    }),
  );
}

/** The context's options from the global flags, then PKG_* variables, then defaults. */
async function contextOptions(argv: string[], g: Record<string, unknown>, env: NodeJS.ProcessEnv, reporter: Reporter): Promise<PkgOptions> {
  const stall = typeof g['stall-timeout'] === 'number' ? g['stall-timeout'] : envNumber(env, 'PKG_STALL_TIMEOUT');
  const lock = typeof g['lock-timeout'] === 'number' ? g['lock-timeout'] : envNumber(env, 'PKG_LOCK_TIMEOUT');
  const minBytes = envNumber(env, 'PKG_STALL_MIN_BYTES');
  const minRate = typeof g['min-rate'] === 'number' ? g['min-rate'] : envNumber(env, 'PKG_MIN_RATE');
  const deadline = typeof g['fetch-deadline'] === 'number' ? g['fetch-deadline'] : envNumber(env, 'PKG_FETCH_DEADLINE');
  const retries = envNumber(env, 'PKG_FETCH_RETRIES');
  const downloads = typeof g['downloads'] === 'number' ? g['downloads'] : envNumber(env, 'PKG_DOWNLOADS');
  if (downloads !== undefined && !(Number.isInteger(downloads) && downloads >= 1 && downloads <= 64))
    throw new UsageProblem(`--downloads ${downloads} must be a whole number from 1 to 64`);
  const maxCatalog = envNumber(env, 'PKG_MAX_CATALOG_BYTES');
  const now = env['PKG_TEST_NOW'];
  const root = typeof g['root'] === 'string' ? g['root'] : env['PKG_ROOT'] || '/pkg';
  const { DEFAULT_CLIENT } = await import('../../catalog/index.js');
  return {
    root: resolvePath(root),
    reporter,
    command: ['pkg', ...argv.filter((a) => a !== '--json')].join(' '),
    client: {
      arch: env['PKG_CLIENT_ARCH'] || machineArch(process.arch),
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
    ...(downloads !== undefined ? { downloads } : {}),
    ...(lock !== undefined ? { lockTimeoutMs: Math.round(lock * 1000) } : {}),
    ...(maxCatalog !== undefined ? { maxCatalogBytes: maxCatalog } : {}),
    ...(env['PKG_HEALTH_DIR'] ? { healthDir: resolvePath(env['PKG_HEALTH_DIR']) } : {}),
    ...(env['PKG_STAGED_REPOS_DIR'] ? { stagedReposDir: resolvePath(env['PKG_STAGED_REPOS_DIR']) } : {}),
    ...(now ? { now: () => new Date(now) } : {}),
  };
}

/** How a command that changes the root shows its plan and asks: --dry-run, --yes, a prompt, or E_CONFIRM without a terminal. */
function planGate(
  cmd: CommandDef,
  g: Record<string, unknown>,
  o: { json: boolean; io: CliIo; name: string; print: (line: string) => void },
): PlanGate<unknown> {
  const { json, io, name, print } = o;
  const gate: PlanGate<unknown> = {};
  const showPlan = cmd.plan;
  if (showPlan && g['dry-run'] === true) gate.dryRun = true;
  else if (showPlan) {
    const show = (plan: unknown): void => {
      if (!json) showPlan(plan, print);
    };
    if (g['yes'] === true) gate.show = show;
    else if (json || io.stdin.isTTY !== true || io.stderr.isTTY !== true) {
      gate.confirm = async (plan) => {
        show(plan);
        const { SwpkgError } = await import('../../catalog/index.js');
        throw new SwpkgError('E_CONFIRM', `${name} changes the root; without a terminal it needs --yes`, {
          hint: `review the plan (${name} --dry-run), then rerun with --yes`,
        });
      };
    } else {
      gate.confirm = async (plan) => {
        show(plan);
        return ask(io, 'Proceed? [y/N] ');
      };
    }
  }
  return gate;
}
