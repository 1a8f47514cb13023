import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
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
    const w = Math.max(4, ...ports.map((p) => p.name.length));
    const v = Math.max(7, ...ports.map((p) => p.version.length));
    this.log(`${'NAME'.padEnd(w)}  ${'VERSION'.padEnd(v)}  ${'LICENSE'.padEnd(14)}  DEPENDS / BUILD-DEPENDS`);
    for (const p of ports) {
      const deps = [p.depends.join(',') || '-', p.buildDepends.join(',') || '-'].join(' / ');
      this.log(`${p.name.padEnd(w)}  ${p.version.padEnd(v)}  ${p.license.padEnd(14)}  ${deps}`);
    }
  }
}
