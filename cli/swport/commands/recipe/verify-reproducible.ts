import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, verifyReproducible, DEFAULT_TARGET, type ReproducibilityResult } from '../../../../ports/index.js';

export default class RecipeVerifyReproducible extends BaseCommand<ReproducibilityResult> {
  static override summary = 'Build the port twice from clean trees and compare the package bytes.';
  static override description =
    'Both builds skip the cache for the port itself (its build dependencies are inputs and come from the cache). Identical bytes pass; different bytes fail with E_REPRODUCIBILITY and the first differing file. --keep DIR keeps both packages for a closer look (e.g. diffoscope).';
  static override examples = [
    '<%= config.bin %> recipe verify-reproducible lua',
    '<%= config.bin %> recipe verify-reproducible openssl --keep /tmp/openssl-repro',
  ];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    target: Flags.string({ summary: 'Target triple.', default: DEFAULT_TARGET }),
    keep: Flags.directory({ summary: 'Keep both packages here (1/ and 2/).' }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<ReproducibilityResult> {
    const { args, flags } = await this.parse(RecipeVerifyReproducible);
    return verifyReproducible(args.name, {
      paths: defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }),
      target: flags.target,
      reporter: this.reporter(),
      ...(flags.keep ? { keepDir: flags.keep } : {}),
    });
  }

  protected override render(r: ReproducibilityResult): void {
    this.log(
      `${r.name} ${r.version}: reproducible, both builds gave ${r.file} with sha256 ${r.sha256[0]} (${r.seconds.map((s) => `${s.toFixed(1)} s`).join(', ')}${r.cpuSeconds ? `; CPU ${r.cpuSeconds.map((s) => `${s.toFixed(1)} s`).join(', ')}` : ''})`,
    );
    if (r.kept) this.log(`kept     ${r.kept.join(' ')}`);
  }
}
