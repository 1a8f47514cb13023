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

/**
 * Starts a paused q35 machine with KVM and asks it to quit over its monitor.
 * `/dev/kvm` can exist and still fail (DESIGN.md: seen on some machines), or
 * hang; only a machine that came up and quit in time counts as working.
 */
function probeKvm(qemu: string, machine: string): Promise<AcceleratorChoice> {
  if (!existsSync('/dev/kvm')) return Promise.resolve({ accel: 'tcg', reason: '/dev/kvm does not exist' });
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const child = spawn(
      qemu,
      [
        '-machine',
        `${machine},accel=kvm`,
        '-cpu',
        'host',
        '-m',
        '64',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-S',
        '-monitor',
        'stdio',
      ],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    const finish = (c: AcceleratorChoice): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      resolve(c);
    };
    const timer = setTimeout(
      () => finish({ accel: 'tcg', reason: `KVM probe did not finish within ${PROBE_TIMEOUT_MS} ms` }),
      PROBE_TIMEOUT_MS,
    );
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (e) => finish({ accel: 'tcg', reason: `KVM probe could not start ${qemu}: ${e.message}` }));
    child.on('exit', (code) => {
      if (code === 0) finish({ accel: 'kvm', reason: 'KVM probe machine started and quit' });
      else finish({ accel: 'tcg', reason: `KVM probe failed: ${stderr.trim().split('\n').pop() ?? `exit ${code}`}` });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end('quit\n');
  });
}

/**
 * Picks KVM when it demonstrably works, else TCG. `SWPKG_QEMU_ACCEL=kvm|tcg`
 * or the `requested` argument decide instead of the probe. The probe runs
 * once per QEMU binary per process, on `machine` (q35 for x86_64, virt for aarch64).
 */
export function chooseAccelerator(qemu: string, requested: 'auto' | Accelerator = 'auto', machine = 'q35'): Promise<AcceleratorChoice> {
  const env = process.env.SWPKG_QEMU_ACCEL;
  if (requested !== 'auto') return Promise.resolve({ accel: requested, reason: 'requested by the caller' });
  if (env === 'kvm' || env === 'tcg') return Promise.resolve({ accel: env, reason: 'SWPKG_QEMU_ACCEL' });
  let p = probes.get(qemu);
  if (!p) {
    p = probeKvm(qemu, machine);
    probes.set(qemu, p);
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
