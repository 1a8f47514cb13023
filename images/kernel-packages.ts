import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwpkgError, fromFsError, sha256File, sha256Hex, silentReporter, SHA256_HEX, type Reporter } from '../catalog/index.js';
import { KERNEL_PIN_FILE, type DebianPackagePin, type KernelPin } from '../kernel/index.js';
import { runTool } from './host-tools.js';
import { moduleLoadOrder, readModuleInfo, type ModuleInfo } from './module-info.js';
import { runIfEntry } from './program.js';
import { TerminalReporter, jsonText, okEnvelope } from '../edge/index.js';

export interface GuestModule {
  name: string;
  /** Path of the `.ko` under the output folder. */
  file: string;
  sha256: string;
  size: number;
  depends: string[];
}

/** What `fetchGuestPackages` leaves in its output folder (also written there as `kernel-artifacts.json`). */
export interface KernelArtifacts {
  /** Hash of the pin file's content: the output is reused while it is unchanged. */
  pinHash: string;
  kernel: KernelPin['kernel'];
  busybox: DebianPackagePin & { applets: string[] };
  vmlinuz: { file: string; sha256: string; size: number };
  busyboxBinary: { file: string; sha256: string; size: number };
  modules: GuestModule[];
  /** Module names in the order the init must insmod them. */
  loadOrder: string[];
  /** Where each .deb came from on the run that unpacked it. */
  sources: { kernel: string; busybox: string };
}

export interface FetchGuestPackagesOptions {
  /** Repository root; default: found from this file's location. */
  repoRoot?: string;
  /** Pin file; default `<repoRoot>/kernel/kernel.json`. */
  pinFile?: string;
  /** Output folder; default `<repoRoot>/build/kernel`. */
  outDir?: string;
  /**
   * Content-addressed mirror (files named by their SHA-256); default
   * `$SWPKG_SOURCE_MIRROR`, else `<repoRoot>/../shared/sources`.
   */
  mirrorDir?: string;
  /** Verified downloads are kept here by hash; default `<repoRoot>/.cache/debs`. */
  cacheDir?: string;
  /** Fall back to `apt-get download PKG=VERSION` when no mirror or cache has the bytes. Default true. */
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

const PKG_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
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

/** Reads and checks `kernel/kernel.json`. */
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
  return { pin: { format: 1, kernel: { ...kernel, release }, busybox, modules: modules as string[] }, hash: sha256Hex(text) };
}

function hashMismatch(pin: DebianPackagePin, file: string, actual: string, origin: string): SwpkgError {
  return new SwpkgError(
    'E_HASH_MISMATCH',
    `${file} (${origin}) has sha256 ${actual}, but ${pin.package}=${pin.version} is pinned to ${pin.sha256}`,
    {
      hint:
        origin === 'apt-get download'
          ? 'the archive now serves different bytes for this version; find the pinned .deb and put it in the source mirror named by its sha256, or update kernel/kernel.json deliberately'
          : 'the file is damaged or was replaced; delete it and fetch again (it is named by the hash it must have)',
      details: { file, origin, package: pin.package, version: pin.version, expected: pin.sha256, actual },
    },
  );
}

/**
 * Finds the pinned .deb: mirror (a file named by its SHA-256), then the local
 * cache, then `apt-get download`. Every candidate is hashed before use; a
 * mismatch is refused, never skipped over, because it means someone's bytes
 * are wrong and the user should know whose.
 */
async function obtainDeb(
  pin: DebianPackagePin,
  opts: { mirrorDir: string; cacheDir: string; allowApt: boolean; reporter: Reporter },
): Promise<{ path: string; origin: string }> {
  for (const [dir, origin] of [
    [opts.mirrorDir, 'source mirror'],
    [opts.cacheDir, 'download cache'],
  ] as const) {
    const candidate = join(dir, origin === 'source mirror' ? pin.sha256 : `${pin.sha256}.deb`);
    if (!existsSync(candidate)) continue;
    const { sha256 } = await sha256File(candidate);
    if (sha256 !== pin.sha256) throw hashMismatch(pin, candidate, sha256, origin);
    return { path: candidate, origin: `${origin} ${candidate}` };
  }
  if (!opts.allowApt) {
    throw new SwpkgError(
      'E_NOT_FOUND',
      `${pin.package}=${pin.version} (sha256 ${pin.sha256}) is in neither ${opts.mirrorDir} nor ${opts.cacheDir}`,
      {
        hint: 'allow apt-get download, or place the .deb in the source mirror named by its sha256',
        details: { package: pin.package, version: pin.version, sha256: pin.sha256 },
      },
    );
  }
  await mkdir(opts.cacheDir, { recursive: true });
  const tmp = await mkdtemp(join(opts.cacheDir, '.apt-'));
  try {
    opts.reporter.info(`apt-get download ${pin.package}=${pin.version}`);
    try {
      await runTool('apt-get', ['download', '-q', `${pin.package}=${pin.version}`], {
        cwd: tmp,
        timeoutMs: 10 * 60_000,
        what: 'downloading a pinned package',
      });
    } catch (e) {
      const detail = (e as SwpkgError).details?.stderr;
      const stderr = (typeof detail === 'string' ? detail : (e as Error).message).trim();
      throw new SwpkgError('E_FETCH', `apt-get download ${pin.package}=${pin.version} failed: ${stderr.split('\n').pop() ?? ''}`, {
        hint: 'the pinned version may have left the archive (point releases replace kernels); put the .deb in the source mirror named by its sha256',
        details: { package: pin.package, version: pin.version, stderr },
        cause: e,
      });
    }
    const debs = (await readdir(tmp)).filter((f) => f.endsWith('.deb'));
    if (debs.length !== 1 || debs[0] === undefined) {
      throw new SwpkgError('E_FETCH', `apt-get download ${pin.package}=${pin.version} left ${debs.length} .deb files`, {
        details: { files: debs },
      });
    }
    const got = join(tmp, debs[0]);
    const { sha256 } = await sha256File(got);
    if (sha256 !== pin.sha256) throw hashMismatch(pin, debs[0], sha256, 'apt-get download');
    const final = join(opts.cacheDir, `${pin.sha256}.deb`);
    await rename(got, final);
    return { path: final, origin: `apt-get download (cached as ${final})` };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
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
  const files = [rec.vmlinuz, rec.busyboxBinary, ...rec.modules];
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
 * Fetches, verifies and unpacks the pinned kernel and busybox-static into
 * `outDir`: `vmlinuz`, `busybox`, `modules/<name>.ko` and
 * `kernel-artifacts.json` (hashes, `depends=`, load order). Reuses the output
 * when the pin file is unchanged and every recorded file still hashes right.
 * The output folder is assembled beside the old one and swapped in at the end,
 * so an interrupted run never leaves a half-written folder behind a valid record.
 */
export async function fetchGuestPackages(options: FetchGuestPackagesOptions = {}): Promise<KernelArtifacts & { reused: boolean }> {
  const repoRoot = options.repoRoot ?? findRepoRoot();
  const reporter = options.reporter ?? silentReporter;
  const pinFile = options.pinFile ?? join(repoRoot, KERNEL_PIN_FILE);
  const outDir = options.outDir ?? join(repoRoot, 'build', 'kernel');
  const mirrorDir = options.mirrorDir ?? process.env.SWPKG_SOURCE_MIRROR ?? join(repoRoot, '..', 'shared', 'sources');
  const cacheDir = options.cacheDir ?? join(repoRoot, '.cache', 'debs');
  const { pin, hash: pinHash } = await readKernelPin(pinFile);

  if (!options.force) {
    const valid = await artifactsStillValid(outDir, pinHash);
    if (valid) {
      reporter.info(`kernel: ${pin.kernel.package} ${pin.kernel.version} already unpacked in ${outDir}`);
      return { ...valid, reused: true };
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
    // The static busybox runs on the (x86-64) build host too: its own applet list is the authority.
    const { stdout } = await runTool(join(next, 'busybox'), ['--list'], { timeoutMs: 30_000, what: 'listing busybox applets' });
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
    const record: KernelArtifacts = {
      pinHash,
      kernel: pin.kernel,
      busybox: { ...pin.busybox, applets },
      vmlinuz: { file: 'vmlinuz', ...(await fileFacts(join(next, 'vmlinuz'))) },
      busyboxBinary: { file: 'busybox', ...(await fileFacts(join(next, 'busybox'))) },
      modules,
      loadOrder,
      sources: { kernel: kernelDeb.origin, busybox: busyboxDeb.origin },
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

async function main(argv: string[]): Promise<number> {
  const force = argv.includes('--force');
  const noApt = argv.includes('--no-apt');
  const unknown = argv.filter((a) => a !== '--force' && a !== '--no-apt');
  if (unknown.length > 0) {
    process.stderr.write(`usage: kernel-packages [--force] [--no-apt]\n`);
    return 2;
  }
  const reporter = new TerminalReporter(process.stderr);
  const rec = await fetchGuestPackages({ force, allowApt: !noApt, reporter });
  reporter.finish();
  process.stdout.write(jsonText(okEnvelope({ kernel: rec.kernel, loadOrder: rec.loadOrder, vmlinuz: rec.vmlinuz }, reporter.warnings)));
  return 0;
}

runIfEntry(import.meta.url, 'kernel-packages', main);
