import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, runSmokeTest, DEFAULT_TARGET, type SmokeResult } from '../../../../ports/index.js';

export default class RecipeSmoke extends BaseCommand<SmokeResult> {
  static override summary = "Run the port's smoke test against its built package on this host.";
  static override description =
    "Builds through the cache, installs the package and its runtime dependencies into a fresh root, and runs the recipe's smoke.sh with busybox sh. Under bubblewrap the root is mounted at /pkg/current with nothing from the host but busybox, as in the guest; an HTTP server on 127.0.0.1 is passed in SMOKE_HTTP_URL.";
  static override examples = ['<%= config.bin %> recipe smoke lua', '<%= config.bin %> recipe smoke curl --json'];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    target: Flags.string({ summary: 'Target triple.', default: DEFAULT_TARGET }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<SmokeResult> {
    const { args, flags } = await this.parse(RecipeSmoke);
    return runSmokeTest(args.name, {
      paths: defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }),
      target: flags.target,
      reporter: this.reporter(),
    });
  }

  protected override render(r: SmokeResult): void {
    if (r.output) this.log(r.output);
    this.log(`PASS ${r.name} ${r.version} smoke test (${r.isolation}, ${r.seconds.toFixed(1)} s; installed ${r.installed.join(' ')})`);
  }
}
