import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { SwpkgError, parseDuration } from '../../../../catalog/index.js';
import { createRelease, readPrivateKey, type CreateReleaseResult } from '../../../../publishing/index.js';
import { s3Flags, s3TargetFromFlags } from '../../../shared/s3-target.js';

export default class ReleaseCreate extends BaseCommand<CreateReleaseResult> {
  static override summary = 'Pin an exact set of published packages as a signed release.';
  static override description = `Writes releases/ID/VERSION.json into a published web root (or, with --to s3://BUCKET/PREFIX --endpoint URL, into the bucket a repository was published to): the exact packages (name, version, SHA-256, size, location), the client format and ABI they need, the release it supersedes, its creation and expiry times and a source revision, signed by release keys the repository's root names (add them with \`swpkg repo rotate-root --release-key\`).
Each package file is checked against the catalog's SHA-256 and size, and the set must meet its own dependencies. A published release is written create-only and never changes: a new set is the next version, which supersedes the last. releases/index.json and index.html list the releases, and publish keeps every package a live release names past its retention window.
Clients install one with \`pkg install --release URL|FILE\`.`;
  static override examples = [
    '<%= config.bin %> release create ./webroot --id edge --key keys/release.key --arch x86_64',
    '<%= config.bin %> release create ./webroot --id edge --key keys/release.key --arch x86_64 --package tool@1.2.0 --package libfoo@2.0.1 --source-revision $(git rev-parse HEAD)',
    '<%= config.bin %> release create --to s3://pkgs/main --endpoint https://s3.example.net --id edge --key keys/release.key --arch x86_64',
  ];
  static override args = { root: Args.directory({ description: 'Published web root (or give --to).', exists: true }) };
  static override flags = {
    id: Flags.string({ summary: 'Release id (a name: a-z, 0-9, +, ., _, -); versions of one id supersede each other.', required: true }),
    key: Flags.file({ summary: 'Release key(s) (private).', required: true, multiple: true, exists: true }),
    arch: Flags.string({ summary: 'Machine architecture of the release.', required: true }),
    package: Flags.string({
      summary: 'NAME@VERSION to pin (repeatable; default: the newest version of every package for --arch).',
      multiple: true,
    }),
    version: Flags.integer({ summary: 'Release version (default: one more than the newest published).', min: 1 }),
    expires: Flags.string({ summary: 'How long clients accept the release.', default: '90d' }),
    'source-revision': Flags.string({ summary: 'The source revision the set was built from.', default: '' }),
    to: Flags.string({
      summary: 'Object storage the repository was published to, instead of ROOT: s3://BUCKET/PREFIX (needs --endpoint).',
    }),
    ...s3Flags,
  };

  override async run(): Promise<CreateReleaseResult> {
    const { args, flags } = await this.parse(ReleaseCreate);
    if ((args.root === undefined) === (flags.to === undefined))
      throw new SwpkgError('E_USAGE', 'name the published repository once: a web root folder, or --to s3://BUCKET/PREFIX');
    const target = flags.to === undefined ? undefined : s3TargetFromFlags({ ...flags, to: flags.to });
    const keys = await Promise.all(flags.key.map((k) => readPrivateKey(k)));
    return createRelease({
      out: args.root ?? flags.to ?? '',
      ...(target && { target }),
      id: flags.id,
      keys,
      arch: flags.arch,
      expiresIn: parseDuration(flags.expires, '--expires'),
      sourceRevision: flags['source-revision'],
      ...(flags.package && { packages: flags.package }),
      ...(flags.version !== undefined && { version: flags.version }),
    });
  }

  protected override render(r: CreateReleaseResult): void {
    for (const p of r.packages) this.log(`pin    ${p.name}@${p.version}  ${p.sha256}  ${p.location}`);
    this.log(`release ${r.id} v${r.version} written to ${r.path}${r.supersedes ? ` (supersedes v${r.supersedes.version})` : ''}`);
    this.log(`manifest digest ${r.digest}`);
  }
}
