import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { writeNewKeyPair } from '../../../../publishing/index.js';

interface Result {
  keyid: string;
  privatePath: string;
  publicPath: string;
}

export default class KeyGenerate extends BaseCommand<Result> {
  static override summary = 'Create an Ed25519 signing key pair.';
  static override description =
    'Writes NAME.key (the private key, mode 0600) and NAME.pub into --out as one pair: refused if either file exists, and never half a pair. Keep the private key out of any web root; publish signs with it. Key files readable by group or others are refused when loaded.';
  static override examples = ['<%= config.bin %> key generate --out ~/.swpkg/keys --name release'];
  static override flags = {
    out: Flags.directory({ summary: 'Folder to write the key pair into (created 0700 if missing).', required: true }),
    name: Flags.string({ summary: 'Base name of the key files.', default: 'swpkg' }),
  };

  override async run(): Promise<Result> {
    const { flags } = await this.parse(KeyGenerate);
    return writeNewKeyPair(flags.out, flags.name);
  }

  protected override render(r: Result): void {
    this.log(`key id   ${r.keyid}`);
    this.log(`private  ${r.privatePath} (0600: keep it secret, never publish it)`);
    this.log(`public   ${r.publicPath}`);
  }
}
