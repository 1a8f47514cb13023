import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, validatePortsCatalog, type CatalogValidation } from '../../../../ports/index.js';

export default class CatalogValidate extends BaseCommand<CatalogValidation> {
  static override summary = 'Check every recipe, the dependency graph and the port folders.';
  static override description =
    'Parses ports/catalog.json and every recipe strictly (missing or unknown fields are errors), checks that each listed folder exists with the patches, build script and smoke test it names, that every dependency is a port, and that the dependency graph has no cycle. Prints the build order.';
  static override examples = ['<%= config.bin %> catalog validate', '<%= config.bin %> catalog validate --ports ./ports --json'];
  static override flags = {
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<CatalogValidation> {
    const { flags } = await this.parse(CatalogValidate);
    return validatePortsCatalog(defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }).portsDir, this.reporter());
  }

  protected override render(r: CatalogValidation): void {
    this.log(`${r.ports.length} ports valid; build order: ${r.order.join(' ')}`);
  }
}
