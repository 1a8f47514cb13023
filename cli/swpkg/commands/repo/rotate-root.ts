import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { parseDuration, readPublicKey } from '../../../../catalog/index.js';
import { readPrivateKey, rotatePublishedRoot } from '../../../../publishing/index.js';

interface Result {
  out: string;
  version: number;
  fingerprint: string;
}

export default class RepoRotateRoot extends BaseCommand<Result> {
  static override summary = 'Publish a new root version signed by the old and the new root keys.';
  static override description = `Writes roots/N+1.json and repo-root.pub. Clients that pinned an older root walk roots/N+1.json and accept the new one only if a threshold of the old root keys AND of the new ones signed it.
Use it to replace a root key, add or replace catalog keys (--catalog-key) or release keys (--release-key), or change thresholds. Republish afterwards if the catalog key changed.`;
  static override examples = [
    '<%= config.bin %> repo rotate-root ./webroot --old-key keys/root.key --new-key keys/root2.key',
    '<%= config.bin %> repo rotate-root ./webroot --old-key keys/root.key --new-key keys/root.key --catalog-key keys/catalog2.pub',
    '<%= config.bin %> repo rotate-root ./webroot --old-key keys/root.key --new-key keys/root.key --release-key keys/release.pub',
  ];
  static override args = { root: Args.directory({ description: 'Published web root.', required: true, exists: true }) };
  static override flags = {
    'old-key': Flags.file({ summary: 'Current root key(s) (private).', required: true, multiple: true, exists: true }),
    'new-key': Flags.file({
      summary: 'Root key(s) of the new root (private; may repeat an old one).',
      required: true,
      multiple: true,
      exists: true,
    }),
    'catalog-key': Flags.file({
      summary: 'Catalog public key(s) for the new root (default: keep the current ones).',
      multiple: true,
      exists: true,
    }),
    'release-key': Flags.file({
      summary: 'Release public key(s) for the new root: who may sign pinned releases (default: keep the current ones).',
      multiple: true,
      exists: true,
    }),
    'root-threshold': Flags.integer({ summary: 'Root signatures the new root requires.', min: 1 }),
    'catalog-threshold': Flags.integer({ summary: 'Catalog signatures the new root requires.', min: 1 }),
    'release-threshold': Flags.integer({ summary: 'Release signatures the new root requires.', min: 1 }),
    expires: Flags.string({ summary: 'How long the new root stays valid.', default: '365d' }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RepoRotateRoot);
    const oldRootKeys = await Promise.all(flags['old-key'].map((k) => readPrivateKey(k)));
    const newRootKeys = await Promise.all(flags['new-key'].map((k) => readPrivateKey(k)));
    const catalogKeys = flags['catalog-key'] ? await Promise.all(flags['catalog-key'].map((k) => readPublicKey(k))) : undefined;
    const releaseKeys = flags['release-key'] ? await Promise.all(flags['release-key'].map((k) => readPublicKey(k))) : undefined;
    const r = await rotatePublishedRoot({
      out: args.root,
      oldRootKeys,
      newRootKeys,
      expiresIn: parseDuration(flags.expires, '--expires'),
      ...(catalogKeys && { catalogKeys: catalogKeys.map((k) => ({ type: k.type, public: k.public })) }),
      ...(releaseKeys && { releaseKeys: releaseKeys.map((k) => ({ type: k.type, public: k.public })) }),
      ...(flags['release-threshold'] !== undefined && { releaseThreshold: flags['release-threshold'] }),
      ...(flags['root-threshold'] !== undefined && { rootThreshold: flags['root-threshold'] }),
      ...(flags['catalog-threshold'] !== undefined && { catalogThreshold: flags['catalog-threshold'] }),
    });
    return { out: args.root, ...r };
  }

  protected override render(r: Result): void {
    this.log(`${r.out}: root v${r.version} published, fingerprint ${r.fingerprint}`);
  }
}
