import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { parseDuration, type CatalogSigned } from '../../../../catalog/index.js';
import { indexToFile } from '../../../../publishing/index.js';

interface Result {
  out: string;
  version: number;
  packages: number;
  expires: string;
}

export default class RepoIndex extends BaseCommand<Result> {
  static override summary = 'Index a folder of packages into an unsigned catalog.';
  static override description =
    'Verifies every .swpkg and writes a catalog document with no signatures; sign it with `swpkg repo sign` (once per key when the root needs several). The path of each entry is packages/NAME-VERSION-ARCH.SHA256.swpkg: serve each package under that name. `repo publish` does index, sign and publish in one step.';
  static override examples = ['<%= config.bin %> repo index ./packages --name main --out catalog.json'];
  static override args = { packages: Args.directory({ description: 'Folder of .swpkg files.', required: true, exists: true }) };
  static override flags = {
    out: Flags.file({ summary: 'Catalog file to write.', required: true }),
    name: Flags.string({ summary: 'Repository name.', required: true }),
    expires: Flags.string({ summary: 'How long the catalog stays valid.', default: '14d' }),
    'previous-version': Flags.integer({ summary: 'Version of the last published catalog (the new one is higher).', min: 0 }),
    jobs: Flags.integer({
      summary: 'Packages verified at once, in worker threads (1: one at a time, in the main thread).',
      description:
        'Default: one worker per 32 packages, at most one per CPU core, and none below 64 packages (starting a worker costs about as much as verifying 20 small ones).',
      min: 1,
    }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RepoIndex);
    const signed: CatalogSigned = await indexToFile({
      packagesDir: args.packages,
      out: flags.out,
      name: flags.name,
      expiresIn: parseDuration(flags.expires, '--expires'),
      reporter: this.reporter(),
      ...(flags['previous-version'] !== undefined && { previousVersion: flags['previous-version'] }),
      ...(flags.jobs !== undefined && { jobs: flags.jobs }),
    });
    return { out: flags.out, version: signed.version, packages: signed.packages.length, expires: signed.expires };
  }

  protected override render(r: Result): void {
    this.log(`${r.out}: catalog v${r.version}, ${r.packages} package(s), expires ${r.expires} (unsigned)`);
  }
}
