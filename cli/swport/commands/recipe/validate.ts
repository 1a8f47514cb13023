import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, validateRecipe, DEFAULT_TARGET } from '../../../../ports/index.js';

interface Result {
  name: string;
  version: string;
  recipe: string;
  recipeSha256: string;
  target: string;
  /** The port and everything it needs, each after its dependencies. */
  buildOrder: string[];
}

export default class RecipeValidate extends BaseCommand<Result> {
  static override summary = 'Check one recipe without building it.';
  static override description =
    'Parses the recipe strictly (missing or unknown fields are errors), checks that its patches, build script and smoke test exist, that its dependencies are ports without a cycle, and that it supports the target.';
  static override examples = ['<%= config.bin %> recipe validate lua', '<%= config.bin %> recipe validate curl --target x86_64-linux-musl'];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    target: Flags.string({ summary: 'Target triple to check support for.', default: DEFAULT_TARGET }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RecipeValidate);
    const l = await validateRecipe(
      defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }).portsDir,
      args.name,
      flags.target,
    );
    return {
      name: l.recipe.name,
      version: l.recipe.version,
      recipe: l.recipePath,
      recipeSha256: l.recipeSha256,
      target: flags.target,
      buildOrder: l.buildOrder,
    };
  }

  protected override render(r: Result): void {
    this.log(`${r.name} ${r.version}: recipe valid for ${r.target} (${r.recipe})`);
    this.log(`build order: ${r.buildOrder.join(' ')}`);
  }
}
