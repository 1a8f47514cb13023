/**
 * Guest boot benchmark: time from QEMU start to the boot marker and to a shell
 * that answers, `node -e 0` inside the guest (first run after boot, then warm),
 * `pkg --version` likewise when the image has pkg, and poweroff. The baseline,
 * run in this same script, is the raw pipeline: the same kernel and QEMU
 * booting a busybox-only initramfs whose init prints a marker and powers off,
 * so the ratio is what our init, disks and network add.
 *
 * Guest-side times come from /proc/uptime around each command (10 ms
 * resolution), so the serial round trip is not counted.
 *
 * Run (Node cannot load the .ts sources directly, so bundle first):
 *   npx esbuild bench/guest/bench-boot.ts --bundle --platform=node --format=esm --packages=external \
 *     --outfile=node_modules/.cache/bench/bench-boot.mjs && npx node node_modules/.cache/bench/bench-boot.mjs \
 *     [--arch x86_64|aarch64] [--runs N] [--pkg-bundle FILE] [--baseline-cpu MODEL]...
 *
 * `--baseline-cpu` (repeatable) also times the baseline under other TCG CPU models, e.g.
 * `--arch aarch64 --baseline-cpu max --baseline-cpu max,pauth-impdef=on`: the evidence for the
 * aarch64 guest's choice of cortex-a72 (images/guest-arch.ts). `--cpu MODEL` boots the full guest
 * under that TCG model instead of the arch's; run it in turn with and without (the x86_64
 * comparison of max and Nehalem in bench/README.md, "Guest boot, 2026-12-03").
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  GUEST_ARCH_PROFILES,
  buildImages,
  chooseAccelerator,
  hostGuestArch,
  parseGuestArch,
  type GuestArchProfile,
  createStoreImage,
  fetchGuestPackages,
  findRepoRoot,
  startGuest,
  writeCpioNewc,
  type CpioEntry,
  type GuestHandle,
} from '../../images/index.js';

const args = process.argv.slice(2);
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 1;
const bundleArg = args.indexOf('--pkg-bundle');
const pkgBundle = bundleArg >= 0 ? args[bundleArg + 1] : undefined;
const archArg = args.indexOf('--arch');
const profile = GUEST_ARCH_PROFILES[archArg >= 0 ? parseGuestArch(args[archArg + 1] ?? '') : 'x86_64'];
const baselineCpus = args.flatMap((a, i) => (args[i - 1] === '--baseline-cpu' ? [a] : []));
const cpuArg = args.indexOf('--cpu');
const guestCpu = cpuArg >= 0 ? args[cpuArg + 1] : undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Guest seconds a command takes, from /proc/uptime before and after. */
async function guestSeconds(g: GuestHandle, cmd: string): Promise<number> {
  const r = await g.console.run(
    `a=$(cut -d' ' -f1 /proc/uptime); ${cmd} >/dev/null; s=$?; b=$(cut -d' ' -f1 /proc/uptime); echo "$s $a $b"`,
    300_000,
  );
  const [status, a, b] = r.output.trim().split(/\s+/).map(Number);
  if (status !== 0 || a === undefined || b === undefined) throw new Error(`${cmd} failed in the guest: ${r.output}`);
  return b - a;
}

/**
 * The baseline: QEMU + the same kernel + busybox-only initramfs that prints a marker and powers off.
 * Returns the host wall time to the marker and the guest uptime it printed.
 */
async function baselineBoot(
  work: string,
  accel: 'kvm' | 'tcg',
  p: GuestArchProfile,
  cpu: string = accel === 'kvm' ? 'host' : p.tcgCpu,
): Promise<{ wallMs: number; uptimeMs: number }> {
  const k = await fetchGuestPackages({ arch: p.arch, allowApt: false });
  const kernelDir = join(findRepoRoot(), p.kernelDir);
  const init =
    '#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho "BASELINE-UP $(/bin/busybox cut -d" " -f1 /proc/uptime)"\n/bin/busybox poweroff -f\n';
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin', mode: 0o755 },
    { type: 'dir', path: 'dev', mode: 0o755 },
    { type: 'dir', path: 'proc', mode: 0o555 },
    { type: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: await readFile(join(kernelDir, k.busyboxBinary.file)) },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'init', mode: 0o755, data: Buffer.from(init) },
  ];
  const initrd = join(work, 'baseline.cpio.gz');
  await writeFile(initrd, gzipSync(writeCpioNewc(entries), { level: 9 }));
  const started = Date.now();
  const argv = ['-machine', `${p.machine},accel=${accel}`, '-cpu', cpu, '-m', '1024', '-smp', '1', '-nodefaults', '-no-user-config'];
  argv.push('-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-kernel', join(kernelDir, k.vmlinuz.file), '-initrd', initrd);
  argv.push('-append', `console=${p.console},115200 quiet loglevel=3 panic=-1`);
  return new Promise((resolve, reject) => {
    const child = spawn(p.qemuSystem, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let marker = NaN;
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (Number.isNaN(marker) && out.includes('BASELINE-UP')) marker = Date.now() - started;
    });
    child.on('exit', () => {
      clearTimeout(timer);
      const up = /BASELINE-UP ([0-9.]+)/.exec(out);
      if (Number.isNaN(marker) || !up?.[1]) reject(new Error(`baseline guest never printed its marker: ${out.slice(-500)}`));
      else resolve({ wallMs: marker, uptimeMs: Number(up[1]) * 1000 });
    });
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'swpkg-bench-boot-'));
  try {
    const built = await buildImages({ arch: profile.arch, allowApt: false, ...(pkgBundle ? { pkg: { bundleFile: pkgBundle } } : {}) });
    // KVM only for the host's own arch, as the runner decides.
    const accel =
      hostGuestArch() === profile.arch
        ? await chooseAccelerator(profile.qemuSystem, 'auto', profile.machine, {
            path: join(built.outDir, 'vmlinuz'),
            console: profile.console,
          })
        : { accel: 'tcg' as const, reason: `${profile.arch} guest on a ${process.arch} host` };
    const m = built.manifest;
    console.log(`arch: ${profile.arch}; accelerator: ${accel.accel} (${accel.reason}); TCG cpu: ${guestCpu ?? profile.tcgCpu}`);
    console.log(
      `artifacts: initramfs ${(m.outputs.initramfs.size / 1e6).toFixed(2)} MB, base ${(m.outputs.base.size / 1e6).toFixed(1)} MB, vmlinuz ${(m.outputs.kernel.size / 1e6).toFixed(1)} MB, pkg ${m.pkgClient ? `${(m.pkgClient.size / 1e6).toFixed(2)} MB` : 'absent'}`,
    );
    const rows: Record<string, number[]> = {};
    const add = (k: string, v: number): void => {
      (rows[k] ??= []).push(v);
    };
    for (let i = 0; i < runs; i++) {
      const b = await baselineBoot(work, accel.accel, profile);
      add('baseline: raw boot to marker (ms)', b.wallMs);
      add('baseline: guest uptime at marker (ms)', b.uptimeMs);
      for (const cpu of baselineCpus) {
        const o = await baselineBoot(work, 'tcg', profile, cpu);
        add(`baseline -cpu ${cpu}: raw boot to marker (ms)`, o.wallMs);
        add(`baseline -cpu ${cpu}: guest uptime at marker (ms)`, o.uptimeMs);
      }
      const store = (await createStoreImage({ path: join(work, `store-${i}.img`), sizeMiB: 256 })).path;
      const g = await startGuest({
        arch: profile.arch,
        storeImage: store,
        serialLog: join(work, `serial-${i}.log`),
        verify: false,
        ...(guestCpu !== undefined ? { tcgCpu: guestCpu } : {}),
      });
      try {
        add('boot: QEMU start to shell answering (ms)', g.boot.wallMs);
        add('boot: guest uptime at SWPKG-BOOT-OK (ms)', g.boot.uptime * 1000);
        for (const [step, t] of Object.entries(g.boot.steps)) add(`boot: guest uptime at step ${step} (ms)`, t * 1000);
        add('node -e 0, first run (ms)', (await guestSeconds(g, 'node -e 0')) * 1000);
        for (let w = 0; w < 3; w++) add('node -e 0, warm (ms)', (await guestSeconds(g, 'node -e 0')) * 1000);
        if (m.pkgClient) {
          add('pkg --version, first run (ms)', (await guestSeconds(g, 'pkg --version')) * 1000);
          for (let w = 0; w < 3; w++) add('pkg --version, warm (ms)', (await guestSeconds(g, 'pkg --version')) * 1000);
        }
        const t0 = Date.now();
        const stop = await g.stop();
        add('poweroff to QEMU exit (ms)', Date.now() - t0);
        if (!stop.clean || stop.store !== 'clean') console.log(`warning: stop was ${JSON.stringify(stop)}`);
      } finally {
        if (!g.exited) await g.kill();
      }
    }
    console.log(`runs: ${runs} (medians)`);
    for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(46)} ${median(v).toFixed(0).padStart(7)}`);
    const ours = median(rows['boot: guest uptime at SWPKG-BOOT-OK (ms)'] ?? []);
    const base = median(rows['baseline: raw boot to marker (ms)'] ?? []);
    const wall = median(rows['boot: QEMU start to shell answering (ms)'] ?? []);
    console.log(`ratio: shell answering (host wall) / raw boot to marker (host wall) = ${(wall / base).toFixed(2)}`);
    console.log(`guest uptime at our marker: ${ours.toFixed(0)} ms`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
