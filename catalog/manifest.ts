import semver from 'semver';
import { SwpkgError } from './errors.js';
import { SHA256_HEX } from './hash.js';

export const PACKAGE_FORMAT = 1;
export const ARCHES = ['x86_64', 'aarch64', 'any'] as const;
export type Arch = (typeof ARCHES)[number];

export type FileType = 'file' | 'dir' | 'symlink';

export interface FileEntry {
  path: string;
  type: FileType;
  mode: number;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface SourceInfo {
  name?: string;
  url?: string;
  sha256: string;
}

export interface BuildInfo {
  recipeSha256?: string;
  sources?: SourceInfo[];
  toolchain?: string;
  sourceDateEpoch?: number;
  target?: string;
  upstreamVersion?: string;
}

/** What the packer is told about a package; the file list is computed. */
export interface PackageMeta {
  name: string;
  version: string;
  arch: Arch;
  abi: string;
  summary: string;
  license: string;
  homepage?: string;
  depends?: Record<string, string>;
  provides?: string[];
  conflicts?: string[];
  build?: BuildInfo;
  health?: HealthCheck[];
}

/**
 * A check `pkg` runs after a transaction that added or changed this package
 * has switched `current` (docs/design.md, "Health checks"). `command` is a
 * path inside the package, run from the new generation with no stdin and
 * bounded output; a `required` check that fails switches back.
 */
export interface HealthCheck {
  name: string;
  command: string;
  /** Seconds before the check is killed (and counts as failed). */
  timeout: number;
  level: 'required' | 'advisory';
}

export interface PackageManifest {
  format: 1;
  name: string;
  version: string;
  arch: Arch;
  abi: string;
  summary: string;
  license: string;
  homepage?: string;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
  installedSize: number;
  files: FileEntry[];
  build?: BuildInfo;
  health?: HealthCheck[];
}

export const NAME_RE = /^[a-z0-9][a-z0-9+._-]{0,63}$/;
const ABI_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Bounds on what a package may declare, set from what real packages need
 * (docs/design.md lists each with its reason). The largest seed port,
 * tzdata, has 625 entries in a 95 KB manifest, paths of at most 47 bytes,
 * 5 segments deep, and link targets of at most 25 bytes; every limit here
 * is at least 20 times that, and each keeps a hostile package from costing
 * memory, disk or time out of proportion before its bytes are checked.
 */
export const MANIFEST_LIMITS = {
  /** Bytes of `.SWPKG/manifest.json`: 32 768 entries of about 256 bytes. */
  manifestBytes: 8 * 1024 * 1024,
  /** Entries (files, folders, symlinks) in one package. */
  files: 32_768,
  /** Bytes of one payload path; leaves room for `/pkg/store/<sha256>-NAME-VERSION/` within PATH_MAX (4096). */
  pathBytes: 1024,
  /** Bytes of one path segment (NAME_MAX). */
  segmentBytes: 255,
  /** Segments of one path. */
  depth: 32,
  /** Bytes of one symlink target. */
  linkTargetBytes: 1024,
  /** Health checks per package: a service needs a few; each runs after every upgrade. */
  healthChecks: 16,
  /** Longest health-check timeout in seconds: a check that needs longer would hold every upgrade that long. */
  healthTimeoutSeconds: 600,
} as const;

/** Timeout of a health check declared without one (seconds). */
export const DEFAULT_HEALTH_TIMEOUT = 30;

/** The only modes a package carries: what the writer normalises to (no special bits, no group or world write). */
export const ALLOWED_MODES: Record<FileType, readonly number[]> = {
  file: [0o644, 0o755],
  dir: [0o755],
  symlink: [0o777],
};

// Control characters in a path or link target only serve to confuse terminals and scripts that print them.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function bad(
  field: string,
  value: unknown,
  why: string,
  code: 'E_INVALID_MANIFEST' | 'E_INVALID_VERSION' | 'E_UNSAFE_PATH' | 'E_INVALID_RANGE' = 'E_INVALID_MANIFEST',
): SwpkgError {
  return new SwpkgError(code, `manifest field ${field} ${why}`, {
    details: { field, value: typeof value === 'string' || typeof value === 'number' ? value : JSON.stringify(value)?.slice(0, 200) },
  });
}

/**
 * Strings semver already accepted, as a version and as a range: a 65 000-entry catalog repeats a
 * few thousand of them, and semver's parse (regexes, a Range object per call) was most of the
 * time and garbage of checking it. Only acceptances are kept, so a refusal is always semver's
 * own; the sets are emptied when full, which bounds them.
 */
const knownVersions = new Set<string>();
const knownRanges = new Set<string>();
const KNOWN_MAX = 16384;

function remember(set: Set<string>, s: string): void {
  if (set.size >= KNOWN_MAX) set.clear();
  set.add(s);
}

/** Semver exactly, no leading "v", no loose forms: versions are compared by the resolver and must mean one thing. */
export function assertVersion(version: unknown, field = 'version'): string {
  if (typeof version === 'string' && knownVersions.has(version)) return version;
  if (typeof version !== 'string' || semver.valid(version) !== version) {
    throw bad(field, version, 'is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.3)', 'E_INVALID_VERSION');
  }
  remember(knownVersions, version);
  return version;
}

export function assertName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw bad(field, name, 'must be 1-64 characters of a-z, 0-9, +, ., _, - starting with a letter or digit');
  }
  return name;
}

export function assertRange(range: unknown, field: string): string {
  if (typeof range === 'string' && knownRanges.has(range)) return range;
  if (typeof range !== 'string' || semver.validRange(range) === null) {
    throw bad(field, range, 'is not a semver range (e.g. ^1.2.0, >=2 <3, *)', 'E_INVALID_RANGE');
  }
  remember(knownRanges, range);
  return range;
}

/**
 * A payload path: relative, normalised, within the package root. Checked on
 * read as well as write, because the archive is attacker-controlled input.
 */
export function assertSafePath(path: unknown, field: string): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw bad(field, path, 'must be a non-empty relative path', 'E_UNSAFE_PATH');
  }
  if (Buffer.byteLength(path) > MANIFEST_LIMITS.pathBytes) {
    throw bad(field, path.slice(0, 200), `is longer than ${MANIFEST_LIMITS.pathBytes} bytes`, 'E_UNSAFE_PATH');
  }
  if (path.startsWith('/') || path.includes('\\') || CONTROL_CHARS.test(path)) {
    throw bad(field, path, 'must be relative, without backslashes, NUL or control characters', 'E_UNSAFE_PATH');
  }
  const segs = path.split('/');
  if (segs.length > MANIFEST_LIMITS.depth) {
    throw bad(field, path, `is more than ${MANIFEST_LIMITS.depth} folders deep`, 'E_UNSAFE_PATH');
  }
  for (const seg of segs) {
    if (seg === '' || seg === '.' || seg === '..') {
      throw bad(field, path, 'must be normalised (no empty, "." or ".." segments) and stay inside the package', 'E_UNSAFE_PATH');
    }
    if (Buffer.byteLength(seg) > MANIFEST_LIMITS.segmentBytes) {
      throw bad(field, path, `has a name longer than ${MANIFEST_LIMITS.segmentBytes} bytes`, 'E_UNSAFE_PATH');
    }
  }
  if (path === '.SWPKG' || path.startsWith('.SWPKG/')) {
    throw bad(field, path, 'may not use the reserved .SWPKG/ folder', 'E_UNSAFE_PATH');
  }
  return path;
}

/** A symlink may only point inside the package: relative, and never climbing above the root. */
export function assertSafeLinkTarget(linkPath: string, target: unknown, field: string): string {
  if (typeof target !== 'string' || target.length === 0 || CONTROL_CHARS.test(target)) {
    throw bad(field, target, 'must be a non-empty link target without NUL or control characters', 'E_UNSAFE_PATH');
  }
  if (Buffer.byteLength(target) > MANIFEST_LIMITS.linkTargetBytes) {
    throw bad(field, target.slice(0, 200), `is longer than ${MANIFEST_LIMITS.linkTargetBytes} bytes`, 'E_UNSAFE_PATH');
  }
  if (target.startsWith('/')) {
    throw bad(field, target, `(symlink ${linkPath}) is absolute and would point outside the package`, 'E_UNSAFE_PATH');
  }
  const depth = linkPath.split('/').length - 1;
  let level = depth;
  for (const seg of target.split('/')) {
    if (seg === '..') level -= 1;
    else if (seg !== '' && seg !== '.') level += 1;
    if (level < 0) throw bad(field, target, `(symlink ${linkPath}) climbs out of the package`, 'E_UNSAFE_PATH');
  }
  return target;
}

/**
 * Special bits (setuid, setgid, sticky) are refused as unsafe; any other
 * mode than the writer's normalised ones (ALLOWED_MODES) is refused too, so
 * a folder without search permission or a world-writable file cannot reach
 * the store.
 */
function assertMode(mode: unknown, type: FileType, field: string): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw bad(field, mode, 'must be a permission number between 0 and 0o7777');
  }
  if (mode & 0o7000)
    throw bad(field, `0o${mode.toString(8)}`, 'has setuid, setgid or sticky bits, which packages may not carry', 'E_UNSAFE_PATH');
  const allowed = ALLOWED_MODES[type];
  if (!allowed.includes(mode)) {
    throw bad(field, `0o${mode.toString(8)}`, `must be ${allowed.map((m) => `0o${m.toString(8)}`).join(' or ')} for a ${type}`);
  }
  return mode;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(v: Record<string, unknown>, key: string, max = 1024): string | undefined {
  const x = v[key];
  if (x === undefined) return undefined;
  if (typeof x !== 'string' || x.length > max) throw bad(key, x, `must be a string of at most ${max} characters`);
  return x;
}

function requiredString(v: Record<string, unknown>, key: string, max = 1024): string {
  const x = optionalString(v, key, max);
  if (x === undefined) throw bad(key, undefined, 'is required');
  return x;
}

export function validateDepends(value: unknown, field = 'depends'): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw bad(field, value, 'must be an object of name → semver range');
  const out: Record<string, string> = {};
  for (const name of Object.keys(value).sort()) {
    assertName(name, `${field}.${name}`);
    out[name] = assertRange(value[name], `${field}.${name}`);
  }
  return out;
}

/** `name` or `name@version` (provides) / `name@range` (conflicts). */
function validateRefList(value: unknown, field: string, versioned: 'version' | 'range'): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw bad(field, value, 'must be an array of names');
  const out = value.map((item, i) => {
    if (typeof item !== 'string') throw bad(`${field}[${i}]`, item, 'must be a string');
    const at = item.indexOf('@');
    const name = at < 0 ? item : item.slice(0, at);
    assertName(name, `${field}[${i}]`);
    if (at >= 0) {
      if (versioned === 'version') assertVersion(item.slice(at + 1), `${field}[${i}]`);
      else assertRange(item.slice(at + 1), `${field}[${i}]`);
    }
    return item;
  });
  return [...new Set(out)].sort();
}

function validateBuild(value: unknown): BuildInfo | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw bad('build', value, 'must be an object');
  const b: BuildInfo = {};
  for (const key of Object.keys(value)) {
    if (!['recipeSha256', 'sources', 'toolchain', 'sourceDateEpoch', 'target', 'upstreamVersion'].includes(key)) {
      throw bad(`build.${key}`, value[key], 'is not a known build field');
    }
  }
  if (value['recipeSha256'] !== undefined) {
    if (typeof value['recipeSha256'] !== 'string' || !SHA256_HEX.test(value['recipeSha256']))
      throw bad('build.recipeSha256', value['recipeSha256'], 'must be a SHA-256 hex digest');
    b.recipeSha256 = value['recipeSha256'];
  }
  if (value['sources'] !== undefined) {
    if (!Array.isArray(value['sources'])) throw bad('build.sources', value['sources'], 'must be an array');
    b.sources = value['sources'].map((s: unknown, i) => {
      if (!isRecord(s) || typeof s['sha256'] !== 'string' || !SHA256_HEX.test(s['sha256']))
        throw bad(`build.sources[${i}]`, s, 'needs a sha256');
      const out: SourceInfo = { sha256: s['sha256'] };
      const name = optionalString(s, 'name');
      const url = optionalString(s, 'url', 4096);
      if (name !== undefined) out.name = name;
      if (url !== undefined) out.url = url;
      return out;
    });
  }
  const toolchain = optionalString(value, 'toolchain');
  if (toolchain !== undefined) b.toolchain = toolchain;
  const target = optionalString(value, 'target');
  if (target !== undefined) b.target = target;
  const upstreamVersion = optionalString(value, 'upstreamVersion');
  if (upstreamVersion !== undefined) b.upstreamVersion = upstreamVersion;
  if (value['sourceDateEpoch'] !== undefined) {
    const e = value['sourceDateEpoch'];
    if (typeof e !== 'number' || !Number.isInteger(e) || e < 0) throw bad('build.sourceDateEpoch', e, 'must be a non-negative integer');
    b.sourceDateEpoch = e;
  }
  return b;
}

const HEALTH_KEYS = ['name', 'command', 'timeout', 'level'];

/**
 * The `health` field: at most MANIFEST_LIMITS.healthChecks checks, unique
 * names, a command that is a safe relative path (checked like a payload
 * path: no absolute path, no `..`), a whole-second timeout from 1 to
 * MANIFEST_LIMITS.healthTimeoutSeconds (0 would fail every check, a huge one
 * would let a check hold every upgrade), and `required` or `advisory`.
 */
export function validateHealthChecks(value: unknown): HealthCheck[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw bad('health', value, 'must be an array of checks');
  if (value.length > MANIFEST_LIMITS.healthChecks)
    throw bad('health', value.length, `lists more than ${MANIFEST_LIMITS.healthChecks} checks`);
  const names = new Set<string>();
  return value.map((raw: unknown, i) => {
    const field = `health[${i}]`;
    if (!isRecord(raw)) throw bad(field, raw, 'must be an object with name, command, timeout and level');
    for (const key of Object.keys(raw))
      if (!HEALTH_KEYS.includes(key)) throw bad(`${field}.${key}`, raw[key], 'is not a known health-check field');
    const name = assertName(raw['name'], `${field}.name`);
    if (names.has(name)) throw bad(`${field}.name`, name, 'is used by another check of this package');
    names.add(name);
    const command = assertSafePath(raw['command'], `${field}.command`);
    const timeout = raw['timeout'];
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MANIFEST_LIMITS.healthTimeoutSeconds) {
      throw bad(`${field}.timeout`, timeout, `must be a whole number of seconds from 1 to ${MANIFEST_LIMITS.healthTimeoutSeconds}`);
    }
    const level = raw['level'];
    if (level !== 'required' && level !== 'advisory') throw bad(`${field}.level`, level, 'must be required or advisory');
    return { name, command, timeout, level };
  });
}

/**
 * `swpkg pack --health-check NAME:COMMAND[:TIMEOUT][:required|advisory]`
 * (timeout default DEFAULT_HEALTH_TIMEOUT seconds, level default required).
 * Validated by validateHealthChecks with the rest of the metadata.
 */
export function parseHealthCheckSpec(spec: string): Record<string, unknown> {
  const parts = spec.split(':');
  const name = parts.shift();
  let level: string = 'required';
  let timeout: unknown = DEFAULT_HEALTH_TIMEOUT;
  if (parts.length > 1 && /^(required|advisory)$/.test(parts[parts.length - 1]!)) level = parts.pop()!;
  if (parts.length > 1 && /^-?[0-9]+$/.test(parts[parts.length - 1]!)) timeout = Number(parts.pop());
  if (name === undefined || name === '' || parts.length === 0) {
    throw bad('health', spec, 'must be given as NAME:COMMAND[:TIMEOUT_SECONDS][:required|advisory]');
  }
  return { name, command: parts.join(':'), timeout, level };
}

/** Validates the package-level fields shared by the packer's input and the manifest. */
export function validateMeta(value: unknown): PackageMeta {
  if (!isRecord(value)) throw bad('(root)', value, 'must be a JSON object');
  const arch = value['arch'];
  if (typeof arch !== 'string' || !(ARCHES as readonly string[]).includes(arch)) {
    throw bad('arch', arch, `must be one of ${ARCHES.join(', ')}`);
  }
  const abi = value['abi'];
  if (typeof abi !== 'string' || !ABI_RE.test(abi)) throw bad('abi', abi, 'must be an ABI id like linux-musl-static');
  const meta: PackageMeta = {
    name: assertName(value['name']),
    version: assertVersion(value['version']),
    arch: arch as Arch,
    abi,
    summary: requiredString(value, 'summary', 512),
    license: requiredString(value, 'license', 256),
    depends: validateDepends(value['depends']),
    provides: validateRefList(value['provides'], 'provides', 'version'),
    conflicts: validateRefList(value['conflicts'], 'conflicts', 'range'),
  };
  const homepage = optionalString(value, 'homepage', 2048);
  if (homepage !== undefined) meta.homepage = homepage;
  const build = validateBuild(value['build']);
  if (build !== undefined) meta.build = build;
  const health = validateHealthChecks(value['health']);
  if (health !== undefined) meta.health = health;
  return meta;
}

const MANIFEST_KEYS = new Set([
  'format',
  'name',
  'version',
  'arch',
  'abi',
  'summary',
  'license',
  'homepage',
  'depends',
  'provides',
  'conflicts',
  'installedSize',
  'files',
  'build',
  'health',
]);

/**
 * Validates a manifest read from an archive (untrusted) or built by the packer.
 * Errors carry `details.field` naming the offending field.
 */
export function validateManifest(value: unknown): PackageManifest {
  if (!isRecord(value)) throw bad('(root)', value, 'must be a JSON object');
  for (const key of Object.keys(value)) {
    if (!MANIFEST_KEYS.has(key)) throw bad(key, value[key], 'is not a known manifest field');
  }
  if (value['format'] !== PACKAGE_FORMAT) throw bad('format', value['format'], `must be ${PACKAGE_FORMAT}`);
  const meta = validateMeta(value);
  const files = validateFiles(value['files']);
  const installedSize = files.reduce((n, f) => n + (f.size ?? 0), 0);
  if (value['installedSize'] !== installedSize) {
    throw bad('installedSize', value['installedSize'], `must equal the sum of file sizes (${installedSize})`);
  }
  const m: PackageManifest = {
    format: 1,
    name: meta.name,
    version: meta.version,
    arch: meta.arch,
    abi: meta.abi,
    summary: meta.summary,
    license: meta.license,
    depends: meta.depends ?? {},
    provides: meta.provides ?? [],
    conflicts: meta.conflicts ?? [],
    installedSize,
    files,
  };
  if (meta.homepage !== undefined) m.homepage = meta.homepage;
  if (meta.build !== undefined) m.build = meta.build;
  if (meta.health !== undefined) {
    // A check runs a file of this package: it must be listed, as an executable file or a link inside the package.
    const byPath = new Map(files.map((f) => [f.path, f]));
    meta.health.forEach((h, i) => {
      const f = byPath.get(h.command);
      if (!f) throw bad(`health[${i}].command`, h.command, 'is not a file of this package');
      if (f.type === 'dir' || (f.type === 'file' && f.mode !== 0o755)) {
        throw bad(`health[${i}].command`, h.command, f.type === 'dir' ? 'is a folder, not a program' : 'is not executable (mode 0755)');
      }
    });
    m.health = meta.health;
  }
  return m;
}

/** Byte-wise path order: the order entries appear in the archive and in the manifest. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function validateFiles(value: unknown): FileEntry[] {
  if (!Array.isArray(value)) throw bad('files', value, 'must be an array');
  if (value.length > MANIFEST_LIMITS.files) throw bad('files', value.length, `lists more than ${MANIFEST_LIMITS.files} entries`);
  const seen = new Map<string, FileType>();
  const out: FileEntry[] = [];
  value.forEach((raw: unknown, i) => {
    const field = `files[${i}]`;
    if (!isRecord(raw)) throw bad(field, raw, 'must be an object');
    for (const key of Object.keys(raw)) {
      if (!['path', 'type', 'mode', 'size', 'sha256', 'target'].includes(key))
        throw bad(`${field}.${key}`, raw[key], 'is not a known file field');
    }
    const path = assertSafePath(raw['path'], `${field}.path`);
    if (seen.has(path)) throw bad(`${field}.path`, path, 'is listed twice');
    const type = raw['type'];
    if (type !== 'file' && type !== 'dir' && type !== 'symlink') {
      throw bad(`${field}.type`, type, 'must be file, dir or symlink (devices, fifos and hardlinks are refused)', 'E_UNSAFE_PATH');
    }
    const mode = assertMode(raw['mode'], type, `${field}.mode`);
    const entry: FileEntry = { path, type, mode };
    if (type === 'file') {
      const size = raw['size'];
      const sha = raw['sha256'];
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
        throw bad(`${field}.size`, size, 'must be a non-negative integer');
      if (typeof sha !== 'string' || !SHA256_HEX.test(sha)) throw bad(`${field}.sha256`, sha, 'must be a lowercase SHA-256 hex digest');
      if (raw['target'] !== undefined) throw bad(`${field}.target`, raw['target'], 'is only for symlinks');
      entry.size = size;
      entry.sha256 = sha;
    } else if (type === 'symlink') {
      entry.target = assertSafeLinkTarget(path, raw['target'], `${field}.target`);
      if (raw['size'] !== undefined || raw['sha256'] !== undefined) throw bad(field, raw, 'a symlink has no size or sha256');
    } else if (raw['size'] !== undefined || raw['sha256'] !== undefined || raw['target'] !== undefined) {
      throw bad(field, raw, 'a dir has no size, sha256 or target');
    }
    seen.set(path, entry.type);
    out.push(entry);
  });
  for (let i = 1; i < out.length; i++) {
    if (comparePaths(out[i - 1]!.path, out[i]!.path) >= 0) throw bad('files', out[i]!.path, 'must be sorted by path');
  }
  // A path below a symlink or a regular file would be written through it (or fail): refuse it.
  for (const f of out) {
    const segs = f.path.split('/');
    for (let k = 1; k < segs.length; k++) {
      const parent = segs.slice(0, k).join('/');
      const t = seen.get(parent);
      if (t !== undefined && t !== 'dir') {
        throw bad('files', f.path, `lies below ${parent}, which is a ${t}, not a folder`, 'E_UNSAFE_PATH');
      }
    }
  }
  return out;
}

/** Parses `a@^1.2,b` into `{a: '^1.2', b: '*'}` for `swpkg pack --depends`. */
export function parseDependsList(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = part.indexOf('@', 1);
    const name = at < 0 ? part : part.slice(0, at);
    const range = at < 0 ? '*' : part.slice(at + 1);
    assertName(name, `depends.${name}`);
    out[name] = assertRange(range, `depends.${name}`);
  }
  return out;
}
