import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { formatTable } from '../../../../edge/index.js';
import { defaultPortsPaths, listPorts, type CatalogPortSummary } from '../../../../ports/index.js';

export default class CatalogList extends BaseCommand<CatalogPortSummary[]> {
  static override summary = 'List the ports with version, license and dependencies.';
  static override description = 'One line per port of ports/catalog.json, in catalog order.';
  static override examples = ['<%= config.bin %> catalog list', '<%= config.bin %> catalog list --json'];
  static override flags = {
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<CatalogPortSummary[]> {
    const { flags } = await this.parse(CatalogList);
    return listPorts(defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }).portsDir);
  }

  protected override render(ports: CatalogPortSummary[]): void {
    const rows = ports.map((p) => [p.name, p.version, p.license, `${p.depends.join(',') || '-'} / ${p.buildDepends.join(',') || '-'}`]);
    for (const line of formatTable([['NAME', 'VERSION', 'LICENSE', 'DEPENDS / BUILD-DEPENDS'], ...rows])) this.log(line);
  }
}
