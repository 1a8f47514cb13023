import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { SwpkgError } from '../../../../catalog/index.js';
import type { BootGuestOptions, BootGuestResult } from '../../../../images/index.js';

export default class ImageBoot extends BaseCommand<BootGuestResult> {
  static override summary = 'Boot the guest under QEMU: a shell on this terminal, or run commands and power off.';
  static override description = `Boots an artifact set made by \`swpkg image build\` (checked against its manifest.json first) with a store disk for /pkg. Without --store a fresh blank store is made in a temporary folder and deleted afterwards.

Without --exec the serial console is attached to this terminal until the guest powers off; Ctrl-] kills it. With --exec each command runs in the guest's shell in order, its output and exit status are printed, and the guest is powered off; the command exits 1 when any guest command exited non-zero.

The guest reaches the host as 10.0.2.2: --port forwards a guest port to a host port on 127.0.0.1 only. --net restricted (the default) allows nothing else; host-loopback also gives the guest a resolver on the host. KVM is used when a probe shows it works (--accel auto), else TCG.`;
  static override examples = [
    '<%= config.bin %> image boot',
    "<%= config.bin %> image boot --exec 'uname -m' --exec 'pkg --version'",
    "<%= config.bin %> image boot --arch aarch64 --exec 'uname -m' --json",
    "<%= config.bin %> image boot --port 8080:18080 --exec 'wget -qO- http://10.0.2.2:8080/'",
    '<%= config.bin %> image boot --store ./store.img --serial-log ./serial.log --accel tcg',
    "<%= config.bin %> image boot --boot uefi --system-disk ./sys.img --exec 'cat /proc/cmdline'",
  ];
  static override flags = {
    arch: Flags.option({ summary: "Guest architecture (default: the artifact set's).", options: ['x86_64', 'aarch64'] as const })(),
    artifacts: Flags.directory({ summary: 'Artifact set folder (default build/images, aarch64 build/images-aarch64).', exists: true }),
    store: Flags.file({ summary: 'Store disk image for /pkg; the guest writes to it (default: a fresh blank one).', exists: true }),
    port: Flags.string({ summary: 'Forward guest-visible 10.0.2.2:GUEST to 127.0.0.1:HOST (GUEST[:HOST]); repeatable.', multiple: true }),
    net: Flags.option({ summary: 'Guest network.', options: ['restricted', 'host-loopback'] as const })(),
    memory: Flags.integer({ summary: 'Guest memory in MiB (default 1024).', min: 64 }),
    accel: Flags.option({ summary: 'Accelerator (default auto: KVM when it works).', options: ['auto', 'kvm', 'tcg'] as const })(),
    'serial-log': Flags.string({ summary: 'Append the raw serial transcript to this file.' }),
    rtc: Flags.string({ summary: "Guest clock: utc (default), localtime or a date like 2030-01-01T00:00:00 (QEMU's -rtc base)." }),
    timeout: Flags.integer({ summary: 'Limit for the boot, in ms (default 180000).', min: 1 }),
    exec: Flags.string({ summary: 'Run this shell command in the guest, then power off; repeatable, in order.', multiple: true }),
    'exec-timeout': Flags.integer({ summary: 'Limit for each --exec command, in ms.', default: 120_000, min: 1 }),
    boot: Flags.option({
      summary: 'direct (default): QEMU loads kernel and initramfs; uefi: firmware and systemd-boot from --system-disk.',
      options: ['direct', 'uefi'] as const,
    })(),
    'system-disk': Flags.file({ summary: 'A/B system disk for --boot uefi (see `swpkg image system-disk`).', exists: true }),
    'efi-vars': Flags.string({ summary: "The guest's UEFI variable store (default: beside the system disk, copied from the firmware's)." }),
  };

  override async run(): Promise<BootGuestResult> {
    const { flags } = await this.parse(ImageBoot);
    const o: BootGuestOptions = {
      reporter: this.reporter(),
      hostPorts: (flags.port ?? []).map(parsePort),
      exec: flags.exec ?? [],
      execTimeoutMs: flags['exec-timeout'],
      ...(flags.arch !== undefined && { arch: flags.arch }),
      ...(flags.artifacts !== undefined && { artifactsDir: flags.artifacts }),
      ...(flags.store !== undefined && { storeImage: flags.store }),
      ...(flags.net !== undefined && { network: flags.net }),
      ...(flags.memory !== undefined && { memoryMiB: flags.memory }),
      ...(flags.accel !== undefined && { accel: flags.accel }),
      ...(flags['serial-log'] !== undefined && { serialLog: flags['serial-log'] }),
      ...(flags.rtc !== undefined && { rtcBase: flags.rtc }),
      ...(flags.timeout !== undefined && { timeoutMs: flags.timeout }),
      ...(flags.boot !== undefined && { boot: flags.boot }),
      ...(flags['system-disk'] !== undefined && { systemDisk: flags['system-disk'] }),
      ...(flags['efi-vars'] !== undefined && { efiVars: flags['efi-vars'] }),
    };
    // A session on this terminal only when nothing is to be run and nothing reads JSON.
    if ((flags.exec ?? []).length === 0 && !this.jsonEnabled()) o.terminal = { input: process.stdin, output: process.stdout };
    const { bootGuest } = await import('../../../../images/index.js');
    const r = await bootGuest(o);
    if (r.results.some((x) => x.exitCode !== 0)) process.exitCode = 1;
    return r;
  }

  protected override render(r: BootGuestResult): void {
    for (const x of r.results) {
      this.log(`$ ${x.cmd}`);
      if (x.output !== '') this.log(x.output.endsWith('\n') ? x.output.slice(0, -1) : x.output);
      this.log(`[exit ${x.exitCode}, ${x.ms} ms]`);
    }
    if (r.exit) process.stderr.write(`\nQEMU exited (${r.exit.signal ?? `code ${r.exit.code}`})\n`);
  }
}

function parsePort(spec: string): { guest: number; host: number } {
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(spec);
  const guest = Number(m?.[1]);
  const host = Number(m?.[2] ?? m?.[1]);
  if (!m || guest < 1 || guest > 65535 || host < 1 || host > 65535) {
    throw new SwpkgError('E_USAGE', `--port ${spec} is not GUEST[:HOST] with ports 1 to 65535`, {
      hint: 'for example --port 8080 or --port 8080:18080',
      details: { port: spec },
    });
  }
  return { guest, host };
}
