import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GUEST_ARCH_PROFILES, createStoreImage, parseGuestArch, verifyArtifacts, type ArtifactManifest } from '../../images/index.js';
import type { GuestArch } from '../../kernel/index.js';
import type { Reporter } from '../../catalog/index.js';
import { settleArtifactSets, snapshotArtifactSet, type DeploymentRecord } from './artifact-sets.js';
import {
  createEvidenceDir,
  finishEvidence,
  forwardFacts,
  gitFacts,
  hostFacts,
  qemuFacts,
  writeJson,
  writeScenarioResult,
  type DeploymentFacts,
  type NotRun,
  type RunResult,
  type ScenarioResult,
} from './evidence.js';
import { DNS_REPO_HOST, GUEST_PORTS, ROOT_NAMES, SEED_PORTS_CI, makeFixture, type Fixture, type RootName } from './fixture.js';
import { GuestSession, ScenarioTranscript } from './guest-session.js';
import { startServe, type ServedRoot } from './host-servers.js';
import { runMainJob } from './main-job.js';
import { buildImagesWithCli } from './image-build.js';
import { SCENARIOS, type Scenario, type ScenarioContext } from './scenarios.js';
import { errorText, hostRun, repoRoot, seconds, utcStamp } from './util.js';

const USAGE = `usage: node_modules/.bin/node test/acceptance/run.ts [--arch x86_64|aarch64] [--ci | --all | --scenario NAME...] [options]

Boots the real guest image under QEMU against repositories served by \`swpkg serve\`
on 127.0.0.1 and runs the acceptance scenarios over the serial console.

  --arch ARCH        the guest: x86_64 (default) or aarch64 (qemu-system-aarch64 -M virt, TCG on an
                     x86_64 host); seed ports and test packages are made for it
  --ci               the CI subset (default): every scenario with seed ports ${SEED_PORTS_CI.join(', ')} and 2 power cuts
  --all              every scenario with all 13 seed ports and 4 power cuts
  --scenario NAME    run only NAME (repeatable); its prerequisites are set up inside it
  --evidence DIR     where run folders go (default: evidence/); DIR/<UTC time>/ and DIR/latest
  --artifacts DIR    the guest artifact set to build and boot (default: build/images, aarch64: build/images-aarch64)
  --ports A,B,...    seed ports to build and install (overrides the mode's set)
  --pkg-bundle FILE  boot with this ready pkg bundle instead of bundling userland/cli/main.ts
                     (recorded as the pkg client's source in manifest.txt)
  --memory MIB       guest memory (default 1024)
  --timeout-min N    hard limit for the whole run (default 45 with --ci, 180 with --all; twice that for aarch64)
  --list             list the scenarios and exit
  --main-job ...     the README's main job (scripts/main-job.sh runs this; see main-job.ts)

Scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}
Exit status: 0 when every scenario that ran passed, 1 otherwise, 2 for bad arguments.`;

interface Options {
  arch: GuestArch;
  mode: 'ci' | 'all' | 'selected';
  scenarios: string[];
  evidence: string;
  artifacts: string;
  ports: string[] | null;
  pkgBundle: string | null;
  memoryMiB: number;
  timeoutMin: number | null;
}

type Parsed = { kind: 'run'; o: Options } | { kind: 'help' } | { kind: 'list' } | { kind: 'error'; message: string };

function parseArgs(argv: string[]): Parsed {
  const o: Options = {
    arch: 'x86_64',
    mode: 'ci',
    scenarios: [],
    evidence: '',
    artifacts: '',
    ports: null,
    pkgBundle: null,
    memoryMiB: 1024,
    timeoutMin: null,
  };
  let sawMode = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === '--help' || a === '-h') return { kind: 'help' };
      else if (a === '--list') return { kind: 'list' };
      else if (a === '--ci') {
        o.mode = 'ci';
        sawMode = true;
      } else if (a === '--all') {
        o.mode = 'all';
        sawMode = true;
      } else if (a === '--scenario') {
        const n = val();
        if (!SCENARIOS.some((s) => s.name === n))
          return { kind: 'error', message: `unknown scenario ${n}; known: ${SCENARIOS.map((s) => s.name).join(', ')}` };
        o.scenarios.push(n);
      } else if (a === '--arch') o.arch = parseGuestArch(val());
      else if (a === '--evidence') o.evidence = val();
      else if (a === '--artifacts') o.artifacts = val();
      else if (a === '--ports')
        o.ports = val()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      else if (a === '--pkg-bundle') o.pkgBundle = resolve(val());
      else if (a === '--memory') o.memoryMiB = Number(val());
      else if (a === '--timeout-min') o.timeoutMin = Number(val());
      else return { kind: 'error', message: `unknown argument ${a}` };
    } catch (e) {
      return { kind: 'error', message: (e as Error).message };
    }
  }
  if (o.scenarios.length > 0 && !sawMode) o.mode = 'selected';
  if (!Number.isInteger(o.memoryMiB) || o.memoryMiB < 256) return { kind: 'error', message: '--memory needs at least 256' };
  return { kind: 'run', o };
}

/** Newest mtime of the .ts sources under `dirs` (the host CLIs are built from them). */
async function newestSource(root: string, dirs: string[]): Promise<number> {
  let newest = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, (await stat(p)).mtimeMs);
    }
  };
  for (const d of dirs) if (existsSync(join(root, d))) await walk(join(root, d));
  return newest;
}

/**
 * The host CLIs (`bin/swpkg serve`, `bin/pkg --version`) run `dist/`. When
 * a source is newer than the build, the build is refreshed with tsc (it
 * writes only under dist/); emitted output is used even when other parts of
 * the tree have type errors, as scripts/build-ports.sh does.
 */
async function ensureHostBuild(root: string, info: (l: string) => void): Promise<void> {
  const outs = ['dist/cli/swpkg/main.js', 'dist/userland/cli/main.js'].map((p) => join(root, p));
  const built = outs.every((p) => existsSync(p)) ? Math.min(...(await Promise.all(outs.map(async (p) => (await stat(p)).mtimeMs)))) : 0;
  const src = await newestSource(root, ['catalog', 'userland', 'cli', 'repo-server']);
  if (built >= src) return;
  info(
    built === 0
      ? 'host build: dist/ is missing; compiling (tsc -p tsconfig.build.json)'
      : 'host build: sources are newer than dist/; compiling (tsc -p tsconfig.build.json)',
  );
  const r = await hostRun(
    join(root, 'node_modules', '.bin', 'node'),
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      timeoutMs: 600_000,
    },
  );
  if (r.code !== 0)
    info(
      `host build: tsc reported errors (exit ${r.code}); using what it emitted. First lines:\n${r.stdout.split('\n').slice(0, 8).join('\n')}`,
    );
  if (!outs.every((p) => existsSync(p))) throw new Error('the host build produced no dist/cli/swpkg/main.js or dist/userland/cli/main.js');
}

function makeLogger(file: WriteStream): { info: (l: string) => void; reporter: Reporter } {
  const t0 = Date.now();
  const info = (line: string): void => {
    const stamp = `[${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} s]`;
    process.stdout.write(`${stamp} ${line}\n`);
    file.write(`${new Date().toISOString()} ${line}\n`);
  };
  const reporter: Reporter = {
    info: (m) => file.write(`${new Date().toISOString()} info ${m}\n`),
    warn: (m) => info(`warning: ${m}`),
    progress: () => undefined,
  };
  return { info, reporter };
}

export async function main(argv: string[], bundleFile: string): Promise<number> {
  try {
    if (argv[0] === '--main-job') return await runMainJob(argv.slice(1));
    const parsed = parseArgs(argv);
    if (parsed.kind === 'help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (parsed.kind === 'list') {
      for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(18)} ${s.ci ? 'ci ' : '   '} ${s.title}\n`);
      return 0;
    }
    if (parsed.kind === 'error') {
      process.stderr.write(`${parsed.message}\n\n${USAGE}\n`);
      return 2;
    }
    return await runSuite(parsed.o);
  } finally {
    await rm(bundleFile, { force: true });
  }
}

async function runSuite(o: Options): Promise<number> {
  const root = repoRoot();
  const started = new Date();
  // Read before anything runs: the record names the sources this run was started from, even if
  // someone commits while it runs.
  const git = await gitFacts(root);
  const base = resolve(o.evidence || join(root, 'evidence'));
  // aarch64 runs are marked in the folder name: both arches' runs share evidence/.
  const runDir = await createEvidenceDir(base, `${utcStamp(started)}${o.arch === 'x86_64' ? '' : `-${o.arch}`}`);
  const hostLog = createWriteStream(join(runDir, 'host.log'));
  const { info, reporter } = makeLogger(hostLog);
  const artifactsDir = resolve(o.artifacts || join(root, GUEST_ARCH_PROFILES[o.arch].imagesDir));
  const seedPorts = o.ports ?? (o.mode === 'all' ? await allPorts(root) : SEED_PORTS_CI);
  const selected = SCENARIOS.filter((s) => (o.scenarios.length > 0 ? o.scenarios.includes(s.name) : o.mode === 'all' || s.ci));
  const modeText =
    `--arch ${o.arch} ` +
    (o.mode === 'selected'
      ? `--scenario ${o.scenarios.join(' --scenario ')}`
      : `--${o.mode}${o.scenarios.length ? ` --scenario ${o.scenarios.join(' --scenario ')}` : ''}`);
  // TCG runs an aarch64 guest on an x86_64 host at a fraction of the speed.
  const limitMin = o.timeoutMin ?? (o.mode === 'all' ? 180 : 45) * (o.arch === 'x86_64' ? 1 : 2);
  info(`acceptance run ${runDir} (${modeText}; ${selected.length} scenario(s); hard limit ${limitMin} min)`);

  const timings: Record<string, unknown> = {};
  const results: ScenarioResult[] = [];
  const notRun: NotRun[] = SCENARIOS.filter((s) => !selected.includes(s)).map((s) => ({
    name: s.name,
    why:
      o.scenarios.length > 0
        ? `not selected (--scenario ${o.scenarios.join(', ')})`
        : `not in the ${o.mode === 'ci' ? '--ci subset' : 'selection'}`,
  }));
  let setupError: string | undefined;
  let manifest: ArtifactManifest | null = null;
  let deployment: DeploymentRecord | null = null;
  let fixture: Fixture | null = null;
  const servers: Partial<Record<RootName, ServedRoot>> = {};
  let session: GuestSession | null = null;
  const storeImage = join(runDir, 'store.img');
  const record: ScenarioContext['record'] = {};

  const cleanup = async (): Promise<void> => {
    if (session) await session.stop().catch(() => session?.kill());
    await Promise.all(Object.values(servers).map((s) => s.stop().catch(() => undefined)));
  };
  // The hard limit: whatever hangs, QEMU and the servers go and the run ends as failed.
  const hardLimit = setTimeout(() => {
    info(`HARD LIMIT of ${limitMin} min reached: killing the guest and the servers`);
    void (async () => {
      await session?.kill();
      await cleanup();
      process.exit(1);
    })();
  }, limitMin * 60_000);
  hardLimit.unref();
  const onSignal = (sig: string): void => {
    info(`${sig}: stopping`);
    void (async () => {
      await session?.kill();
      await cleanup();
      process.exit(130);
    })();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const stage = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    info(`== ${name}`);
    try {
      const r = await fn();
      timings[`stage:${name}`] = seconds(Date.now() - t0);
      info(`   ${name}: done in ${seconds(Date.now() - t0)} s`);
      return r;
    } catch (e) {
      timings[`stage:${name}`] = seconds(Date.now() - t0);
      throw new Error(`${name}: ${errorText(e)}`, { cause: e });
    }
  };

  let hostVersions = { pkgVersion: '', swpkgVersion: '', packageJsonVersion: '' };
  try {
    await stage('host tools', async () => {
      await ensureHostBuild(root, info);
      const pj = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
      const p = await hostRun(join(root, 'bin', 'pkg'), ['--version'], { timeoutMs: 60_000 });
      const s = await hostRun(join(root, 'bin', 'swpkg'), ['--version'], { timeoutMs: 60_000 });
      hostVersions = { pkgVersion: p.stdout.trim(), swpkgVersion: s.stdout.trim(), packageJsonVersion: pj.version };
      info(`   host: ${hostVersions.pkgVersion}; ${hostVersions.swpkgVersion}`);
    });
    manifest = await stage('guest images', async () => {
      const before = await snapshotArtifactSet(artifactsDir);
      await buildImagesWithCli(root, { arch: o.arch, outDir: artifactsDir, ...(o.pkgBundle ? { pkgBundle: o.pkgBundle } : {}) }, info);
      deployment = await settleArtifactSets(artifactsDir, before);
      return verifyArtifacts(artifactsDir);
    });
    await writeJson(join(runDir, 'artifacts.json'), manifest);
    fixture = await stage('repositories and packages', () =>
      makeFixture({ arch: o.arch, workDir: join(runDir, 'work'), seedPorts, reporter, info }),
    );
    // The payload folders were only the packer's input; the packages and web roots stay as evidence.
    await rm(join(runDir, 'work', 'payloads'), { recursive: true, force: true });
    const f = fixture;
    await stage('servers', async () => Object.assign(servers, await startServers(root, f, runDir, info)));
    const forwards = [
      ...ROOT_NAMES.map((n) => ({ guest: GUEST_PORTS[n], host: servers[n]!.port })),
      { guest: GUEST_PORTS.dns, host: servers.dnsRepo!.dns!.port },
    ];
    await stage('store disk', () => createStoreImage({ path: storeImage, sizeMiB: 2048 }));
    session = new GuestSession({
      arch: o.arch,
      artifactsDir,
      storeImage,
      serialLog: join(runDir, 'serial.log'),
      hostPorts: forwards,
      memoryMiB: o.memoryMiB,
      cpus: 1,
      bootTimeoutMs: 240_000,
      maxLifetimeMs: limitMin * 60_000,
      onInfo: info,
    });
    const s = session;
    const first = await stage('boot', () => s.boot('boot'));
    timings['bootMarker'] = {
      shellAfterMs: first.wallMs,
      guestUptimeAtMarkerSeconds: first.uptime,
      steps: first.steps,
      note: 'first boot of this run, TCG unless KVM works',
    };

    const ctx: ScenarioContext = {
      s,
      f,
      servers: servers as Record<RootName, ServedRoot>,
      manifest,
      host: hostVersions,
      timings,
      powerCuts: o.mode === 'all' ? 4 : 2,
      record,
      reporter,
      info,
    };
    for (const sc of selected) results.push(await runScenario(sc, ctx, runDir));
  } catch (e) {
    setupError = errorText(e);
    info(`SETUP FAILED: ${setupError}`);
    const done = new Set(results.map((r) => r.name));
    for (const sc of selected)
      if (!done.has(sc.name))
        results.push({ name: sc.name, ok: false, seconds: 0, why: `not reached: ${setupError}`, transcript: '', commands: 0 });
  } finally {
    clearTimeout(hardLimit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }

  const finished = new Date();
  if (session) timings['boots'] = session.boots;
  const result: RunResult = {
    format: 1,
    arch: o.arch,
    mode: modeText,
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: seconds(finished.getTime() - started.getTime()),
    ok: setupError === undefined && results.every((r) => r.ok),
    ...(setupError ? { setupError } : {}),
    scenarios: results,
    notRun,
    timings,
    evidence: runDir,
  };
  const facts: DeploymentFacts = {
    git,
    host: hostFacts(),
    qemu: qemuFacts(session, { nameserver: '10.0.2.2' }),
    artifactsDir,
    manifest,
    deployment,
    storeImage: `${storeImage} (2048 MiB sparse ext4, journalled; the newest 2 runs keep theirs)`,
    repositories: describeRepos(fixture, servers),
    seedPorts:
      fixture?.seed.map(
        (p) =>
          `${p.name.padEnd(16)} ${p.failed ? `FAILED ${p.failed}` : `${p.version} sha256 ${p.sha256} (${p.cached ? 'build cache' : 'built this run'})`}`,
      ) ?? [],
    forwards: forwardFacts(session),
    system: record.system,
  };
  const pruned = await finishEvidence(base, result, facts);
  if (pruned.length) info(`store images removed from older runs: ${pruned.join(', ')}`);
  hostLog.end();
  process.stdout.write(
    `\n${results.map((r) => `${r.ok ? 'PASS' : 'FAIL'} ${r.name.padEnd(18)} ${String(r.seconds).padStart(6)} s${r.why ? `  ${r.why}` : ''}`).join('\n')}\n`,
  );
  for (const n of notRun) process.stdout.write(`---- ${n.name.padEnd(18)}          not run: ${n.why}\n`);
  process.stdout.write(
    `\nevidence: ${runDir}\n  result.json, manifest.txt, serial.log, scenarios/, servers/ (evidence/latest points here)\n`,
  );
  return result.ok ? 0 : 1;
}

function describeRepos(f: Fixture | null, servers: Partial<Record<RootName, ServedRoot>>): string[] {
  if (!f) return ['(none: setup failed before the repositories were made)'];
  const last = f.publishes[f.publishes.length - 1];
  const out = [
    `main        http://10.0.2.2:${GUEST_PORTS.main}/ (${servers.main?.url ?? 'not served'}), catalog versions ${f.publishes.map((p) => p.catalogVersion).join(' -> ')}, root fingerprint ${last?.rootFingerprint ?? '?'}, ${last?.packages.length ?? 0} packages`,
  ];
  for (const p of last?.packages ?? []) out.push(`    ${p.path} sha256 ${p.sha256}`);
  out.push(
    `dnsrepo     http://${DNS_REPO_HOST}:${GUEST_PORTS.dnsRepo}/ (${servers.dnsRepo?.url ?? 'not served'}), catalog v${f.dnsPublish.catalogVersion}`,
  );
  for (const n of ROOT_NAMES.filter((x) => x !== 'main' && x !== 'dnsRepo'))
    out.push(`${n.padEnd(17)} http://10.0.2.2:${GUEST_PORTS[n]}/ (${servers[n]?.url ?? 'not served'})`);
  return out;
}

async function allPorts(root: string): Promise<string[]> {
  const c = JSON.parse(await readFile(join(root, 'ports', 'catalog.json'), 'utf8')) as { ports: Array<{ name: string }> };
  return c.ports.map((p) => p.name);
}

/** Every repository root served by `swpkg serve` on 127.0.0.1, the DNS test zone beside dnsRepo. */
async function startServers(root: string, f: Fixture, runDir: string, info: (l: string) => void): Promise<Record<RootName, ServedRoot>> {
  const started = await Promise.all(
    ROOT_NAMES.map(async (n) => {
      const s = await startServe({
        repoRoot: root,
        name: n,
        root: f.www[n],
        logDir: join(runDir, 'servers'),
        ...(n === 'dnsRepo' ? { dns: { name: DNS_REPO_HOST, address: '10.0.2.2' } } : {}),
      });
      return [n, s] as const;
    }),
  );
  const servers = Object.fromEntries(started) as Record<RootName, ServedRoot>;
  const dns = servers.dnsRepo.dns;
  if (!dns) throw new Error('swpkg serve --dns-port did not report its DNS responder');
  for (const n of ROOT_NAMES) info(`   ${n.padEnd(17)} 10.0.2.2:${GUEST_PORTS[n]} -> ${servers[n].url}`);
  // The responder answers TCP on its UDP port number; the restricted guest network carries only TCP.
  info(`   dns               10.0.2.2:53/tcp -> ${dns.host}:${dns.port}/tcp (${DNS_REPO_HOST} -> 10.0.2.2)`);
  return servers;
}

/** One scenario on the running guest, with a fresh transcript; a failure is its row, not the run's end. */
async function runScenario(sc: Scenario, ctx: ScenarioContext, runDir: string): Promise<ScenarioResult> {
  const { s, info } = ctx;
  const t0 = Date.now();
  s.transcript = new ScenarioTranscript();
  info(`-- scenario ${sc.name}: ${sc.title}`);
  let why: string | undefined;
  try {
    await s.ensureUp();
    await sc.run(ctx);
  } catch (e) {
    why = errorText(e);
    const details = (e as { details?: string }).details;
    s.transcript.note(`FAILED: ${why}${details ? `\n${details}` : ''}`);
  }
  const row = await writeScenarioResult(
    runDir,
    { number: SCENARIOS.indexOf(sc) + 1, name: sc.name, title: sc.title },
    { startedMs: t0, why },
    s.transcript,
  );
  info(`   ${row.ok ? 'PASS' : 'FAIL'} ${sc.name} in ${row.seconds} s${why ? `: ${why}` : ''}`);
  return row;
}
