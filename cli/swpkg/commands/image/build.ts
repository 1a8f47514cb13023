import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { SwpkgError } from '../../../../catalog/index.js';
import type { BuildImagesOptions, BuildImagesResult, StageRepo } from '../../../../images/index.js';

export default class ImageBuild extends BaseCommand<BuildImagesResult> {
  static override summary = 'Build the guest artifact set: kernel, initramfs, base disk and template store.';
  static override description = `Builds, incrementally, what \`swpkg image boot\` and the acceptance suite boot: the pinned kernel (fetched and checked by SHA-256), an initramfs with busybox and the kernel modules, the read-only base disk (Node and the one-file pkg client), a template store disk, and manifest.json recording each file's size and SHA-256. A step whose inputs did not change is skipped; --force rebuilds all. Writes into build/images/ (aarch64: build/images-aarch64/) unless --out says otherwise; every file lands whole (temp, fsync, rename).

The pinned .deb packages come from ../shared/sources, then the download cache (~/.cache/swpkg), then apt-get download (turn that off with --no-apt). Without --pkg-bundle the pkg client is bundled from userland/cli/main.ts.`;
  static override examples = [
    '<%= config.bin %> image build',
    '<%= config.bin %> image build --arch aarch64',
    '<%= config.bin %> image build --out /tmp/images --store-size 2048 --force --json',
    '<%= config.bin %> image build --store-seed ./seeded-root --require-pkg',
    '<%= config.bin %> image build --stage-repo main,http://10.0.2.2:8080/,./repo-root.pub --stage-repo extra,http://10.0.2.2:8081/,3f1c...e9',
  ];
  static override flags = {
    arch: Flags.option({ summary: 'Guest architecture.', options: ['x86_64', 'aarch64'] as const, default: 'x86_64' })(),
    out: Flags.string({ summary: 'Folder for the artifact set (default build/images, aarch64 build/images-aarch64).' }),
    'pkg-bundle': Flags.file({
      summary: 'Use this ready pkg bundle instead of bundling the client.',
      exists: true,
      exclusive: ['require-pkg'],
    }),
    'require-pkg': Flags.boolean({ summary: 'Fail unless the pkg client can be bundled (no runtime-only image).' }),
    'store-size': Flags.integer({ summary: 'Size of the template store disk in MiB (sparse).', min: 64 }),
    'store-seed': Flags.directory({ summary: 'Preseed the template store from this folder (a pkg --root tree).', exists: true }),
    'stage-repo': Flags.string({
      summary:
        'Trust this repository from the first boot: NAME,URL,PIN where PIN is the root fingerprint (64 hex) or a root file (repo-root.pub). Written read-only to /usr/lib/pkg/repos.d/NAME.json. Repeatable.',
      multiple: true,
    }),
    force: Flags.boolean({ summary: 'Rebuild every step, even those whose inputs did not change.' }),
    apt: Flags.boolean({
      summary: 'Allow apt-get download for pinned packages not found locally (--no-apt forbids it).',
      default: true,
      allowNo: true,
    }),
  };

  override async run(): Promise<BuildImagesResult> {
    const { flags } = await this.parse(ImageBuild);
    const { buildImages } = await import('../../../../images/index.js');
    return buildImages(buildOptions(flags, this.reporter()));
  }

  protected override render(r: BuildImagesResult): void {
    for (const s of r.steps) this.log(`${s.skipped ? 'up to date' : 'built     '}  ${s.name} (${s.ms} ms)`);
    for (const o of Object.values(r.manifest.outputs)) this.log(`${o.file.padEnd(18)} ${String(o.size).padStart(11)}  ${o.sha256}`);
    this.log(`manifest: ${r.outDir}/manifest.json`);
  }
}

/** Flags to the builder's options: BuildImagesOptions stays the one description of what the builder takes. */
function buildOptions(
  flags: {
    arch: 'x86_64' | 'aarch64';
    out?: string | undefined;
    'pkg-bundle'?: string | undefined;
    'require-pkg'?: boolean;
    'store-size'?: number | undefined;
    'store-seed'?: string | undefined;
    'stage-repo'?: string[] | undefined;
    force?: boolean;
    apt: boolean;
  },
  reporter: NonNullable<BuildImagesOptions['reporter']>,
): BuildImagesOptions {
  return {
    arch: flags.arch,
    reporter,
    allowApt: flags.apt,
    ...(flags.out !== undefined && { outDir: flags.out }),
    ...(flags['pkg-bundle'] !== undefined
      ? { pkg: { bundleFile: flags['pkg-bundle'] } }
      : flags['require-pkg']
        ? { pkg: 'bundle' as const }
        : {}),
    ...(flags['store-size'] !== undefined && { storeSizeMiB: flags['store-size'] }),
    ...(flags['store-seed'] !== undefined && { storeSeedDir: flags['store-seed'] }),
    ...(flags['stage-repo'] !== undefined && { stagedRepos: flags['stage-repo'].map(parseStageRepo) }),
    ...(flags.force && { force: true }),
  };
}

/** `NAME,URL,PIN`: the name up to the first comma, the pin after the last, the URL between (a URL may hold commas). */
function parseStageRepo(v: string): StageRepo {
  const first = v.indexOf(',');
  const last = v.lastIndexOf(',');
  if (first <= 0 || last === first || last === v.length - 1) {
    throw new SwpkgError('E_USAGE', `--stage-repo ${JSON.stringify(v)} must be NAME,URL,FINGERPRINT or NAME,URL,ROOT_FILE`, {
      details: { value: v },
    });
  }
  const pin = v.slice(last + 1);
  return {
    name: v.slice(0, first),
    url: v.slice(first + 1, last),
    ...(/^[0-9a-fA-F]{64}$/.test(pin) ? { fingerprint: pin } : { rootFile: pin }),
  };
}
