import { cp, mkdir, mkdtemp, open, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  SwpkgError,
  extractPackage,
  packPackage,
  silentReporter,
  type PackageManifest,
  type PackageMeta,
  type Reporter,
} from '../../catalog/index.js';
import { BuildCache, buildKey, recipeFileHashes, type BuildKeyInputs } from './build-cache.js';
import { DEFAULT_REMOVE, PREFIX, normalizeTree } from './package-tree.js';
import type { PortsPaths } from './paths.js';
import {
  checkRecipeFiles,
  dependencyOrder,
  edgesOf,
  loadRecipeClosure,
  loadPortsCatalog,
  loadRecipe,
  type LoadedRecipe,
  type PortsCatalog,
} from './ports-catalog.js';
import { DEFAULT_TARGET, TARGET_INFO, assertTarget, buildTargetOf, parseDependency, type Recipe, type Target } from './recipe.js';
import { runCommand } from './run-command.js';
import { probeSandbox, sandboxCommand, type Sandbox } from './sandbox.js';
import { fetchSources, type FetchedSource, type SourceFetcher } from './source-fetcher.js';
import { spdxDocument } from './spdx.js';
import { crossOf, detectToolchain, stripFor, writeToolchainWrappers, type Toolchain } from './toolchain.js';

export interface BuildOptions {
  paths: PortsPaths;
  target?: string;
  reporter?: Reporter;
  /** false: build even when the cache has the package (dependencies still come from the cache). */
  useCache?: boolean;
  fetchers?: SourceFetcher[];
  /** Keep the work tree (sources, staging) after the build, for debugging. */
  keepWork?: boolean;
  /** Per-port limit; a build that runs longer is killed. Default 60 minutes. */
  timeoutMs?: number;
  jobs?: number;
  /** Overrides sandbox probing (tests force `none` to check the fallback). */
  sandbox?: Sandbox;
}

export interface BuiltPackage {
  name: string;
  version: string;
  target: Target;
  /** The package in the build cache (or in `outDir` for uncached builds). */
  path: string;
  file: string;
  sha256: string;
  size: number;
  manifest: PackageManifest;
  /** SPDX-style summary written beside the package. */
  spdxPath: string;
  cacheKey: string;
  /** True when the package came from the cache without building. */
  cached: boolean;
  /** Wall time of this call for this port (a cache hit takes milliseconds). */
  seconds: number;
  /** Seconds the original build took. */
  buildSeconds: number;
  /** CPU seconds (user + system) the original build's processes used. */
  cpuSeconds?: number;
  logPath: string;
  sandbox: Sandbox['kind'];
}

/** Inner view of the build folders: fixed under bwrap, the real paths otherwise. */
interface Layout {
  work: string;
  src: string;
  dest: string;
  toolchain: string;
  home: string;
  tmp: string;
  sysrootBase: string;
  sysroot: string;
  recipe: string;
}

const FIXED: Omit<Layout, 'work'> = {
  src: '/build/src',
  dest: '/build/dest',
  toolchain: '/build/toolchain',
  home: '/build/home',
  tmp: '/tmp',
  sysrootBase: '/',
  sysroot: PREFIX,
  recipe: '/build/recipe',
};

function packageFileName(name: string, version: string, arch: string): string {
  return `${name}-${version}-${arch}.swpkg`;
}

/** The SPDX summary beside a package: named like the package so two targets' summaries never overwrite each other. */
export function spdxFileName(packageFile: string): string {
  return packageFile.replace(/\.swpkg$/, '.spdx.json');
}

/** Quotes an argument for the driver script, leaving `$VAR` expansion on (documented for recipe args). */
function shArg(s: string): string {
  return `"${s.replace(/["\\`]/g, (c) => `\\${c}`)}"`;
}

/**
 * The POSIX sh driver that runs inside the sandbox. Phase markers (`==> x`)
 * drive the progress line. For a cross target, autotools gets `--build` and
 * `--host` (both, so configure never guesses from whether a test program
 * happens to run) and CMake the toolchain file written beside the wrappers.
 */
export function driverScript(
  recipe: Recipe,
  inner: { src: string; recipe: string; toolchain?: string },
  target: Target = DEFAULT_TARGET,
): string {
  const b = recipe.build;
  const cross = crossOf(target);
  const lines = ['set -eu', 'umask 022', `cd ${shArg(inner.src)}`];
  const phase = (p: string): void => {
    lines.push(`echo '==> ${p}'`);
  };
  const args = (a: string[]): string => a.map(shArg).join(' ');
  switch (b.system) {
    case 'autotools':
      phase('configure');
      lines.push(`./configure --prefix=${PREFIX} ${cross ? `--build=${cross.build} --host=${cross.host} ` : ''}${args(b.configureArgs)}`);
      phase('build');
      lines.push(`make -j"$JOBS" ${args(b.makeArgs)}`);
      phase('install');
      lines.push(`make install DESTDIR="$DESTDIR" ${args(b.installArgs)}`);
      break;
    case 'cmake':
      phase('configure');
      lines.push(
        `cmake -S . -B _swport_build -DCMAKE_INSTALL_PREFIX=${PREFIX} -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DCMAKE_C_COMPILER="$CC" ${cross ? `-DCMAKE_TOOLCHAIN_FILE=${inner.toolchain ?? FIXED.toolchain}/cross.cmake ` : ''}${args(b.configureArgs)}`,
      );
      phase('build');
      lines.push(`cmake --build _swport_build -j "$JOBS" ${args(b.makeArgs)}`);
      phase('install');
      lines.push(`DESTDIR="$DESTDIR" cmake --install _swport_build ${args(b.installArgs)}`);
      break;
    case 'make':
      phase('build');
      lines.push(`make -j"$JOBS" ${args(b.makeArgs)}`);
      phase('install');
      lines.push(`make ${args(b.installArgs.length > 0 ? b.installArgs : ['install', 'DESTDIR=$DESTDIR'])}`);
      break;
    case 'custom':
      phase('build');
      lines.push(`sh -eu ${shArg(`${inner.recipe}/${b.script}`)}`);
      break;
  }
  phase('done');
  // CPU seconds of everything the build ran: a measure that does not depend on machine load.
  lines.push('times');
  return lines.join('\n') + '\n';
}

/** Reads the last `n` lines of a log without loading all of it. */
export async function tailFile(path: string, n = 30): Promise<string[]> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return [];
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((l, i, a) => !(i === a.length - 1 && l === ''))
      .slice(-n);
  } finally {
    await fh.close();
  }
}

/** Sums the CPU time the shell's `times` printed (its own line and its children's), in seconds. */
export function parseTimes(lines: string[]): number | undefined {
  const re = /^(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s$/;
  const found = lines.map((l) => re.exec(l.trim())).filter((m): m is RegExpExecArray => m !== null);
  if (found.length === 0) return undefined;
  return found.slice(-2).reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]), 0);
}

/** Tracks the latest `==> phase` marker as the log grows. */
class PhaseWatcher {
  phase = 'start';
  private offset = 0;
  constructor(private readonly log: string) {}
  async poll(): Promise<number> {
    const fh = await open(this.log, 'r').catch(() => undefined);
    if (!fh) return this.offset;
    try {
      const { size } = await fh.stat();
      if (size > this.offset) {
        const len = Math.min(size - this.offset, 1 << 20);
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, size - len);
        const m = [...buf.toString('utf8').matchAll(/^==> (\S+)/gm)].pop();
        if (m) this.phase = m[1]!;
        this.offset = size;
      }
      return size;
    } finally {
      await fh.close();
    }
  }
}

async function applyPatches(l: LoadedRecipe, src: string, log: string): Promise<void> {
  for (const p of l.recipe.patches) {
    const r = await runCommand('patch', ['-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-i', join(l.dir, p)], {
      cwd: src,
      timeoutMs: 120_000,
      logPath: log,
      logHeader: `==> patch ${p}\n`,
    });
    if (r.code !== 0) {
      const tail = await tailFile(log, 15);
      throw new SwpkgError('E_PATCH', `${l.recipe.name}: patch ${p} does not apply\n  ${tail.join('\n  ')}`, {
        hint: 'refresh the patch against the pinned source (diff -u from the extracted tree)',
        details: { port: l.recipe.name, patch: join(l.dir, p), log },
      });
    }
  }
}

async function extractSources(l: LoadedRecipe, fetched: FetchedSource[], src: string, log: string): Promise<void> {
  for (const [i, s] of l.recipe.sources.entries()) {
    const f = fetched[i]!;
    const dest = s.dest ? join(src, s.dest) : src;
    await mkdir(dest, { recursive: true });
    // The archive is verified by hash already; tar still never restores owners or absolute paths.
    const r = await runCommand(
      'tar',
      ['-xf', f.path, '-C', dest, `--strip-components=${s.strip}`, '--no-same-owner', '--no-same-permissions'],
      {
        timeoutMs: 10 * 60_000,
        logPath: log,
        logHeader: `==> extract ${s.sha256}\n`,
      },
    );
    if (r.code !== 0) {
      throw new SwpkgError('E_BUILD', `${l.recipe.name}: cannot extract source ${f.path}`, { details: { port: l.recipe.name, log } });
    }
  }
}

function packageMeta(l: LoadedRecipe, requested: Target, toolchain: Toolchain): PackageMeta {
  const target = buildTargetOf(l.recipe, requested);
  const r = l.recipe;
  const depends: Record<string, string> = {};
  for (const d of r.depends) {
    const { name, range } = parseDependency(d);
    depends[name] = range;
  }
  const meta: PackageMeta = {
    name: r.name,
    version: r.version,
    arch: r.arch ?? TARGET_INFO[target].arch,
    abi: TARGET_INFO[target].abi,
    summary: r.summary,
    license: r.license,
    depends,
    build: {
      recipeSha256: l.recipeSha256,
      sources: r.sources.map((s) => ({ name: s.debian?.file ?? s.url.split('/').pop() ?? r.name, url: s.url, sha256: s.sha256 })),
      toolchain: toolchain.id,
      sourceDateEpoch: r.sourceDateEpoch,
      target,
      upstreamVersion: r.upstreamVersion,
    },
  };
  if (r.homepage !== undefined) meta.homepage = r.homepage;
  return meta;
}

interface Context {
  catalog: PortsCatalog;
  recipes: Map<string, LoadedRecipe>;
  target: Target;
  cache: BuildCache;
  sandbox: Sandbox;
  reporter: Reporter;
  opts: BuildOptions;
  built: Map<string, BuiltPackage>;
}

async function buildClosure(ctx: Context, name: string): Promise<string[]> {
  return dependencyOrder([name], (n) => {
    const l = ctx.recipes.get(n);
    return l ? edgesOf(l.recipe, 'build') : undefined;
  }).filter((n) => n !== name);
}

/** Computes the cache key inputs of one port; its build dependencies must be built already. */
async function keyInputs(ctx: Context, l: LoadedRecipe, toolchain: Toolchain, deps: string[]): Promise<BuildKeyInputs> {
  const dependencies: Record<string, string> = {};
  for (const d of deps) dependencies[d] = ctx.built.get(d)!.sha256;
  return {
    port: l.recipe.name,
    target: buildTargetOf(l.recipe, ctx.target),
    recipeFiles: await recipeFileHashes(l),
    sources: l.recipe.sources.map((s) => s.sha256),
    dependencies,
    toolchain: toolchain.sha256,
    sandbox: ctx.sandbox.fixedPaths ? 'fixed-paths' : 'host-paths',
  };
}

/**
 * Builds one port whose build dependencies are in `ctx.built`, writing the
 * package, its SPDX summary and the log into `outDir`. Nothing is written
 * there unless the whole build, normalisation and packing succeeded.
 */
async function buildInto(
  ctx: Context,
  l: LoadedRecipe,
  toolchain: Toolchain,
  deps: string[],
  outDir: string,
  logPath: string,
): Promise<{ file: string; manifest: PackageManifest; sha256: string; size: number; spdxFile: string; cpuSeconds?: number }> {
  const r = l.recipe;
  const rep = ctx.reporter;
  const target = buildTargetOf(r, ctx.target);
  const workRoot = join(ctx.opts.paths.cacheDir, 'work');
  await mkdir(workRoot, { recursive: true });
  const work = await mkdtemp(join(workRoot, `${r.name}-`));
  const host: Layout = {
    work,
    src: join(work, 'src'),
    dest: join(work, 'dest'),
    toolchain: join(work, 'toolchain'),
    home: join(work, 'home'),
    tmp: join(work, 'tmp'),
    sysrootBase: join(work, 'sysroot'),
    sysroot: join(work, 'sysroot', PREFIX.slice(1)),
    recipe: l.dir,
  };
  const inner: Layout = ctx.sandbox.fixedPaths ? { ...FIXED, work: '/build' } : host;
  let ok = false;
  try {
    for (const d of [host.src, host.dest, host.home, host.tmp, host.sysroot]) await mkdir(d, { recursive: true });
    await writeFile(
      logPath,
      `swport build ${r.name} ${r.version} for ${target}\ntoolchain: ${toolchain.id}\nsandbox: ${ctx.sandbox.kind}\n`,
    );

    await prepareSources(ctx, l, host, deps, logPath);

    const wrappers = await writeToolchainWrappers({
      target,
      binDir: join(host.toolchain, 'bin'),
      headersDir: join(host.toolchain, 'kernel-headers'),
      innerHeadersDir: `${inner.toolchain}/kernel-headers`,
      innerSrcDir: inner.src,
    });
    await writeFile(join(host.toolchain, 'build.sh'), driverScript(r, inner, target));

    const env = buildEnvironment(ctx, r, host, inner, target, wrappers);
    const spec = {
      mounts: [
        { host: host.src, inner: inner.src, writable: true },
        { host: host.dest, inner: inner.dest, writable: true },
        { host: host.home, inner: inner.home, writable: true },
        { host: host.toolchain, inner: inner.toolchain, writable: false },
        { host: l.dir, inner: inner.recipe, writable: false },
        { host: host.sysroot, inner: inner.sysroot, writable: false },
      ].filter((m) => ctx.sandbox.fixedPaths || m.host !== host.sysroot),
      env,
      cwd: inner.src,
      argv: ['/bin/sh', `${inner.toolchain}/build.sh`],
    };
    await runBuildScript(ctx, r.name, await sandboxCommand(ctx.sandbox, spec), logPath);

    const cpuSeconds = parseTimes(await tailFile(logPath, 4));
    const { file, packed, spdxFile } = await packageBuild(ctx, l, host, target, toolchain, outDir, logPath);
    ok = true;
    return {
      file,
      manifest: packed.manifest,
      sha256: packed.sha256,
      size: packed.size,
      spdxFile,
      ...(cpuSeconds !== undefined ? { cpuSeconds } : {}),
    };
  } finally {
    if (!ctx.opts.keepWork || !ok) {
      if (ctx.opts.keepWork) rep.info(`${r.name}: work tree kept at ${work}`);
      else await rm(work, { recursive: true, force: true });
    }
  }
}

/** Sources fetched and checked, extracted and patched into SRC; dependencies' own packages into the sysroot. */
async function prepareSources(ctx: Context, l: LoadedRecipe, host: Layout, deps: string[], logPath: string): Promise<void> {
  const r = l.recipe;
  const rep = ctx.reporter;
  rep.info(`${r.name}: fetch`);
  const fetched = await fetchSources(r.sources, {
    cacheDir: ctx.opts.paths.cacheDir,
    mirrorDir: ctx.opts.paths.mirrorDir,
    reporter: rep,
    ...(ctx.opts.fetchers ? { fetchers: ctx.opts.fetchers } : {}),
  });
  for (const f of fetched) await writeFile(logPath, `==> source ${f.sha256} from ${f.from}: ${f.origin}\n`, { flag: 'a' });
  rep.info(`${r.name}: extract${r.patches.length ? ' and patch' : ''}`);
  await extractSources(l, fetched, host.src, logPath);
  await applyPatches(l, host.src, logPath);

  for (const d of deps) {
    const pkg = ctx.built.get(d)!;
    const into = join(host.work, 'deps', d);
    // Dependencies come from their own verified packages, never from the host's libraries.
    await extractPackage(pkg.path, into, { expectedSha256: pkg.sha256, fsync: false });
    await cp(into, host.sysroot, { recursive: true, verbatimSymlinks: true, force: false, errorOnExist: false });
  }
}

/** The build script's whole environment: nothing is inherited from the host. */
function buildEnvironment(
  ctx: Context,
  r: Recipe,
  host: Layout,
  inner: Layout,
  target: Target,
  wrappers: Awaited<ReturnType<typeof writeToolchainWrappers>>,
): Record<string, string> {
  const jobs = ctx.opts.jobs ?? availableParallelism();
  return {
    PATH: `${inner.toolchain}/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    HOME: inner.home,
    TMPDIR: inner.tmp,
    LC_ALL: 'C',
    LANG: 'C',
    TZ: 'UTC',
    SOURCE_DATE_EPOCH: String(r.sourceDateEpoch),
    PREFIX,
    DESTDIR: inner.dest,
    SYSROOT: inner.sysroot,
    SRC: inner.src,
    RECIPE_DIR: inner.recipe,
    PORT_NAME: r.name,
    PORT_VERSION: r.version,
    UPSTREAM_VERSION: r.upstreamVersion,
    TARGET: target,
    JOBS: String(jobs),
    CC: wrappers.cc,
    AR: 'ar',
    RANLIB: 'ranlib',
    CFLAGS: '-O2 -pipe',
    CPPFLAGS: `-I${inner.sysroot}/include`,
    LDFLAGS: `-L${inner.sysroot}/lib`,
    PKG_CONFIG: 'pkg-config --static',
    PKG_CONFIG_PATH: '',
    PKG_CONFIG_LIBDIR: `${inner.sysroot}/lib/pkgconfig:${inner.sysroot}/share/pkgconfig`,
    ...(ctx.sandbox.fixedPaths ? {} : { PKG_CONFIG_SYSROOT_DIR: host.sysrootBase }),
    // Cross targets only: the target's binutils, the build machine's cc, --build/--host for custom configure calls.
    ...wrappers.env,
    ...r.build.env,
  };
}

/** Runs the driver script in the sandbox, reporting its phases; a failure is E_BUILD with the log's tail. */
async function runBuildScript(ctx: Context, name: string, cmd: Awaited<ReturnType<typeof sandboxCommand>>, logPath: string): Promise<void> {
  const rep = ctx.reporter;
  const watcher = new PhaseWatcher(logPath);
  let lastPhase = '';
  const t0 = Date.now();
  const res = await runCommand(cmd.cmd, cmd.args, {
    env: cmd.env,
    ...(cmd.cwd ? { cwd: cmd.cwd } : {}),
    timeoutMs: ctx.opts.timeoutMs ?? 60 * 60_000,
    logPath,
    logHeader: `==> sandbox ${ctx.sandbox.kind}: ${cmd.cmd} ${cmd.args.join(' ')}\n`,
    onTick: (ms) => {
      void watcher.poll().then((bytes) => {
        if (watcher.phase !== lastPhase) {
          lastPhase = watcher.phase;
          if (lastPhase !== 'start' && lastPhase !== 'sandbox' && lastPhase !== 'done') rep.info(`${name}: ${lastPhase}`);
        }
        rep.progress(`${name} ${watcher.phase} ${Math.round(ms / 1000)}s, log`, bytes);
      });
    },
  });
  await watcher.poll();
  if (res.code !== 0) {
    const tail = await tailFile(logPath, 25);
    const why = res.timedOut ? `timed out after ${Math.round((Date.now() - t0) / 1000)} s` : `exit ${res.code ?? res.signal}`;
    throw new SwpkgError(
      'E_BUILD',
      `${name}: build failed in phase ${watcher.phase} (${why}); last lines of ${logPath}:\n  ${tail.join('\n  ')}`,
      {
        hint: `read the whole log: ${logPath}`,
        details: { port: name, phase: watcher.phase, log: logPath, exitCode: res.code, timedOut: res.timedOut },
      },
    );
  }
}

/** What the build installed under PREFIX, normalized (removals, strip, ELF checks), packed and described in SPDX. */
async function packageBuild(
  ctx: Context,
  l: LoadedRecipe,
  host: Layout,
  target: Target,
  toolchain: Toolchain,
  outDir: string,
  logPath: string,
): Promise<{ file: string; packed: Awaited<ReturnType<typeof packPackage>>; spdxFile: string }> {
  const r = l.recipe;
  const rep = ctx.reporter;
  rep.info(`${r.name}: package`);
  const pkgDir = join(host.dest, PREFIX.slice(1));
  const installed = await stat(pkgDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!installed) {
    throw new SwpkgError('E_BUILD', `${r.name}: the build installed nothing under ${PREFIX} in DESTDIR`, {
      hint: 'configure with --prefix=/pkg/current and install with DESTDIR (the driver does both for autotools, cmake and make)',
      details: { port: r.name, log: logPath },
    });
  }
  const norm = await normalizeTree(pkgDir, r.remove, r.name, {
    strip: stripFor(target),
    ...(r.arch === 'any'
      ? { arch: 'any' as const }
      : { arch: TARGET_INFO[target].arch, elfMachine: TARGET_INFO[target].elfMachine, static: TARGET_INFO[target].static }),
  });
  await writeFile(
    logPath,
    `==> normalize: removed ${norm.removed.length}, stripped ${norm.stripped.length}, relinked ${norm.relinked.length} (default removals: ${DEFAULT_REMOVE.join(' ')})\n`,
    { flag: 'a' },
  );

  const meta = packageMeta(l, target, toolchain);
  const file = packageFileName(r.name, r.version, meta.arch);
  await mkdir(outDir, { recursive: true });
  const packed = await packPackage({ dir: pkgDir, meta, out: join(outDir, file), sourceDateEpoch: r.sourceDateEpoch, reporter: rep });
  const spdxFile = spdxFileName(file);
  await writeFile(join(outDir, spdxFile), JSON.stringify(spdxDocument(l, packed.manifest, packed.sha256, file), null, 2) + '\n');
  return { file, packed, spdxFile };
}

async function makeContext(opts: BuildOptions, roots: string[]): Promise<Context> {
  const reporter = opts.reporter ?? silentReporter;
  const catalog = await loadPortsCatalog(opts.paths.portsDir);
  const recipes = await loadRecipeClosure(catalog, roots);
  const sandbox = opts.sandbox ?? (await probeSandbox());
  if (!sandbox.fixedPaths) {
    reporter.warn(
      `building without bubblewrap (${sandbox.reason ?? sandbox.kind}): ${sandbox.kind === 'none' ? 'the build has network access and ' : ''}paths are not fixed, so packages may differ from sandboxed builds`,
    );
  }
  return {
    catalog,
    recipes,
    target: DEFAULT_TARGET,
    cache: new BuildCache(opts.paths.cacheDir),
    sandbox,
    reporter,
    opts,
    built: new Map(),
  };
}

/** The SPDX file of a cache entry; entries made before SPDX files carried the arch use `NAME-VERSION.spdx.json`. */
async function cachedSpdxPath(dir: string, file: string, name: string, version: string): Promise<string> {
  const current = join(dir, spdxFileName(file));
  const exists = await stat(current).then(
    () => true,
    () => false,
  );
  return exists ? current : join(dir, `${name}-${version}.spdx.json`);
}

/** Builds (or takes from the cache) one port whose build dependencies are already in ctx.built. */
async function buildOne(ctx: Context, name: string, useCache: boolean): Promise<BuiltPackage> {
  const t0 = Date.now();
  const l = ctx.recipes.get(name);
  if (!l) throw new SwpkgError('E_UNKNOWN_PORT', `no port named ${name}`, { details: { port: name } });
  const target = buildTargetOf(l.recipe, assertTarget(l.recipe, ctx.target));
  await checkRecipeFiles(l);
  const deps = await buildClosure(ctx, name);
  const toolchain = await detectToolchain(target, l.recipe.hostTools);
  const inputs = await keyInputs(ctx, l, toolchain, deps);
  const key = buildKey(inputs);
  const logDir = join(ctx.opts.paths.cacheDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const logPath = join(logDir, `${name}-${target}.log`);

  if (useCache) {
    const hit = await ctx.cache.lookup(key);
    if (hit) {
      const manifest = hit.info.manifest;
      const built: BuiltPackage = {
        name,
        version: l.recipe.version,
        target,
        path: hit.packagePath,
        file: hit.info.file,
        sha256: hit.sha256,
        size: hit.size,
        manifest,
        spdxPath: await cachedSpdxPath(hit.dir, hit.info.file, name, l.recipe.version),
        cacheKey: key,
        cached: true,
        seconds: (Date.now() - t0) / 1000,
        buildSeconds: hit.info.seconds,
        ...(hit.info.cpuSeconds !== undefined ? { cpuSeconds: hit.info.cpuSeconds } : {}),
        logPath: join(hit.dir, 'build.log'),
        sandbox: ctx.sandbox.kind,
      };
      ctx.reporter.info(`${name}: cached (${hit.sha256.slice(0, 12)})`);
      return built;
    }
  }

  ctx.reporter.info(`${name}: building ${l.recipe.version} for ${target} (sandbox: ${ctx.sandbox.kind})`);
  await mkdir(join(ctx.opts.paths.cacheDir, 'work'), { recursive: true });
  const staging = await mkdtemp(join(ctx.opts.paths.cacheDir, 'work', `.out-${name}-`));
  try {
    const out = await buildInto(ctx, l, toolchain, deps, staging, logPath);
    const seconds = (Date.now() - t0) / 1000;
    await copyFile(logPath, join(staging, 'build.log'));
    const entry = await ctx.cache.store(
      key,
      [
        { path: join(staging, out.file), name: out.file },
        { path: join(staging, out.spdxFile), name: out.spdxFile },
        { path: join(staging, 'build.log'), name: 'build.log' },
      ],
      {
        port: name,
        version: l.recipe.version,
        file: out.file,
        sha256: out.sha256,
        size: out.size,
        seconds,
        builtAt: new Date().toISOString(),
        inputs,
        manifest: out.manifest,
        ...(out.cpuSeconds !== undefined ? { cpuSeconds: out.cpuSeconds } : {}),
      },
    );
    ctx.reporter.info(`${name}: built in ${seconds.toFixed(1)} s → ${out.file} (${out.sha256.slice(0, 12)})`);
    return {
      name,
      version: l.recipe.version,
      target,
      path: entry.packagePath,
      file: out.file,
      sha256: out.sha256,
      size: out.size,
      manifest: out.manifest,
      spdxPath: join(entry.dir, out.spdxFile),
      cacheKey: key,
      cached: false,
      seconds,
      buildSeconds: seconds,
      ...(out.cpuSeconds !== undefined ? { cpuSeconds: out.cpuSeconds } : {}),
      logPath: join(entry.dir, 'build.log'),
      sandbox: ctx.sandbox.kind,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Builds `names` and everything they need to build, each after its build
 * dependencies, through the build cache. With `withRuntime`, runtime
 * dependencies are built too (a repository needs them). `useCache: false`
 * rebuilds the named ports themselves; their dependencies still come from the cache.
 */
export async function buildPorts(names: string[], opts: BuildOptions & { withRuntime?: boolean }): Promise<BuiltPackage[]> {
  const ctx = await makeContext(opts, names);
  if (opts.target !== undefined) ctx.target = opts.target as Target;
  for (const n of names) {
    if (!ctx.recipes.has(n)) {
      throw new SwpkgError('E_UNKNOWN_PORT', `no port named ${n}`, {
        hint: '`swport catalog list` shows the ports this tree offers',
        details: { port: n, known: [...ctx.catalog.folders.keys()] },
      });
    }
    // An unsupported target is refused before anything is built.
    assertTarget(ctx.recipes.get(n)!.recipe, opts.target ?? DEFAULT_TARGET);
  }
  const order = dependencyOrder(names, (n) => {
    const l = ctx.recipes.get(n);
    return l ? edgesOf(l.recipe, opts.withRuntime ? 'all' : 'build') : undefined;
  });
  const out: BuiltPackage[] = [];
  for (const n of order) {
    const b = await buildOne(ctx, n, (opts.useCache ?? true) || !names.includes(n));
    ctx.built.set(n, b);
    out.push(b);
  }
  return out;
}

/** `swport recipe build NAME`: the port's package (from the cache when its inputs are unchanged). */
export async function buildPort(name: string, opts: BuildOptions): Promise<BuiltPackage> {
  const all = await buildPorts([name], opts);
  return all.find((b) => b.name === name)!;
}

/** Loads one recipe and checks it fully (fields, files, dependencies, target) without building. */
export async function validateRecipe(portsDir: string, name: string, target?: string): Promise<LoadedRecipe & { buildOrder: string[] }> {
  const catalog = await loadPortsCatalog(portsDir);
  const l = await loadRecipe(catalog, name);
  await checkRecipeFiles(l);
  if (target !== undefined) assertTarget(l.recipe, target);
  const recipes = await loadRecipeClosure(catalog, [name]);
  const buildOrder = dependencyOrder([name], (n) => {
    const r = recipes.get(n);
    return r ? edgesOf(r.recipe, 'all') : undefined;
  });
  return { ...l, buildOrder };
}

/** The package metadata a build would produce (no build: files are listed once built). */
export async function recipeManifest(
  portsDir: string,
  name: string,
  target: string = DEFAULT_TARGET,
): Promise<PackageMeta & { file: string }> {
  const catalog = await loadPortsCatalog(portsDir);
  const l = await loadRecipe(catalog, name);
  const t = assertTarget(l.recipe, target);
  const toolchain = await detectToolchain(buildTargetOf(l.recipe, t), l.recipe.hostTools);
  const meta = packageMeta(l, t, toolchain);
  return { ...meta, file: packageFileName(l.recipe.name, l.recipe.version, meta.arch) };
}

export interface ReproducibilityResult {
  name: string;
  version: string;
  target: Target;
  file: string;
  identical: boolean;
  sha256: [string, string];
  seconds: [number, number];
  /** CPU seconds (user + system) of each build's processes, when the shell reported them. */
  cpuSeconds?: [number, number];
  /** The first payload path (in archive order) whose bytes, type, mode or link differ. */
  firstDifference?: { path: string; first?: string; second?: string };
  /** Where the two packages were kept, when `keepDir` was given. */
  kept?: [string, string];
}

function describe(f: PackageManifest['files'][number] | undefined): string | undefined {
  if (!f) return undefined;
  return f.type === 'file'
    ? `file ${f.sha256} (${f.size} bytes, mode ${f.mode.toString(8)})`
    : f.type === 'symlink'
      ? `symlink → ${f.target}`
      : `dir mode ${f.mode.toString(8)}`;
}

/** Compares two manifests' file lists and names the first entry that differs. */
export function firstDifference(a: PackageManifest, b: PackageManifest): ReproducibilityResult['firstDifference'] {
  const am = new Map(a.files.map((f) => [f.path, f]));
  const bm = new Map(b.files.map((f) => [f.path, f]));
  const paths = [...new Set([...am.keys(), ...bm.keys()])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  for (const p of paths) {
    const x = describe(am.get(p));
    const y = describe(bm.get(p));
    if (x !== y) return { path: p, ...(x ? { first: x } : {}), ...(y ? { second: y } : {}) };
  }
  const ma = JSON.stringify({ ...a, files: [] });
  const mb = JSON.stringify({ ...b, files: [] });
  if (ma !== mb) return { path: '.SWPKG/manifest.json', first: ma.slice(0, 200), second: mb.slice(0, 200) };
  return undefined;
}

/**
 * `swport recipe verify-reproducible NAME`: builds the port twice from clean
 * work trees with no cache for the port itself (its build dependencies are
 * inputs and come from the cache) and compares the package bytes. Different
 * bytes are E_REPRODUCIBILITY naming the first differing file.
 */
export async function verifyReproducible(name: string, opts: BuildOptions & { keepDir?: string }): Promise<ReproducibilityResult> {
  const ctx = await makeContext(opts, [name]);
  const l = ctx.recipes.get(name);
  if (!l)
    throw new SwpkgError('E_UNKNOWN_PORT', `no port named ${name}`, { details: { port: name, known: [...ctx.catalog.folders.keys()] } });
  ctx.target = assertTarget(l.recipe, opts.target ?? DEFAULT_TARGET);
  const target = buildTargetOf(l.recipe, ctx.target);
  await checkRecipeFiles(l);
  const deps = await buildClosure(ctx, name);
  for (const d of deps) ctx.built.set(d, await buildOne(ctx, d, true));
  const toolchain = await detectToolchain(target, l.recipe.hostTools);
  const logDir = join(opts.paths.cacheDir, 'logs');
  await mkdir(logDir, { recursive: true });
  await mkdir(join(opts.paths.cacheDir, 'work'), { recursive: true });
  const scratch = await mkdtemp(join(opts.paths.cacheDir, 'work', `.repro-${name}-`));
  try {
    const runs: { file: string; manifest: PackageManifest; sha256: string; seconds: number; dir: string; cpuSeconds?: number }[] = [];
    for (const i of [1, 2]) {
      ctx.reporter.info(`${name}: reproducibility build ${i} of 2`);
      const t0 = Date.now();
      const dir = join(scratch, String(i));
      const out = await buildInto(ctx, l, toolchain, deps, dir, join(logDir, `${name}-${target}.repro${i}.log`));
      runs.push({ ...out, seconds: (Date.now() - t0) / 1000, dir });
    }
    const [a, b] = runs as [(typeof runs)[number], (typeof runs)[number]];
    const result: ReproducibilityResult = {
      name,
      version: l.recipe.version,
      target,
      file: a.file,
      identical: a.sha256 === b.sha256,
      sha256: [a.sha256, b.sha256],
      seconds: [a.seconds, b.seconds],
    };
    if (a.cpuSeconds !== undefined && b.cpuSeconds !== undefined) result.cpuSeconds = [a.cpuSeconds, b.cpuSeconds];
    if (opts.keepDir) {
      const kept: [string, string] = [join(opts.keepDir, '1', a.file), join(opts.keepDir, '2', b.file)];
      for (const [i, run] of [a, b].entries()) {
        await mkdir(join(opts.keepDir, String(i + 1)), { recursive: true });
        await copyFile(join(run.dir, run.file), kept[i]!);
      }
      result.kept = kept;
    }
    if (!result.identical) {
      const diff = firstDifference(a.manifest, b.manifest);
      if (diff) result.firstDifference = diff;
      throw new SwpkgError(
        'E_REPRODUCIBILITY',
        `${name}: two builds gave different packages (${a.sha256.slice(0, 12)} vs ${b.sha256.slice(0, 12)}); first difference: ${diff?.path ?? 'archive framing only'}`,
        {
          hint: 'look for timestamps, build paths or unordered output in that file (SOURCE_DATE_EPOCH, -ffile-prefix-map, sorted lists)',
          details: { port: name, sha256: result.sha256, firstDifference: diff, kept: result.kept },
        },
      );
    }
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
