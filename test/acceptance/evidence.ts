import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactManifest } from '../../images/index.js';
import type { DeploymentRecord } from './artifact-sets.js';
import type { BootRecord } from './guest-session.js';
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
