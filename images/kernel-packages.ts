import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwpkgError, fromFsError, sha256File, sha256Hex, silentReporter, SHA256_HEX, type Reporter } from '../catalog/index.js';
import {
  KERNEL_PIN_FILE,
  KERNEL_PIN_FILES,
  type DebianPackagePin,
  type GuestArch,
  type KernelPin,
  type NpmPackagePin,
  type RuntimePin,
} from '../kernel/index.js';
import { GUEST_ARCH_PROFILES, emulatorFor, profileOfDebianArch, type GuestArchProfile } from './guest-arch.js';
import { runTool } from './host-tools.js';
import { moduleLoadOrder, readModuleInfo, type ModuleInfo } from './module-info.js';

export interface GuestModule {
  name: string;
  /** Path of the `.ko` under the output folder. */
  file: string;
  sha256: string;
  size: number;
  depends: string[];
}

/** One file of the unpacked runtime (Node or a library), relative to the output folder. */
export interface RuntimeFile {
  file: string;
  sha256: string;
  size: number;
}

/** The pinned Node and the libraries it loads, unpacked (only for pins with a `runtime`). */
export interface RuntimeArtifacts {
  node: RuntimeFile & { package: string; version: string; tarballSha256: string };
  /** `path` is where the file goes on the base disk (lib/<multiarch>/NAME). */
  libraries: Array<RuntimeFile & { path: string }>;
}

/** What `fetchGuestPackages` leaves in its output folder (also written there as `kernel-artifacts.json`). */
export interface KernelArtifacts {
  /** Hash of the pin file's content: the output is reused while it is unchanged. */
  pinHash: string;
  arch: GuestArch;
  kernel: KernelPin['kernel'];
  busybox: DebianPackagePin & { applets: string[] };
  vmlinuz: { file: string; sha256: string; size: number };
  busyboxBinary: { file: string; sha256: string; size: number };
  modules: GuestModule[];
  /** Module names in the order the init must insmod them. */
  loadOrder: string[];
  /** Where each .deb came from on the run that unpacked it. */
  sources: { kernel: string; busybox: string; runtime?: string[] };
  runtime?: RuntimeArtifacts;
}

export interface FetchGuestPackagesOptions {
  /** Repository root; default: found from this file's location. */
  repoRoot?: string;
  /** Guest architecture; default x86_64. Chooses the default pin file and output folder. */
  arch?: GuestArch;
  /** Pin file; default `<repoRoot>/kernel/kernel.json` (x86_64) or `kernel/kernel-aarch64.json`. */
  pinFile?: string;
  /** Output folder; default `<repoRoot>/build/kernel` (x86_64) or `build/kernel-aarch64`. */
  outDir?: string;
  /**
   * Content-addressed mirror (files named by their SHA-256); default
   * `$SWPKG_SOURCE_MIRROR`, else `<repoRoot>/../shared/sources`.
   */
  mirrorDir?: string;
  /**
   * Verified downloads are kept here by hash (`<sha256>.deb`, `<sha256>.tgz`); default
   * `defaultDownloadCache()`, outside the checkout so a second clone or a rerun needs no network.
   */
  cacheDir?: string;
  /**
   * Fall back to `apt-get download PKG=VERSION` (and `npm pack NAME@VERSION` for a runtime pin)
   * when no mirror or cache has the bytes. Default true.
   */
  allowApt?: boolean;
  /** Re-unpack even when the output matches the pin. */
  force?: boolean;
  reporter?: Reporter;
}

/** Walks up from `start` to the folder whose package.json names this project. */
export function findRepoRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(start);
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && existsSync(join(dir, KERNEL_PIN_FILE))) return dir;
    const up = dirname(dir);
    if (up === dir) {
      throw new SwpkgError('E_NOT_FOUND', `no swpkg checkout above ${start}`, {
        hint: 'run from inside the repository or pass repoRoot',
      });
    }
    dir = up;
  }
}

/**
 * Where verified downloads are cached by hash: `$SWPKG_CACHE_HOME`, else
 * `$XDG_CACHE_HOME/swpkg`, else `~/.cache/swpkg`, plus `downloads`. Outside the
 * work tree because the arm64 packages are not in the shared source mirror:
 * once fetched, any checkout on this machine builds offline.
 */
export function defaultDownloadCache(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.SWPKG_CACHE_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'swpkg');
  return join(base, 'downloads');
}

const PKG_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const NPM_VERSION = /^[0-9]+\.[0-9]+\.[0-9]+$/;
const INTEGRITY = /^sha512-[A-Za-z0-9+/]{86}==$/;
const DEB_VERSION = /^[0-9A-Za-z.+~:-]+$/;

function parsePin(value: unknown, source: string): DebianPackagePin {
  const v = value as Partial<DebianPackagePin> | null;
  if (
    !v ||
    typeof v.package !== 'string' ||
    !PKG_NAME.test(v.package) ||
    typeof v.version !== 'string' ||
    !DEB_VERSION.test(v.version) ||
    typeof v.arch !== 'string' ||
    typeof v.sha256 !== 'string' ||
    !SHA256_HEX.test(v.sha256)
  ) {
    throw new SwpkgError('E_INVALID_MANIFEST', `${source}: a package pin needs package, version, arch and a lowercase hex sha256`, {
      details: { source },
    });
  }
  return { package: v.package, version: v.version, arch: v.arch, sha256: v.sha256 };
}

function parseNpmPin(value: unknown, source: string): NpmPackagePin {
  const v = value as Partial<NpmPackagePin> | null;
  if (
    !v ||
    typeof v.package !== 'string' ||
    !PKG_NAME.test(v.package) ||
    typeof v.version !== 'string' ||
    !NPM_VERSION.test(v.version) ||
    typeof v.integrity !== 'string' ||
    !INTEGRITY.test(v.integrity) ||
    typeof v.sha256 !== 'string' ||
    !SHA256_HEX.test(v.sha256)
  ) {
    throw new SwpkgError('E_INVALID_MANIFEST', `${source}: an npm pin needs package, an exact version, a sha512 integrity and a sha256`, {
      details: { source },
    });
  }
  return { package: v.package, version: v.version, integrity: v.integrity, sha256: v.sha256 };
}

function parseRuntime(value: unknown, source: string): RuntimePin {
  const v = value as { node?: unknown; libraries?: unknown } | null;
  if (!v || typeof v !== 'object' || !Array.isArray(v.libraries) || v.libraries.length === 0) {
    throw new SwpkgError('E_INVALID_MANIFEST', `${source}: runtime needs node and a non-empty libraries list`, { details: { source } });
  }
  return {
    node: parseNpmPin(v.node, `${source} node`),
    libraries: v.libraries.map((l, i) => parsePin(l, `${source} libraries[${i}]`)),
  };
}

/** Reads and checks a pin file (`kernel/kernel.json`, `kernel/kernel-aarch64.json`). */
export async function readKernelPin(path: string): Promise<{ pin: KernelPin; hash: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, `reading ${path}`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new SwpkgError('E_INVALID_JSON', `${path} is not valid JSON`, { cause: e, details: { path } });
  }
  if (raw?.format !== 1)
    throw new SwpkgError('E_INVALID_MANIFEST', `${path}: unsupported format ${String(raw?.format)}`, { details: { path } });
  const kernel = parsePin(raw.kernel, `${path} kernel`);
  const release = (raw.kernel as { release?: unknown }).release;
  if (typeof release !== 'string' || !/^[0-9][0-9A-Za-z.+_-]*$/.test(release)) {
    throw new SwpkgError('E_INVALID_MANIFEST', `${path}: kernel.release must name the module folder (e.g. 6.1.0-56-cloud-amd64)`, {
      details: { path },
    });
  }
  const busybox = parsePin(raw.busybox, `${path} busybox`);
  const modules = raw.modules;
  if (!Array.isArray(modules) || modules.length === 0 || !modules.every((m) => typeof m === 'string' && /^[a-z0-9_]+$/.test(m))) {
    throw new SwpkgError('E_INVALID_MANIFEST', `${path}: modules must be a non-empty list of module names (a-z, 0-9, _)`, {
      details: { path },
    });
  }
  const runtime = raw.runtime === undefined ? undefined : parseRuntime(raw.runtime, `${path} runtime`);
  return {
    pin: { format: 1, kernel: { ...kernel, release }, busybox, modules: modules as string[], ...(runtime ? { runtime } : {}) },
    hash: sha256Hex(text),
  };
}

interface PinnedFile {
  package: string;
  version: string;
  sha256: string;
  /** Verified in addition to the SHA-256 (npm's integrity string). */
  integrity?: string;
}

function hashMismatch(pin: PinnedFile, file: string, actual: string, origin: string, fromArchive: boolean): SwpkgError {
  return new SwpkgError(
    'E_HASH_MISMATCH',
    `${file} (${origin}) has sha256 ${actual}, but ${pin.package}=${pin.version} is pinned to ${pin.sha256}`,
    {
      hint: fromArchive
        ? 'the archive now serves different bytes for this version; find the pinned file and put it in the source mirror named by its sha256, or update the pin deliberately'
        : 'the file is damaged or was replaced; delete it and fetch again (it is named by the hash it must have)',
      details: { file, origin, package: pin.package, version: pin.version, expected: pin.sha256, actual },
    },
  );
}

/** SHA-256 (hex) and SHA-512 (as an SRI string) of a file in one read. */
async function fileDigests(path: string): Promise<{ sha256: string; integrity: string }> {
  const a = createHash('sha256');
  const b = createHash('sha512');
  for await (const chunk of createReadStream(path)) {
    a.update(chunk as Buffer);
    b.update(chunk as Buffer);
  }
  return { sha256: a.digest('hex'), integrity: `sha512-${b.digest('base64')}` };
}

async function checkPinned(pin: PinnedFile, path: string, origin: string, fromArchive = false): Promise<void> {
  const got = pin.integrity === undefined ? { ...(await sha256File(path)), integrity: undefined } : await fileDigests(path);
  if (got.sha256 !== pin.sha256) throw hashMismatch(pin, path, got.sha256, origin, fromArchive);
  if (pin.integrity !== undefined && got.integrity !== pin.integrity) {
    throw new SwpkgError('E_HASH_MISMATCH', `${path} (${origin}) matches the pinned sha256 but not the pinned integrity ${pin.integrity}`, {
      hint: 'the pin contradicts itself; take both values from one `npm pack --json` of that version',
      details: { file: path, origin, package: pin.package, expected: pin.integrity, actual: got.integrity },
    });
  }
}

/**
 * Finds a pinned file: mirror (a file named by its SHA-256), then the local
 * cache (`<sha256><ext>`), then the archive through `download` (apt-get or
 * npm, run in an empty folder that must end up holding exactly one `ext`
 * file). Every candidate is hashed before use; a mismatch is refused, never
 * skipped over, because it means someone's bytes are wrong and the user
 * should know whose.
 */
async function obtainPinned(
  pin: PinnedFile,
  ext: '.deb' | '.tgz',
  opts: { mirrorDir: string; cacheDir: string; allowApt: boolean; reporter: Reporter },
  download: { what: string; cmd: string; args: string[] },
): Promise<{ path: string; origin: string }> {
  for (const [dir, origin] of [
    [opts.mirrorDir, 'source mirror'],
    [opts.cacheDir, 'download cache'],
  ] as const) {
    const candidate = join(dir, origin === 'source mirror' ? pin.sha256 : `${pin.sha256}${ext}`);
    if (!existsSync(candidate)) continue;
    await checkPinned(pin, candidate, origin);
    return { path: candidate, origin: `${origin} ${candidate}` };
  }
  if (!opts.allowApt) {
    throw new SwpkgError(
      'E_NOT_FOUND',
      `${pin.package}=${pin.version} (sha256 ${pin.sha256}) is in neither ${opts.mirrorDir} nor ${opts.cacheDir}`,
      {
        hint: `allow ${download.what}, or place the file in the source mirror named by its sha256`,
        details: { package: pin.package, version: pin.version, sha256: pin.sha256 },
      },
    );
  }
  await mkdir(opts.cacheDir, { recursive: true });
  const tmp = await mkdtemp(join(opts.cacheDir, '.fetch-'));
  try {
    opts.reporter.info(`${download.what} ${pin.package}=${pin.version}`);
    try {
      await runTool(download.cmd, download.args, { cwd: tmp, timeoutMs: 10 * 60_000, what: 'downloading a pinned package' });
    } catch (e) {
      const detail = (e as SwpkgError).details?.stderr;
      const stderr = (typeof detail === 'string' ? detail : (e as Error).message).trim();
      throw new SwpkgError('E_FETCH', `${download.what} ${pin.package}=${pin.version} failed: ${stderr.split('\n').pop() ?? ''}`, {
        hint: 'the pinned version may have left the archive (point releases replace kernels); put the file in the source mirror named by its sha256',
        details: { package: pin.package, version: pin.version, stderr },
        cause: e,
      });
    }
    const got = (await readdir(tmp)).filter((f) => f.endsWith(ext));
    if (got.length !== 1 || got[0] === undefined) {
      throw new SwpkgError('E_FETCH', `${download.what} ${pin.package}=${pin.version} left ${got.length} ${ext} files`, {
        details: { files: got },
      });
    }
    const file = join(tmp, got[0]);
    await checkPinned(pin, file, download.what, true);
    const final = join(opts.cacheDir, `${pin.sha256}${ext}`);
    await rename(file, final);
    return { path: final, origin: `${download.what} (cached as ${final})` };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export function obtainDeb(
  pin: DebianPackagePin,
  opts: { mirrorDir: string; cacheDir: string; allowApt: boolean; reporter: Reporter },
): Promise<{ path: string; origin: string }> {
  // `:arch` picks the foreign architecture's package (dpkg --add-architecture arm64 on an amd64 host).
  return obtainPinned(pin, '.deb', opts, {
    what: 'apt-get download',
    cmd: 'apt-get',
    args: ['download', '-q', `${pin.package}:${pin.arch}=${pin.version}`],
  });
}

function obtainNpmTarball(
  pin: NpmPackagePin,
  opts: { mirrorDir: string; cacheDir: string; allowApt: boolean; reporter: Reporter },
): Promise<{ path: string; origin: string }> {
  // `npm pack` fetches the tarball exactly as published and installs nothing (no shared node_modules touched).
  return obtainPinned(pin, '.tgz', opts, {
    what: 'npm pack',
    cmd: 'npm',
    args: ['pack', `${pin.package}@${pin.version}`, '--silent', '--no-audit', '--no-fund'],
  });
}

async function fileFacts(path: string): Promise<{ sha256: string; size: number }> {
  return sha256File(path);
}

async function artifactsStillValid(outDir: string, pinHash: string): Promise<KernelArtifacts | null> {
  const recordPath = join(outDir, 'kernel-artifacts.json');
  if (!existsSync(recordPath)) return null;
  let rec: KernelArtifacts;
  try {
    rec = JSON.parse(await readFile(recordPath, 'utf8')) as KernelArtifacts;
  } catch {
    return null;
  }
  if (rec.pinHash !== pinHash) return null;
  const files = [rec.vmlinuz, rec.busyboxBinary, ...rec.modules, ...(rec.runtime ? [rec.runtime.node, ...rec.runtime.libraries] : [])];
  for (const f of files) {
    const p = join(outDir, f.file);
    if (!existsSync(p)) return null;
    // Size first (cheap); the full hash is what makes reuse safe against a hand-edited build folder.
    if ((await stat(p)).size !== f.size) return null;
    if ((await fileFacts(p)).sha256 !== f.sha256) return null;
  }
  return rec;
}

/**
 * Unpacks a runtime pin into `dir`: `runtime/node` from the Node tarball, the
 * Debian libraries into `runtime/sysroot`, and lists the libraries Node loads by
 * asking the arch's own dynamic loader (under qemu-user when the host is another
 * arch, with the sysroot as its root), so the list is what the guest's loader
 * will open. Each library's base-disk path comes from `baseDiskPathOf`.
 */
async function unpackRuntime(
  pin: RuntimePin,
  profile: GuestArchProfile,
  dir: string,
  srcOpts: { mirrorDir: string; cacheDir: string; allowApt: boolean; reporter: Reporter },
): Promise<{ runtime: RuntimeArtifacts; sources: string[] }> {
  const sources: string[] = [];
  const tgz = await obtainNpmTarball(pin.node, srcOpts);
  sources.push(`${pin.node.package}@${pin.node.version}: ${tgz.origin}`);
  const rt = join(dir, 'runtime');
  const sysroot = join(rt, 'sysroot');
  await mkdir(join(rt, 'npm'), { recursive: true });
  await runTool('tar', ['-xzf', tgz.path, '-C', join(rt, 'npm'), 'package/bin/node'], {
    timeoutMs: 5 * 60_000,
    what: `unpacking ${pin.node.package}`,
  });
  await rename(join(rt, 'npm', 'package', 'bin', 'node'), join(rt, 'node'));
  await rm(join(rt, 'npm'), { recursive: true, force: true });
  await chmod(join(rt, 'node'), 0o755);
  for (const lib of pin.libraries) {
    const deb = await obtainDeb(lib, srcOpts);
    sources.push(`${lib.package}:${lib.arch}=${lib.version}: ${deb.origin}`);
    await runTool('dpkg-deb', ['-x', deb.path, sysroot], { timeoutMs: 5 * 60_000, what: `unpacking ${lib.package}` });
  }
  const loader = join(sysroot, 'lib', profile.multiarch);
  const ld = (await readdir(loader)).find((n) => n.startsWith('ld-linux'));
  if (ld === undefined) {
    throw new SwpkgError('E_INVALID_MANIFEST', `no dynamic loader in lib/${profile.multiarch} of the runtime libraries`, {
      hint: 'the runtime libraries must include libc6 for the guest arch',
      details: { arch: profile.arch },
    });
  }
  const emu = emulatorFor(profile.arch);
  const argv = [...(emu.length ? [...emu, '-L', sysroot] : []), join(loader, ld), '--list', join(rt, 'node')];
  const { stdout } = await runTool(argv[0]!, argv.slice(1), { timeoutMs: 60_000, what: 'listing the libraries Node loads' });
  const libraries: RuntimeArtifacts['libraries'] = [];
  const seen = new Set<string>();
  for (const line of stdout.split('\n')) {
    const missing = /^\s*(\S+)\s+=>\s+not found/.exec(line);
    if (missing) {
      throw new SwpkgError('E_BUILD', `${pin.node.package} needs ${missing[1]}, which the pinned runtime libraries do not provide`, {
        hint: 'add the Debian package that ships it to runtime.libraries in the pin file',
        details: { line: line.trim() },
      });
    }
    // `libm.so.6 => /lib/aarch64-linux-gnu/libm.so.6 (0x…)`; the loader's own line names it on the left.
    const m = /^\s*(\S+)\s+=>\s+(\S+)\s+\(/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    const guestPath = m[1].startsWith('/') ? m[1] : m[2];
    const path = baseDiskPathOf(guestPath, profile);
    if (seen.has(path)) continue;
    seen.add(path);
    const real = await realpath(join(sysroot, guestPath));
    if (!real.startsWith(sysroot + '/')) {
      throw new SwpkgError('E_UNSAFE_PATH', `${guestPath} resolves outside the runtime sysroot`, { details: { path: guestPath } });
    }
    libraries.push({ path, file: relative(dir, real), ...(await fileFacts(real)) });
  }
  if (libraries.length === 0)
    throw new SwpkgError('E_BUILD', `the loader listed no libraries for ${pin.node.package}`, { details: { stdout } });
  libraries.sort((a, b) => (a.path < b.path ? -1 : 1));
  const node = { file: join('runtime', 'node'), ...(await fileFacts(join(rt, 'node'))) };
  return {
    runtime: { node: { ...node, package: pin.node.package, version: pin.node.version, tarballSha256: pin.node.sha256 }, libraries },
    sources,
  };
}

/**
 * Where a library goes on the base disk, which the guest mounts on /usr: a
 * path under `lib/<multiarch>/` or `/usr/lib/<multiarch>/` lands in
 * `lib/<multiarch>/`, a loader in one of the arch's loader folders (x86_64:
 * `/lib64`) keeps its folder, and a path the initramfs links elsewhere
 * (aarch64: `/lib/ld-linux-aarch64.so.1`) lands where the link points. The
 * initramfs links those folders into /usr, so the paths baked into the binary
 * (its interpreter) and the loader's default search path hold unchanged in
 * the guest.
 */
export function baseDiskPathOf(hostPath: string, profile: GuestArchProfile = GUEST_ARCH_PROFILES.x86_64): string {
  const p = hostPath.replace(/^\/usr\//, '/').slice(1);
  const slash = p.lastIndexOf('/');
  const dir = p.slice(0, slash);
  const name = p.slice(slash + 1);
  if (
    slash > 0 &&
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    (dir === `lib/${profile.multiarch}` || profile.loaderDirs.includes(dir))
  ) {
    return `${dir}/${name}`;
  }
  const link = profile.libraryLinks.find((l) => l.path === p && !l.target.startsWith('/'));
  if (link) return `${dirname(p)}/${link.target}`.replace(/^\.\//, '');
  throw new SwpkgError(
    'E_BUILD',
    `library ${hostPath} is outside /lib/${profile.multiarch}${profile.loaderDirs.map((d) => ` and /${d}`).join('')}; the guest layout has no place for it`,
    { details: { path: hostPath, arch: profile.arch } },
  );
}

/**
 * Fetches, verifies and unpacks the pinned kernel and busybox-static into
 * `outDir`: `vmlinuz`, `busybox`, `modules/<name>.ko`, `runtime/` (when the pin
 * has one: Node and its libraries) and
 * `kernel-artifacts.json` (hashes, `depends=`, load order). Reuses the output
 * when the pin file is unchanged and every recorded file still hashes right.
 * The output folder is assembled beside the old one and swapped in at the end,
 * so an interrupted run never leaves a half-written folder behind a valid record.
 */
export async function fetchGuestPackages(options: FetchGuestPackagesOptions = {}): Promise<KernelArtifacts & { reused: boolean }> {
  const repoRoot = options.repoRoot ?? findRepoRoot();
  const reporter = options.reporter ?? silentReporter;
  const pinFile = options.pinFile ?? join(repoRoot, KERNEL_PIN_FILES[options.arch ?? 'x86_64']);
  const mirrorDir = options.mirrorDir ?? process.env.SWPKG_SOURCE_MIRROR ?? join(repoRoot, '..', 'shared', 'sources');
  const cacheDir = options.cacheDir ?? defaultDownloadCache();
  const { pin, hash: pinHash } = await readKernelPin(pinFile);
  const pinned = profileOfDebianArch(pin.kernel.arch);
  const arch = options.arch ?? pinned?.arch ?? 'x86_64';
  if (pinned !== null && pinned.arch !== arch) {
    throw new SwpkgError('E_INVALID_MANIFEST', `${pinFile} pins a ${pin.kernel.arch} kernel, not one for ${arch}`, {
      details: { pinFile, pinArch: pin.kernel.arch, arch },
    });
  }
  const profile = GUEST_ARCH_PROFILES[arch];
  const outDir = options.outDir ?? join(repoRoot, profile.kernelDir);

  if (!options.force) {
    const valid = await artifactsStillValid(outDir, pinHash);
    if (valid) {
      reporter.info(`kernel: ${pin.kernel.package} ${pin.kernel.version} already unpacked in ${outDir}`);
      return { ...valid, arch, reused: true };
    }
  }

  const srcOpts = { mirrorDir, cacheDir, allowApt: options.allowApt ?? true, reporter };
  const kernelDeb = await obtainDeb(pin.kernel, srcOpts);
  const busyboxDeb = await obtainDeb(pin.busybox, srcOpts);

  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  const work = await mkdtemp(join(parent, '.kernel-work-'));
  try {
    const kx = join(work, 'kernel-deb');
    const bx = join(work, 'busybox-deb');
    const next = join(work, 'out');
    await mkdir(join(next, 'modules'), { recursive: true });
    reporter.info(`unpacking ${pin.kernel.package} ${pin.kernel.version}`);
    await runTool('dpkg-deb', ['-x', kernelDeb.path, kx], { timeoutMs: 5 * 60_000, what: 'unpacking the kernel package' });
    await runTool('dpkg-deb', ['-x', busyboxDeb.path, bx], { timeoutMs: 60_000, what: 'unpacking busybox-static' });

    const release = pin.kernel.release;
    const vmlinuzSrc = join(kx, 'boot', `vmlinuz-${release}`);
    if (!existsSync(vmlinuzSrc)) {
      throw new SwpkgError('E_INVALID_MANIFEST', `${pin.kernel.package} has no boot/vmlinuz-${release}`, {
        hint: 'kernel.release in kernel/kernel.json must match the package',
        details: { release },
      });
    }
    await copyFile(vmlinuzSrc, join(next, 'vmlinuz'));

    // The package's modules.order maps each module to its path; names use `_` where files may use `-`.
    const modRoot = join(kx, 'lib', 'modules', release);
    const orderText = await readFile(join(modRoot, 'modules.order'), 'utf8').catch((e: unknown) => {
      throw fromFsError(e, `reading modules.order of ${release}`);
    });
    const byName = new Map<string, string>();
    for (const line of orderText.split('\n')) {
      const m = /([^/]+)\.ko$/.exec(line.trim());
      if (m?.[1] !== undefined) byName.set(m[1].replace(/-/g, '_'), line.trim());
    }
    const infos = new Map<string, ModuleInfo>();
    for (const name of pin.modules) {
      const rel = byName.get(name);
      if (rel === undefined) {
        throw new SwpkgError('E_INVALID_MANIFEST', `kernel ${release} has no module ${name} (it may be built in, or absent)`, {
          hint: 'check boot/config-* of the package; list only loadable modules in kernel/kernel.json',
          details: { module: name, release },
        });
      }
      const bytes = await readFile(join(modRoot, rel));
      const info = readModuleInfo(bytes, rel);
      if (!info.vermagic.startsWith(`${release} `)) {
        throw new SwpkgError('E_INCOMPATIBLE', `${rel} was built for ${info.vermagic.split(' ')[0] ?? '?'}, not ${release}`, {
          details: { module: name, vermagic: info.vermagic, release },
        });
      }
      infos.set(name, info);
      await writeFile(join(next, 'modules', `${name}.ko`), bytes);
    }
    const loadOrder = moduleLoadOrder(pin.modules, infos);

    const bbSrc = join(bx, 'bin', 'busybox');
    await copyFile(bbSrc, join(next, 'busybox'));
    await chmod(join(next, 'busybox'), 0o755);
    // The static busybox runs on the build host too (under qemu-user for another arch): its own applet list is the authority.
    const bbArgv = [...emulatorFor(profileOfDebianArch(pin.busybox.arch)?.arch ?? arch), join(next, 'busybox'), '--list'];
    const { stdout } = await runTool(bbArgv[0]!, bbArgv.slice(1), { timeoutMs: 30_000, what: 'listing busybox applets' });
    const applets = stdout
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => /^[A-Za-z0-9_.[-]+$/.test(s))
      .sort();

    const modules: GuestModule[] = [];
    for (const name of loadOrder) {
      const file = join('modules', `${name}.ko`);
      const facts = await fileFacts(join(next, file));
      modules.push({ name, file, ...facts, depends: infos.get(name)?.depends ?? [] });
    }
    const rt = pin.runtime ? await unpackRuntime(pin.runtime, profile, next, srcOpts) : null;
    const record: KernelArtifacts = {
      pinHash,
      arch,
      kernel: pin.kernel,
      busybox: { ...pin.busybox, applets },
      vmlinuz: { file: 'vmlinuz', ...(await fileFacts(join(next, 'vmlinuz'))) },
      busyboxBinary: { file: 'busybox', ...(await fileFacts(join(next, 'busybox'))) },
      modules,
      loadOrder,
      sources: { kernel: kernelDeb.origin, busybox: busyboxDeb.origin, ...(rt ? { runtime: rt.sources } : {}) },
      ...(rt ? { runtime: rt.runtime } : {}),
    };
    // The record is what marks the folder valid, so it is written into the new folder before the swap.
    await writeFile(join(next, 'kernel-artifacts.json'), JSON.stringify(record, null, 2) + '\n');
    await rm(outDir, { recursive: true, force: true });
    await rename(next, outDir);
    reporter.info(`kernel: unpacked ${pin.kernel.package} ${pin.kernel.version}, modules in load order: ${loadOrder.join(' ')}`);
    return { ...record, reused: false };
  } catch (e) {
    throw e instanceof SwpkgError ? e : fromFsError(e, 'unpacking the guest kernel');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
