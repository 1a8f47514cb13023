import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { buildRecipe, defaultPortsPaths, DEFAULT_TARGET } from '../../../../ports/index.js';

type Result = Awaited<ReturnType<typeof buildRecipe>>;

export default class RecipeBuild extends BaseCommand<Result> {
  static override summary = 'Build the port (and its build dependencies) into the build cache.';
  static override description =
    'Fetches the sources, extracts and patches them, and builds in a sandbox without network (bubblewrap where it works) at fixed paths, statically for the target, with SOURCE_DATE_EPOCH from the recipe. The log goes to a file; a failure prints its tail and path. The cache is keyed by the recipe files, source hashes, dependency package hashes and toolchain, so an unchanged port returns at once.';
  static override examples = ['<%= config.bin %> recipe build lua', '<%= config.bin %> recipe build curl --no-cache'];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    target: Flags.string({ summary: 'Target triple.', default: DEFAULT_TARGET }),
    cache: Flags.boolean({ summary: 'Use the build cache for this port (--no-cache rebuilds it).', default: true, allowNo: true }),
    'keep-work': Flags.boolean({ summary: 'Keep the work tree (sources and staging) after the build.' }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RecipeBuild);
    return buildRecipe(args.name, {
      paths: defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }),
      target: flags.target,
      useCache: flags.cache,
      keepWork: flags['keep-work'],
      reporter: this.reporter(),
    });
  }

  protected override render(r: Result): void {
    this.log(
      `${r.name} ${r.version} (${r.target}): ${r.cached ? `cached, built earlier in ${r.buildSeconds.toFixed(1)} s` : `built in ${r.seconds.toFixed(1)} s`}`,
    );
    this.log(`package  ${r.path}`);
    this.log(`sha256   ${r.sha256} (${r.size} bytes, ${r.files} entries)`);
    this.log(`log      ${r.log}`);
  }
}
