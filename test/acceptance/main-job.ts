import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GUEST_ARCH_PROFILES, createStoreImage, parseGuestArch, verifyArtifacts, type ArtifactManifest } from '../../images/index.js';
import type { GuestArch } from '../../kernel/index.js';
import type { DoctorReport, TransactionResult } from '../../userland/index.js';
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
  type RunResult,
} from './evidence.js';
import { GuestSession, ScenarioTranscript } from './guest-session.js';
import { startServe, type ServedRoot } from './host-servers.js';
import { buildImagesWithCli } from './image-build.js';
import { check, errorText, repoRoot, seconds, utcStamp } from './util.js';

const USAGE = `usage: run.ts --main-job --web-root DIR [--arch x86_64|aarch64] [--install NAMES] [--evidence DIR] [--artifacts DIR]

The guest half of scripts/main-job.sh: serves the published web root DIR with
\`swpkg serve\`, builds (incrementally) and boots the guest, adds the repository
with its root key over the serial console, updates, installs NAMES (default
"curl lua") with their dependencies and runs them, then writes an evidence folder.`;

/** The repository's port as the guest sees it (http://10.0.2.2:8080/). */
const GUEST_PORT = 8080;

export async function runMainJob(argv: string[]): Promise<number> {
  const parsed = parseMainJobArgs(argv);
  if (typeof parsed === 'number') return parsed;
  const { webRoot, evidence, artifacts, install, arch } = parsed;
  const root = repoRoot();
  const started = new Date();
  const git = await gitFacts(root);
  const base = resolve(evidence || join(root, 'evidence'));
  const runDir = await createEvidenceDir(base, `${utcStamp(started)}-main-job${arch === 'x86_64' ? '' : `-${arch}`}`);
  const hostLog = createWriteStream(join(runDir, 'host.log'));
  const t0 = Date.now();
  const info = (l: string): void => {
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${l}\n`);
    hostLog.write(`${new Date().toISOString()} ${l}\n`);
  };
  const artifactsDir = resolve(artifacts || join(root, GUEST_ARCH_PROFILES[arch].imagesDir));
  const timings: Record<string, unknown> = {};
  const transcript = new ScenarioTranscript();
  let server: ServedRoot | null = null;
  let session: GuestSession | null = null;
  let manifest: ArtifactManifest | null = null;
  let deployment: DeploymentRecord | null = null;
  let why: string | undefined;
  const storeImage = join(runDir, 'store.img');
  const hard = setTimeout(() => {
    info('HARD LIMIT (60 min) reached: killing the guest and the server');
    void (async () => {
      await session?.kill();
      await server?.stop();
      process.exit(1);
    })();
  }, 60 * 60_000);
  hard.unref();

  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    info(`-- ${name}`);
    const r = await fn();
    timings[name] = seconds(Date.now() - s);
    info(`   ${name}: ${seconds(Date.now() - s)} s`);
    return r;
  };

  try {
    const hosted = await readFile(join(webRoot, 'hosted-repo.json'));
    const rootPub = await readFile(join(webRoot, 'repo-root.pub'), 'utf8');
    manifest = await timed('guest images (build what is missing)', async () => {
      const before = await snapshotArtifactSet(artifactsDir);
      await buildImagesWithCli(root, { arch, outDir: artifactsDir }, info);
      deployment = await settleArtifactSets(artifactsDir, before);
      return verifyArtifacts(artifactsDir);
    });
    await writeJson(join(runDir, 'artifacts.json'), manifest);
    server = await timed('swpkg serve', () => startServe({ repoRoot: root, name: 'main', root: webRoot, logDir: join(runDir, 'servers') }));
    info(`   serving ${webRoot} at ${server.url} (the guest sees http://10.0.2.2:${GUEST_PORT}/)`);
    await createStoreImage({ path: storeImage, sizeMiB: 2048 });
    session = new GuestSession({
      arch,
      artifactsDir,
      storeImage,
      serialLog: join(runDir, 'serial.log'),
      hostPorts: [{ guest: GUEST_PORT, host: server.port }],
      memoryMiB: 1024,
      cpus: 1,
      bootTimeoutMs: 240_000,
      maxLifetimeMs: 60 * 60_000,
      onInfo: info,
    });
    session.transcript = transcript;
    const s = session;
    const boot = await timed('boot', () => s.boot('boot'));
    timings['bootMarker'] = { shellAfterMs: boot.wallMs, guestUptimeAtMarkerSeconds: boot.uptime, steps: boot.steps };
    await timed('pkg repo add + update', async () => {
      await s.writeFile('/tmp/acc/main-root.pub', rootPub);
      await s.pkgOk(`repo add main http://10.0.2.2:${GUEST_PORT}/ --key /tmp/acc/main-root.pub`);
      await s.pkgOk('update');
    });
    await timed(`pkg install ${install.join(' ')}`, async () => {
      const tx = await s.pkgOk<TransactionResult>(`install ${install.join(' ')} --yes`, { timeoutMs: 1_800_000 });
      for (const l of tx.plan.lines) info(`   ${l.action} ${l.name} ${l.to ?? ''} (${l.reason})`);
    });
    await timed('run the installed programs', async () => {
      if (install.includes('curl')) {
        const r = await s.sh(`curl -fsS --max-time 60 http://10.0.2.2:${GUEST_PORT}/hosted-repo.json`, { timeoutMs: 120_000 });
        check(
          r.output === hosted.toString('utf8'),
          'curl in the guest fetched something other than hosted-repo.json',
          r.output.slice(0, 500),
        );
        info(`   curl fetched hosted-repo.json through the guest (${r.output.length} bytes, identical to the file served)`);
        const v = await s.sh('curl --version | head -1');
        info(`   ${v.output.trim()}`);
      }
      if (install.includes('lua')) {
        const v = await s.sh('lua -v');
        check(/^Lua 5\.4/.test(v.output.trim()), `lua -v printed ${v.output.trim()}`);
        info(`   ${v.output.trim()}`);
      }
      const d = await s.pkgOk<DoctorReport>('doctor', { timeoutMs: 900_000 });
      check(d.healthy, 'pkg doctor is not clean', JSON.stringify(d.problems));
      info('   pkg doctor: healthy');
    });
  } catch (e) {
    why = errorText(e);
    transcript.note(`FAILED: ${why}`);
    info(`MAIN JOB FAILED: ${why}`);
  } finally {
    clearTimeout(hard);
    await session?.stop().catch(() => session?.kill());
    await server?.stop();
  }
  const finished = new Date();
  const sc = await writeScenarioResult(
    runDir,
    { number: 1, name: 'main-job', title: `serve the web root, boot, update, install ${install.join(' ')} and run them` },
    { startedMs: started.getTime(), why },
    transcript,
  );
  if (session) timings['boots'] = session.boots;
  const result: RunResult = {
    format: 1,
    arch,
    mode: `--main-job --arch ${arch}`,
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: sc.seconds,
    ok: sc.ok,
    scenarios: [sc],
    notRun: [],
    timings,
    evidence: runDir,
  };
  await finishEvidence(base, result, {
    git,
    host: hostFacts(),
    qemu: qemuFacts(session),
    artifactsDir,
    manifest,
    deployment,
    storeImage,
    repositories: [`main  http://10.0.2.2:${GUEST_PORT}/ -> ${webRoot}`],
    seedPorts: install,
    forwards: forwardFacts(session),
  });
  info(`${sc.ok ? 'MAIN JOB PASSED' : 'MAIN JOB FAILED'}; evidence: ${runDir} (result.json, manifest.txt, serial.log)`);
  hostLog.end();
  return sc.ok ? 0 : 1;
}

interface MainJobOptions {
  webRoot: string;
  evidence: string;
  artifacts: string;
  install: string[];
  arch: GuestArch;
}

/** The options, or the exit status when there is nothing to run (0 after --help, 2 after a usage error, said on stderr). */
function parseMainJobArgs(argv: string[]): MainJobOptions | number {
  let webRoot = '';
  let evidence = '';
  let artifacts = '';
  let install = ['curl', 'lua'];
  let arch: GuestArch = 'x86_64';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (v === undefined) {
      process.stderr.write(`${a} needs a value\n${USAGE}\n`);
      return 2;
    }
    i++;
    if (a === '--web-root') webRoot = v;
    else if (a === '--evidence') evidence = v;
    else if (a === '--artifacts') artifacts = v;
    else if (a === '--install') install = v.split(/[ ,]+/).filter(Boolean);
    else if (a === '--arch') arch = parseGuestArch(v);
    else {
      process.stderr.write(`unknown argument ${a}\n${USAGE}\n`);
      return 2;
    }
  }
  if (!webRoot) {
    process.stderr.write(`--web-root is required\n${USAGE}\n`);
    return 2;
  }
  return { webRoot, evidence, artifacts, install, arch };
}
