import { Args, Flags } from '@oclif/core';
import { join } from 'node:path';
import { BaseCommand, usageError } from '../../../shared/base-command.js';
import { parseDuration } from '../../../../catalog/index.js';
import {
  publishSystemRelease,
  readPrivateKey,
  SYSTEM_ARTIFACT_FILES,
  type PublishSystemReleaseResult,
} from '../../../../publishing/index.js';

export default class SystemPublish extends BaseCommand<PublishSystemReleaseResult> {
  static override summary = 'Publish a signed system release: a kernel, initramfs and base image for A/B system updates.';
  static override description = `Copies the three files into system/ARCH/VERSION/ and writes system/ARCH.json, signed with release keys the published root trusts (add one with \`swpkg repo rotate-root --release-key\`). The version goes up by one unless --version says otherwise and can never go down. Guests install it with \`pkg system update\`.`;
  static override examples = [
    '<%= config.bin %> system publish ./webroot --key keys/release/swpkg.key --images build/images',
    '<%= config.bin %> system publish ./webroot --key keys/release/swpkg.key --arch aarch64 --kernel vmlinuz --initramfs initramfs.cpio.gz --base base.img --version 7',
  ];
  static override args = { root: Args.directory({ description: 'Published web root.', required: true, exists: true }) };
  static override flags = {
    key: Flags.file({ summary: 'Release key(s) (private).', required: true, multiple: true, exists: true }),
    arch: Flags.string({ summary: 'Architecture the release is for.', default: 'x86_64', options: ['x86_64', 'aarch64'] }),
    images: Flags.directory({
      summary: 'A guest artifact folder (vmlinuz, initramfs.cpio.gz, base.img); the file flags override it.',
      exists: true,
    }),
    kernel: Flags.file({ summary: 'Kernel image.', exists: true }),
    initramfs: Flags.file({ summary: 'Initramfs.', exists: true }),
    base: Flags.file({ summary: 'Base disk image (ext4).', exists: true }),
    version: Flags.integer({ summary: 'Release version (default: the published one + 1).', min: 1 }),
    expires: Flags.string({ summary: 'How long the release document stays valid.', default: '90d' }),
  };

  override async run(): Promise<PublishSystemReleaseResult> {
    const { args, flags } = await this.parse(SystemPublish);
    const pick = (name: 'kernel' | 'initramfs' | 'base'): string => {
      const f = flags[name] ?? (flags.images ? join(flags.images, SYSTEM_ARTIFACT_FILES[name]) : undefined);
      if (f === undefined)
        throw usageError(`--${name} (or --images) is required`, 'name the file, or pass --images with a guest artifact folder');
      return f;
    };
    const keys = await Promise.all(flags.key.map((k) => readPrivateKey(k)));
    return publishSystemRelease({
      out: args.root,
      keys,
      arch: flags.arch,
      files: { kernel: pick('kernel'), initramfs: pick('initramfs'), base: pick('base') },
      expiresIn: parseDuration(flags.expires, '--expires'),
      ...(flags.version !== undefined && { version: flags.version }),
    });
  }

  protected override render(r: PublishSystemReleaseResult): void {
    this.log(`${r.path}: system release ${r.version} for ${r.arch} (repository ${r.repo}) published`);
    for (const [name, a] of Object.entries(r.artifacts)) this.log(`  ${name.padEnd(9)} ${a.path} ${a.size} bytes sha256:${a.sha256}`);
  }
}
