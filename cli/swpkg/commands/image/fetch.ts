import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import type { KernelArtifacts } from '../../../../images/index.js';

type FetchResult = Pick<KernelArtifacts, 'arch' | 'kernel' | 'loadOrder' | 'vmlinuz'> & { reused: boolean };

export default class ImageFetch extends BaseCommand<FetchResult> {
  static override summary = 'Fetch and unpack the pinned guest kernel, busybox and (aarch64) Node runtime.';
  static override description = `Reads the pins in kernel/kernel.json (aarch64: kernel/kernel-aarch64.json), gets each package by its SHA-256 from the source mirror (../shared/sources or $SWPORT_SOURCE_MIRROR), else the download cache (~/.cache/swpkg/downloads), else apt-get download / npm pack (not with --no-apt), checks it, and unpacks the kernel, its modules in load order and busybox into build/kernel/ (aarch64: build/kernel-aarch64/). Nothing is unpacked again while the pin file is unchanged, unless --force. \`swpkg image build\` does this itself; run it alone to fetch ahead, offline later.`;
  static override examples = [
    '<%= config.bin %> image fetch',
    '<%= config.bin %> image fetch --arch aarch64 --no-apt',
    '<%= config.bin %> image fetch --force --json',
  ];
  static override flags = {
    arch: Flags.option({ summary: 'Guest architecture.', options: ['x86_64', 'aarch64'] as const, default: 'x86_64' })(),
    force: Flags.boolean({ summary: 'Unpack again even when the output matches the pins.' }),
    apt: Flags.boolean({
      summary: 'Allow apt-get download / npm pack for packages not found locally (--no-apt forbids it).',
      default: true,
      allowNo: true,
    }),
  };

  override async run(): Promise<FetchResult> {
    const { flags } = await this.parse(ImageFetch);
    const { fetchGuestPackages } = await import('../../../../images/index.js');
    const r = await fetchGuestPackages({ arch: flags.arch, force: flags.force, allowApt: flags.apt, reporter: this.reporter() });
    return { arch: r.arch, kernel: r.kernel, loadOrder: r.loadOrder, vmlinuz: r.vmlinuz, reused: r.reused };
  }

  protected override render(r: FetchResult): void {
    this.log(`${r.reused ? 'up to date' : 'unpacked  '}  ${r.arch} kernel ${r.kernel.package} ${r.kernel.version} (${r.kernel.release})`);
    this.log(`vmlinuz ${r.vmlinuz.size} bytes  ${r.vmlinuz.sha256}`);
    this.log(`modules in load order: ${r.loadOrder.join(' ')}`);
  }
}
