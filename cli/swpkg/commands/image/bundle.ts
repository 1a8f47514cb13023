import { Args } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import type { PkgBundle } from '../../../../images/index.js';

export default class ImageBundle extends BaseCommand<PkgBundle> {
  static override summary = 'Bundle the pkg client into one file, the build the guest runs.';
  static override description = `Bundles userland/cli/main.ts with esbuild into one minified ESM file that runs on Node 24 with no node_modules. It is the one client build: the image builder puts this file on the guest's base disk, and the integration tests and bench/client run it, so what is tested and measured is byte for byte what the guest runs.`;
  static override examples = ['<%= config.bin %> image bundle build/pkg.mjs', '<%= config.bin %> image bundle /tmp/pkg.mjs --json'];
  static override args = { out: Args.string({ description: 'File to write (its folder is created).', required: true }) };

  override async run(): Promise<PkgBundle> {
    const { args } = await this.parse(ImageBundle);
    const { bundlePkgClient, findRepoRoot } = await import('../../../../images/index.js');
    return bundlePkgClient(findRepoRoot(import.meta.dirname), args.out);
  }

  protected override render(r: PkgBundle): void {
    this.log(`${r.file}: ${r.bytes} bytes, pkg ${r.version}`);
  }
}
