import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { defaultPortsPaths, makeRepoFixture, DEFAULT_TARGET, type RepoFixtureResult } from '../../../../ports/index.js';

export default class RecipeRepoFixture extends BaseCommand<RepoFixtureResult> {
  static override summary = 'Build ports and publish them into a signed static repository root.';
  static override description =
    'Builds the named ports (or every port with --all) and their runtime dependencies through the build cache, then publishes exactly those packages with the same code as `swpkg repo publish` into --out: hosted-repo.json, repo-root.pub, roots/, the signed catalog.json, packages/ with .sha256 sidecars and index.html. Check the result with `swpkg repo verify-hosted ROOT`. Nothing is published when a build fails.';
  static override examples = [
    '<%= config.bin %> recipe repo-fixture lua zlib --key keys/release.key --out build/repo',
    '<%= config.bin %> recipe repo-fixture --all --key keys/release.key --out build/repo --name seed',
    '<%= config.bin %> recipe repo-fixture --all --target x86_64-linux-musl --target aarch64-linux-musl --key keys/release.key --out build/repo',
  ];
  static override strict = false;
  static override args = { names: Args.string({ description: 'Port names (several allowed).', required: false }) };
  static override flags = {
    key: Flags.file({ summary: 'Catalog signing key (private key file from `swpkg key generate`).', required: true, exists: true }),
    'root-key': Flags.file({ summary: 'Root key for a new repository (defaults to --key).', exists: true }),
    out: Flags.directory({ summary: 'Static web root to publish into.', required: true }),
    name: Flags.string({ summary: 'Repository name recorded in hosted-repo.json.' }),
    all: Flags.boolean({ summary: 'Publish every port of the catalog.' }),
    target: Flags.string({
      summary: 'Target triple; repeat to publish several targets into the one root.',
      description: 'Each target builds the ports for its arch (x86_64-linux-musl, aarch64-linux-musl); arch-any ports are published once.',
      multiple: true,
      default: [DEFAULT_TARGET],
    }),
    ports: Flags.directory({ summary: 'The ports folder (holding catalog.json and recipes/).', exists: true }),
  };

  override async run(): Promise<RepoFixtureResult> {
    const { argv, flags } = await this.parse(RecipeRepoFixture);
    return makeRepoFixture(argv as string[], {
      paths: defaultPortsPaths({ ...(flags.ports ? { portsDir: flags.ports } : {}) }),
      targets: flags.target,
      out: flags.out,
      keyPath: flags.key,
      ...(flags['root-key'] ? { rootKeyPath: flags['root-key'] } : {}),
      ...(flags.name ? { name: flags.name } : {}),
      all: flags.all,
      reporter: this.reporter(),
    });
  }

  protected override render(r: RepoFixtureResult): void {
    for (const p of r.ports)
      this.log(
        `${p.name.padEnd(16)} ${p.version.padEnd(14)} ${p.file.padEnd(36)} ${p.sha256.slice(0, 16)}  ${p.cached ? 'cached' : `built ${p.seconds.toFixed(1)} s`}`,
      );
    this.log(
      `published ${r.publish.packages.length} packages to ${r.publish.out} (catalog v${r.publish.catalogVersion}, root fingerprint ${r.publish.rootFingerprint})`,
    );
    this.log(`check it: swpkg repo verify-hosted ${r.publish.out}`);
  }
}
