import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import semver from 'semver';
import { join, resolve as resolvePath } from 'node:path';
import {
  SwpkgError,
  ERROR_CODES,
  ExitCode,
  catalogFieldsOf,
  compatiblePackages,
  findReverseDependencies,
  parseRequirement,
  resolve,
  verifyPackageFile,
  verifyPackageSignature,
  type CatalogPackage,
  type PackageManifest,
  type Plan,
  type Reporter,
  type Requirement,
  type DetachedSignature,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { catalogTrustedNow, readRepos } from './repos.js';
import { foreignPackagesOf, refuseForeignOnly, type ForeignPackage } from './foreign-packages.js';
import { loadCatalog, openCatalogIndex, readCatalogState, type CatalogIndex, type LoadedCatalog } from './catalog-store.js';
import { downloadFile, joinUrl, type DownloadResult } from './download.js';
import type { HttpTransport } from './http-transport.js';
import {
  checkStoreEntry,
  commitStoreEntries,
  discardStoreEntry,
  readStoreManifest,
  reuseStoreEntry,
  stageStoreEntry,
  type StagedEntry,
} from './store.js';
import {
  commitGeneration,
  discardStagedGeneration,
  stageGeneration,
  planTree,
  readCurrent,
  switchCurrent,
  type Generation,
  type GenerationPackage,
  type StagedGeneration,
  type GenerationRelease,
  type TreeInput,
} from './generation.js';
import { storeDirName } from './paths.js';
import { healCurrent, prepareHealth, runGuard, type HealthGuard, type HealthOutcome } from './health.js';
import { ensureDir, exists, makeDurable, removeTree } from './fs-util.js';
import { trustedKeys, type TrustedKey } from './trusted-keys.js';
import { planThenApply, type PlanGate } from './writer.js';
import { crashPoint } from './crash-point.js';
import { eachLimit } from './each-limit.js';
import { requireRepositories } from './query.js';

/** Where a package's bytes come from. */
export type PackageSource =
  | { kind: 'repo'; repo: string; bases: string[]; path: string }
  | { kind: 'file'; path: string; manifest: PackageManifest; signature?: DetachedSignature; trustedBy?: { keyid: string; source: string } };

/** One installable package: a catalog entry of a configured repository, or a local `.swpkg` file. */
export interface Available extends Omit<CatalogPackage, 'path'> {
  /** Repository it comes from; absent for a local file. */
  repo?: string;
  source: PackageSource;
}

/** One line of a plan as shown to people and in --json. */
export interface PlanLine {
  /** `reinstall`: the installed version fetched and extracted again (`pkg install --reinstall`). */
  action: 'install' | 'upgrade' | 'downgrade' | 'remove' | 'keep' | 'reinstall';
  name: string;
  from?: string;
  to?: string;
  /** Repository, or null for a local file. */
  repo?: string | null;
  reason: string;
  /** Bytes to download for this package (0 when the store or cache already has it). */
  download: number;
}

/** What a mutation will do, computed before anything changes. */
export interface PlanView {
  command: string;
  fromGeneration: number | null;
  lines: PlanLine[];
  downloadCount: number;
  downloadBytes: number;
  /** Change of the installed size in bytes (negative when space is freed). */
  installedSizeDelta: number;
  /** Explicitly installed names afterwards. */
  world: string[];
  /** True when there is nothing to change. */
  empty: boolean;
  warnings: string[];
  /** The release whose exact set the plan installs (`--release`); absent otherwise. */
  release?: GenerationRelease;
}

export interface TransactionResult {
  plan: PlanView;
  dryRun: boolean;
  /** The person answered no: nothing was changed. */
  declined?: boolean;
  /** The generation now current (unchanged when nothing was to do or on --dry-run). */
  generation: number | null;
  previousGeneration: number | null;
  downloads: { name: string; version: string; bytes: number; resumedFrom: number; cached: boolean }[];
  /** The health checks of the change (absent when there were none to run); a required failure throws E_HEALTH_CHECK instead. */
  health?: HealthOutcome;
}

/** Dry run, show and confirm (writer.ts PlanGate): asked without the lock; a no changes nothing and is not an error. */
export type MutationOptions = PlanGate<PlanView> & {
  /** false (--no-health-check): the checks are not run and the generation's health record says so. */
  healthCheck?: boolean;
};

interface World {
  current: Generation | undefined;
  available: Available[];
  /** Entries of the same catalogs for another arch or ABI: only to explain a request for one of them. */
  foreign: ForeignPackage[];
  catalogVersions: Record<string, number>;
  /** Repositories configured but never updated (nothing to resolve from). */
  notUpdated: string[];
  /** Only the entries the request can reach (loadReachableWorld): a plan that fails is made again from everything. */
  partial?: true;
}

/**
 * Loads the installed set and the catalogs to resolve against. Mutations
 * re-verify each accepted catalog against the trusted root and the clock
 * (an expired catalog refuses installs: freeze attack), queries do not.
 */
async function loadWorld(ctx: PkgContext, o: { catalogs: boolean | 'lenient'; warn: (m: string) => void }): Promise<World> {
  const current = await readCurrent(ctx);
  const available: Available[] = [];
  const foreign: ForeignPackage[] = [];
  const catalogVersions: Record<string, number> = {};
  const notUpdated: string[] = [];
  if (o.catalogs) {
    for (const r of await readRepos(ctx)) {
      let loaded: LoadedCatalog | undefined;
      try {
        loaded = (await catalogTrustedNow(ctx, r)) ? await loadCatalog(ctx, r.name, { fresh: true }) : undefined;
      } catch (e) {
        if (o.catalogs !== 'lenient' || !(e instanceof SwpkgError)) throw e;
        o.warn(`repository ${r.name} is left out: ${e.code} ${e.message}`);
        continue;
      }
      if (!loaded) {
        notUpdated.push(r.name);
        continue;
      }
      catalogVersions[r.name] = loaded.state.version;
      available.push(...availableFrom(ctx, loaded, [r.url, ...r.mirrors]));
      foreign.push(...foreignPackagesOf(loaded.doc, ctx.client, r.name));
    }
  }
  return { current, available, foreign, catalogVersions, notUpdated };
}

/**
 * The catalog entries a request can reach, read through each catalog's index (openCatalogIndex):
 * the entries of the requested and installed names, and, repeatedly, of every name their
 * dependencies mention and of every package providing such a name. The resolver looks at nothing
 * else when it succeeds (a requirement is met by name or provide, a conflict matters only against
 * what is chosen), so its plan is the one the whole catalogs give, in the same priority order
 * (repository order, then catalog order). Its refusals are not: they suggest names from everything,
 * so the caller plans again from the whole catalogs when this plan fails. Undefined when a
 * catalog has no index (its state was written before indexes): load them whole.
 */
async function loadReachableWorld(ctx: PkgContext, current: Generation | undefined, seeds: readonly string[]): Promise<World | undefined> {
  const repos = await readRepos(ctx);
  const indexes: { index: CatalogIndex; bases: string[] }[] = [];
  try {
    const notUpdated: string[] = [];
    const catalogVersions: Record<string, number> = {};
    for (const r of repos) {
      // The same trust gate as loadWorld: a staged repository's catalog counts only if accepted from the pin the image stages now.
      if (!(await readCatalogState(ctx, r.name)) || !(await catalogTrustedNow(ctx, r))) {
        notUpdated.push(r.name);
        continue;
      }
      const index = await openCatalogIndex(ctx, r.name, { fresh: true });
      if (!index) return undefined;
      indexes.push({ index, bases: [r.url, ...r.mirrors] });
      catalogVersions[r.name] = index.state.version;
    }
    const seen = new Set<string>();
    const queue = [...seeds, ...(current?.packages ?? []).map((p) => p.name)];
    const reached = indexes.map(() => [] as { at: number; pkg: CatalogPackage }[]);
    while (queue.length > 0) {
      const name = queue.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      for (const [i, { index }] of indexes.entries()) {
        for (const e of await index.entries(name)) {
          reached[i]!.push(e);
          queue.push(...Object.keys(e.pkg.depends));
        }
        queue.push(...index.providers(name));
      }
    }
    const available: Available[] = [];
    const foreign: ForeignPackage[] = [];
    for (const [i, { index, bases }] of indexes.entries()) {
      for (const { pkg } of reached[i]!.sort((a, b) => a.at - b.at)) {
        if ((pkg.arch === ctx.client.arch || pkg.arch === 'any') && pkg.abi === ctx.client.abi) {
          const { path, ...fields } = pkg;
          available.push({ ...fields, repo: index.repo, source: { kind: 'repo', repo: index.repo, bases, path } });
        } else foreign.push({ name: pkg.name, version: pkg.version, arch: pkg.arch, abi: pkg.abi, repo: index.repo });
      }
    }
    return { current, available, foreign, catalogVersions, notUpdated, partial: true };
  } finally {
    for (const { index } of indexes) await index.close();
  }
}

export function availableFrom(ctx: PkgContext, c: LoadedCatalog, bases: string[]): Available[] {
  return compatiblePackages(c.doc, ctx.client).map(({ path, ...fields }) => ({
    ...fields,
    repo: c.repo,
    source: { kind: 'repo', repo: c.repo, bases, path },
  }));
}

/** Extractions in flight: decompression (zstd or gzip) runs on libuv threads while the main thread hashes and writes. */
const EXTRACTIONS_IN_FLIGHT = 2;

/** One progress line for all downloads of a transaction (bytes of every package together). */
function aggregateProgress(ctx: PkgContext, items: Available[]): (name: string) => Reporter {
  const add = bytesProgress(ctx, `downloading ${items.length} package${items.length === 1 ? '' : 's'}`, items);
  return (name) => ({
    info: (m) => ctx.reporter.info(m),
    warn: (m) => ctx.reporter.warn(m),
    progress: (_label, d) => add(name, d),
  });
}

/** One progress line in bytes over several packages read at once (each reports its own running count). */
function bytesProgress(ctx: PkgContext, label: string, items: Available[]): (name: string, bytes: number) => void {
  const total = items.reduce((n, c) => n + c.size, 0);
  const done = new Map<string, number>();
  let sum = 0;
  return (name, bytes) => {
    sum += bytes - (done.get(name) ?? 0);
    done.set(name, bytes);
    ctx.reporter.progress(label, sum, total, 'bytes');
  };
}

/** Where a package's verified download waits in the cache until it is extracted (also `pkg fetch`'s target). */
export function cachePath(ctx: PkgContext, a: Available): string {
  return join(ctx.paths.cache, `${a.name}-${a.version}-${a.sha256.slice(0, 16)}.swpkg`);
}

/**
 * Downloads a repository package to its cachePath from the first of its mirrors that answers,
 * with the context's limits and retries; the file is there only once its size and SHA-256 match
 * the catalog (downloadFile). The one download path of install and `pkg fetch`.
 */
export function downloadToCache(
  ctx: PkgContext,
  transport: HttpTransport,
  c: Available,
  source: Extract<PackageSource, { kind: 'repo' }>,
  reporter: Reporter,
): Promise<DownloadResult> {
  return downloadFile(
    source.bases.map((b) => joinUrl(b, source.path)),
    {
      transport,
      dest: cachePath(ctx, c),
      size: c.size,
      sha256: c.sha256,
      limits: ctx.limits,
      retries: ctx.retries,
      reporter,
      label: c.name,
    },
  );
}

function isFileSpec(spec: string): boolean {
  return spec.endsWith('.swpkg') || spec.startsWith('./') || spec.startsWith('/') || spec.startsWith('../');
}

/**
 * Verifies a whole local package file (nothing is written), checks it fits
 * this machine, and decides trust: its signature
 * must verify under a trusted key unless `allowUntrusted`. A signature that
 * is present but wrong is refused even then: it proves tampering.
 */
async function localCandidate(
  ctx: PkgContext,
  file: string,
  keys: TrustedKey[],
  allowUntrusted: boolean,
  warn: (m: string) => void,
): Promise<Available> {
  const path = resolvePath(file);
  // The whole file is verified (every entry against the manifest, the archive hashed) in one streaming
  // pass before anything is planned or written, as a download is before extraction: a tampered payload
  // never reaches a staging folder. Extraction checks every byte again against this SHA-256.
  const v = await verifyPackageFile(path);
  const m = v.manifest;
  if ((m.arch !== ctx.client.arch && m.arch !== 'any') || m.abi !== ctx.client.abi) {
    throw new SwpkgError(
      'E_INCOMPATIBLE',
      `${file} is built for ${m.arch}/${m.abi}; this machine is ${ctx.client.arch}/${ctx.client.abi}`,
      {
        hint: 'get the package built for this machine',
        details: { file, arch: m.arch, abi: m.abi, clientArch: ctx.client.arch, clientAbi: ctx.client.abi },
      },
    );
  }
  let trustedBy: { keyid: string; source: string } | undefined;
  try {
    const { keyid } = verifyPackageSignature(v, keys);
    trustedBy = { keyid, source: keys.find((k) => k.keyid === keyid)?.source ?? '' };
  } catch (e) {
    if (!(e instanceof SwpkgError) || e.code === 'E_SIGNATURE') throw e;
    if (!allowUntrusted) {
      throw new SwpkgError(e.code, `${file}: ${e.message}; refusing to install a package no trusted key vouches for`, {
        hint: 'trust its signer with `pkg key add KEY.pub`, install it from a configured repository, or pass --allow-untrusted if you trust this file',
        details: { ...e.details, file },
        cause: e,
      });
    }
    warn(`${file} (${m.name}@${m.version}) is NOT signed by a trusted key (${e.message}); installing it because of --allow-untrusted`);
  }
  const source: PackageSource = {
    kind: 'file',
    path,
    manifest: m,
    ...(v.signature ? { signature: v.signature } : {}),
    ...(trustedBy ? { trustedBy } : {}),
  };
  return { ...catalogFieldsOf(m, v), source };
}

type PkgPlan = Plan<Available, GenerationPackage>;

async function view(ctx: PkgContext, plan: PkgPlan, w: World, warnings: string[]): Promise<PlanView> {
  const lines: PlanLine[] = [];
  let downloadBytes = 0;
  let downloadCount = 0;
  let delta = 0;
  for (const s of plan.steps) {
    // The resolver never upgrades to the same version: such a step is a reinstall (installPackages).
    const action = s.action === 'upgrade' && s.from === s.to ? 'reinstall' : s.action;
    const line: PlanLine = { action, name: s.name, reason: s.reason, download: 0 };
    if (s.from !== undefined) line.from = s.from;
    if (s.to !== undefined) line.to = s.to;
    if (s.candidate) {
      line.repo = s.candidate.repo ?? null;
      const dir = storeDirName(s.candidate.sha256, s.candidate.name, s.candidate.version);
      // A damaged entry is replaced (reuseStoreEntry), so it is downloaded again: the plan says so.
      const stored = (await exists(join(ctx.paths.store, dir))) && (await checkStoreEntry(ctx, dir)).length === 0;
      const cached = s.candidate.source.kind === 'repo' && (await exists(cachePath(ctx, s.candidate)));
      if (s.candidate.source.kind === 'repo' && !stored && !cached) {
        line.download = s.candidate.size;
        downloadBytes += s.candidate.size;
        downloadCount++;
      }
      delta += s.candidate.installedSize;
    } else if (s.installed) {
      line.repo = s.installed.repo;
    }
    if (s.installed && s.action !== 'keep') delta -= s.installed.installedSize;
    lines.push(line);
  }
  const explicitBefore = new Set((w.current?.packages ?? []).filter((p) => p.explicit).map((p) => p.name));
  const worldChanged = plan.world.length !== explicitBefore.size || plan.world.some((n) => !explicitBefore.has(n));
  return {
    command: ctx.command,
    fromGeneration: w.current?.number ?? null,
    lines,
    downloadCount,
    downloadBytes,
    installedSizeDelta: delta,
    world: plan.world,
    empty: !worldChanged && lines.every((l) => l.action === 'keep'),
    warnings,
  };
}

/**
 * Applies a plan: download (resumable, capped, hashed while streaming,
 * renamed only when the SHA-256 matches the catalog) → extract into hidden
 * `store/.tmp-*`, every file checked against the manifest → refuse file
 * conflicts over the whole next set → generation N+1 staged beside them →
 * one syncfs for all of it → renames into `store/`, then `generations/`
 * (each folder fsynced) → switch `current`. Nothing is visible before the switch. On failure, store entries added by
 * this run are removed again, and so are its downloads unless the failure
 * was the network's (then they stay for the next run to resume).
 */
async function apply(
  ctx: PkgContext,
  plan: PkgPlan,
  w: World,
  catalogs: Record<string, number>,
  healthCheck: boolean,
  release?: GenerationRelease,
): Promise<{ generation: Generation; downloads: TransactionResult['downloads']; guard: HealthGuard | undefined }> {
  const addedStore: string[] = [];
  const staged: StagedEntry[] = [];
  const fetchedFiles: string[] = [];
  let stagedGeneration: StagedGeneration | undefined;
  try {
    // 1. Downloads, a few at a time.
    const { files, downloads } = await downloadPlanPackages(ctx, plan, fetchedFiles);
    crashPoint('transaction.downloaded');

    // 2. Verify and extract each new package into store/.tmp-* (hidden; removed again on any failure).
    const stagedBy = await stagePackages(ctx, plan, files, staged);
    crashPoint('transaction.staged');

    // 3. The merged tree of the whole next set: file conflicts are refused before anything is visible.
    const inputs = await treeInputs(ctx, plan, stagedBy);
    const tree = planTree(inputs);
    crashPoint('transaction.planned-tree');
    const records = plan.final.map((p) =>
      p.installed ? { ...p.installed, explicit: p.explicit } : generationRecord(p.candidate!, p.explicit),
    );

    // 4. The new generation beside the others, still under a .tmp- name; its links may name staged entries.
    stagedGeneration = await stageGeneration(ctx, {
      packages: records,
      tree,
      command: ctx.command,
      catalogs,
      parent: w.current?.number ?? null,
      ...(release && { release }),
    });

    // 5. The one durability barrier: a syncfs of the root's filesystem covers every staged store
    // entry and the staged generation. Then the names, each folder fsynced before anything that
    // relies on it: store entries (store/ fsynced), the generation (generations/ fsynced), `current`.
    await makeDurable([...staged.map((e) => e.tmp), stagedGeneration.tmp]);
    crashPoint('transaction.synced');
    await commitStoreEntries(ctx, staged, (dir) => addedStore.push(dir));
    staged.length = 0;
    crashPoint('transaction.stored');
    const generation = await commitGeneration(ctx, stagedGeneration);
    stagedGeneration = undefined;
    // The generation names the new store entries now: a later failure must not take them from under it.
    addedStore.length = 0;
    // Checks of what this change added or changed: recorded as pending before the switch (see prepareHealth).
    const before = new Set((w.current?.packages ?? []).map((p) => p.store));
    const guard = await prepareHealth(ctx, {
      generation: generation.number,
      revertTo: w.current?.number ?? null,
      packages: inputs.filter((i) => !before.has(i.pkg.store)),
      skip: !healthCheck,
    });
    await switchCurrent(ctx, generation.number);
    crashPoint('transaction.switched');

    // 6. Downloads now live in the store.
    for (const f of files.values()) if (f.startsWith(ctx.paths.cache)) rmSync(f, { force: true });
    crashPoint('transaction.cleaned');
    return { generation, downloads, guard };
  } catch (e) {
    for (const e of staged) await removeTree(e.tmp).catch(() => {});
    if (stagedGeneration) await discardStagedGeneration(stagedGeneration).catch(() => {});
    for (const dir of addedStore) await discardStoreEntry(ctx, dir).catch(() => {});
    const exit = e instanceof SwpkgError ? ERROR_CODES[e.code] : ExitCode.UNEXPECTED;
    if (exit !== ExitCode.NETWORK) for (const f of fetchedFiles) await rm(f, { force: true }).catch(() => {});
    throw e;
  }
}

/**
 * apply's step 1: the file each new package is read from (a local file as given, a repository
 * package downloaded into the cache). The store already holding the same bytes (by hash,
 * re-checked) means nothing to fetch or extract. Cache files this call creates are pushed to
 * `fetchedFiles` as they land, so a failure later (or in a sibling download) can remove them.
 */
async function downloadPlanPackages(
  ctx: PkgContext,
  plan: PkgPlan,
  fetchedFiles: string[],
): Promise<{ files: Map<string, string>; downloads: TransactionResult['downloads'] }> {
  const files = new Map<string, string>();
  const downloads: TransactionResult['downloads'] = [];
  const toFetch: Available[] = [];
  for (const p of plan.final) {
    const c = p.candidate;
    if (!c) continue;
    if (await reuseStoreEntry(ctx, c.sha256, c.name, c.version)) continue;
    if (c.source.kind === 'file') files.set(c.name, c.source.path);
    else toFetch.push(c);
  }
  if (toFetch.length === 0) return { files, downloads };
  const transport = await ctx.transport();
  await ensureDir(ctx.paths.cache);
  const progress = aggregateProgress(ctx, toFetch);
  await eachLimit(toFetch, ctx.downloads, async (c) => {
    const dest = cachePath(ctx, c);
    const hadFile = await exists(dest);
    crashPoint('transaction.download');
    const r = await downloadToCache(ctx, transport, c, c.source as Extract<PackageSource, { kind: 'repo' }>, progress(c.name));
    if (!hadFile) fetchedFiles.push(dest);
    files.set(c.name, dest);
    downloads.push({ name: c.name, version: c.version, bytes: r.transferred, resumedFrom: r.resumedFrom, cached: r.cached });
  });
  downloads.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { files, downloads };
}

/** apply's step 2: each file verified and extracted into a hidden store/.tmp-*, pushed to `staged` as it lands. */
async function stagePackages(
  ctx: PkgContext,
  plan: PkgPlan,
  files: ReadonlyMap<string, string>,
  staged: StagedEntry[],
): Promise<Map<string, StagedEntry>> {
  const toStage = plan.final.filter((p) => p.candidate && files.has(p.candidate.name)).map((p) => p.candidate!);
  const stagedBy = new Map<string, StagedEntry>();
  const extracted = bytesProgress(ctx, 'verifying and extracting', toStage);
  await eachLimit(toStage, EXTRACTIONS_IN_FLIGHT, async (c) => {
    const entry = await stageStoreEntry(
      ctx,
      files.get(c.name)!,
      {
        sha256: c.sha256,
        size: c.size,
        installedSize: c.installedSize,
        name: c.name,
        version: c.version,
        ...(c.source.kind === 'file' && c.source.signature ? { signature: c.source.signature } : {}),
      },
      (bytes) => extracted(c.name, bytes),
    );
    staged.push(entry);
    stagedBy.set(c.name, entry);
  });
  return stagedBy;
}

/** apply's step 3: every package of the next set with its manifest, each new one checked against its catalog entry. */
async function treeInputs(ctx: PkgContext, plan: PkgPlan, stagedBy: ReadonlyMap<string, StagedEntry>): Promise<TreeInput[]> {
  const inputs: TreeInput[] = [];
  for (const p of plan.final) {
    if (p.installed) {
      inputs.push({ pkg: p.installed, manifest: await readStoreManifest(ctx, p.installed.store) });
      continue;
    }
    const c = p.candidate!;
    const store = storeDirName(c.sha256, c.name, c.version);
    const manifest = stagedBy.get(c.name)?.manifest ?? (await readStoreManifest(ctx, store));
    checkManifestMatchesCatalog(c, manifest);
    inputs.push({ pkg: { name: c.name, version: c.version, store }, manifest });
  }
  return inputs;
}

/** The package's own manifest must say what the catalog said about it: name, version, platform, installed size. */
function checkManifestMatchesCatalog(c: Available, manifest: PackageManifest): void {
  if (manifest.name !== c.name || manifest.version !== c.version || manifest.arch !== c.arch || manifest.abi !== c.abi) {
    throw new SwpkgError(
      manifest.name !== c.name || manifest.version !== c.version ? 'E_CORRUPT' : 'E_INCOMPATIBLE',
      `${c.name}@${c.version} from ${c.repo ?? 'a file'} contains ${manifest.name}@${manifest.version} (${manifest.arch}/${manifest.abi})`,
      {
        hint: 'the repository catalog and the package disagree; tell the publisher',
        details: {
          expected: `${c.name}@${c.version}`,
          actual: `${manifest.name}@${manifest.version}`,
          arch: manifest.arch,
          abi: manifest.abi,
        },
      },
    );
  }
  // A store entry reused by hash was never extracted against this catalog entry: its size must be true too.
  if (manifest.installedSize !== c.installedSize) {
    throw new SwpkgError(
      manifest.installedSize > c.installedSize ? 'E_TOO_LARGE' : 'E_CORRUPT',
      `${c.name}@${c.version} from ${c.repo ?? 'a file'} unpacks to ${manifest.installedSize} bytes, the catalog says ${c.installedSize}`,
      {
        hint: 'the repository catalog and the package disagree; tell the publisher',
        details: { package: `${c.name}@${c.version}`, declared: c.installedSize, manifest: manifest.installedSize },
      },
    );
  }
}

/**
 * What a generation records of a newly installed package. The fields are named one by one on
 * purpose: an Available also carries its source (paths, signatures, mirror URLs), which must
 * not leak into the generation file.
 */
function generationRecord(c: Available, explicit: boolean): GenerationPackage {
  return {
    name: c.name,
    version: c.version,
    arch: c.arch,
    abi: c.abi,
    sha256: c.sha256,
    size: c.size,
    installedSize: c.installedSize,
    store: storeDirName(c.sha256, c.name, c.version),
    explicit,
    repo: c.repo ?? null,
    depends: c.depends,
    provides: c.provides,
    conflicts: c.conflicts,
  };
}

async function transaction(
  ctx: PkgContext,
  o: MutationOptions & {
    catalogs: boolean | 'lenient';
    warnings?: string[];
    release?: GenerationRelease;
    /** Names the plan starts from besides the installed ones: the catalogs are read only as far as they reach. */
    seeds?: readonly string[];
  },
  makePlan: (w: World) => Promise<PkgPlan>,
): Promise<TransactionResult> {
  const warnings = o.warnings ?? [];
  // Reported as they happen, so they show even when planning then fails; once, though a plan that
  // is asked about is made twice (before the question and again under the lock).
  const warn = (m: string): void => {
    if (warnings.includes(m)) return;
    warnings.push(m);
    ctx.reporter.warn(m);
  };
  interface Planned {
    w: World;
    plan: PkgPlan;
    pv: PlanView;
  }
  const outcome = await planThenApply<Planned, Awaited<ReturnType<typeof apply>> & { health: HealthOutcome | undefined }>(
    ctx,
    {
      ...(o.dryRun !== undefined ? { dryRun: o.dryRun } : {}),
      ...(o.show ? { show: (p: Planned) => o.show!(p.pv) } : {}),
      ...(o.confirm ? { confirm: (p: Planned) => o.confirm!(p.pv) } : {}),
    },
    {
      // A writer repairs a damaged `current` and undoes a switch whose health checks never finished (a warning
      // says so); --dry-run only reads and reports it.
      prepare: () => healCurrent(ctx),
      plan: async () => {
        const reachable = o.seeds && o.catalogs === true ? await loadReachableWorld(ctx, await readCurrent(ctx), o.seeds) : undefined;
        let w = reachable ?? (await loadWorld(ctx, { catalogs: o.catalogs, warn }));
        for (const r of w.notUpdated) warn(`repository ${r} has no catalog yet; run \`pkg update\``);
        let plan: PkgPlan;
        try {
          plan = await makePlan(w);
        } catch (e) {
          if (w.partial !== true || !(e instanceof SwpkgError)) throw e;
          // A refusal explains itself from every entry (suggestions, other arches): plan again from the whole catalogs.
          w = await loadWorld(ctx, { catalogs: o.catalogs, warn });
          plan = await makePlan(w);
        }
        const pv = await view(ctx, plan, w, warnings);
        if (o.release) {
          pv.release = o.release;
          // Another release over the same set is still a change: the generation records which release it is.
          if (w.current?.release?.digest !== o.release.digest) pv.empty = false;
        }
        return { w, plan, pv };
      },
      isEmpty: (p) => p.pv.empty,
      // What would change, not how much is still to fetch: another pkg filling the cache meanwhile is no reason to ask again.
      identity: (p) => JSON.stringify({ current: p.w.current?.number ?? null, lines: p.pv.lines.map(({ download: _bytes, ...l }) => l) }),
      apply: async ({ w, plan }) => {
        crashPoint('transaction.confirmed');
        const catalogs = o.catalogs !== false ? { ...(w.current?.catalogs ?? {}), ...w.catalogVersions } : (w.current?.catalogs ?? {});
        const applied = await apply(ctx, plan, w, catalogs, o.healthCheck !== false, o.release);
        // After the switch, outside apply: a failed check switches back but keeps the generation and its store entries.
        const health = applied.guard
          ? await runGuard(ctx, applied.guard)
          : o.healthCheck === false
            ? { state: 'skipped' as const, checks: [] }
            : undefined;
        return { ...applied, health };
      },
    },
  );
  const { w, pv } = outcome.plan;
  const base: TransactionResult = {
    plan: pv,
    dryRun: outcome.kind === 'dry-run',
    ...(outcome.kind === 'declined' ? { declined: true } : {}),
    generation: w.current?.number ?? null,
    previousGeneration: w.current?.number ?? null,
    downloads: [],
  };
  if (outcome.kind !== 'applied') return base;
  const { generation, downloads, health } = outcome.result;
  return { ...base, generation: generation.number, downloads, ...(health ? { health } : {}) };
}

export interface InstallOptions extends MutationOptions {
  /** `NAME`, `NAME@RANGE`, or a path to a `.swpkg` file. */
  specs: string[];
  allowUntrusted?: boolean;
  /** Fetch and extract the named installed packages again at their installed version (a damaged store entry is replaced). */
  reinstall?: boolean;
}

/**
 * `pkg install`: adds the requested packages (and what they need) to the
 * installed set. Local files must carry a signature from a trusted key
 * unless `allowUntrusted`.
 */
export async function installPackages(ctx: PkgContext, o: InstallOptions): Promise<TransactionResult> {
  if (o.specs.length === 0)
    throw new SwpkgError('E_USAGE', 'name at least one package to install', { hint: 'pkg install NAME[@RANGE]... | ./FILE.swpkg' });
  const warnings: string[] = [];
  // Installing only local files does not need every catalog to be usable: one that fails its checks is left out (and said so).
  const onlyFiles = o.specs.every(isFileSpec);
  if (!onlyFiles) await requireRepositories(ctx);
  const seeds = requestedNames(o.specs);
  return transaction(ctx, { ...o, catalogs: onlyFiles ? 'lenient' : true, warnings, ...(seeds ? { seeds } : {}) }, async (w) => {
    const specs = o.specs.filter(isFileSpec);
    const keys = specs.length > 0 ? await trustedKeys(ctx) : [];
    const local: Available[] = new Array<Available>(specs.length);
    // Each file is read whole (every file hashed against its manifest) before planning: two at a time.
    await eachLimit(specs, EXTRACTIONS_IN_FLIGHT, async (spec, i) => {
      local[i] = await localCandidate(ctx, spec, keys, o.allowUntrusted === true, (m) => {
        warnings.push(m);
        ctx.reporter.warn(m);
      });
    });
    const install: Requirement[] = [
      ...local.map((c) => ({ name: c.name, range: c.version })),
      ...o.specs.filter((s) => !isFileSpec(s)).map((s) => parseRequirement(s)),
    ];
    refuseForeignOnly(install, [...local, ...w.available], w.foreign, ctx.client);
    // Local files first: for the same NAME@VERSION the first entry wins.
    const plan = resolve<Available, GenerationPackage>({
      available: [...local, ...w.available],
      installed: w.current?.packages ?? [],
      install,
    });
    if (o.reinstall === true)
      markReinstalls(
        plan,
        w,
        install.slice(local.length).map((r) => r.name),
      );
    return plan;
  });
}

/**
 * The names a request for catalog entries starts from; undefined (read the whole catalogs) when a
 * local file is among them (its dependencies are known only once it is read, inside the plan) or a
 * spec does not parse (the plan reports it).
 */
function requestedNames(specs: readonly string[]): string[] | undefined {
  if (specs.some(isFileSpec)) return undefined;
  try {
    return specs.map((s) => parseRequirement(s).name);
  } catch {
    return undefined;
  }
}

/**
 * `--reinstall`: each named package, kept at its installed version by the resolver, is taken from
 * the catalog entry with the very bytes installed (same SHA-256) and extracted again; the store
 * entry is checked on the way and replaced when damaged (what `pkg doctor` advises).
 */
function markReinstalls(plan: PkgPlan, w: World, names: string[]): void {
  for (const name of names) {
    const rec = w.current?.packages.find((p) => p.name === name);
    if (!rec) {
      throw new SwpkgError('E_NOT_INSTALLED', `${name} is not installed, so it cannot be reinstalled`, {
        hint: `install it: pkg install ${name}`,
        details: { name },
      });
    }
    const c = w.available.find((a) => a.name === rec.name && a.version === rec.version && a.sha256 === rec.sha256);
    if (!c) {
      throw new SwpkgError('E_NOT_FOUND', `no catalog offers the installed ${name}@${rec.version} (SHA-256 ${rec.sha256}) any more`, {
        hint: `upgrade it (pkg upgrade ${name}), or roll back to a generation whose store entries are intact; pkg update refreshes the catalogs`,
        details: { name, version: rec.version, sha256: rec.sha256, repo: rec.repo },
      });
    }
    const step = plan.steps.find((s) => s.name === name && s.action === 'keep');
    const final = plan.final.find((p) => p.name === name);
    if (!step || !final) continue;
    Object.assign(step, { action: 'upgrade', from: rec.version, to: rec.version, candidate: c, reason: 'reinstall requested' });
    final.candidate = c;
    delete final.installed;
  }
}

export interface RemoveOptions extends MutationOptions {
  names: string[];
  /** Also remove every installed package that needs one of `names`, transitively. */
  cascade?: boolean;
}

/**
 * `pkg remove`: refuses (E_NEEDED, naming them) while another installed
 * package needs a name, unless `cascade`. Dependencies nothing needs any
 * more are removed with it (orphan cleanup).
 */
export async function removePackages(ctx: PkgContext, o: RemoveOptions): Promise<TransactionResult> {
  if (o.names.length === 0) throw new SwpkgError('E_USAGE', 'name at least one package to remove');
  return transaction(ctx, { ...o, catalogs: false }, async (w) => {
    const installed = w.current?.packages ?? [];
    const removing = new Set(o.names);
    // A dependent taken along by --cascade was not requested: its plan line says what it needed.
    const cascaded = new Map<string, string>();
    if (o.cascade) {
      for (let i = 0; i <= installed.length; i++) {
        const more = findReverseDependencies(installed, [...removing]).filter((n) => !removing.has(n));
        if (more.length === 0) break;
        for (const n of more) {
          const needs = Object.keys(installed.find((p) => p.name === n)?.depends ?? {}).filter((d) => removing.has(d));
          cascaded.set(n, `needs ${(needs.length ? needs : o.names).join(', ')} (--cascade)`);
        }
        for (const n of more) removing.add(n);
      }
    }
    const plan = resolve<Available, GenerationPackage>({ available: [], installed, remove: [...removing] });
    for (const s of plan.steps) if (s.action === 'remove' && cascaded.has(s.name)) s.reason = cascaded.get(s.name)!;
    return plan;
  });
}

/** `pkg autoremove`: removes installed dependencies no explicitly installed package needs. */
export async function removeOrphans(ctx: PkgContext, o: MutationOptions = {}): Promise<TransactionResult> {
  return transaction(ctx, { ...o, catalogs: false }, async (w) =>
    resolve<Available, GenerationPackage>({ available: [], installed: w.current?.packages ?? [] }),
  );
}

export interface UpgradeOptions extends MutationOptions {
  /** Names to upgrade; empty means everything installed. */
  names?: string[];
}

/** `pkg upgrade [NAME...]`: moves installed packages to the highest versions the catalogs offer that fit. */
export async function upgradePackages(ctx: PkgContext, o: UpgradeOptions = {}): Promise<TransactionResult> {
  // What can change is reachable from the installed names alone (seeded by loadReachableWorld).
  return transaction(ctx, { ...o, catalogs: true, seeds: [] }, async (w) =>
    resolve<Available, GenerationPackage>({
      available: w.available,
      installed: w.current?.packages ?? [],
      upgrade: o.names && o.names.length > 0 ? o.names : 'all',
    }),
  );
}

/**
 * Installs exactly a given set (a verified release, issue 15): every listed package at its listed
 * bytes, everything else removed; nothing newer, nothing extra. The generation records `release`.
 */
export async function installExactSet(
  ctx: PkgContext,
  o: MutationOptions & { available: Available[]; release: GenerationRelease },
): Promise<TransactionResult> {
  return transaction(ctx, { ...o, catalogs: false }, async (w) => {
    const installed = w.current?.packages ?? [];
    const steps: PkgPlan['steps'] = [];
    const final: PkgPlan['final'] = [];
    const label = `release ${o.release.id} v${o.release.version}`;
    for (const i of installed) {
      if (!o.available.some((a) => a.name === i.name))
        steps.push({ action: 'remove', name: i.name, from: i.version, installed: i, reason: `not in ${label}` });
    }
    for (const c of [...o.available].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const i = installed.find((p) => p.name === c.name);
      const base = { name: c.name, version: c.version, depends: c.depends, provides: c.provides, conflicts: c.conflicts, explicit: true };
      if (i && i.version === c.version && i.sha256 === c.sha256) {
        steps.push({ action: 'keep', name: c.name, from: i.version, to: i.version, installed: i, reason: `in ${label}` });
        final.push({ ...base, installed: i });
        continue;
      }
      const action = !i ? 'install' : semver.compare(c.version, i.version) < 0 ? 'downgrade' : 'upgrade';
      steps.push({
        action,
        name: c.name,
        ...(i && { from: i.version, installed: i }),
        to: c.version,
        candidate: c,
        reason: `pinned by ${label}`,
      });
      final.push({ ...base, candidate: c });
    }
    return { steps, final, world: final.map((f) => f.name), searchSteps: 0 };
  });
}

/**
 * `pkg fetch NAME...`: what an install of the names would download (the same resolution against
 * the accepted catalogs), without changing anything.
 */
export async function resolveForFetch(ctx: PkgContext, specs: string[]): Promise<Available[]> {
  await requireRepositories(ctx);
  const w = await loadWorld(ctx, { catalogs: true, warn: (m) => ctx.reporter.warn(m) });
  const install = specs.map((s) => parseRequirement(s));
  refuseForeignOnly(install, w.available, w.foreign, ctx.client);
  const plan = resolve<Available, GenerationPackage>({ available: w.available, installed: w.current?.packages ?? [], install });
  return plan.final.flatMap((p) => (p.candidate ? [p.candidate] : []));
}
