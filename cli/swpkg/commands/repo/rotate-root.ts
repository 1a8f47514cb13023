import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { SwpkgError, parseDuration, readPublicKey } from '../../../../catalog/index.js';
import { readPrivateKey, rotatePublishedRoot } from '../../../../publishing/index.js';
import { s3Flags, s3TargetFromFlags } from '../../../shared/s3-target.js';

interface Result {
  out: string;
  version: number;
  fingerprint: string;
}

export default class RepoRotateRoot extends BaseCommand<Result> {
  static override summary = 'Publish a new root version signed by the old and the new root keys.';
  static override description = `Writes roots/N+1.json (create-only), repo-root.pub and the pointer hosted-repo.json (compare-and-swap), into a web root or, with --to s3://BUCKET/PREFIX --endpoint URL, a bucket. Clients that pinned an older root walk roots/N+1.json and accept the new one only if a threshold of the old root keys AND of the new ones signed it.
Use it to replace a root key, add or replace catalog keys (--catalog-key) or release keys (--release-key), or change thresholds. Republish afterwards if the catalog key changed.`;
  static override examples = [
    '<%= config.bin %> repo rotate-root ./webroot --old-key keys/root.key --new-key keys/root2.key',
    '<%= config.bin %> repo rotate-root ./webroot --old-key keys/root.key --new-key keys/root.key --catalog-key keys/catalog2.pub',
    '<%= config.bin %> repo rotate-root ./webroot --old-key keys/root.key --new-key keys/root.key --release-key keys/release.pub',
    '<%= config.bin %> repo rotate-root --to s3://pkgs/main --endpoint https://s3.example.net --old-key keys/root.key --new-key keys/root.key --release-key keys/release.pub',
  ];
  static override args = { root: Args.directory({ description: 'Published web root (or give --to).', exists: true }) };
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
    to: Flags.string({
      summary: 'Object storage the repository was published to, instead of ROOT: s3://BUCKET/PREFIX (needs --endpoint).',
    }),
    ...s3Flags,
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(RepoRotateRoot);
    if ((args.root === undefined) === (flags.to === undefined))
      throw new SwpkgError('E_USAGE', 'name the published repository once: a web root folder, or --to s3://BUCKET/PREFIX');
    const target = flags.to === undefined ? undefined : s3TargetFromFlags({ ...flags, to: flags.to });
    const oldRootKeys = await Promise.all(flags['old-key'].map((k) => readPrivateKey(k)));
    const newRootKeys = await Promise.all(flags['new-key'].map((k) => readPrivateKey(k)));
    const catalogKeys = flags['catalog-key'] ? await Promise.all(flags['catalog-key'].map((k) => readPublicKey(k))) : undefined;
    const releaseKeys = flags['release-key'] ? await Promise.all(flags['release-key'].map((k) => readPublicKey(k))) : undefined;
    const out = args.root ?? flags.to ?? '';
    const r = await rotatePublishedRoot({
      out,
      ...(target && { target }),
      oldRootKeys,
      newRootKeys,
      expiresIn: parseDuration(flags.expires, '--expires'),
      ...(catalogKeys && { catalogKeys: catalogKeys.map((k) => ({ type: k.type, public: k.public })) }),
      ...(releaseKeys && { releaseKeys: releaseKeys.map((k) => ({ type: k.type, public: k.public })) }),
      ...(flags['release-threshold'] !== undefined && { releaseThreshold: flags['release-threshold'] }),
      ...(flags['root-threshold'] !== undefined && { rootThreshold: flags['root-threshold'] }),
      ...(flags['catalog-threshold'] !== undefined && { catalogThreshold: flags['catalog-threshold'] }),
    });
    return { out, ...r };
  }

  protected override render(r: Result): void {
    this.log(`${r.out}: root v${r.version} published, fingerprint ${r.fingerprint}`);
  }
}
