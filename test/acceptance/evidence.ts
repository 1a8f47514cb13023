import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { release, type as osType } from 'node:os';
import { join } from 'node:path';
import type { ArtifactManifest } from '../../images/index.js';
import type { DeploymentRecord } from './artifact-sets.js';
import type { BootRecord, GuestSession, ScenarioTranscript } from './guest-session.js';
import { hostRun, seconds } from './util.js';
import { renderSystemDeployment, type SystemDeployment } from './system-slots.js';

export interface ScenarioResult {
  name: string;
  ok: boolean;
  seconds: number;
  why?: string;
  /** The scenario's commands and output, relative to the evidence folder. */
  transcript: string;
  commands: number;
}

export interface NotRun {
  name: string;
  why: string;
}

export interface RunResult {
  format: 1;
  /** The guest's architecture (x86_64 or aarch64). */
  arch: string;
  mode: string;
  started: string;
  finished: string;
  seconds: number;
  ok: boolean;
  /** Why the run failed before or around the scenarios (setup, boot), when it did. */
  setupError?: string;
  scenarios: ScenarioResult[];
  notRun: NotRun[];
  timings: Record<string, unknown>;
  evidence: string;
}

export interface DeploymentFacts {
  git: { revision: string; branch: string; worktree: string };
  host: { node: string; kernel: string };
  qemu: {
    version: string;
    commandLine: string;
    accelerator: string;
    accelReason: string;
    memoryMiB: number;
    cpus: number;
    network: string;
    boots: BootRecord[];
  } | null;
  artifactsDir: string;
  manifest: ArtifactManifest | null;
  deployment: DeploymentRecord | null;
  storeImage: string;
  repositories: string[];
  seedPorts: string[];
  forwards: string[];
  /** The A/B system slots, when a system scenario booted the guest through UEFI. */
  system?: SystemDeployment | undefined;
}

/** Makes `<base>/<stamp>/` (never reusing a folder) with its subfolders. */
export async function createEvidenceDir(base: string, stamp: string): Promise<string> {
  await mkdir(base, { recursive: true });
  let dir = join(base, stamp);
  for (let i = 2; existsSync(dir); i++) dir = join(base, `${stamp}-${i}`);
  await mkdir(join(dir, 'scenarios'), { recursive: true });
  await mkdir(join(dir, 'servers'), { recursive: true });
  return dir;
}

/** `<base>/latest` -> the newest run folder; replaced by rename so a reader never sees it missing. */
export async function pointLatest(base: string, runDir: string): Promise<void> {
  const name = runDir.slice(base.length).replace(/^\/+/, '');
  const tmp = join(base, `.latest-${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(name, tmp);
  await rename(tmp, join(base, 'latest'));
}

/** Disk images a run leaves: the store, and the A/B system disk with its firmware variables (system scenarios). */
const RUN_DISKS = ['store.img', 'system.img', 'system.img.vars.fd'];

/**
 * Store and system disk images are sparse but big once written: only the newest `keep` run
 * folders keep theirs. The rest of each folder (logs, results) stays. A run
 * without result.json has not finished (it writes that file last, just before
 * pruning): its guest may still be using its store, which is never touched.
 */
export async function pruneStoreImages(base: string, keep = 2): Promise<string[]> {
  const runs: string[] = [];
  for (const n of await readdir(base)) {
    if (n.startsWith('.') || n === 'latest') continue;
    const p = join(base, n);
    if ((await stat(p)).isDirectory() && RUN_DISKS.some((d) => existsSync(join(p, d))) && existsSync(join(p, 'result.json'))) runs.push(n);
  }
  runs.sort();
  const removed: string[] = [];
  for (const n of runs.slice(0, Math.max(0, runs.length - keep))) {
    for (const d of RUN_DISKS) await rm(join(base, n, d), { force: true });
    removed.push(n);
  }
  return removed;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** manifest.txt: the deployment record (DESIGN.md "Guest image and acceptance"). */
export function renderManifest(r: RunResult, d: DeploymentFacts): string {
  const L: string[] = [];
  L.push('swpkg deployment record (QEMU acceptance run)');
  L.push('');
  L.push(`run:            ${r.evidence}`);
  L.push(
    `arch:           ${r.arch}${d.manifest?.arch !== undefined && d.manifest.arch !== r.arch ? ` (artifact set says ${d.manifest.arch})` : ''}`,
  );
  L.push(`mode:           ${r.mode}`);
  L.push(`started:        ${r.started}`);
  L.push(`finished:       ${r.finished} (${r.seconds} s)`);
  L.push(`result:         ${r.ok ? 'PASS' : 'FAIL'}${r.setupError ? ` (setup: ${r.setupError})` : ''}`);
  L.push('');
  L.push('== source');
  L.push(`git revision:   ${d.git.revision} (${d.git.branch})`);
  L.push(`worktree:       ${d.git.worktree}`);
  L.push(`host:           ${d.host.kernel}; node ${d.host.node}`);
  L.push('');
  L.push('== machine');
  if (d.qemu) {
    L.push(`qemu version:   ${d.qemu.version}`);
    L.push(`accelerator:    ${d.qemu.accelerator} (${d.qemu.accelReason})`);
    L.push(`memory:         ${d.qemu.memoryMiB} MiB`);
    L.push(`cpus:           ${d.qemu.cpus}`);
    L.push(`network:        ${d.qemu.network}`);
    for (const f of d.forwards) L.push(`                ${f}`);
    L.push(`qemu command:   ${d.qemu.commandLine}`);
    L.push(`boots:          ${d.qemu.boots.length}`);
    for (const b of d.qemu.boots)
      L.push(
        `                ${b.at} ${pad(b.kind, 22)} shell after ${b.wallMs} ms, boot marker at guest uptime ${b.uptime} s` +
          (b.firmwareMs !== undefined ? ` (UEFI: firmware ${b.firmwareMs} ms, loader ${b.loaderMs ?? '?'} ms)` : ''),
      );
  } else {
    L.push('qemu:           not started');
  }
  L.push(`store disk:     ${d.storeImage}`);
  L.push('');
  L.push('== artifacts');
  L.push(`artifact set:   ${d.artifactsDir}`);
  if (d.manifest) {
    const m = d.manifest;
    for (const o of Object.values(m.outputs)) L.push(`  ${pad(o.file, 20)} ${String(o.size).padStart(11)}  sha256 ${o.sha256}`);
    L.push(`  kernel package  ${m.kernel.package} ${m.kernel.version} (sha256 ${m.kernel.sha256}), release ${m.kernel.release}`);
    L.push(`  busybox         ${m.busybox.package} ${m.busybox.version} (sha256 ${m.busybox.sha256})`);
    L.push(
      `  node            ${m.node.version} (sha256 ${m.node.sha256}, ${m.node.size} bytes${m.node.source ? `, from ${m.node.source}` : ''})`,
    );
    L.push(
      `  pkg client      ${m.pkgClient ? `${m.pkgClient.version} (sha256 ${m.pkgClient.sha256}, ${m.pkgClient.size} bytes, from ${m.pkgClient.source})` : 'none'}`,
    );
  } else {
    L.push('  (no artifact manifest: the image build failed)');
  }
  const prev = d.deployment?.previous;
  L.push(
    `rollback set:   ${prev ? `${prev.dir} (manifest sha256 ${prev.manifestSha256}, kept since ${prev.at}); boot it with --artifacts ${prev.dir}` : 'none kept (no earlier, different artifact set on this machine)'}`,
  );
  L.push('');
  L.push('== A/B system slots');
  for (const x of renderSystemDeployment(d.system)) L.push(x);
  L.push('');
  L.push('== repositories served to the guest');
  for (const x of d.repositories) L.push(`  ${x}`);
  L.push('');
  L.push('== seed ports');
  for (const x of d.seedPorts) L.push(`  ${x}`);
  L.push('');
  L.push('== scenarios');
  for (const s of r.scenarios)
    L.push(`  ${s.ok ? 'PASS   ' : 'FAIL   '} ${pad(s.name, 18)} ${String(s.seconds).padStart(6)} s${s.why ? `  ${s.why}` : ''}`);
  for (const s of r.notRun) L.push(`  NOT RUN ${pad(s.name, 18)}          ${s.why}`);
  L.push('');
  L.push('== timings');
  for (const [k, v] of Object.entries(r.timings)) L.push(`  ${k}: ${JSON.stringify(v)}`);
  return L.join('\n') + '\n';
}

export async function writeJson(path: string, v: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(v, null, 2) + '\n');
}

/**
 * Writes one scenario's transcript to `scenarios/NN-NAME.txt` below the run folder and returns
 * its result row. The suite and the main job both write through here, so every transcript
 * starts with the same header (name and title, result, seconds).
 */
export async function writeScenarioResult(
  runDir: string,
  scenario: { number: number; name: string; title: string },
  outcome: { startedMs: number; why?: string | undefined },
  transcript: ScenarioTranscript,
): Promise<ScenarioResult> {
  const { why } = outcome;
  const secs = seconds(Date.now() - outcome.startedMs);
  const file = `scenarios/${String(scenario.number).padStart(2, '0')}-${scenario.name}.txt`;
  const head = `scenario ${scenario.name}: ${scenario.title}\nresult: ${why === undefined ? 'PASS' : `FAIL: ${why}`}\nseconds: ${secs}\n\n`;
  await writeFile(join(runDir, file), head + transcript.render());
  return {
    name: scenario.name,
    ok: why === undefined,
    seconds: secs,
    ...(why !== undefined ? { why } : {}),
    transcript: file,
    commands: transcript.commands.length,
  };
}

/** The sources a run was started from; read before anything runs, so a commit made meanwhile does not show. */
export async function gitFacts(root: string): Promise<DeploymentFacts['git']> {
  const rev = await hostRun('git', ['rev-parse', 'HEAD'], { cwd: root, timeoutMs: 30_000 });
  const br = await hostRun('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { cwd: root, timeoutMs: 30_000 });
  const st = await hostRun('git', ['status', '--porcelain'], { cwd: root, timeoutMs: 60_000 });
  const changed = st.stdout.split('\n').filter((l) => l.trim() !== '');
  return {
    revision: rev.code === 0 ? rev.stdout.trim() : `unknown (${rev.stderr.trim().split('\n')[0] ?? 'git failed'})`,
    branch: br.code === 0 ? br.stdout.trim() : 'unknown',
    worktree:
      st.code !== 0
        ? 'unknown (git status failed)'
        : changed.length === 0
          ? 'clean'
          : `dirty (${changed.length} changed or untracked paths)`,
  };
}

export function hostFacts(): DeploymentFacts['host'] {
  return { node: process.version, kernel: `${osType()} ${release()}` };
}

/** The machine the guest ran on, as the deployment record shows it; null when QEMU never started. */
export function qemuFacts(session: GuestSession | null, network: { nameserver?: string } = {}): DeploymentFacts['qemu'] {
  const g = session?.guest;
  if (!g) return null;
  const restricted = g.network.mode === 'restricted' ? ' (restrict=on: only the forwarded TCP ports answer)' : '';
  const nameserver = network.nameserver ? `, nameserver ${network.nameserver}` : '';
  return {
    version: g.qemuVersion,
    commandLine: g.commandLine,
    accelerator: g.accelerator.accel,
    accelReason: g.accelerator.reason,
    memoryMiB: g.memoryMiB,
    cpus: g.cpus,
    network: `QEMU user networking, mode ${g.network.mode}${restricted}; guest 10.0.2.15/24, no default route, host 10.0.2.2${nameserver}`,
    boots: session.boots,
  };
}

/** The host ports the guest reached, one `guest -> host` line each. */
export function forwardFacts(session: GuestSession | null): string[] {
  return session?.guest ? session.guest.network.ports.map((p) => `10.0.2.2:${p.guest} -> 127.0.0.1:${p.host}`) : [];
}

/**
 * Finishes a run folder: result.json, then manifest.txt (the deployment record), then
 * `latest` points at it, then older runs' store images are pruned. result.json is written
 * first because pruneStoreImages treats a folder without it as a run still in progress.
 * Returns the run folders whose store images were removed.
 */
export async function finishEvidence(base: string, result: RunResult, facts: DeploymentFacts): Promise<string[]> {
  await writeJson(join(result.evidence, 'result.json'), result);
  await writeFile(join(result.evidence, 'manifest.txt'), renderManifest(result, facts));
  await pointLatest(base, result.evidence);
  return pruneStoreImages(base, 2);
}
