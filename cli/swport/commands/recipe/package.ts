import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, packageRecipe, DEFAULT_TARGET, type PackageReport } from '../../../../ports/index.js';

export default class RecipePackage extends BaseCommand<PackageReport> {
  static override summary = 'Build the port and write its reproducible .swpkg.';
  static override description =
    "Builds through the cache (see `swport recipe build`) and writes NAME-VERSION-ARCH.swpkg and an SPDX summary into --out. The manifest's depends come from the recipe's runtime dependencies; license, source hashes, toolchain and SOURCE_DATE_EPOCH are recorded in its build info.";
  static override examples = [
    '<%= config.bin %> recipe package lua --out build/packages',
    '<%= config.bin %> recipe package curl --out build/packages --json',
  ];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    out: Flags.directory({ summary: 'Folder to write the package into.', default: 'build/packages' }),
    target: Flags.string({ summary: 'Target triple.', default: DEFAULT_TARGET }),
    cache: Flags.boolean({ summary: 'Use the build cache for this port (--no-cache rebuilds it).', default: true, allowNo: true }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<PackageReport> {
    const { args, flags } = await this.parse(RecipePackage);
    return packageRecipe(args.name, {
      paths: defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }),
      target: flags.target,
      useCache: flags.cache,
      out: flags.out,
      reporter: this.reporter(),
    });
  }

  protected override render(r: PackageReport): void {
    for (const d of r.dependencies) this.log(`  dependency ${d.name}: ${d.cached ? 'cached' : `built in ${d.seconds.toFixed(1)} s`}`);
    this.log(`${r.name} ${r.version} (${r.target}): ${r.cached ? 'from the build cache' : `built in ${r.seconds.toFixed(1)} s`}`);
    this.log(`package  ${r.path}`);
    this.log(`sha256   ${r.sha256} (${r.size} bytes; ${r.files} entries, ${r.installedSize} bytes installed)`);
    const deps = Object.entries(r.depends).map(([n, v]) => `${n}@${v}`);
    if (deps.length > 0) this.log(`depends  ${deps.join(', ')}`);
    this.log(`spdx     ${r.spdxPath}`);
    this.log(`log      ${r.log}`);
  }
}
