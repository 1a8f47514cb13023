/**
 * pkg's own small argv parser (no oclif: the guest bundle stays one small
 * file). Flags: `--name value`, `--name=value`, `-x`, repeatable string
 * flags, `--` ends flags. Errors are thrown as UsageProblem and turned into
 * E_USAGE by the caller, so this file imports nothing.
 */

export type FlagType = 'boolean' | 'string' | 'number' | 'strings';

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  /** Placeholder in help, e.g. DIR. */
  value?: string;
  summary: string;
}

export interface ArgSpec {
  name: string;
  required?: boolean;
  variadic?: boolean;
}

export class UsageProblem extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** An unknown word and what it could have been: the caller adds "did you mean". */
    readonly unknown?: { word: string | string[]; among: string[] },
  ) {
    super(message);
  }
}

export type FlagValues = Record<string, boolean | string | number | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  args: string[];
}

/** Parses `tokens` (the part after the command words) against the command's flags and the global ones. */
export function parseTokens(tokens: string[], flags: FlagSpec[], args: ArgSpec[], command: string): Parsed {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const byShort = new Map(flags.filter((f) => f.short).map((f) => [f.short!, f]));
  const out: FlagValues = {};
  const positional: string[] = [];
  let onlyArgs = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (onlyArgs || t === '-' || !t.startsWith('-')) {
      positional.push(t);
      continue;
    }
    if (t === '--') {
      onlyArgs = true;
      continue;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      const name = eq < 0 ? t.slice(2) : t.slice(2, eq);
      if (eq >= 0) inline = t.slice(eq + 1);
      spec = byName.get(name);
      if (!spec)
        throw new UsageProblem(`unknown flag --${name} for \`${command}\``, `run \`${command} --help\` for its flags`, {
          word: `--${name}`,
          among: flags.map((f) => `--${f.name}`),
        });
    } else {
      if (t.length !== 2) throw new UsageProblem(`unknown flag ${t} (short flags are single letters)`, `run \`${command} --help\``);
      spec = byShort.get(t.slice(1));
      if (!spec) throw new UsageProblem(`unknown flag ${t} for \`${command}\``, `run \`${command} --help\` for its flags`);
    }
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageProblem(`--${spec.name} takes no value`);
      out[spec.name] = true;
      continue;
    }
    const value = inline ?? tokens[++i];
    if (value === undefined) throw new UsageProblem(`--${spec.name} needs a value (${spec.value ?? 'VALUE'})`);
    if (spec.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || n < 0)
        throw new UsageProblem(`--${spec.name} must be a non-negative number, not ${JSON.stringify(value)}`);
      out[spec.name] = n;
    } else if (spec.type === 'strings') {
      const prev = out[spec.name];
      out[spec.name] = [...(Array.isArray(prev) ? prev : []), value];
    } else {
      out[spec.name] = value;
    }
  }
  const required = args.filter((a) => a.required && !a.variadic).length;
  const variadic = args.find((a) => a.variadic);
  if (positional.length < required) {
    const missing = args
      .filter((a) => a.required)
      .slice(positional.length)
      .map((a) => a.name);
    throw new UsageProblem(`\`${command}\` needs ${missing.join(' ')}`, `run \`${command} --help\``);
  }
  if (variadic?.required && positional.length < required + 1) {
    throw new UsageProblem(`\`${command}\` needs at least one ${variadic.name}`, `run \`${command} --help\``);
  }
  if (!variadic && positional.length > args.length) {
    throw new UsageProblem(
      `unexpected argument ${JSON.stringify(positional[args.length])} for \`${command}\``,
      `run \`${command} --help\``,
    );
  }
  return { flags: out, args: positional };
}
