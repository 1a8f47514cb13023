import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { parseDuration } from '../../../../catalog/index.js';
import { publishRepository, readPrivateKey, type PublishResult } from '../../../../publishing/index.js';
import { s3Flags, s3TargetFromFlags } from '../../../shared/s3-target.js';

export default class RepoPublish extends BaseCommand<PublishResult> {
  static override summary = 'Publish a folder of packages as a signed static repository (into a folder or an S3 bucket).';
  static override description = `Writes a web root any static host, mirror or CDN can serve: roots/N.json, catalogs/VERSION-SHA256.json, packages/NAME-VERSION-ARCH.SHA256.swpkg (+ .sha256), then the one mutable pointer hosted-repo.json, then repo-root.pub, catalog.json (+ .sha256, for older clients) and index.html.
Every package is verified first; nothing is written if one is bad, if a dependency is met by no package in the folder (unless --allow-unmet-dependencies), or if the target holds files but no repository. Every file but the pointer is written create-only and never changes (bump the version instead); the pointer is swapped last with a compare-and-swap, so two racing publishes cannot interleave (the loser gets E_PUBLISH_RACE and reruns). The last --keep-catalogs catalogs and the packages they name stay downloadable for --retain. The catalog version always increases.
--to s3://BUCKET/PREFIX --endpoint URL publishes to any S3-compatible store (SigV4; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); clients read the bucket over plain HTTP (a public-read policy or a CDN in front).
The first publish creates root v1 with --root-key (default: --key) as root key and --key as catalog key. Private keys are never written into the web root.`;
  static override examples = [
    '<%= config.bin %> repo publish ./packages --key keys/swpkg.key --out ./webroot --name main',
    '<%= config.bin %> repo publish ./packages --key keys/catalog.key --root-key keys/root.key --out ./webroot --expires 30d --retain 14d',
    '<%= config.bin %> repo publish ./packages --key keys/swpkg.key --to s3://pkgs/main --endpoint https://s3.example.net --name main',
  ];
  static override args = {
    packages: Args.directory({ description: 'Folder of .swpkg files: the complete set the catalog lists.', required: true, exists: true }),
  };
  static override flags = {
    key: Flags.file({ summary: 'Catalog signing key (private).', required: true, exists: true }),
    'root-key': Flags.file({ summary: 'Root key for a new repository (default: --key).', exists: true }),
    out: Flags.directory({ summary: 'Web root to write (created if missing).', exactlyOne: ['out', 'to'] }),
    to: Flags.string({
      summary: 'Object storage target instead of --out: s3://BUCKET/PREFIX (needs --endpoint).',
      exactlyOne: ['out', 'to'],
    }),
    ...s3Flags,
    'keep-catalogs': Flags.integer({ summary: 'How many catalogs stay fetchable, the new one included.', default: 5, min: 1 }),
    concurrency: Flags.integer({ summary: 'Uploads at once (default 8 for --to, 1 for --out).', min: 1, max: 64 }),
    name: Flags.string({ summary: "Repository name (default: the previous catalog's, else the folder name)." }),
    expires: Flags.string({ summary: 'How long the catalog stays valid: 14d, 12h, 2w.', default: '14d' }),
    retain: Flags.string({ summary: 'How long superseded packages stay downloadable.', default: '7d' }),
    mirror: Flags.string({ summary: 'Mirror base URL to advertise in hosted-repo.json (repeatable).', multiple: true }),
    'allow-unmet-dependencies': Flags.boolean({
      summary: 'Publish even when a dependency is met by no package in the folder (clients get it from another repository).',
    }),
  };

  override async run(): Promise<PublishResult> {
    const { args, flags } = await this.parse(RepoPublish);
    const key = await readPrivateKey(flags.key);
    const rootKey = flags['root-key'] ? await readPrivateKey(flags['root-key']) : undefined;
    const target = flags.to === undefined ? undefined : s3TargetFromFlags({ ...flags, to: flags.to });
    return publishRepository({
      packagesDir: args.packages,
      out: flags.out ?? flags.to ?? '',
      ...(target && { target }),
      keepCatalogs: flags['keep-catalogs'],
      ...(flags.concurrency !== undefined && { concurrency: flags.concurrency }),
      key,
      expiresIn: parseDuration(flags.expires, '--expires'),
      retainSeconds: parseDuration(flags.retain, '--retain'),
      reporter: this.reporter(),
      ...(rootKey && { rootKey }),
      ...(flags.name !== undefined && { name: flags.name }),
      ...(flags.mirror && { mirrors: flags.mirror }),
      allowUnmetDependencies: flags['allow-unmet-dependencies'],
    });
  }

  protected override render(r: PublishResult): void {
    for (const p of r.packages) this.log(`${p.added ? 'added ' : 'kept  '} ${p.path}`);
    for (const p of r.retained) this.log(`retain ${p} (superseded, kept for the retention window)`);
    for (const p of r.deleted) this.log(`delete ${p} (retention window over)`);
    this.log(`published "${r.name}": catalog v${r.catalogVersion}, ${r.packages.length} package(s), expires ${r.expires}`);
    this.log(`root v${r.rootVersion} fingerprint ${r.rootFingerprint}`);
    this.log(`clients: pkg repo add ${r.name} URL --fingerprint ${r.rootFingerprint}`);
  }
}
