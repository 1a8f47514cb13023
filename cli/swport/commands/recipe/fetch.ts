import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, fetchRecipe, DEFAULT_TARGET, type FetchReport } from '../../../../ports/index.js';

export default class RecipeFetch extends BaseCommand<FetchReport> {
  static override summary = "Fetch and verify the recipe's sources into the source cache.";
  static override description =
    'Order: the local cache (.cache/sources/<sha256>), the mirror folder (../shared/sources or SWPORT_SOURCE_MIRROR), the Debian source mirror through apt (only the .orig tarball), then the upstream URL. Bytes are kept only when their SHA-256 matches the recipe; a mismatch deletes the download and names the origin and the hash it served.';
  static override examples = ['<%= config.bin %> recipe fetch openssl', '<%= config.bin %> recipe fetch zlib --json'];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    target: Flags.string({ summary: 'Target triple the recipe must support.', default: DEFAULT_TARGET }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<FetchReport> {
    const { args, flags } = await this.parse(RecipeFetch);
    return fetchRecipe(args.name, {
      paths: defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }),
      target: flags.target,
      reporter: this.reporter(),
    });
  }

  protected override render(r: FetchReport): void {
    for (const s of r.sources) {
      this.log(`${r.name}: ${s.sha256} ${s.size} bytes from ${s.from} (${s.origin})`);
      if (s.note) this.log(`  note: ${s.note}`);
    }
  }
}
