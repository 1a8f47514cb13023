import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { readPrivateKey, signCatalogFile } from '../../../../publishing/index.js';

interface Result {
  file: string;
  version: number;
  signatures: number;
  keyid: string;
}

export default class RepoSign extends BaseCommand<Result> {
  static override summary = 'Add a signature to a catalog file.';
  static override description =
    "Signs the canonical (RFC 8785) bytes of the catalog's signed part and adds the signature, replacing an older one by the same key.";
  static override examples = ['<%= config.bin %> repo sign catalog.json --key keys/catalog.key'];
  static override args = { catalog: Args.file({ description: 'Catalog file from `swpkg repo index`.', required: true, exists: true }) };
  static override flags = {
    key: Flags.file({ summary: 'Catalog signing key (private).', required: true, exists: true }),
    out: Flags.file({ summary: 'Write the signed catalog here instead of in place.' }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RepoSign);
    const key = await readPrivateKey(flags.key);
    const r = await signCatalogFile({ file: args.catalog, key, ...(flags.out && { out: flags.out }) });
    return { file: flags.out ?? args.catalog, ...r };
  }

  protected override render(r: Result): void {
    this.log(`${r.file}: catalog v${r.version} signed by ${r.keyid} (${r.signatures} signature(s))`);
  }
}
