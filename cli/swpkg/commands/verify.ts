import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../shared/base-command.js';
import { readPublicKey, verifyPackageFile, verifyPackageSignature } from '../../../catalog/index.js';

interface Result {
  path: string;
  name: string;
  version: string;
  sha256: string;
  size: number;
  files: number;
  signature: 'verified' | 'unsigned' | 'not checked';
  signedBy?: string;
}

export default class Verify extends BaseCommand<Result> {
  static override summary = 'Check a package: every file against its manifest, paths, and optionally its signature.';
  static override description =
    'Streams the whole archive, hashing each file and refusing unsafe paths, links, devices and setuid bits. Exit 3 on any failure.';
  static override examples = [
    '<%= config.bin %> verify hello-1.0.0-x86_64.swpkg',
    '<%= config.bin %> verify hello-1.0.0-x86_64.swpkg --key keys/swpkg.pub --sha256 HEX',
  ];
  static override args = { file: Args.file({ description: '.swpkg file', required: true, exists: true }) };
  static override flags = {
    key: Flags.file({ summary: 'Public key (.pub) the package must be signed by.', exists: true, multiple: true }),
    sha256: Flags.string({ summary: 'Expected SHA-256 of the whole file.' }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(Verify);
    const v = await verifyPackageFile(args.file, flags.sha256 ? { expectedSha256: flags.sha256 } : {});
    const base = {
      path: args.file,
      name: v.manifest.name,
      version: v.manifest.version,
      sha256: v.sha256,
      size: v.size,
      files: v.manifest.files.length,
    };
    if (!flags.key) return { ...base, signature: v.signature ? 'not checked' : 'unsigned' };
    const keys = await Promise.all(flags.key.map((k) => readPublicKey(k)));
    const { keyid } = verifyPackageSignature(v, keys);
    return { ...base, signature: 'verified', signedBy: keyid };
  }

  protected override render(r: Result): void {
    this.log(`OK ${r.path}: ${r.name}@${r.version}, ${r.files} entries verified, sha256 ${r.sha256}`);
    this.log(`signature: ${r.signature}${r.signedBy ? ` (key ${r.signedBy})` : ''}`);
  }
}
