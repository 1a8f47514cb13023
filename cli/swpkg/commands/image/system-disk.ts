import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import type { UefiDiskResult } from '../../../../images/index.js';

export default class ImageSystemDisk extends BaseCommand<UefiDiskResult> {
  static override summary =
    'Build an A/B system disk (GPT: EFI system partition with systemd-boot, base slots A and B) from an artifact set.';
  static override description = `Slot A holds the artifact set made by \`swpkg image build\` (checked against its manifest.json first) and is the loader's first choice; slot B starts empty, for \`pkg system update\` to fill. Boot the disk through the firmware and boot loader with \`swpkg image boot --boot uefi --system-disk FILE\`.

--tries-a gives slot A a boot-counted entry (slotA+N.conf) instead of a confirmed one, to exercise boot assessment.`;
  static override examples = [
    '<%= config.bin %> image system-disk --out /tmp/sys.img',
    "<%= config.bin %> image boot --boot uefi --system-disk /tmp/sys.img --exec 'pkg system status'",
  ];
  static override flags = {
    out: Flags.string({ summary: 'The disk image to write (sparse).', required: true }),
    artifacts: Flags.directory({ summary: 'Artifact set folder (default build/images).', exists: true }),
    net: Flags.option({
      summary: 'Guest network written into the kernel command line.',
      options: ['restricted', 'host-loopback'] as const,
    })(),
    hostname: Flags.string({ summary: "The guest's host name (default swpkg)." }),
    'tries-a': Flags.integer({ summary: "Boot tries for slot A's entry (default: none, installed good).", min: 1, max: 9 }),
  };

  override async run(): Promise<UefiDiskResult> {
    const { flags } = await this.parse(ImageSystemDisk);
    const { buildSystemDiskFromArtifacts } = await import('../../../../images/index.js');
    return buildSystemDiskFromArtifacts({
      out: flags.out,
      ...(flags.artifacts !== undefined && { artifactsDir: flags.artifacts }),
      ...(flags.net !== undefined && { network: flags.net }),
      ...(flags.hostname !== undefined && { hostname: flags.hostname }),
      ...(flags['tries-a'] !== undefined && { triesA: flags['tries-a'] }),
    });
  }

  protected override render(r: UefiDiskResult): void {
    this.log(`${r.path}: ${r.partitions.map((p) => `${p.name} ${Math.floor(p.size / 2 ** 20)} MiB`).join(', ')}`);
  }
}
