import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, inspectPort, type PortInspection } from '../../../../ports/index.js';

export default class CatalogInspect extends BaseCommand<PortInspection> {
  static override summary = 'Show one port: version, sources and pins, patches, build, dependencies.';
  static override description = 'Reads the recipe of NAME and prints what it builds from and how, with its build order.';
  static override examples = ['<%= config.bin %> catalog inspect curl', '<%= config.bin %> catalog inspect nginx --json'];
  static override args = { name: Args.string({ description: 'Port name.', required: true }) };
  static override flags = {
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<PortInspection> {
    const { args, flags } = await this.parse(CatalogInspect);
    return inspectPort(defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }).portsDir, args.name);
  }

  protected override render(p: PortInspection): void {
    this.log(`${p.name} ${p.version}${p.upstreamVersion !== p.version ? ` (upstream ${p.upstreamVersion})` : ''}: ${p.summary}`);
    this.log(`license    ${p.license}`);
    if (p.homepage) this.log(`homepage   ${p.homepage}`);
    this.log(`recipe     ${p.path}/recipe.json (sha256 ${p.recipeSha256})`);
    for (const s of p.sources) {
      this.log(`source     ${s.url}`);
      this.log(`  sha256   ${s.sha256}`);
      if (s.debian) this.log(`  debian   ${s.debian.package} ${s.debian.file}`);
      if (s.note) this.log(`  note     ${s.note}`);
    }
    this.log(`patches    ${p.patches.join(' ') || '-'}`);
    this.log(`build      ${p.build.system}${p.build.script ? ` (${p.build.script})` : ''}`);
    this.log(`targets    ${p.targets.join(' ')}`);
    this.log(`depends    ${p.depends.join(' ') || '-'}`);
    this.log(`build deps ${p.buildDepends.join(' ') || '-'} (order: ${p.buildOrder.join(' ')})`);
    this.log(`smoke      ${p.smoke}`);
  }
}
