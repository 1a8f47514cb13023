import semver from 'semver';
import { SwpkgError, SHA256_HEX, NAME_RE } from '../../catalog/index.js';

/** Targets the builder knows how to produce. A recipe lists the subset it supports. */
export const KNOWN_TARGETS = ['x86_64-linux-musl', 'aarch64-linux-musl'] as const;
export type Target = (typeof KNOWN_TARGETS)[number];
export const DEFAULT_TARGET: Target = 'x86_64-linux-musl';

/**
 * Per target: the package arch and ABI that binaries built for it carry, the
 * ELF machine every executable and library in its packages must have, and
 * whether its outputs must be statically linked.
 */
export const TARGET_INFO: Record<Target, { arch: 'x86_64' | 'aarch64'; abi: string; elfMachine: number; static: boolean }> = {
  'x86_64-linux-musl': { arch: 'x86_64', abi: 'linux-musl-static', elfMachine: 62 /* EM_X86_64 */, static: true },
  'aarch64-linux-musl': { arch: 'aarch64', abi: 'linux-musl-static', elfMachine: 183 /* EM_AARCH64 */, static: true },
};

/**
 * The target whose toolchain builds a port: its own target, except that an
 * `arch: any` port (data only, made with host tools) is built once, for the
 * default target, whatever target was asked for. Its package is then one file
 * shared by every target instead of two packages with the same name and
 * version but different build records.
 */
export function buildTargetOf(recipe: Recipe, target: Target): Target {
  return recipe.arch === 'any' ? DEFAULT_TARGET : target;
}

export const BUILD_SYSTEMS = ['autotools', 'cmake', 'make', 'custom'] as const;
export type BuildSystem = (typeof BUILD_SYSTEMS)[number];

/** Where a Debian source package keeps the same bytes: only its `.orig` (or native) tarball is fetched. */
export interface DebianSourceRef {
  package: string;
  file: string;
}

export interface RecipeSource {
  /** Upstream location, kept for the record and tried last. */
  url: string;
  /** The pin: bytes from any mirror are trusted only if they hash to this. */
  sha256: string;
  debian?: DebianSourceRef;
  /** Why these bytes differ from upstream's, when they do (Debian +dfsg repacks, native packages). */
  note?: string;
  /** Leading path components dropped when extracting (default 1: the tarball's top folder). */
  strip: number;
  /** Sub-folder of the source tree to extract into (default: the tree itself). */
  dest?: string;
}

export interface RecipeBuild {
  system: BuildSystem;
  /** autotools: extra `./configure` arguments; cmake: extra `-D…` arguments. */
  configureArgs: string[];
  makeArgs: string[];
  installArgs: string[];
  /** custom: a POSIX sh script in the recipe folder, run in the source tree. */
  script?: string;
  /** Extra environment for every build step. */
  env: Record<string, string>;
}

export interface Recipe {
  name: string;
  /** The package version: strict semver. */
  version: string;
  /** The version upstream calls it (tzdata `2026b`); recorded in the package's build info. */
  upstreamVersion: string;
  summary: string;
  license: string;
  homepage?: string;
  /** SOURCE_DATE_EPOCH for the build and every archive entry (usually the release date). */
  sourceDateEpoch: number;
  /** `any` for data-only ports; otherwise the target decides. */
  arch?: 'any';
  sources: RecipeSource[];
  patches: string[];
  /** Runtime dependencies, `name` or `name@range`: they become the package's `depends`. */
  depends: string[];
  /** Ports whose packages are extracted into the build's sysroot (transitively). */
  buildDepends: string[];
  targets: string[];
  build: RecipeBuild;
  /** Paths (relative to the prefix, `*` allowed within a segment) removed before packing. */
  remove: string[];
  /** Host programs the build runs (zic, perl): their versions enter the toolchain id and the cache key. */
  hostTools: string[];
  /** The smoke test script in the recipe folder (POSIX sh, busybox compatible). */
  smoke: string;
}

const RECIPE_KEYS = new Set([
  'name',
  'version',
  'upstreamVersion',
  'summary',
  'license',
  'homepage',
  'sourceDateEpoch',
  'arch',
  'sources',
  'patches',
  'depends',
  'buildDepends',
  'targets',
  'build',
  'remove',
  'hostTools',
  'smoke',
  'notes',
]);
const SOURCE_KEYS = new Set(['url', 'sha256', 'debian', 'note', 'strip', 'dest']);
const DEBIAN_KEYS = new Set(['package', 'file']);
const BUILD_KEYS = new Set(['system', 'configureArgs', 'makeArgs', 'installArgs', 'script', 'env']);

/** A file name inside the recipe folder: no folders climbing out, no hidden tricks. */
const RECIPE_FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*(\/[A-Za-z0-9][A-Za-z0-9._+-]*)*$/;
const REMOVE_RE = /^[A-Za-z0-9*._+-]+(\/[A-Za-z0-9*._+-]+)*$/;
const TOOL_RE = /^[a-z0-9][a-z0-9._+-]*$/;

class RecipeReader {
  constructor(private readonly source: string) {}

  fail(field: string, why: string, value?: unknown): SwpkgError {
    return new SwpkgError('E_INVALID_RECIPE', `${this.source}: ${field} ${why}`, {
      hint: 'fix the recipe; `swport recipe validate NAME` checks it without building',
      details: { recipe: this.source, field, ...(value === undefined ? {} : { value: preview(value) }) },
    });
  }

  record(v: unknown, field: string, allowed: Set<string>): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.fail(field, 'must be an object', v);
    const r = v as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!allowed.has(k))
        throw this.fail(field === '(recipe)' ? k : `${field}.${k}`, `is not a known field (known: ${[...allowed].join(', ')})`);
    }
    return r;
  }

  string(r: Record<string, unknown>, key: string, field: string, max = 1024): string {
    const v = r[key];
    if (v === undefined) throw this.fail(field, 'is required');
    if (typeof v !== 'string' || v.length === 0 || v.length > max)
      throw this.fail(field, `must be a non-empty string of at most ${max} characters`, v);
    return v;
  }

  optString(r: Record<string, unknown>, key: string, field: string, max = 1024): string | undefined {
    return r[key] === undefined ? undefined : this.string(r, key, field, max);
  }

  strings(r: Record<string, unknown>, key: string, field: string, re?: RegExp): string[] {
    const v = r[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.fail(field, 'must be an array of strings', v);
    return v.map((x: unknown, i) => {
      if (typeof x !== 'string' || x.length === 0 || x.length > 4096) throw this.fail(`${field}[${i}]`, 'must be a non-empty string', x);
      if (re && !re.test(x)) throw this.fail(`${field}[${i}]`, `has an unsafe or malformed value`, x);
      return x;
    });
  }
}

function preview(v: unknown): string | number | boolean | null {
  if (typeof v === 'string') return v.slice(0, 200);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return v;
  return (JSON.stringify(v) ?? typeof v).slice(0, 200);
}

/** Splits `name@range` (range defaults to `*`). */
export function parseDependency(spec: string): { name: string; range: string } {
  const at = spec.indexOf('@', 1);
  return at < 0 ? { name: spec, range: '*' } : { name: spec.slice(0, at), range: spec.slice(at + 1) };
}

/**
 * Validates a parsed recipe.json. Strict: a missing required field or an
 * unknown one is E_INVALID_RECIPE with `details.field`, so a typo
 * (`sah256`) never silently drops a pin. `source` names the file in messages.
 */
export function parseRecipe(value: unknown, source: string): Recipe {
  const rd = new RecipeReader(source);
  const r = rd.record(value, '(recipe)', RECIPE_KEYS);

  const name = rd.string(r, 'name', 'name', 64);
  if (!NAME_RE.test(name)) throw rd.fail('name', 'must be a package name (a-z, 0-9, +, ., _, -)', name);
  const version = rd.string(r, 'version', 'version', 64);
  if (semver.valid(version) !== version)
    throw rd.fail('version', 'must be a strict semantic version (map upstream versions, e.g. 2026b → 2026.2.0)', version);
  const upstreamVersion = rd.optString(r, 'upstreamVersion', 'upstreamVersion', 64) ?? version;
  const summary = rd.string(r, 'summary', 'summary', 512);
  const license = rd.string(r, 'license', 'license', 256);
  const homepage = rd.optString(r, 'homepage', 'homepage', 2048);
  const epoch = parseSourceDateEpoch(rd, r['sourceDateEpoch']);
  let arch: 'any' | undefined;
  if (r['arch'] !== undefined) {
    if (r['arch'] !== 'any') throw rd.fail('arch', 'may only be "any" (data-only ports); binaries take the arch of the target', r['arch']);
    arch = 'any';
  }

  if (!Array.isArray(r['sources']) || r['sources'].length === 0) throw rd.fail('sources', 'must be a non-empty array', r['sources']);
  const sources = r['sources'].map((s: unknown, i) => parseSource(rd, s, `sources[${i}]`));

  const patches = rd.strings(r, 'patches', 'patches', RECIPE_FILE_RE);
  const { depends, buildDepends } = parseDependencies(rd, r, name);
  const targets = parseTargets(rd, r);
  const build = parseBuild(rd, r['build']);

  const remove = rd.strings(r, 'remove', 'remove', REMOVE_RE);
  const hostTools = rd.strings(r, 'hostTools', 'hostTools', TOOL_RE);
  const smoke = rd.string(r, 'smoke', 'smoke', 256);
  if (!RECIPE_FILE_RE.test(smoke)) throw rd.fail('smoke', 'must be a file in the recipe folder', smoke);
  // `notes` is free text for people (why a pin is a repack, what a patch does); it has no effect.
  if (r['notes'] !== undefined && (!Array.isArray(r['notes']) || !r['notes'].every((n) => typeof n === 'string'))) {
    throw rd.fail('notes', 'must be an array of strings', r['notes']);
  }

  const recipe: Recipe = {
    name,
    version,
    upstreamVersion,
    summary,
    license,
    sourceDateEpoch: epoch,
    sources,
    patches,
    depends,
    buildDepends,
    targets,
    build,
    remove,
    hostTools,
    smoke,
  };
  if (homepage !== undefined) recipe.homepage = homepage;
  if (arch !== undefined) recipe.arch = arch;
  return recipe;
}

/** One entry of `sources`: a pinned download, optionally named by its Debian source package. */
function parseSource(rd: RecipeReader, s: unknown, f: string): RecipeSource {
  const sr = rd.record(s, f, SOURCE_KEYS);
  const url = rd.string(sr, 'url', `${f}.url`, 4096);
  if (!/^https?:\/\/[^\s/]+\/\S*$/.test(url)) throw rd.fail(`${f}.url`, 'must be an http(s) URL', url);
  const sha256 = rd.string(sr, 'sha256', `${f}.sha256`, 64);
  if (!SHA256_HEX.test(sha256)) throw rd.fail(`${f}.sha256`, 'must be 64 lowercase hex digits', sha256);
  const out: RecipeSource = { url, sha256, strip: 1 };
  if (sr['debian'] !== undefined) {
    const dr = rd.record(sr['debian'], `${f}.debian`, DEBIAN_KEYS);
    const pkg = rd.string(dr, 'package', `${f}.debian.package`, 128);
    const file = rd.string(dr, 'file', `${f}.debian.file`, 256);
    if (!/^[a-z0-9][a-z0-9+.-]*$/.test(pkg)) throw rd.fail(`${f}.debian.package`, 'must be a Debian source package name', pkg);
    if (!/^[A-Za-z0-9][A-Za-z0-9+._~-]*$/.test(file)) throw rd.fail(`${f}.debian.file`, 'must be a plain file name', file);
    out.debian = { package: pkg, file };
  }
  const note = rd.optString(sr, 'note', `${f}.note`, 1024);
  if (note !== undefined) out.note = note;
  if (sr['strip'] !== undefined) {
    const st = sr['strip'];
    if (typeof st !== 'number' || !Number.isInteger(st) || st < 0 || st > 8) throw rd.fail(`${f}.strip`, 'must be an integer 0-8', st);
    out.strip = st;
  }
  const dest = rd.optString(sr, 'dest', `${f}.dest`, 256);
  if (dest !== undefined) {
    if (!RECIPE_FILE_RE.test(dest)) throw rd.fail(`${f}.dest`, 'must be a relative folder inside the source tree', dest);
    out.dest = dest;
  }
  return out;
}

/** `build`: the build system, its arguments and environment, and the script of a custom build. */
function parseBuild(rd: RecipeReader, value: unknown): RecipeBuild {
  const br = rd.record(value ?? null, 'build', BUILD_KEYS);
  const system = br['system'];
  if (typeof system !== 'string' || !(BUILD_SYSTEMS as readonly string[]).includes(system)) {
    throw rd.fail('build.system', `must be one of ${BUILD_SYSTEMS.join(', ')}`, system);
  }
  const build: RecipeBuild = {
    system: system as BuildSystem,
    configureArgs: rd.strings(br, 'configureArgs', 'build.configureArgs'),
    makeArgs: rd.strings(br, 'makeArgs', 'build.makeArgs'),
    installArgs: rd.strings(br, 'installArgs', 'build.installArgs'),
    env: {},
  };
  const script = rd.optString(br, 'script', 'build.script', 256);
  if (system === 'custom') {
    if (script === undefined) throw rd.fail('build.script', 'is required for a custom build');
    if (!RECIPE_FILE_RE.test(script)) throw rd.fail('build.script', 'must be a file in the recipe folder', script);
    build.script = script;
  } else if (script !== undefined) {
    throw rd.fail('build.script', `is only for custom builds, not ${system}`);
  }
  if (br['env'] !== undefined) {
    const er = br['env'];
    if (typeof er !== 'object' || er === null || Array.isArray(er)) throw rd.fail('build.env', 'must be an object of strings', er);
    for (const [k, v] of Object.entries(er as Record<string, unknown>)) {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw rd.fail(`build.env.${k}`, 'must be an upper-case variable name');
      if (typeof v !== 'string') throw rd.fail(`build.env.${k}`, 'must be a string', v);
      build.env[k] = v;
    }
  }

  return build;
}

/** `depends` (semver ranges on ports) and `buildDepends` (port names); neither lists the port itself or a port twice. */
function parseDependencies(rd: RecipeReader, r: Record<string, unknown>, name: string): { depends: string[]; buildDepends: string[] } {
  const depends = rd.strings(r, 'depends', 'depends');
  depends.forEach((d, i) => {
    const { name: dn, range } = parseDependency(d);
    if (!NAME_RE.test(dn)) throw rd.fail(`depends[${i}]`, 'must name a port', d);
    if (semver.validRange(range) === null) throw rd.fail(`depends[${i}]`, 'has a range that is not a semver range', d);
  });
  const buildDepends = rd.strings(r, 'buildDepends', 'buildDepends', NAME_RE);
  for (const [field, list] of [
    ['depends', depends.map((d) => parseDependency(d).name)],
    ['buildDepends', buildDepends],
  ] as const) {
    if (list.includes(name)) throw rd.fail(field, 'may not list the port itself', name);
    if (new Set(list).size !== list.length) throw rd.fail(field, 'lists a port twice', list);
  }

  return { depends, buildDepends };
}

/** `targets`: required, and each one a target the builder knows. */
function parseTargets(rd: RecipeReader, r: Record<string, unknown>): string[] {
  const targets = rd.strings(r, 'targets', 'targets');
  if (targets.length === 0) throw rd.fail('targets', `is required: the targets this recipe supports (known: ${KNOWN_TARGETS.join(', ')})`);
  targets.forEach((t, i) => {
    if (!(KNOWN_TARGETS as readonly string[]).includes(t))
      throw rd.fail(`targets[${i}]`, `is not a target the builder knows (${KNOWN_TARGETS.join(', ')})`, t);
  });

  return targets;
}

/** `sourceDateEpoch`: the release date, for reproducible builds. */
function parseSourceDateEpoch(rd: RecipeReader, epoch: unknown): number {
  if (epoch === undefined)
    throw rd.fail('sourceDateEpoch', 'is required (the release date as seconds since 1970, for reproducible builds)');
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 315532800) {
    throw rd.fail(
      'sourceDateEpoch',
      'must be an integer number of seconds since 1970 (1980 or later: zip and tar tools refuse earlier)',
      epoch,
    );
  }
  return epoch;
}

/** Refuses a target the recipe does not list (E_UNSUPPORTED_TARGET), naming the ones it does. */
export function assertTarget(recipe: Recipe, target: string): Target {
  if (!(KNOWN_TARGETS as readonly string[]).includes(target)) {
    throw new SwpkgError('E_UNSUPPORTED_TARGET', `unknown target ${target}`, {
      hint: `the builder knows ${KNOWN_TARGETS.join(', ')}`,
      details: { port: recipe.name, target, known: [...KNOWN_TARGETS] },
    });
  }
  if (!recipe.targets.includes(target)) {
    throw new SwpkgError('E_UNSUPPORTED_TARGET', `${recipe.name} does not support target ${target}`, {
      hint: `build it for one of: ${recipe.targets.join(', ')}`,
      details: { port: recipe.name, target, supported: recipe.targets },
    });
  }
  return target as Target;
}
