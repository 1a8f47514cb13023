import { startGuest, type BootTiming, type GuestHandle, type PortForward } from '../../images/index.js';
import type { GuestArch } from '../../kernel/index.js';
import { AcceptanceFailure, check, errorText, q } from './util.js';

/** One guest command as the evidence shows it. */
export interface CommandRecord {
  cmd: string;
  exitCode: number | null;
  expected: string;
  ms: number;
  output: string;
  at: string;
}

/** What a scenario did: its guest commands, host steps and notes, in order. */
export class ScenarioTranscript {
  readonly entries: Array<{ kind: 'guest'; record: CommandRecord } | { kind: 'host' | 'note'; text: string; at: string }> = [];

  guest(record: CommandRecord): void {
    this.entries.push({ kind: 'guest', record });
  }

  host(text: string): void {
    this.entries.push({ kind: 'host', text, at: new Date().toISOString() });
  }

  note(text: string): void {
    this.entries.push({ kind: 'note', text, at: new Date().toISOString() });
  }

  get commands(): CommandRecord[] {
    return this.entries.flatMap((e) => (e.kind === 'guest' ? [e.record] : []));
  }

  render(): string {
    const out: string[] = [];
    for (const e of this.entries) {
      if (e.kind === 'guest') {
        const r = e.record;
        out.push(`[${r.at}] guest$ ${r.cmd}`);
        if (r.output !== '') out.push(r.output.replace(/\n$/, ''));
        out.push(`  -> exit ${r.exitCode ?? 'none (timed out or guest gone)'} (expected ${r.expected}), ${r.ms} ms`);
      } else {
        out.push(`[${e.at}] ${e.kind === 'host' ? 'host: ' : '# '}${e.text}`);
      }
    }
    return out.join('\n') + '\n';
  }
}

/** `pkg --json` as the guest ran it. */
export interface PkgRun {
  exitCode: number;
  /** The JSON document on stdout, when there was one. */
  json:
    | { ok: boolean; result?: unknown; warnings?: string[]; error?: { code: string; message: string; hint?: string; details?: unknown } }
    | undefined;
  stdout: string;
  stderr: string;
  ms: number;
}

export type Expect = number | 'nonzero' | 'any';

export interface BootRecord {
  kind: 'boot' | 'reboot' | 'boot after power cut';
  at: string;
  wallMs: number;
  uptime: number;
  steps: Record<string, number>;
  /** UEFI boots: firmware to loader handover, and loader to kernel start (ms). */
  firmwareMs?: number;
  loaderMs?: number;
}

export interface GuestSessionOptions {
  arch: GuestArch;
  artifactsDir: string;
  storeImage: string;
  serialLog: string;
  hostPorts: PortForward[];
  memoryMiB: number;
  cpus: number;
  bootTimeoutMs: number;
  /** QEMU is killed after this long whatever happens. */
  maxLifetimeMs: number;
  onInfo: (line: string) => void;
}

const STDERR_MARK = '@@ACC-STDERR@@';

/**
 * The guest under test and every command sent to it. Each command is bounded
 * by a timeout and its exit status is checked against what the scenario
 * expects; everything lands in the current scenario's transcript.
 */
export class GuestSession {
  guest: GuestHandle | undefined;
  readonly boots: BootRecord[] = [];
  transcript = new ScenarioTranscript();
  private bootCount = 0;
  private systemDisk: string | null = null;

  constructor(private readonly o: GuestSessionOptions) {}

  /** How this session boots (arch, artifact set, store disk, serial log): a scenario may start another guest like it. */
  get options(): Readonly<GuestSessionOptions> {
    return this.o;
  }

  /** The A/B system disk the guest boots from through UEFI, or null for direct `-kernel` boot. */
  get uefiSystemDisk(): string | null {
    return this.systemDisk;
  }

  /**
   * From the next boot on, boot through the firmware and systemd-boot from
   * this A/B system disk (the same store disk, forwards and limits), or
   * directly with `-kernel` again (null). A reboot or power cut keeps the mode.
   */
  useSystemDisk(path: string | null): void {
    if (this.up) throw new AcceptanceFailure('the boot mode can change only while the guest is off');
    this.systemDisk = path;
  }

  get up(): boolean {
    return this.guest !== undefined && !this.guest.exited;
  }

  async boot(kind: BootRecord['kind'] = 'boot', extra: { extraDisks?: string[] } = {}): Promise<BootTiming> {
    if (this.up) throw new AcceptanceFailure('boot requested while the guest is still running');
    this.o.onInfo(`guest: starting QEMU (${kind})`);
    this.guest = await startGuest({
      arch: this.o.arch,
      artifactsDir: this.o.artifactsDir,
      storeImage: this.o.storeImage,
      ...(extra.extraDisks && { extraDisks: extra.extraDisks }),
      hostPorts: this.o.hostPorts,
      network: 'restricted',
      memoryMiB: this.o.memoryMiB,
      cpus: this.o.cpus,
      timeoutMs: this.o.bootTimeoutMs,
      serialLog: this.o.serialLog,
      maxLifetimeMs: this.o.maxLifetimeMs,
      ...(this.systemDisk ? { boot: 'uefi' as const, systemDisk: this.systemDisk } : {}),
      // The suite verified the artifact set right after building it.
      verify: this.bootCount > 0 ? false : true,
    });
    this.bootCount++;
    this.record(kind, this.guest.boot);
    await this.prepare();
    return this.guest.boot;
  }

  /** Starts the guest again if a failed scenario left it dead. */
  async ensureUp(): Promise<void> {
    if (this.up) return;
    this.transcript.note('the guest was not running: booting it again with the same store disk');
    await this.boot('boot');
  }

  /** `timeoutMs` bounds the whole way back to a shell: a UEFI trial that fails reboots by itself, once per try. */
  async reboot(o: { timeoutMs?: number } = {}): Promise<BootTiming & { store: string | null }> {
    const g = this.requireGuest();
    this.transcript.note('reboot (guest `reboot`: shutdown script, then a fresh boot of the same disks)');
    const r = await g.reboot(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {});
    this.record('reboot', r);
    this.transcript.note(`rebooted: shell after ${r.wallMs} ms; the shutdown script reported store=${r.store ?? 'nothing'}`);
    await this.prepare();
    return r;
  }

  /** SIGKILL for QEMU (no shutdown, no sync), then a fresh boot on the same store disk. */
  async powerCutAndBoot(): Promise<BootTiming> {
    const g = this.requireGuest();
    this.transcript.note(`power cut: SIGKILL to QEMU pid ${g.pid}`);
    await g.kill();
    check(g.exited, 'QEMU did not exit after SIGKILL');
    return this.boot('boot after power cut');
  }

  async stop(): Promise<void> {
    if (!this.guest || this.guest.exited) return;
    const r = await this.guest.stop({ timeoutMs: 90_000 });
    this.o.onInfo(`guest: stopped (${r.clean ? 'clean poweroff' : 'killed'}, store ${r.store ?? 'unknown'})`);
  }

  async kill(): Promise<void> {
    if (this.guest && !this.guest.exited) await this.guest.kill();
  }

  /**
   * Runs one shell command in the guest and checks its exit status
   * (default: must be 0). A timeout interrupts it and fails the scenario.
   */
  async sh(
    cmd: string,
    o: { timeoutMs?: number; expect?: Expect; quiet?: boolean } = {},
  ): Promise<{ exitCode: number; output: string; ms: number }> {
    const g = this.requireGuest();
    const expect = o.expect ?? 0;
    const at = new Date().toISOString();
    const timeoutMs = o.timeoutMs ?? 120_000;
    let r: { exitCode: number; output: string; ms: number };
    try {
      r = await g.console.run(cmd, timeoutMs);
    } catch (e) {
      const partial = (e as { details?: { output?: unknown } }).details?.output;
      this.transcript.guest({
        cmd,
        exitCode: null,
        expected: String(expect),
        ms: timeoutMs,
        output: typeof partial === 'string' ? partial : '',
        at,
      });
      throw new AcceptanceFailure(`guest command did not complete: ${cmd.slice(0, 160)} (${errorText(e)})`);
    }
    this.transcript.guest({ cmd, exitCode: r.exitCode, expected: String(expect), ms: r.ms, output: r.output, at });
    const ok = expect === 'any' || (expect === 'nonzero' ? r.exitCode !== 0 : r.exitCode === expect);
    if (!ok) {
      throw new AcceptanceFailure(
        `guest command exited ${r.exitCode}, expected ${expect}: ${cmd.slice(0, 200)}`,
        r.output.split('\n').slice(-30).join('\n'),
      );
    }
    return r;
  }

  /**
   * `pkg --json ARGS` in the guest: stdout (the JSON document) and stderr
   * (progress, warnings) are kept apart, and the exit status is checked.
   */
  async pkg(args: string, o: { timeoutMs?: number; expect?: Expect; env?: string } = {}): Promise<PkgRun> {
    const env = o.env ? `${o.env} ` : '';
    const cmd = `${env}pkg --json ${args} >/tmp/acc/out 2>/tmp/acc/err; rc=$?; cat /tmp/acc/out; echo ${STDERR_MARK}; cat /tmp/acc/err; (exit $rc)`;
    const r = await this.sh(cmd, { timeoutMs: o.timeoutMs ?? 300_000, expect: o.expect ?? 0 });
    const at = r.output.lastIndexOf(`${STDERR_MARK}\n`);
    const stdout = at >= 0 ? r.output.slice(0, at) : r.output;
    const stderr = at >= 0 ? r.output.slice(at + STDERR_MARK.length + 1) : '';
    let json: PkgRun['json'];
    try {
      json = stdout.trim() === '' ? undefined : (JSON.parse(stdout) as PkgRun['json']);
    } catch {
      json = undefined;
    }
    return { exitCode: r.exitCode, json, stdout, stderr, ms: r.ms };
  }

  /** A `pkg --json` call that must succeed; returns its `result`. */
  async pkgOk<T>(args: string, o: { timeoutMs?: number; env?: string } = {}): Promise<T> {
    const r = await this.pkg(args, { ...o, expect: 0 });
    check(r.json?.ok === true, `pkg ${args}: exit 0 but no {ok:true} JSON document on stdout`, r.stdout.slice(0, 2000));
    return r.json.result as T;
  }

  /** A `pkg --json` call that must be refused with exit code `exit` and error code `code`. */
  async pkgRefused(args: string, exit: number, code: string, o: { timeoutMs?: number } = {}): Promise<PkgRun> {
    const r = await this.pkg(args, { ...o, expect: exit });
    check(r.json?.ok === false, `pkg ${args}: no {ok:false} JSON document`, r.stdout.slice(0, 2000));
    check(
      r.json.error?.code === code,
      `pkg ${args}: error code ${r.json.error?.code ?? 'none'}, expected ${code}`,
      JSON.stringify(r.json.error),
    );
    return r;
  }

  /**
   * A digest of everything that makes up the installed state: every file,
   * link and folder under /pkg/store and /pkg/generations, and where
   * /pkg/current points. Equal digests mean an unchanged store.
   */
  async storeDigest(): Promise<{ digest: string; current: string }> {
    const r = await this.sh('sh /tmp/acc/store-digest.sh', { timeoutMs: 300_000 });
    const m = /^digest ([0-9a-f]{64})\ncurrent (.*)$/m.exec(r.output);
    check(m !== null, 'store digest script printed no digest', r.output);
    return { digest: m[1]!, current: m[2]! };
  }

  /** Writes a text file in the guest through the serial console (the trusted channel). */
  async writeFile(path: string, text: string): Promise<void> {
    const marker = 'ACC_EOF_7f3a';
    check(!text.includes(marker), 'file text contains the here-document marker');
    await this.sh(`cat > ${q(path)} <<'${marker}'\n${text.endsWith('\n') ? text : `${text}\n`}${marker}`, { timeoutMs: 120_000 });
  }

  private requireGuest(): GuestHandle {
    if (!this.guest || this.guest.exited) throw new AcceptanceFailure('the guest is not running');
    return this.guest;
  }

  private record(kind: BootRecord['kind'], b: BootTiming): void {
    this.boots.push({
      kind,
      at: new Date().toISOString(),
      wallMs: b.wallMs,
      uptime: b.uptime,
      steps: b.steps,
      ...(b.firmwareMs !== undefined ? { firmwareMs: b.firmwareMs } : {}),
      ...(b.loaderMs !== undefined ? { loaderMs: b.loaderMs } : {}),
    });
    this.o.onInfo(`guest: shell answers after ${(b.wallMs / 1000).toFixed(1)} s (guest uptime at boot marker ${b.uptime} s)`);
  }

  /** Per boot: /tmp is the initramfs, so the helper scripts are written again after every boot. */
  private async prepare(): Promise<void> {
    await this.sh('mkdir -p /tmp/acc', { timeoutMs: 30_000 });
    await this.writeFile('/tmp/acc/store-digest.sh', STORE_DIGEST_SCRIPT);
  }
}

/**
 * Hashes the installed state (busybox sh): file contents, link targets,
 * folder names and modes, and the `current` link. Missing folders (a fresh
 * store) hash as empty. Output: `digest HEX` and `current TARGET`.
 */
const STORE_DIGEST_SCRIPT = `cd /pkg || exit 1
{
  for d in store generations; do
    [ -d "$d" ] || continue
    find "$d" -type f | sort | xargs -r sha256sum
    find "$d" -type l | sort | while read -r l; do echo "link $l -> $(readlink "$l")"; done
    find "$d" -type d | sort | while read -r x; do echo "dir $x $(stat -c %a "$x")"; done
  done
  echo "current -> $(readlink current 2>/dev/null)"
} > /tmp/acc/store-listing
echo "digest $(sha256sum < /tmp/acc/store-listing | cut -d ' ' -f 1)"
echo "current $(readlink current 2>/dev/null || echo none)"
`;
