import { UsageProblem, type FlagSpec, type ArgSpec, type Parsed } from './args.js';
import type * as Api from '../index.js';
import { formatBytes, formatTable } from '../../edge/index.js';

/** What a command gets: the library (loaded lazily), a context, and how its plan is shown and agreed to. */
export interface RunEnv<P = unknown> {
  api: typeof Api;
  ctx: Api.PkgContext;
  /** --dry-run, or showing the plan (--yes), or asking about it (a terminal; without one, E_CONFIRM). */
  gate: Api.PlanGate<P>;
}

export type Print = (line: string) => void;

export interface CommandDef<R = unknown, P = unknown> {
  words: string[];
  args: ArgSpec[];
  flags: FlagSpec[];
  summary: string;
  description: string;
  examples: string[];
  /** Only reads the root: a root that does not exist is worth a warning (a mistyped --root reads as empty). */
  reads?: boolean;
  /** Present for commands that change the root after showing a plan: renders it. They need --yes (or a terminal to ask). */
  plan?: (plan: P, print: Print) => void;
  run(env: RunEnv<P>, p: Parsed): Promise<R>;
  render(result: R, print: Print): void;
  /** A result that is still a failure (doctor finding problems): printed, then this error decides the exit code. */
  failure?(result: R): { code: 'E_STORE' | 'E_HEALTH_CHECK'; message: string; hint: string } | undefined;
}

/** Checks each definition against its own result and plan types before it joins the untyped command table. */
function def<R, P = unknown>(c: CommandDef<R, P>): CommandDef {
  return c as unknown as CommandDef;
}

const dryRun: FlagSpec = { name: 'dry-run', short: 'n', type: 'boolean', summary: 'Show the plan and change nothing.' };
const noHealthCheck: FlagSpec = {
  name: 'no-health-check',
  type: 'boolean',
  summary: 'Do not run the health checks after the switch (the generation records that they were skipped).',
};
const releaseFlag: FlagSpec = {
  name: 'release',
  type: 'string',
  value: 'FILE|URL',
  summary: 'Install exactly the package set of this signed release (a file, or an http(s):// or file:// URL).',
};
/** `--release` takes the place of package names: both together is a usage error. */
function withRelease<R>(p: Parsed, run: (release: string) => Promise<R>): Promise<R> | undefined {
  const release = p.flags['release'];
  if (typeof release !== 'string') return undefined;
  if (p.args.length > 0)
    throw new UsageProblem('give either package names or --release, not both', 'a release is an exact set: it names every package itself');
  return run(release);
}
const healthCheck = (p: Parsed): { healthCheck?: false } => (p.flags['no-health-check'] === true ? { healthCheck: false } : {});

const systemFlags: FlagSpec[] = [
  { name: 'esp', type: 'string', value: 'DIR', summary: 'The mounted EFI system partition (default /boot/efi).' },
  { name: 'slot', type: 'string', value: 'a|b', summary: 'The running slot (default: swpkg.slot= on the kernel command line).' },
];
function systemTarget(api: typeof Api, p: Parsed): Api.SystemTarget {
  const esp = p.flags['esp'];
  const slot = p.flags['slot'];
  return { ...(typeof esp === 'string' ? { esp } : {}), ...(typeof slot === 'string' ? { slot: api.parseSlotName(slot) } : {}) };
}

/** A check's output is whatever the program wrote: control characters would drive the terminal, so they show as '?'. */
function tailLines(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .slice(-10)
    .filter(Boolean)
    .map((l) => `  | ${l.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?')}`);
}

function renderHealth(h: Api.HealthOutcome | undefined, print: Print): void {
  if (!h) return;
  if (h.state === 'skipped') return print('Health checks skipped (--no-health-check).');
  const failed = h.checks.filter((c) => !c.ok);
  print(
    `Health checks: ${h.checks.length - failed.length} of ${h.checks.length} passed${failed.length ? ` (advisory failed: ${failed.map((c) => c.name).join(', ')})` : ''}.`,
  );
}

export function renderPlan(plan: Api.PlanView, print: Print): void {
  if (plan.empty) {
    print('Nothing to do.');
    return;
  }
  print(`Plan (generation ${plan.fromGeneration ?? 'none'} -> next):`);
  if (plan.release)
    print(`  release ${plan.release.id} v${plan.release.version} from ${plan.release.repo}, manifest SHA-256 ${plan.release.digest}`);
  const rows = plan.lines.map((l) => {
    const version = l.action === 'install' ? l.to! : l.action === 'remove' ? l.from! : l.from === l.to ? l.to! : `${l.from} -> ${l.to}`;
    return [
      l.action,
      `${l.name} ${version}`,
      l.repo === undefined ? '' : l.repo === null ? '[file]' : `[${l.repo}]`,
      l.download ? formatBytes(l.download) : '',
      `(${l.reason})`,
    ];
  });
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    print(
      `  ${r
        .map((c, i) => (i === 3 ? c.padStart(widths[i]!) : i < 4 ? c.padEnd(widths[i]!) : c))
        .join('  ')
        .trimEnd()}`,
    );
  const delta = plan.installedSizeDelta;
  print(
    `${plan.downloadCount} to download (${formatBytes(plan.downloadBytes)}); installed size ${delta >= 0 ? '+' : ''}${formatBytes(delta)}`,
  );
}

function renderGcPlan(r: Api.GcResult, print: Print): void {
  const gens = r.removedGenerations.length ? r.removedGenerations.join(', ') : 'none';
  print(`Plan: delete generations ${gens} (keeping ${r.keptGenerations.join(', ') || 'none'}),`);
  print(
    `  ${r.removedStoreEntries.length} store entr${r.removedStoreEntries.length === 1 ? 'y' : 'ies'} and ${r.removedCacheFiles.length} cached file(s); frees ${formatBytes(r.freedBytes)}.`,
  );
  for (const e of r.removedStoreEntries) print(`  store/${e}`);
}

function renderTransaction(r: Api.TransactionResult, print: Print): void {
  if (r.declined) {
    print('Nothing was changed.');
    return;
  }
  if (r.dryRun) {
    renderPlan(r.plan, print);
    print('Dry run: nothing was changed.');
    return;
  }
  if (r.plan.empty) {
    print('Nothing to do.');
    return;
  }
  const resumed = r.downloads.filter((d) => d.resumedFrom > 0);
  for (const d of resumed) print(`resumed ${d.name} ${d.version} from byte ${d.resumedFrom}`);
  print(
    `Generation ${r.generation} is now current${r.previousGeneration !== null ? ` (was ${r.previousGeneration}; \`pkg rollback\` returns to it)` : ''}.`,
  );
  renderHealth(r.health, print);
}

function table(rows: string[][], print: Print): void {
  for (const line of formatTable(rows)) print(line);
}

function flagString(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

function flagStrings(p: Parsed, name: string): string[] {
  const v = p.flags[name];
  return Array.isArray(v) ? v : [];
}

function repoAddLike(words: string[], replace: boolean): CommandDef {
  return def<Api.RepoInfo>({
    words,
    args: [
      { name: 'NAME', required: true },
      { name: 'URL', required: true },
    ],
    flags: [
      { name: 'key', type: 'string', value: 'FILE', summary: 'Pin this root document (repo-root.pub, obtained over a channel you trust).' },
      {
        name: 'fingerprint',
        type: 'string',
        value: 'HEX',
        summary: 'Pin the root whose SHA-256 fingerprint is HEX (fetched from URL, then checked).',
      },
      {
        name: 'mirror',
        type: 'strings',
        value: 'URL',
        summary: 'Another base URL serving the same files; tried in order when one fails. Repeatable.',
      },
    ],
    summary: replace ? 'Change a repository (URL, mirrors, or its pinned root).' : 'Add a repository and pin its root of trust.',
    description: replace
      ? 'Replaces the URL and mirrors of repository NAME (adding it if missing). With --key or --fingerprint the pinned root is replaced too and the accepted catalog is forgotten.'
      : 'Adds repository NAME served at URL. Trust is never implicit: give the root document (--key) or its fingerprint (--fingerprint). Everything pkg later fetches from URL or a mirror is verified against this root, following signed root rotations. A NAME the image stages is overridden, with a warning; without --key or --fingerprint the override keeps the staged trust.',
    examples: replace
      ? ['pkg repo set main http://10.0.2.2:8080/ --mirror http://10.0.2.2:8081/']
      : [
          'pkg repo add main http://10.0.2.2:8080/ --fingerprint 3f1c...e9',
          'pkg repo add main http://10.0.2.2:8080/ --key ./repo-root.pub --mirror http://10.0.2.2:8081/',
        ],
    async run({ api, ctx }, p) {
      const key = flagString(p, 'key');
      const fingerprint = flagString(p, 'fingerprint');
      return api.addRepository(ctx, {
        name: p.args[0]!,
        url: p.args[1]!,
        ...(key !== undefined ? { keyFile: key } : {}),
        ...(fingerprint !== undefined ? { fingerprint } : {}),
        mirrors: flagStrings(p, 'mirror'),
        replace,
      });
    },
    render(r, print) {
      print(
        `${r.name}  ${r.url}  root v${r.rootVersion ?? '?'} (fingerprint ${r.pinnedFingerprint})${r.mirrors.length ? `  mirrors: ${r.mirrors.join(' ')}` : ''}`,
      );
      if (r.overridesStaged !== undefined) print(`This overrides the repository the image stages in ${r.overridesStaged}.`);
      print('Run `pkg update` to fetch its catalog.');
    },
  });
}

export const COMMANDS: CommandDef[] = [
  repoAddLike(['repo', 'add'], false),
  repoAddLike(['repo', 'set'], true),
  def<Api.RepoInfo[]>({
    words: ['repo', 'list'],
    reads: true,
    args: [],
    flags: [],
    summary: 'List repositories, their pinned roots and accepted catalogs.',
    description:
      'Shows each repository in priority order with its URL, mirrors, the root version it trusts now and the catalog version last accepted. Repositories the image stages (read-only files in $PKG_STAGED_REPOS_DIR; /usr/lib/pkg/repos.d in the guest) come after those added with `pkg repo add`, and are marked "staged" (or "overridden" when `pkg repo add|set` replaced one), and each server that failed during the last successful update (--json: `servers`, each with its last error).',
    examples: ['pkg repo list', 'pkg repo list --json'],
    run: ({ api, ctx }) => api.listRepositories(ctx),
    render(rs, print) {
      if (rs.length === 0) return print('No repositories. Add one with `pkg repo add NAME URL --fingerprint HEX`.');
      table(
        [
          ['NAME', 'URL', 'ROOT', 'CATALOG', 'PACKAGES', 'EXPIRES', 'SOURCE'],
          ...rs.map((r) => [
            r.name,
            r.url + (r.mirrors.length ? ` (+${r.mirrors.length} mirror${r.mirrors.length > 1 ? 's' : ''})` : ''),
            r.rootVersion === undefined ? '-' : `v${r.rootVersion}`,
            r.catalogVersion === undefined ? '-' : `v${r.catalogVersion}`,
            String(r.packages ?? '-'),
            r.catalogExpires ?? '-',
            r.staged !== undefined ? 'staged' : r.overridesStaged !== undefined ? 'overridden' : 'added',
          ]),
        ],
        print,
      );
      for (const r of rs)
        for (const m of r.servers ?? [])
          if (!m.ok && m.lastError) print(`${r.name}: ${m.url} failed at ${m.checkedAt}: ${m.lastError.code} ${m.lastError.message}`);
    },
  }),
  def<{ removed: string; stagedAgain?: string }>({
    words: ['repo', 'remove'],
    args: [{ name: 'NAME', required: true }],
    flags: [],
    summary: 'Forget a repository, its pinned root and its catalog.',
    description:
      'Installed packages from the repository stay installed; they are no longer upgraded from it. A repository the image stages cannot be removed (override it with `pkg repo set`); removing an override returns to the staged repository, from its staged root.',
    examples: ['pkg repo remove main'],
    run: ({ api, ctx }, p) => api.removeRepository(ctx, p.args[0]!),
    render: (r, print) =>
      print(
        `Removed repository ${r.removed}; installed packages stay installed.${r.stagedAgain !== undefined ? ` The image's staged ${r.removed} (${r.stagedAgain}) is used again; run \`pkg update\`.` : ''}`,
      ),
  }),
  def<Api.TrustedKey>({
    words: ['key', 'add'],
    args: [{ name: 'FILE', required: true }],
    flags: [],
    summary: 'Trust a public key for installing local .swpkg files.',
    description:
      'A local `pkg install ./FILE.swpkg` needs a signature by a catalog key of a configured repository or by a key added here (a `.pub` file from `swpkg key generate`).',
    examples: ['pkg key add ./builder.pub'],
    run: ({ api, ctx }, p) => api.addTrustedKey(ctx, p.args[0]!),
    render: (k, print) => print(`Trusting key ${k.keyid} for local package installs.`),
  }),
  def<Api.TrustedKey[]>({
    words: ['key', 'list'],
    reads: true,
    args: [],
    flags: [],
    summary: 'List keys trusted for local package installs.',
    description: "Catalog keys of each repository's current root, and keys added with `pkg key add`.",
    examples: ['pkg key list'],
    run: ({ api, ctx }) => api.trustedKeys(ctx),
    render: (ks, print) =>
      ks.length
        ? table(
            ks.map((k) => [k.keyid, k.source]),
            print,
          )
        : print('No trusted keys.'),
  }),
  def<{ removed: string }>({
    words: ['key', 'remove'],
    args: [{ name: 'KEYID', required: true }],
    flags: [],
    summary: 'Stop trusting a key added with `pkg key add`.',
    description: 'Catalog keys of repositories cannot be removed here; remove the repository instead.',
    examples: ['pkg key remove 5d3a...c1'],
    run: ({ api, ctx }, p) => api.removeTrustedKey(ctx, p.args[0]!),
    render: (r, print) => print(`No longer trusting ${r.removed}.`),
  }),
  def<Api.UpdateResult>({
    words: ['update'],
    args: [{ name: 'REPO', variadic: true }],
    flags: [],
    summary: 'Fetch and verify the catalogs of all (or the named) repositories.',
    description:
      'For each repository: follows signed root rotations (roots/N+1.json until 404), fetches the catalog (size-capped, stall-guarded, mirror failover) and verifies it against the trusted root. Refuses bad or missing signatures, unknown keys, expired catalogs, versions older than the one accepted (rollback), same version with other bytes, incompatible catalogs and oversized ones; a refusal keeps the previously accepted catalog.',
    examples: ['pkg update', 'pkg update main --json'],
    run: ({ api, ctx }, p) => api.updateRepositories(ctx, { repos: p.args }),
    render(r, print) {
      for (const u of r.repos) {
        const what = u.changed
          ? u.previousVersion === undefined
            ? `catalog v${u.version} accepted`
            : `catalog v${u.previousVersion} -> v${u.version}`
          : `catalog v${u.version} is current`;
        print(
          `${u.repo}: ${what}, ${u.packages} packages, expires ${u.expires}${u.rotatedRoots.length ? `; root rotated to v${u.rootVersion}` : ''}`,
        );
      }
    },
  }),
  def<Api.FetchResult>({
    words: ['fetch'],
    args: [{ name: 'NAME[@RANGE]', variadic: true }],
    flags: [releaseFlag],
    summary: 'Download and verify packages (or a release) into the cache without installing.',
    description:
      'Resolves as `pkg install` would (or verifies the release), then downloads each file into the cache with the same size caps, stall rules, resume and SHA-256 checks; no generation changes. A later install of the same set takes every file from the cache and needs no network; with --release, the verified release is kept in the cache too, to install with `pkg install --release PATH`.',
    examples: ['pkg fetch lua curl', 'pkg fetch --release https://repo.example/releases/edge/3.json'],
    run: ({ api, ctx }, p) =>
      api.fetchPackages(ctx, {
        names: p.args,
        ...(typeof p.flags['release'] === 'string' && { release: p.flags['release'] }),
      }),
    render(r, print) {
      for (const f of r.packages) {
        const how = f.stored
          ? 'already in the store'
          : f.cached
            ? 'already in the cache'
            : f.resumedFrom > 0
              ? `resumed from byte ${f.resumedFrom}`
              : 'downloaded';
        print(`${f.name} ${f.version}: ${how}`);
      }
      if (r.release)
        print(`release ${r.release.id} v${r.release.version} verified; install it later with: pkg install --release ${r.release.saved}`);
    },
  }),
  def<Api.SearchHit[]>({
    words: ['search'],
    reads: true,
    args: [{ name: 'TERM', required: true }],
    flags: [],
    summary: 'Search package names and summaries in the accepted catalogs.',
    description:
      'Case-insensitive; shows the newest version of each match and whether it is installed. Reads only; never waits for a writer.',
    examples: ['pkg search lua', 'pkg search compress --json'],
    run: ({ api, ctx }, p) => api.searchPackages(ctx, p.args[0]!),
    render(hits, print) {
      if (hits.length === 0) return print('No matches.');
      table(
        hits.map((h) => [h.name, h.version, `[${h.repo}]`, h.installed ? `installed ${h.installed}` : '', h.summary]),
        print,
      );
    },
  }),
  def<Api.PackageInfo>({
    words: ['info'],
    reads: true,
    args: [{ name: 'NAME', required: true }],
    flags: [],
    summary: 'Show an installed or available package.',
    description: 'The installed version (store entry, files, dependencies) and every version the catalogs offer.',
    examples: ['pkg info lua'],
    run: ({ api, ctx }, p) => api.packageInfo(ctx, p.args[0]!),
    render(r, print) {
      const i = r.installed;
      const top = i ?? r.available[0]!;
      print(`${r.name}: ${top.summary}`);
      if (i) {
        print(`  installed: ${i.version} (${i.explicit ? 'explicit' : 'dependency'}, from ${i.repo ?? 'a local file'})`);
        print(`  license:   ${i.license}${i.homepage ? `, ${i.homepage}` : ''}`);
        print(`  store:     store/${i.store}  (${i.files} paths, ${formatBytes(i.installedSize)})`);
        const deps = Object.entries(i.depends);
        if (deps.length) print(`  depends:   ${deps.map(([n, v]) => `${n}@${v}`).join(', ')}`);
      }
      if (r.available.length) {
        print('  available:');
        for (const a of r.available)
          print(
            `    ${a.version}  [${a.repo}]  ${formatBytes(a.size)}  depends: ${
              Object.entries(a.depends)
                .map(([n, v]) => `${n}@${v}`)
                .join(', ') || '-'
            }`,
          );
      }
    },
  }),
  def<Api.ListedPackage[]>({
    words: ['list'],
    reads: true,
    args: [],
    flags: [
      { name: 'installed', type: 'boolean', summary: 'Installed packages (the default).' },
      { name: 'upgradable', type: 'boolean', summary: 'Installed packages with a newer version in a catalog.' },
      { name: 'available', type: 'boolean', summary: 'Everything the catalogs offer (newest version of each).' },
    ],
    summary: 'List installed, upgradable or available packages.',
    description: 'Reads the current generation and the accepted catalogs; never waits for a writer.',
    examples: ['pkg list', 'pkg list --upgradable', 'pkg list --available --json'],
    run({ api, ctx }, p) {
      const chosen = (['upgradable', 'available', 'installed'] as const).filter((f) => p.flags[f]);
      if (chosen.length > 1) throw new UsageProblem('give only one of --installed, --upgradable, --available');
      return api.listPackages(ctx, chosen[0] ?? 'installed');
    },
    render(ps, print) {
      if (ps.length === 0) return print('None.');
      table(
        ps.map((x) => [
          x.name,
          x.latest ? `${x.version} -> ${x.latest}` : x.version,
          x.repo === null ? '[file]' : `[${x.repo}]`,
          x.explicit === undefined ? '' : x.explicit ? 'explicit' : 'dependency',
          x.summary ?? '',
        ]),
        print,
      );
    },
  }),
  def<Api.PackageFiles>({
    words: ['files'],
    reads: true,
    args: [{ name: 'NAME', required: true }],
    flags: [],
    summary: 'List the paths an installed package provides.',
    description: 'Paths are relative to the active generation (`/pkg/current/` in the guest).',
    examples: ['pkg files lua'],
    run: ({ api, ctx }, p) => api.packageFiles(ctx, p.args[0]!),
    render(r, print) {
      for (const f of r.files) print(f.type === 'dir' ? `${f.path}/` : f.type === 'symlink' ? `${f.path} -> ${f.target}` : f.path);
    },
  }),
  def<Api.TransactionResult, Api.PlanView>({
    words: ['install'],
    args: [{ name: 'NAME[@RANGE]|FILE.swpkg', variadic: true }],
    flags: [
      dryRun,
      noHealthCheck,
      releaseFlag,
      {
        name: 'allow-untrusted',
        type: 'boolean',
        summary: 'Install local files whose signature no trusted key vouches for (says so loudly).',
      },
      {
        name: 'reinstall',
        type: 'boolean',
        summary: 'Fetch and extract installed NAMEs again at their version (repairs what `pkg doctor` reports).',
      },
    ],
    plan: renderPlan,
    summary: 'Install packages and what they depend on.',
    description:
      'Resolves the request against the accepted catalogs (explaining in words when it cannot), shows the plan, then downloads (resumable, size-capped, hashed while streaming), verifies every file before extraction, builds a new generation and switches `current` atomically. A local ./FILE.swpkg must be signed by a trusted key unless --allow-untrusted. --release installs exactly the set of a signed release (nothing newer, nothing extra; other packages are removed), verified against the release keys of a configured repository.',
    examples: [
      'pkg install lua --yes',
      'pkg install curl@^8 nginx --dry-run',
      'pkg install ./hello-1.0.0-x86_64.swpkg --yes',
      'pkg install lua --reinstall --yes',
      'pkg install --release /media/repo/releases/edge/3.json --yes',
    ],
    run: ({ api, ctx, gate }, p) =>
      withRelease(p, (release) => api.installRelease(ctx, { release, ...gate, ...healthCheck(p) })) ??
      api.installPackages(ctx, {
        specs: p.args,
        allowUntrusted: p.flags['allow-untrusted'] === true,
        reinstall: p.flags['reinstall'] === true,
        ...gate,
        ...healthCheck(p),
      }),
    render: renderTransaction,
  }),
  def<Api.TransactionResult, Api.PlanView>({
    words: ['remove'],
    args: [{ name: 'NAME', required: true, variadic: true }],
    flags: [dryRun, noHealthCheck, { name: 'cascade', type: 'boolean', summary: 'Also remove every installed package that needs NAME.' }],
    plan: renderPlan,
    summary: 'Remove packages (and dependencies nothing needs any more).',
    description:
      'Refuses while another installed package needs NAME and names it (E_NEEDED), unless --cascade. Builds a new generation without them; `pkg rollback` brings them back.',
    examples: ['pkg remove lua --yes', 'pkg remove zlib --cascade --dry-run'],
    run: ({ api, ctx, gate }, p) =>
      api.removePackages(ctx, {
        names: p.args,
        cascade: p.flags['cascade'] === true,
        ...gate,
        ...healthCheck(p),
      }),
    render: renderTransaction,
  }),
  def<Api.TransactionResult, Api.PlanView>({
    words: ['autoremove'],
    args: [],
    flags: [dryRun, noHealthCheck],
    plan: renderPlan,
    summary: 'Remove installed dependencies no explicitly installed package needs.',
    description: 'Orphan cleanup; `pkg remove` does the same for what it leaves behind.',
    examples: ['pkg autoremove --dry-run'],
    run: ({ api, ctx, gate }, p) => api.removeOrphans(ctx, { ...gate, ...healthCheck(p) }),
    render: renderTransaction,
  }),
  def<Api.TransactionResult, Api.PlanView>({
    words: ['upgrade'],
    args: [{ name: 'NAME', variadic: true }],
    flags: [dryRun, noHealthCheck, releaseFlag],
    plan: renderPlan,
    summary: 'Upgrade installed packages (all, or the named ones) to the newest fitting versions.',
    description:
      'Run `pkg update` first to see new versions. Same steps as install: plan, download, verify, new generation, atomic switch. Then the health checks of every package added or changed, and the system-wide ones, run; a failed required check switches back to the previous generation, keeps the new one for inspection and exits 8 (E_HEALTH_CHECK).',
    examples: [
      'pkg upgrade --dry-run',
      'pkg upgrade lua --yes',
      'pkg upgrade --release https://repo.example/releases/edge/4.json --dry-run',
    ],
    run: ({ api, ctx, gate }, p) =>
      withRelease(p, (release) => api.installRelease(ctx, { release, ...gate, ...healthCheck(p) })) ??
      api.upgradePackages(ctx, { names: p.args, ...gate, ...healthCheck(p) }),
    render: renderTransaction,
  }),
  def<Api.RollbackResult, Api.RollbackResult>({
    words: ['rollback'],
    args: [],
    flags: [
      dryRun,
      { name: 'to', type: 'number', value: 'N', summary: 'Generation to switch to (default: the newest older than current).' },
      noHealthCheck,
    ],
    plan: (r, print) => print(`Plan: switch current from generation ${r.from ?? 'none'} to generation ${r.to}.`),
    summary: 'Switch back to an older generation.',
    description:
      'Only `current` changes, in one atomic rename; the generations themselves stay, so you can switch forward again with --to. Like every change it shows what it will do and needs --yes without a terminal.',
    examples: ['pkg rollback --dry-run', 'pkg rollback --yes', 'pkg rollback --to 3 --yes'],
    run: ({ api, ctx, gate }, p) =>
      api.rollback(ctx, { ...(typeof p.flags['to'] === 'number' ? { to: p.flags['to'] } : {}), ...gate, ...healthCheck(p) }),
    render(r, print) {
      print(
        r.declined
          ? 'Nothing was changed.'
          : r.dryRun
            ? `Dry run: generation ${r.to} would become current${r.from !== null ? ` (now ${r.from})` : ''}; nothing was changed.`
            : r.changed
              ? `Generation ${r.to} is now current${r.from !== null ? ` (was ${r.from})` : ''}.`
              : `Generation ${r.to} is already current.`,
      );
      renderHealth(r.health, print);
    },
  }),
  def<Api.GenerationSummary[]>({
    words: ['generations'],
    reads: true,
    args: [],
    flags: [],
    summary: 'List generations.',
    description:
      'Each generation records its time, the command that made it and the catalog versions it came from, and what its health checks found: passed, failed (the check, its exit status and output tail, and where `current` went back to), skipped (--no-health-check) or interrupted (undone by the next run or at boot).',
    examples: ['pkg generations', 'pkg generations --json'],
    run: ({ api, ctx }) => api.listGenerations(ctx),
    render(gs, print) {
      if (gs.length === 0) return print('No generations yet.');
      table(
        [
          ['', 'GEN', 'TIME', 'PACKAGES', 'HEALTH', 'COMMAND'],
          ...gs.map((g) => [
            g.current ? '*' : '',
            String(g.number),
            g.damaged ? '(damaged)' : g.time,
            String(g.packages),
            g.health?.state ?? '-',
            g.damaged ?? g.command,
          ]),
        ],
        print,
      );
      for (const g of gs) {
        const f = g.health?.failed;
        if (!f) continue;
        print(
          `generation ${g.number}: check ${f.name} failed (${f.reason}${f.exitStatus !== null ? `, exit status ${f.exitStatus}` : ''}${f.signal ? `, ${f.signal}` : ''})${g.health?.reverted ? `; current went back to ${g.health.reverted.to ?? 'nothing'}` : ''}`,
        );
        for (const line of tailLines(f.outputTail)) print(line);
      }
      for (const g of gs) {
        const b = g.bootFallback;
        if (b && b.from === g.number)
          print(`generation ${g.number}: left at boot ${b.time} (${b.problems[0] ?? 'incomplete'}); fell back to ${b.to ?? 'no packages'}`);
      }
    },
  }),
  def<Api.DoctorReport>({
    words: ['doctor'],
    reads: true,
    args: [],
    flags: [],
    summary: 'Check the store: re-hash installed files, check links, find leftovers.',
    description:
      'Exits 0 when healthy. Problems (exit 7, E_STORE): a dangling `current`, files that differ from their manifest (drift), wrong or missing generation links, generations missing store entries. Leftovers of interrupted runs are listed but are not problems: the next writer removes them.',
    examples: ['pkg doctor', 'pkg doctor --json'],
    run: ({ api, ctx }) => api.doctor(ctx),
    failure: (r) =>
      r.healthy
        ? undefined
        : {
            code: 'E_STORE',
            message: `pkg doctor found ${r.problems.length} problem(s) under ${r.root}`,
            hint: r.problems.some((p) => p.kind === 'dangling-current')
              ? 'point current at a complete generation: `pkg rollback --to N` (see `pkg generations`)'
              : 'reinstall the affected packages (pkg install NAME --reinstall), or `pkg rollback` to a generation whose store entries are intact',
          },
    render(r, print) {
      print(`root ${r.root}: generation ${r.current ?? 'none'} current, ${r.packages} package(s), ${r.filesChecked} path(s) checked`);
      if (r.release) print(`  release ${r.release.id} v${r.release.version} from ${r.release.repo}, manifest SHA-256 ${r.release.digest}`);
      for (const p of r.problems) print(`  problem (${p.kind}) ${p.path}${p.package ? ` [${p.package}]` : ''}: ${p.detail}`);
      for (const l of r.leftovers) print(`  leftover ${l} (removed by the next writer)`);
      for (const u of r.unreferenced) print(`  unreferenced ${u} (\`pkg gc\` removes it)`);
      for (const d of r.partialDownloads) print(`  partial download ${d} (resumed by the next install)`);
      for (const a of r.abandoned) print(`  abandoned ${a}`);
      print(r.healthy ? 'healthy' : `${r.problems.length} problem(s)`);
    },
  }),
  def<Api.HealthReport>({
    words: ['health'],
    args: [],
    flags: [],
    summary: 'Run the health checks of the installed packages and the system folder now.',
    description:
      "Runs every check the current generation's packages declare and every executable in the system folder ($PKG_HEALTH_DIR; /etc/pkg/health.d in the guest), each with its timeout, no stdin and a bounded output tail. Changes nothing: exits 8 (E_HEALTH_CHECK) when a required check fails, 0 otherwise (advisory failures are listed).",
    examples: ['pkg health', 'pkg health --json'],
    run: ({ api, ctx }) => api.checkHealth(ctx),
    failure: (r) =>
      r.healthy
        ? undefined
        : {
            code: 'E_HEALTH_CHECK',
            message: `required health check(s) failed: ${r.checks
              .filter((c) => !c.ok && c.level === 'required')
              .map((c) => c.name)
              .join(', ')}`,
            hint: "see each check's output above (or in --json); `pkg rollback` returns to the previous generation",
          },
    render(r, print) {
      if (r.checks.length === 0) return print('No health checks are declared.');
      for (const c of r.checks) {
        print(
          `${c.ok ? 'PASS' : c.level === 'advisory' ? 'WARN' : 'FAIL'}  ${c.name}${c.ok ? '' : ` (${c.reason}${c.exitStatus !== null ? `, exit status ${c.exitStatus}` : ''})`}`,
        );
        if (!c.ok) for (const line of tailLines(c.outputTail)) print(line);
      }
      print(r.healthy ? 'healthy' : 'unhealthy');
    },
  }),
  def<Api.BootCheckResult>({
    words: ['boot-check'],
    args: [],
    flags: [],
    summary: 'At boot: make sure `current` is a complete generation, else fall back.',
    description:
      "Run by the guest's init before anything uses /pkg/current. Checks the current generation (its record, every store entry it links to, its tree; no re-hashing) and, if it is incomplete, switches to the newest complete generation; with none complete it removes `current` and the guest boots with no packages. Prints why on the console and records it (`pkg generations --json`, bootFallback). Also undoes a switch whose health checks were interrupted.",
    examples: ['pkg boot-check --root /pkg --lock-timeout 5'],
    run: ({ api, ctx }) => api.bootCheck(ctx),
    render(r, print) {
      const why = (r.fallback?.problems ?? []).slice(0, 3).join('; ');
      if (r.outcome === 'fresh') print('pkg boot-check: nothing installed yet');
      else if (r.outcome === 'ok') print(`pkg boot-check: generation ${r.current} is complete`);
      else if (r.outcome === 'fallback')
        print(
          `pkg boot-check: generation ${r.fallback?.from ?? '?'} is incomplete (${why}); fell back to generation ${r.current}, the newest complete one`,
        );
      else print(`pkg boot-check: no complete generation (${why}); booting with no packages`);
    },
  }),
  def<Api.GcResult, Api.GcResult>({
    words: ['gc'],
    args: [],
    flags: [
      dryRun,
      {
        name: 'keep',
        type: 'number',
        value: 'N',
        summary: 'Generations to keep besides the current one (default 5; 0 keeps only the current one).',
      },
    ],
    plan: renderGcPlan,
    summary: 'Delete old generations and store entries nothing references.',
    description:
      'Keeps the current generation and the newest N others; then deletes store entries no kept generation uses, finished downloads, and partial downloads older than a week. Deleted generations can no longer be rolled back to, so it shows the list first and needs --yes without a terminal.',
    examples: ['pkg gc --dry-run', 'pkg gc --keep 2 --yes'],
    run: ({ api, ctx, gate }, p) =>
      api.collectGarbage(ctx, { ...(typeof p.flags['keep'] === 'number' ? { keep: p.flags['keep'] } : {}), ...gate }),
    render(r, print) {
      if (r.declined) return print('Nothing was changed.');
      if (r.dryRun) {
        renderGcPlan(r, print);
        return print('Dry run: nothing was changed.');
      }
      print(
        `Removed ${r.removedGenerations.length} generation(s), ${r.removedStoreEntries.length} store entr${r.removedStoreEntries.length === 1 ? 'y' : 'ies'}, ${r.removedCacheFiles.length} cached file(s); freed ${formatBytes(r.freedBytes)}.`,
      );
    },
  }),
  def<Api.SystemStatusReport>({
    words: ['system', 'status'],
    reads: true,
    args: [],
    flags: systemFlags,
    summary: 'Show the A/B system slots: versions, which runs, which boots next, tries left, the last failure.',
    description:
      'Reads the loader entries on the EFI system partition (--esp, default /boot/efi). The running slot comes from swpkg.slot= on the kernel command line unless --slot names it. A slot is empty, good, trying (N tries left), bad (its tries ran out, so the loader fell back from it) or set aside (pkg system rollback moved off it).',
    examples: ['pkg system status', 'pkg system status --json', 'pkg system status --esp /mnt/esp --slot a'],
    run: ({ api, ctx }, p) => api.systemStatus(ctx, systemTarget(api, p)),
    render(r, print) {
      for (const s of r.slots) {
        const state =
          s.state === 'trying'
            ? `trying, ${s.triesLeft} tries left`
            : s.state === 'set-aside'
              ? 'set aside by pkg system rollback'
              : s.state;
        print(`slot ${s.slot.toUpperCase()}${s.active ? ' (running)' : ''}: ${s.version ? `version ${s.version}, ` : ''}${state}`);
      }
      print(`next boot: ${r.nextBoot ? `slot ${r.nextBoot.toUpperCase()}` : 'no bootable slot'}`);
      if (r.lastFailure) {
        print(
          `last failure: slot ${r.lastFailure.slot.toUpperCase()}${r.lastFailure.version ? ` (version ${r.lastFailure.version})` : ''} used up its tries; the loader falls back from it`,
        );
      }
    },
  }),
  def<Api.SystemUpdatePlan, Api.SystemUpdatePlan>({
    words: ['system', 'update'],
    args: [],
    flags: [
      dryRun,
      ...systemFlags,
      { name: 'repo', type: 'string', value: 'NAME', summary: 'The repository that publishes the system (default: the only one).' },
      { name: 'disk', type: 'string', value: 'FILE', summary: 'The system disk holding the slot partitions (default /dev/vda).' },
      { name: 'tries', type: 'number', value: 'N', summary: 'Boot tries the new slot gets before the loader falls back (default 3).' },
    ],
    plan: (r, print) =>
      print(
        `Plan: write system release ${r.version} from ${r.repo} (${formatBytes(r.bytes)}) into slot ${r.to.toUpperCase()}; the next boot tries it (${r.entry}); slot ${r.from.toUpperCase()} stays as it is.`,
      ),
    summary: 'Stage the newest signed system release into the inactive slot; it boots next, with bounded tries.',
    description:
      "Fetches system/ARCH.json from the repository, verifies it with the root `pkg update` accepted (release keys, expiry, a version never lower than the last staged, this machine's arch), downloads the kernel, initramfs and base image checking each size and SHA-256, and only then writes the inactive slot and its loader entry. The running slot is never written. Reboot to try the new slot; `pkg system mark-good` after a healthy boot keeps it; if its tries run out the loader boots the old slot by itself.",
    examples: ['pkg update && pkg system update --dry-run', 'pkg system update --yes', 'pkg system update --tries 2 --yes'],
    run: ({ api, ctx, gate }, p) =>
      api.systemUpdate(ctx, {
        ...systemTarget(api, p),
        ...(typeof p.flags['repo'] === 'string' ? { repo: p.flags['repo'] } : {}),
        ...(typeof p.flags['disk'] === 'string' ? { disk: p.flags['disk'] } : {}),
        ...(typeof p.flags['tries'] === 'number' ? { tries: p.flags['tries'] } : {}),
        ...gate,
      }),
    render(r, print) {
      print(
        r.declined
          ? 'Nothing was changed.'
          : r.dryRun
            ? `Dry run: system release ${r.version} would go into slot ${r.to.toUpperCase()}; nothing was changed.`
            : `System release ${r.version} is in slot ${r.to.toUpperCase()} and boots next (${r.entry}). Reboot to try it.`,
      );
    },
  }),
  def<{ slot: string; changed: boolean; entry: string }>({
    words: ['system', 'mark-good'],
    args: [],
    flags: systemFlags,
    summary: 'Mark the running slot good: the loader stops counting its boot tries.',
    description:
      "Run at boot once the health checks passed (what systemd-bless-boot does): renames the running slot's loader entry from slotX+LEFT-DONE.conf to slotX.conf in one rename. A slot already good is left as it is.",
    examples: ['pkg system mark-good', 'pkg system mark-good --json'],
    run: ({ api, ctx }, p) => api.systemMarkGood(ctx, systemTarget(api, p)),
    render(r, print) {
      print(r.changed ? `slot ${r.slot.toUpperCase()} is marked good (${r.entry}).` : `slot ${r.slot.toUpperCase()} was already good.`);
    },
  }),
  def<Api.SystemRollbackResult, Api.SystemRollbackResult>({
    words: ['system', 'rollback'],
    args: [],
    flags: [dryRun, ...systemFlags],
    plan: (r, print) => print(`Plan: the next boot starts slot ${r.to.toUpperCase()} instead of slot ${r.from.toUpperCase()}.`),
    summary: 'Boot the other slot next time.',
    description:
      "The running slot's loader entry is marked as having no tries left, which the loader sorts after every other entry; nothing of either slot's files is written. The other slot must hold a system not marked bad. Shown and confirmed like every change (--yes without a terminal).",
    examples: ['pkg system rollback --dry-run', 'pkg system rollback --yes'],
    run: ({ api, ctx, gate }, p) => api.systemRollback(ctx, { ...systemTarget(api, p), ...gate }),
    render(r, print) {
      print(
        r.declined
          ? 'Nothing was changed.'
          : r.dryRun
            ? `Dry run: the next boot would start slot ${r.to.toUpperCase()}; nothing was changed.`
            : r.changed
              ? `The next boot starts slot ${r.to.toUpperCase()} (reboot to switch).`
              : `The next boot already starts slot ${r.to.toUpperCase()}.`,
      );
    },
  }),
];
