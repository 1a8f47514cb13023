import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SwpkgError, silentReporter, type Reporter } from '../catalog/index.js';
import { findRepoRoot } from './kernel-packages.js';
import { chooseAccelerator, qemuVersion, type AcceleratorChoice, type KvmProbeKernel } from './accelerator.js';
import { ARTIFACT_FILES, verifyArtifacts, type ArtifactManifest } from './build-images.js';
import type { GuestArch } from '../kernel/index.js';
import { GUEST_ARCH_PROFILES, hostGuestArch, type GuestArchProfile } from './guest-arch.js';
import {
  RELAY_PROGRAM,
  findRelayProgram,
  netdevArgument,
  normalisePorts,
  type GuestNetworkMode,
  type PortForward,
} from './guest-network.js';
import { BOOT_OK, GUEST_FATAL, GUEST_PROMPT, SHUTDOWN_OK, SerialConsole } from './serial-console.js';
import { createStoreImage } from './store-image.js';
import { UEFI_FILES, ensureEfiVars } from './uefi-disk.js';

const SETPRIV = '/usr/bin/setpriv';

export interface StartGuestOptions {
  /**
   * Guest architecture. Default: the artifact set's (its manifest records it); a
   * set of another arch is refused. Also picks the default artifacts folder.
   */
  arch?: GuestArch;
  /** Folder with vmlinuz, initramfs.cpio.gz, base.img, manifest.json; default `<repo>/build/images` (aarch64: `build/images-aarch64`). */
  artifactsDir?: string;
  /** The writable store disk for /pkg (see createStoreImage); the guest writes to it. */
  storeImage: string;
  /** Further raw disk images attached read-only after the store (e.g. offline media, found by label in the guest). */
  extraDisks?: readonly string[];
  /** TCP ports the guest reaches as 10.0.2.2:PORT; a number forwards the same port number. */
  hostPorts?: ReadonlyArray<number | PortForward>;
  /** Default 'restricted'; see GuestNetworkMode. */
  network?: GuestNetworkMode;
  /** Default 1024. */
  memoryMiB?: number;
  /** Default 1. */
  cpus?: number;
  /** Limit for the boot (QEMU start to a shell that answers); default 180 s. */
  timeoutMs?: number;
  /** The whole serial transcript is appended here (raw bytes). */
  serialLog?: string;
  /** Default 'auto': KVM only when a probe shows it works. */
  accel?: 'auto' | 'kvm' | 'tcg';
  /** TCG CPU model instead of the arch's (guest-arch.ts `tcgCpu`), e.g. `Nehalem`: for comparing models (bench-boot --cpu). */
  tcgCpu?: string;
  /** QEMU `-rtc base=`: 'utc' (default) or a date like '2030-01-01T00:00:00' for clock scenarios. */
  rtcBase?: string;
  /** Guest host name (default 'swpkg'). */
  hostname?: string;
  /** QEMU is killed after this long whatever happens; default 2 h. */
  maxLifetimeMs?: number;
  /** Re-hash the artifacts against manifest.json before booting; default true. */
  verify?: boolean;
  /** Default `$SWPKG_QEMU` (x86_64) or `$SWPKG_QEMU_AARCH64`, else qemu-system-x86_64 / qemu-system-aarch64. */
  qemu?: string;
  /**
   * 'direct' (default): QEMU loads the artifact set's kernel and initramfs
   * itself (`-kernel`), the fast path for tests. 'uefi': firmware (OVMF /
   * AAVMF) starts systemd-boot from `systemDisk`, which picks a slot; the
   * kernel command line is then the one in the disk's loader entries.
   */
  boot?: 'direct' | 'uefi';
  /** The GPT system disk (buildUefiDisk); required for 'uefi'. The guest writes to it (slots, entries). */
  systemDisk?: string;
  /** This guest's firmware variable store; default `<systemDisk>.vars.fd`, copied from the firmware's template once. */
  efiVars?: string;
  reporter?: Reporter;
}

export interface BootTiming {
  /** Host wall time from QEMU start (or the reboot command) to a shell that answers. */
  wallMs: number;
  /** Guest uptime (s) printed with SWPKG-BOOT-OK. */
  uptime: number;
  /** Guest uptime (s) at each init step: init, modules, disks, network. */
  steps: Record<string, number>;
  /**
   * UEFI boot only: host wall time from QEMU start (or the reboot command) to
   * the firmware starting the loader, and from there to the kernel's start
   * (wall time at the OK line minus the guest's uptime then).
   */
  firmwareMs?: number;
  loaderMs?: number;
}

export interface StopResult {
  /** The guest powered off by itself within the limit (otherwise it was killed). */
  clean: boolean;
  /** What the shutdown script reported for /pkg: clean, read-only, busy, none; null if it never said. */
  store: string | null;
  exitCode: number | null;
  signal: string | null;
}

export interface GuestHandle {
  arch: GuestArch;
  console: SerialConsole;
  pid: number;
  /** argv[0] is the QEMU binary; exactly what was started (under `launcher`). */
  argv: string[];
  /** Prefix QEMU was started under (setpriv with a parent-death signal), or empty. */
  launcher: string[];
  /** The same, shell-quoted, for the evidence record. */
  commandLine: string;
  qemuVersion: string;
  accelerator: AcceleratorChoice;
  memoryMiB: number;
  cpus: number;
  network: { mode: GuestNetworkMode; ports: PortForward[]; netdev: string };
  artifactsDir: string;
  manifest: ArtifactManifest;
  storeImage: string;
  serialLog: string | null;
  /** Timing of the latest boot. */
  boot: BootTiming;
  readonly exited: boolean;
  /** Resolves when QEMU has exited. */
  exit: Promise<{ code: number | null; signal: string | null }>;
  /** `poweroff` in the guest, waits for QEMU to exit; kills it if it does not within `timeoutMs` (default 60 s). */
  stop(opts?: { timeoutMs?: number }): Promise<StopResult>;
  /** SIGKILL: a power cut for the guest. Resolves when QEMU is gone. */
  kill(): Promise<void>;
  /** `reboot` in the guest and wait for the next boot's shell (default limit: the boot limit). */
  reboot(opts?: { timeoutMs?: number }): Promise<BootTiming & { store: string | null }>;
}

/** Quotes an argv for a POSIX shell (the evidence record's command line). */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Kernel command line: serial console, quiet, reboot at once on panic (the host notices), our init's settings. */
export function kernelAppend(mode: GuestNetworkMode, hostname: string, console = GUEST_ARCH_PROFILES.x86_64.console): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(hostname)) throw new SwpkgError('E_USAGE', `invalid guest host name ${JSON.stringify(hostname)}`);
  if (!/^tty[A-Za-z]+[0-9]+$/.test(console)) throw new SwpkgError('E_USAGE', `invalid console ${JSON.stringify(console)}`);
  return `console=${console},115200 quiet loglevel=3 panic=-1 swpkg.net=${mode} swpkg.hostname=${hostname}`;
}

/**
 * The QEMU argv for an artifact set. q35 (x86_64) or virt (aarch64), virtio
 * disks (base read-only) and virtio-net on user networking, serial console on
 * stdio, no display, no monitor, no default devices. On virt the disks are
 * named virtio-blk-pci devices: the same PCI transport and modules as on q35
 * (`if=virtio` would leave the bus to the board's default).
 */
export function qemuArguments(o: {
  profile?: GuestArchProfile;
  artifactsDir: string;
  storeImage: string;
  extraDisks?: readonly string[];
  accel: AcceleratorChoice['accel'];
  /** Default: the profile's tcgCpu. Ignored under KVM (the host CPU). */
  tcgCpu?: string;
  memoryMiB: number;
  cpus: number;
  netdev: string;
  append: string;
  rtcBase: string;
  /** UEFI boot: firmware code (read-only) and variable store as pflash, the system disk instead of base.img. */
  uefi?: { code: string; vars: string; systemDisk: string };
}): string[] {
  const opt = (p: string): string => p.replace(/,/g, ',,');
  const profile = o.profile ?? GUEST_ARCH_PROFILES.x86_64;
  // Under UEFI the first disk is the system disk, written by the loader (boot counters) and by
  // `pkg system update` (the inactive slot): it is not read-only like base.img.
  const base = o.uefi ? o.uefi.systemDisk : join(o.artifactsDir, ARTIFACT_FILES.base);
  const ro = o.uefi ? '' : ',readonly=on';
  const boot = o.uefi
    ? [
        '-drive',
        `if=pflash,format=raw,unit=0,readonly=on,file=${opt(o.uefi.code)}`,
        '-drive',
        `if=pflash,format=raw,unit=1,file=${opt(o.uefi.vars)}`,
      ]
    : [
        '-kernel',
        join(o.artifactsDir, ARTIFACT_FILES.kernel),
        '-initrd',
        join(o.artifactsDir, ARTIFACT_FILES.initramfs),
        '-append',
        o.append,
      ];
  const disks =
    profile.arch === 'x86_64'
      ? ['-drive', `file=${opt(base)},if=virtio,format=raw${ro}`, '-drive', `file=${opt(o.storeImage)},if=virtio,format=raw`]
      : [
          '-drive',
          `file=${opt(base)},if=none,id=base,format=raw${ro}`,
          '-device',
          'virtio-blk-pci,drive=base',
          '-drive',
          `file=${opt(o.storeImage)},if=none,id=store,format=raw`,
          '-device',
          'virtio-blk-pci,drive=store',
        ];
  (o.extraDisks ?? []).forEach((d, i) => {
    if (profile.arch === 'x86_64') disks.push('-drive', `file=${opt(d)},if=virtio,format=raw,readonly=on`);
    else disks.push('-drive', `file=${opt(d)},if=none,id=extra${i},format=raw,readonly=on`, '-device', `virtio-blk-pci,drive=extra${i}`);
  });
  return [
    '-name',
    'swpkg-guest',
    '-machine',
    `${profile.machine},accel=${o.accel}`,
    // The TCG model is chosen per arch (guest-arch.ts says why); KVM passes the host CPU through.
    '-cpu',
    o.accel === 'kvm' ? 'host' : (o.tcgCpu ?? profile.tcgCpu),
    '-m',
    String(o.memoryMiB),
    '-smp',
    String(o.cpus),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-monitor',
    'none',
    '-chardev',
    'stdio,id=ser0,signal=off',
    '-serial',
    'chardev:ser0',
    ...boot,
    ...disks,
    '-netdev',
    o.netdev,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-rtc',
    `base=${o.rtcBase},clock=host`,
  ];
}

function parseBoot(text: string, okMatch: RegExpExecArray, wallMs: number): BootTiming {
  const steps: Record<string, number> = {};
  for (const m of text.matchAll(/SWPKG-BOOT step=([a-z]+) t=([0-9.]+)/g)) {
    if (m[1] !== undefined && m[2] !== undefined) steps[m[1]] = Number(m[2]);
  }
  return { wallMs, uptime: Number(okMatch[1]), steps };
}

/** OVMF and AAVMF print this on the serial console as they hand over to the boot loader. */
const FIRMWARE_HANDOVER = /BdsDxe: starting Boot[0-9A-F]{4}/;

/** Waits for a boot that started at transcript offset `from`: the OK line, the prompt, a shell that answers. */
async function waitForBoot(con: SerialConsole, from: number, started: number, timeoutMs: number, uefi = false): Promise<BootTiming> {
  const deadline = started + timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  let firmwareMs: number | undefined;
  if (uefi) {
    await con.waitFor(FIRMWARE_HANDOVER, left(), { from, failOn: GUEST_FATAL });
    firmwareMs = Date.now() - started;
  }
  const ok = await con.waitFor(BOOT_OK, left(), { from, failOn: GUEST_FATAL });
  const okWall = Date.now() - started;
  await con.waitFor(GUEST_PROMPT, left(), { from: ok.end });
  await con.sync(left());
  const b = parseBoot(con.transcript(from).slice(0, ok.end - from), ok.match, Date.now() - started);
  if (firmwareMs === undefined) return b;
  // The kernel started `uptime` seconds before the OK line was seen; the loader ran between the handover and that.
  return { ...b, firmwareMs, loaderMs: Math.max(0, Math.round(okWall - b.uptime * 1000 - firmwareMs)) };
}

/**
 * Boots the guest under QEMU and returns once its shell answers on the serial
 * console. Every wait is bounded; on any failure QEMU is killed before the
 * error is thrown, and QEMU never outlives this process (killed on exit) or
 * `maxLifetimeMs`.
 */
export async function startGuest(o: StartGuestOptions): Promise<GuestHandle> {
  const reporter = o.reporter ?? silentReporter;
  const artifactsDir = resolve(
    o.artifactsDir ?? join(findRepoRoot(dirname(fileURLToPath(import.meta.url))), GUEST_ARCH_PROFILES[o.arch ?? 'x86_64'].imagesDir),
  );
  const memoryMiB = o.memoryMiB ?? 1024;
  const cpus = o.cpus ?? 1;
  const timeoutMs = o.timeoutMs ?? 180_000;
  const mode = o.network ?? 'restricted';
  const storeImage = resolve(o.storeImage);
  if (!existsSync(storeImage)) {
    throw new SwpkgError('E_NOT_FOUND', `store image ${storeImage} does not exist`, {
      hint: 'make one with createStoreImage',
      details: { path: storeImage },
    });
  }
  if (storeImage === join(artifactsDir, ARTIFACT_FILES.store)) {
    reporter.warn(`booting with the template ${ARTIFACT_FILES.store} itself: the guest will change it; use a fresh store per run`);
  }
  if ((o.boot ?? 'direct') === 'uefi' && (o.systemDisk === undefined || !existsSync(o.systemDisk))) {
    throw new SwpkgError('E_NOT_FOUND', `UEFI boot needs a system disk${o.systemDisk ? `; ${o.systemDisk} does not exist` : ''}`, {
      hint: 'make one with buildUefiDisk (images/uefi-disk.ts)',
      details: { path: o.systemDisk ?? null },
    });
  }
  const rtcBase = o.rtcBase ?? 'utc';
  if (!/^(utc|localtime|\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d)?)$/.test(rtcBase)) {
    throw new SwpkgError('E_USAGE', `rtcBase must be utc, localtime or a date like 2030-01-01T00:00:00, not ${JSON.stringify(rtcBase)}`);
  }
  // One QEMU -cpu value: a model name and optional ,feature=value settings, nothing that could start another option.
  if (o.tcgCpu !== undefined && !/^[A-Za-z][A-Za-z0-9_.-]*(,[A-Za-z0-9_.-]+(=[A-Za-z0-9_.-]+)?)*$/.test(o.tcgCpu)) {
    throw new SwpkgError('E_USAGE', `tcgCpu must be a QEMU CPU model like Nehalem or max,pauth-impdef=on, not ${JSON.stringify(o.tcgCpu)}`);
  }
  const manifest = o.verify === false ? await verifyArtifactsShallow(artifactsDir) : await verifyArtifacts(artifactsDir);
  const arch = manifest.arch ?? 'x86_64';
  if (o.arch !== undefined && o.arch !== arch) {
    throw new SwpkgError('E_USAGE', `${artifactsDir} holds a ${arch} guest, not ${o.arch}`, {
      hint: `build the ${o.arch} images (\`swpkg image build --arch ${o.arch}\`) or point at its artifact folder`,
      details: { artifactsDir, arch, requested: o.arch },
    });
  }
  const profile = GUEST_ARCH_PROFILES[arch];
  const qemu = o.qemu ?? (arch === 'x86_64' ? process.env.SWPKG_QEMU : process.env.SWPKG_QEMU_AARCH64) ?? profile.qemuSystem;
  const ports = normalisePorts(o.hostPorts ?? []);
  // host-loopback mode forwards nothing, so it needs no relay program.
  const netdev = netdevArgument(mode, ports, { socat: mode === 'restricted' ? findRelayProgram() : RELAY_PROGRAM });
  const accelerator = await acceleratorFor(qemu, profile, o.accel ?? 'auto', {
    path: join(artifactsDir, ARTIFACT_FILES.kernel),
    console: profile.console,
  });
  const version = await qemuVersion(qemu);
  const bootMode = o.boot ?? 'direct';
  let uefi: { code: string; vars: string; systemDisk: string } | undefined;
  if (bootMode === 'uefi' && o.systemDisk !== undefined) {
    const systemDisk = resolve(o.systemDisk);
    const code = UEFI_FILES[arch].code;
    if (!existsSync(code)) {
      throw new SwpkgError('E_NOT_FOUND', `UEFI firmware ${code} is not installed`, {
        hint: arch === 'x86_64' ? 'install the Debian package ovmf' : 'install the Debian package qemu-efi-aarch64',
        details: { path: code },
      });
    }
    uefi = { code, vars: await ensureEfiVars(arch, resolve(o.efiVars ?? `${systemDisk}.vars.fd`)), systemDisk };
  }
  const args = qemuArguments({
    profile,
    artifactsDir,
    storeImage,
    ...(o.extraDisks && { extraDisks: o.extraDisks.map((d) => resolve(d)) }),
    accel: accelerator.accel,
    ...(o.tcgCpu !== undefined ? { tcgCpu: o.tcgCpu } : {}),
    memoryMiB,
    cpus,
    netdev,
    append: kernelAppend(mode, o.hostname ?? 'swpkg', profile.console),
    rtcBase,
    ...(uefi ? { uefi } : {}),
  });
  const argv = [qemu, ...args];

  let log: WriteStream | null = null;
  if (o.serialLog) {
    await mkdir(dirname(resolve(o.serialLog)), { recursive: true });
    log = createWriteStream(o.serialLog, { flags: 'a' });
  }
  reporter.info(`starting ${shellQuote(argv)}`);
  const started = Date.now();
  // setpriv (util-linux, always on Debian) execs QEMU with a parent-death signal: if this process is
  // killed outright, QEMU dies with it instead of idling on; the pid stays QEMU's.
  const launcher = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--'] : [];
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(launcher[0] ?? qemu, [...launcher.slice(1), qemu, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-16_384);
  });
  const con = new SerialConsole(child.stdin, child.stdout, (chunk) => log?.write(chunk));
  let exited = false;
  const killOnExit = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  const lifetime = setTimeout(() => killOnExit(), o.maxLifetimeMs ?? 2 * 3600_000);
  lifetime.unref();
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolveExit) => {
    const done = (code: number | null, signal: string | null, why: string): void => {
      if (exited) return;
      exited = true;
      clearTimeout(lifetime);
      process.off('exit', killOnExit);
      con.close(why);
      log?.end();
      resolveExit({ code, signal });
    };
    child.on('error', (e) => done(null, null, `QEMU could not start: ${e.message}`));
    const onGone = (code: number | null, signal: string | null): void => {
      const last = stderr.trim().split('\n').slice(-3).join(' | ');
      done(code, signal, `QEMU exited with ${signal ?? `code ${code}`}${last ? `: ${last}` : ''}`);
    };
    // 'close' comes after the last serial and stderr bytes were read; 'exit' can come before them.
    // Should a pipe stay open past QEMU (nothing of ours holds one), the exit still counts after 2 s.
    child.on('close', onGone);
    child.on('exit', (code, signal) => setTimeout(() => onGone(code, signal), 2_000).unref());
  });
  const kill = async (): Promise<void> => {
    if (!exited) child.kill('SIGKILL');
    await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000).unref())]);
  };

  let boot: BootTiming;
  try {
    boot = await waitForBoot(con, 0, started, timeoutMs, uefi !== undefined);
  } catch (e) {
    await kill();
    const err = e instanceof SwpkgError ? e : new SwpkgError('E_INTERNAL', String(e), { cause: e });
    throw new SwpkgError(err.code, `guest did not boot: ${err.message}`, {
      hint: o.serialLog ? `the serial log is in ${o.serialLog}` : 'pass serialLog to keep the transcript',
      details: { ...err.details, qemuStderr: stderr.slice(-4000), commandLine: shellQuote(argv) },
      cause: e,
    });
  }

  const handle: GuestHandle = {
    arch,
    console: con,
    pid: child.pid ?? -1,
    argv,
    launcher,
    commandLine: shellQuote(argv),
    qemuVersion: version,
    accelerator,
    memoryMiB,
    cpus,
    network: { mode, ports, netdev },
    artifactsDir,
    manifest,
    storeImage,
    serialLog: o.serialLog ?? null,
    boot,
    get exited() {
      return exited;
    },
    exit,
    kill,
    async stop(opts = {}) {
      const limit = opts.timeoutMs ?? 60_000;
      if (exited) {
        const r = await exit;
        return { clean: false, store: null, exitCode: r.code, signal: r.signal };
      }
      const from = con.position;
      const deadline = Date.now() + limit;
      try {
        await con.sync(Math.min(15_000, limit));
        con.write('poweroff\n');
      } catch {
        // A shell that does not answer cannot power off; the kill below is the answer.
      }
      const r = await Promise.race([
        exit,
        new Promise<null>((res) => setTimeout(() => res(null), Math.max(1, deadline - Date.now())).unref()),
      ]);
      if (r === null) {
        await kill();
        const k = await exit;
        return { clean: false, store: SHUTDOWN_OK.exec(con.transcript(from))?.[1] ?? null, exitCode: k.code, signal: k.signal };
      }
      return { clean: true, store: SHUTDOWN_OK.exec(con.transcript(from))?.[1] ?? null, exitCode: r.code, signal: r.signal };
    },
    async reboot(opts = {}) {
      const limit = opts.timeoutMs ?? timeoutMs;
      const t0 = Date.now();
      await con.sync(Math.min(15_000, limit));
      const from = con.position;
      con.write('reboot\n');
      const down = await con.waitFor(SHUTDOWN_OK, Math.max(1, t0 + limit - Date.now()), { from });
      const b = await waitForBoot(con, down.end, t0, limit, uefi !== undefined);
      handle.boot = b;
      return { ...b, store: down.match[1] ?? null };
    },
  };
  return handle;
}

/** KVM runs only the host's own architecture: for another arch there is nothing to probe. */
async function acceleratorFor(
  qemu: string,
  profile: GuestArchProfile,
  requested: 'auto' | 'kvm' | 'tcg',
  kernel: KvmProbeKernel,
): Promise<AcceleratorChoice> {
  const host = hostGuestArch() ?? process.arch;
  if (host === profile.arch) return chooseAccelerator(qemu, requested, profile.machine, kernel);
  if (requested === 'kvm') {
    throw new SwpkgError('E_USAGE', `KVM cannot run an ${profile.arch} guest on this ${host} host`, {
      hint: 'use --accel tcg (or auto)',
      details: { arch: profile.arch, host },
    });
  }
  return { accel: 'tcg', reason: `the guest is ${profile.arch} and this host is ${host}: KVM runs only the host's own architecture` };
}

/** Reads the manifest without re-hashing (for callers that just built and verified the set). */
async function verifyArtifactsShallow(artifactsDir: string): Promise<ArtifactManifest> {
  try {
    return JSON.parse(await readFile(join(artifactsDir, ARTIFACT_FILES.manifest), 'utf8')) as ArtifactManifest;
  } catch (e) {
    throw new SwpkgError('E_NOT_FOUND', `${join(artifactsDir, ARTIFACT_FILES.manifest)} is missing or unreadable`, {
      hint: 'build the images first',
      cause: e,
    });
  }
}

/** The terminal a guest's serial console is attached to when no commands are given. */
export interface GuestTerminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown; pause(): unknown };
  output: NodeJS.WritableStream;
}

export interface BootGuestOptions extends Omit<StartGuestOptions, 'storeImage'> {
  /** The store disk; default a fresh blank one in a temporary folder, deleted afterwards. */
  storeImage?: string;
  /** Shell commands run in the guest in order after boot; then it is powered off. */
  exec?: string[];
  /** Limit for each command; default 120 s. */
  execTimeoutMs?: number;
  /** Without `exec`: the serial console is attached here until QEMU exits (Ctrl-] kills the guest). */
  terminal?: GuestTerminal;
}

export interface GuestCommandResult {
  cmd: string;
  exitCode: number;
  output: string;
  ms: number;
}

export interface BootGuestResult {
  commandLine: string;
  boot: BootTiming;
  accelerator: AcceleratorChoice;
  /** One per `exec` command, in order (empty for an interactive session). */
  results: GuestCommandResult[];
  /** How the guest stopped after the commands; null for an interactive session. */
  stop: StopResult | null;
  /** How QEMU exited at the end of an interactive session; null after commands. */
  exit: { code: number | null; signal: string | null } | null;
}

/**
 * Boots an artifact set once (`swpkg image boot`): with `exec`, runs each
 * command on the serial console and powers the guest off; without, attaches
 * the console to `terminal` until QEMU exits. A blank store is made (and
 * removed) when none is given. Every other option is startGuest's.
 */
export async function bootGuest(o: BootGuestOptions): Promise<BootGuestResult> {
  const reporter = o.reporter ?? silentReporter;
  let tmp: string | null = null;
  try {
    let storeImage = o.storeImage;
    if (storeImage === undefined) {
      tmp = await mkdtemp(join(tmpdir(), 'swpkg-run-'));
      storeImage = (await createStoreImage({ path: join(tmp, 'store.img') })).path;
    }
    const g = await startGuest({ ...o, storeImage, reporter });
    try {
      reporter.info(`booted in ${g.boot.wallMs} ms (guest uptime ${g.boot.uptime} s, ${g.accelerator.accel}: ${g.accelerator.reason})`);
      const base = { commandLine: g.commandLine, boot: g.boot, accelerator: g.accelerator };
      const execs = o.exec ?? [];
      if (execs.length > 0 || o.terminal === undefined) {
        const results: GuestCommandResult[] = [];
        for (const cmd of execs) results.push({ cmd, ...(await g.console.run(cmd, o.execTimeoutMs ?? 120_000)) });
        return { ...base, results, stop: await g.stop(), exit: null };
      }
      return { ...base, results: [], stop: null, exit: await attachTerminal(g, o.terminal) };
    } catch (e) {
      // A command that timed out leaves QEMU running; a library caller's process may live on, so the guest must not.
      if (!g.exited) await g.kill();
      throw e;
    }
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/** The terminal becomes the serial line until QEMU exits; Ctrl-] (0x1d) kills the guest. */
async function attachTerminal(g: GuestHandle, t: GuestTerminal): Promise<{ code: number | null; signal: string | null }> {
  t.output.write(g.console.transcript(0));
  g.console.write('\n');
  const raw = t.input.isTTY === true && t.input.setRawMode !== undefined;
  if (raw) t.input.setRawMode!(true);
  const onData = (d: Buffer): void => {
    if (d.includes(0x1d)) {
      void g.kill();
      return;
    }
    if (!g.exited) g.console.write(d.toString('utf8'));
  };
  t.input.on('data', onData);
  let printed = g.console.position;
  const pump = setInterval(() => {
    const text = g.console.transcript(printed);
    if (text.length > 0) {
      t.output.write(text);
      printed += text.length;
    }
  }, 20);
  try {
    return await g.exit;
  } finally {
    clearInterval(pump);
    t.output.write(g.console.transcript(printed));
    t.input.off('data', onData);
    if (raw) t.input.setRawMode!(false);
    t.input.pause();
  }
}
