import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, recipeManifest, DEFAULT_TARGET } from '../../../../ports/index.js';
import type { PackageMeta } from '../../../../catalog/index.js';

type Result = PackageMeta & { file: string };

export default class RecipeManifest extends BaseCommand<Result> {
  static override summary = 'Show the package metadata a build of the recipe produces.';
  static override description =
    'Name, version, arch, ABI, license, runtime depends and build info (recipe hash, pinned sources, toolchain, SOURCE_DATE_EPOCH, target). The file list is known only after a build: `swport recipe package` prints it.';
  static override examples = ['<%= config.bin %> recipe manifest curl', '<%= config.bin %> recipe manifest tzdata --json'];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    target: Flags.string({ summary: 'Target triple.', default: DEFAULT_TARGET }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RecipeManifest);
    return recipeManifest(defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }).portsDir, args.name, flags.target);
  }

  protected override render(m: Result): void {
    this.log(JSON.stringify(m, null, 2));
  }
}
