import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { parseDuration } from '../../../../catalog/index.js';
import { publishRepository, readPrivateKey, type PublishResult } from '../../../../publishing/index.js';

export default class RepoPublish extends BaseCommand<PublishResult> {
  static override summary = 'Publish a folder of packages as a signed static repository.';
  static override description = `Writes a web root any static host can serve: hosted-repo.json, repo-root.pub, roots/N.json, catalog.json (+ .sha256), packages/NAME-VERSION-ARCH.swpkg (+ .sha256) and index.html.
Every package is verified first; nothing is written if one is bad, or if a dependency is met by no package in the folder (unless --allow-unmet-dependencies). Packages land first and the catalog last, so readers never see a catalog pointing at a missing file. A published NAME-VERSION-ARCH never changes (bump the version instead). Packages no longer listed stay downloadable for --retain. The catalog version always increases.
The first publish creates root v1 with --root-key (default: --key) as root key and --key as catalog key. Private keys are never written into the web root.`;
  static override examples = [
    '<%= config.bin %> repo publish ./packages --key keys/swpkg.key --out ./webroot --name main',
    '<%= config.bin %> repo publish ./packages --key keys/catalog.key --root-key keys/root.key --out ./webroot --expires 30d --retain 14d',
  ];
  static override args = {
    packages: Args.directory({ description: 'Folder of .swpkg files: the complete set the catalog lists.', required: true, exists: true }),
  };
  static override flags = {
    key: Flags.file({ summary: 'Catalog signing key (private).', required: true, exists: true }),
    'root-key': Flags.file({ summary: 'Root key for a new repository (default: --key).', exists: true }),
    out: Flags.directory({ summary: 'Web root to write (created if missing).', required: true }),
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
    return publishRepository({
      packagesDir: args.packages,
      out: flags.out,
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
