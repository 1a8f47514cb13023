import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { runTool } from './host-tools.js';

export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why: the probe's outcome, or the override that decided. */
  reason: string;
}

const PROBE_TIMEOUT_MS = 15_000;
const probes = new Map<string, Promise<AcceleratorChoice>>();

/** What the probe boots: the guest's own kernel, so "KVM works" means "this kernel runs under KVM". */
export interface KvmProbeKernel {
  path: string;
  /** The serial console the kernel writes to (ttyS0, ttyAMA0). */
  console: string;
}

/**
 * Decides whether KVM works by booting the guest's kernel under it and waiting for the kernel's
 * first line (`Linux version`) on the serial console. `/dev/kvm` can exist and still fail: on
 * one machine a paused KVM machine started and quit cleanly while every kernel hung silently
 * after the firmware (a KVM emulation failure), so starting a machine proves nothing; only a
 * kernel that speaks in time counts. Without a kernel (a caller with no image yet) the probe
 * falls back to starting a paused machine and asking it to quit.
 */
function probeKvm(qemu: string, machine: string, kernel?: KvmProbeKernel): Promise<AcceleratorChoice> {
  if (!existsSync('/dev/kvm')) return Promise.resolve({ accel: 'tcg', reason: '/dev/kvm does not exist' });
  const common = ['-machine', `${machine},accel=kvm`, '-cpu', 'host', '-m', '128', '-nodefaults', '-no-user-config', '-display', 'none'];
  const args = kernel
    ? [
        ...common,
        '-serial',
        'stdio',
        '-monitor',
        'none',
        '-no-reboot',
        '-kernel',
        kernel.path,
        '-append',
        `console=${kernel.console} panic=-1`,
      ]
    : [...common, '-S', '-monitor', 'stdio'];
  return new Promise((resolve) => {
    let stderr = '';
    let stdout = '';
    let settled = false;
    const child = spawn(qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const finish = (c: AcceleratorChoice): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      resolve(c);
    };
    const timer = setTimeout(
      () =>
        finish({
          accel: 'tcg',
          reason: kernel
            ? `KVM probe: the kernel printed nothing within ${PROBE_TIMEOUT_MS} ms under KVM`
            : `KVM probe did not finish within ${PROBE_TIMEOUT_MS} ms`,
        }),
      PROBE_TIMEOUT_MS,
    );
    child.stdout.on('data', (d: Buffer) => {
      if (!kernel) return;
      // Bounded: only the start of the console matters.
      if (stdout.length < 64 * 1024) stdout += d.toString('latin1');
      if (stdout.includes('Linux version')) finish({ accel: 'kvm', reason: 'KVM probe: the guest kernel started under KVM' });
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString();
    });
    child.on('error', (e) => finish({ accel: 'tcg', reason: `KVM probe could not start ${qemu}: ${e.message}` }));
    child.on('exit', (code) => {
      if (code === 0 && !kernel) finish({ accel: 'kvm', reason: 'KVM probe machine started and quit' });
      else finish({ accel: 'tcg', reason: `KVM probe failed: ${stderr.trim().split('\n').pop() || `exit ${code}`}` });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(kernel ? '' : 'quit\n');
  });
}

/**
 * Picks KVM when it demonstrably works, else TCG. `SWPKG_QEMU_ACCEL=kvm|tcg`
 * or the `requested` argument decide instead of the probe. The probe runs
 * once per QEMU binary, machine and kernel per process, on `machine` (q35 for x86_64, virt for
 * aarch64), booting `kernel` when given (see probeKvm).
 */
export function chooseAccelerator(
  qemu: string,
  requested: 'auto' | Accelerator = 'auto',
  machine = 'q35',
  kernel?: KvmProbeKernel,
): Promise<AcceleratorChoice> {
  const env = process.env.SWPKG_QEMU_ACCEL;
  if (requested !== 'auto') return Promise.resolve({ accel: requested, reason: 'requested by the caller' });
  if (env === 'kvm' || env === 'tcg') return Promise.resolve({ accel: env, reason: 'SWPKG_QEMU_ACCEL' });
  const key = `${qemu}\0${machine}\0${kernel?.path ?? ''}`;
  let p = probes.get(key);
  if (!p) {
    p = probeKvm(qemu, machine, kernel);
    probes.set(key, p);
  }
  return p;
}

const versions = new Map<string, Promise<string>>();

/** First line of `qemu --version`, for the evidence record. */
export function qemuVersion(qemu: string): Promise<string> {
  let p = versions.get(qemu);
  if (!p) {
    p = runTool(qemu, ['--version'], { timeoutMs: 15_000, what: 'reading the QEMU version' }).then(
      (r) => r.stdout.split('\n')[0]?.trim() ?? '',
    );
    versions.set(qemu, p);
  }
  return p;
}
