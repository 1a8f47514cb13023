import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../shared/base-command.js';
import { readPackageHeader, sha256File, type DetachedSignature, type PackageManifest } from '../../../catalog/index.js';

interface Result {
  path: string;
  sha256: string;
  size: number;
  manifest: PackageManifest;
  signature?: DetachedSignature;
}

export default class Inspect extends BaseCommand<Result> {
  static override summary = "Show a package's manifest without installing it.";
  static override description =
    'Reads only the manifest and signature entries. Use `swpkg verify` to check every file against the manifest.';
  static override examples = [
    '<%= config.bin %> inspect hello-1.0.0-x86_64.swpkg',
    '<%= config.bin %> inspect hello-1.0.0-x86_64.swpkg --files --json',
  ];
  static override args = { file: Args.file({ description: '.swpkg file', required: true, exists: true }) };
  static override flags = { files: Flags.boolean({ summary: 'List every file with mode, size and SHA-256.' }) };

  private showFiles = false;

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(Inspect);
    this.showFiles = flags.files;
    const { manifest, signature } = await readPackageHeader(args.file);
    const { sha256, size } = await sha256File(args.file);
    return { path: args.file, sha256, size, manifest, ...(signature ? { signature } : {}) };
  }

  protected override render(r: Result): void {
    const m = r.manifest;
    this.log(`${m.name} ${m.version} (${m.arch}, ${m.abi})`);
    this.log(`  ${m.summary}`);
    this.log(`  license      ${m.license}${m.homepage ? `\n  homepage     ${m.homepage}` : ''}`);
    this.log(
      `  depends      ${
        Object.entries(m.depends)
          .map(([n, r2]) => `${n}@${r2}`)
          .join(', ') || '-'
      }`,
    );
    if (m.provides.length) this.log(`  provides     ${m.provides.join(', ')}`);
    if (m.conflicts.length) this.log(`  conflicts    ${m.conflicts.join(', ')}`);
    this.log(`  files        ${m.files.length} entries, ${m.installedSize} bytes installed`);
    this.log(`  package      ${r.size} bytes, sha256 ${r.sha256}`);
    this.log(
      `  signature    ${r.signature?.signatures.length ? `key ${r.signature.signatures.map((s) => s.keyid).join(', ')}` : 'unsigned'}`,
    );
    if (m.build) this.log(`  build        ${JSON.stringify(m.build)}`);
    if (this.showFiles) {
      for (const f of m.files) {
        const mode = f.mode.toString(8).padStart(4, '0');
        this.log(
          `  ${f.type.padEnd(7)} ${mode} ${String(f.size ?? '').padStart(10)} ${f.sha256 ?? ''} ${f.path}${f.target ? ` -> ${f.target}` : ''}`,
        );
      }
    }
  }
}
