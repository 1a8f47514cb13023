/**
 * The public interface of the three tools as data: every command's id, arguments, flags and the
 * shape of its `--json` result (read from the TypeScript types the command returns). The snapshot
 * test compares it with the committed interface.snapshot.json, so an accidental change to a flag,
 * an argument or a result field fails the tests (STYLE 5).
 */
import { resolve } from 'node:path';
import ts from 'typescript';
import { COMMANDS as SWPKG } from '../../../cli/swpkg/commands.js';
import { COMMANDS as SWPORT } from '../../../cli/swport/commands.js';
import { COMMANDS as PKG } from '../../../userland/cli/commands.js';
import { GLOBAL_FLAGS } from '../../../userland/cli/help.js';

const ROOT = resolve(import.meta.dirname, '../../..');

export interface FlagShape {
  name: string;
  char?: string;
  type: string;
  required?: true;
  multiple?: true;
  options?: string[];
}

export interface CommandShape {
  id: string;
  args: { name: string; required?: true; variadic?: true }[];
  flags: FlagShape[];
  /** The `result` of `{ok:true,result,warnings}`, as a TypeScript-like type. */
  result: string;
}

interface OclifFlag {
  type: 'boolean' | 'option';
  char?: string;
  required?: boolean;
  multiple?: boolean;
  options?: readonly string[];
}
interface OclifCommand {
  flags?: Record<string, OclifFlag>;
  baseFlags?: Record<string, OclifFlag>;
  args?: Record<string, { required?: boolean }>;
  enableJsonFlag?: boolean;
}

function oclifFlags(c: OclifCommand): FlagShape[] {
  const all = { ...(c.baseFlags ?? {}), ...(c.flags ?? {}) };
  const out: FlagShape[] = Object.entries(all).map(([name, f]) => ({
    name,
    ...(f.char ? { char: f.char } : {}),
    type: f.type,
    ...(f.required ? { required: true as const } : {}),
    ...(f.multiple ? { multiple: true as const } : {}),
    ...(f.options ? { options: [...f.options] } : {}),
  }));
  if (c.enableJsonFlag) out.push({ name: 'json', type: 'boolean' });
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Expands a type into its structure (names of our own interfaces mean nothing to a script reading JSON). */
function shape(checker: ts.TypeChecker, t: ts.Type, depth = 0, seen: ts.Type[] = []): string {
  if (depth > 8 || seen.includes(t)) return checker.typeToString(t);
  const next = [...seen, t];
  if (t.isUnion()) {
    const parts = [...new Set(t.types.map((u) => shape(checker, u, depth, next)))];
    // `true | false` is how the checker spells boolean.
    const merged =
      parts.includes('true') && parts.includes('false') ? ['boolean', ...parts.filter((p) => p !== 'true' && p !== 'false')] : parts;
    return merged.sort().join(' | ');
  }
  if (
    t.flags &
    (ts.TypeFlags.StringLike | ts.TypeFlags.NumberLike | ts.TypeFlags.BooleanLike | ts.TypeFlags.Null | ts.TypeFlags.Undefined)
  ) {
    return checker.typeToString(t);
  }
  if (t.flags & (ts.TypeFlags.Unknown | ts.TypeFlags.Any)) return checker.typeToString(t);
  if (checker.isTupleType(t)) {
    return `[${checker
      .getTypeArguments(t as ts.TypeReference)
      .map((e) => shape(checker, e, depth + 1, next))
      .join(', ')}]`;
  }
  if (checker.isArrayType(t)) {
    const elem = checker.getTypeArguments(t as ts.TypeReference)[0]!;
    const inner = shape(checker, elem, depth + 1, next);
    return /[|{ ]/.test(inner) && !inner.startsWith('{') ? `(${inner})[]` : `${inner}[]`;
  }
  const props = checker.getPropertiesOfType(t);
  const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
  const fields = props
    .filter((p) => !(p.flags & ts.SymbolFlags.Method))
    .map((p) => {
      const pt = checker.getTypeOfSymbol(p);
      const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
      const text = shape(checker, pt, depth + 1, next)
        .split(' | ')
        .filter((part) => !optional || part !== 'undefined')
        .join(' | ');
      return `${p.name}${optional ? '?' : ''}: ${text}`;
    });
  if (index) fields.push(`[key: string]: ${shape(checker, index.type, depth + 1, next)}`);
  return `{ ${fields.join('; ')} }`;
}

/** Result types: `BaseCommand<T>` of each oclif command file, `def<R, P>` of each pkg command. */
function resultTypes(): { oclif: Map<string, string>; pkg: Map<string, string> } {
  const config = ts.getParsedCommandLineOfConfigFile(
    resolve(ROOT, 'tsconfig.json'),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
  )!;
  const roots = config.fileNames.filter((f) => /\/cli\/(swpkg|swport)\/commands\/|\/userland\/cli\/commands\.ts$/.test(f));
  const program = ts.createProgram(roots, config.options);
  const checker = program.getTypeChecker();
  const oclif = new Map<string, string>();
  const pkg = new Map<string, string>();
  for (const file of roots) {
    const sf = program.getSourceFile(file)!;
    const visit = (n: ts.Node): void => {
      if (ts.isClassDeclaration(n)) {
        for (const h of n.heritageClauses ?? []) {
          const base = h.types[0];
          if (base && base.expression.getText(sf) === 'BaseCommand' && base.typeArguments?.[0]) {
            const m = /\/cli\/(swpkg|swport)\/commands\/(.+)\.ts$/.exec(file)!;
            oclif.set(`${m[1]} ${m[2]!.replaceAll('/', ' ')}`, shape(checker, checker.getTypeFromTypeNode(base.typeArguments[0])));
          }
        }
      }
      if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'def' && n.typeArguments?.[0]) {
        const arg = n.arguments[0];
        const words = arg && ts.isObjectLiteralExpression(arg) ? arg.properties.find((p) => p.name?.getText(sf) === 'words') : undefined;
        const result = shape(checker, checker.getTypeFromTypeNode(n.typeArguments[0]));
        if (words && ts.isPropertyAssignment(words) && ts.isArrayLiteralExpression(words.initializer)) {
          pkg.set(`pkg ${words.initializer.elements.map((e) => (ts.isStringLiteral(e) ? e.text : '?')).join(' ')}`, result);
        } else if (words && ts.isShorthandPropertyAssignment(words)) {
          // repoAddLike(words, replace): the one definition behind repo add and repo set.
          pkg.set('pkg repo add', result);
          pkg.set('pkg repo set', result);
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return { oclif, pkg };
}

export function currentInterface(): { swpkg: CommandShape[]; swport: CommandShape[]; pkg: CommandShape[]; pkgGlobalFlags: FlagShape[] } {
  const types = resultTypes();
  const oclifTool = (bin: 'swpkg' | 'swport', table: Record<string, unknown>): CommandShape[] =>
    Object.entries(table)
      .map(([id, cls]) => {
        const c = cls as OclifCommand;
        const full = `${bin} ${id.replaceAll(':', ' ')}`;
        return {
          id: full,
          args: Object.entries(c.args ?? {}).map(([name, a]) => ({ name, ...(a.required ? { required: true as const } : {}) })),
          flags: oclifFlags(c),
          result: types.oclif.get(full) ?? 'MISSING',
        };
      })
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    swpkg: oclifTool('swpkg', SWPKG),
    swport: oclifTool('swport', SWPORT),
    pkg: PKG.map((c) => {
      const id = `pkg ${c.words.join(' ')}`;
      return {
        id,
        args: c.args.map((a) => ({
          name: a.name,
          ...(a.required ? { required: true as const } : {}),
          ...(a.variadic ? { variadic: true as const } : {}),
        })),
        flags: c.flags
          .map((f) => ({ name: f.name, ...(f.short ? { char: f.short } : {}), type: f.type }))
          .sort((a, b) => (a.name < b.name ? -1 : 1)),
        result: types.pkg.get(id) ?? 'MISSING',
      };
    }).sort((a, b) => (a.id < b.id ? -1 : 1)),
    pkgGlobalFlags: GLOBAL_FLAGS.map((f) => ({ name: f.name, ...(f.short ? { char: f.short } : {}), type: f.type })),
  };
}
