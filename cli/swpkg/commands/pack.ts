import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../shared/base-command.js';
import {
  packPackage,
  parseDependsList,
  parseHealthCheckSpec,
  readPackageMeta,
  SwpkgError,
  type PackageMeta,
  type PackResult,
} from '../../../catalog/index.js';
import { readPrivateKey } from '../../../publishing/index.js';

type Result = Omit<PackResult, 'manifest'> & { name: string; version: string; files: number; installedSize: number; signedBy?: string };

export default class Pack extends BaseCommand<Result> {
  static override summary = 'Pack a folder into a reproducible .swpkg package.';
  static override description = `The folder's contents become the payload (paths relative to it). Metadata comes from flags or from --manifest FILE (JSON with name, version, arch, abi, summary, license, depends, ...).
Same folder and metadata give byte-identical output: entries are sorted, mtimes fixed (--source-date-epoch), owners 0, modes normalised.
Health checks (run by \`pkg\` after every change that adds or upgrades the package; a failed required one switches back) come from --health-check or the "health" array of --manifest: each a name, a command (an executable file of the package, relative path), a timeout in seconds (1-600) and required or advisory.
With --key, the manifest (which hashes every file) is signed so \`pkg install ./FILE.swpkg\` can trust it.`;
  static override examples = [
    '<%= config.bin %> pack ./root --name hello --version 1.0.0 --arch x86_64 --summary "Says hello" --license MIT --out hello-1.0.0-x86_64.swpkg',
    '<%= config.bin %> pack ./root --manifest meta.json --health-check "responds:libexec/hello/health:10:required" --out hello-1.0.1-x86_64.swpkg',
    '<%= config.bin %> pack ./root --manifest meta.json --depends "zlib@^1.2,openssl@>=3" --key keys/swpkg.key --out pkg.swpkg',
  ];
  static override args = { dir: Args.directory({ description: 'Folder whose contents are packed.', required: true, exists: true }) };
  static override flags = {
    out: Flags.file({ summary: 'Output .swpkg path.', required: true }),
    manifest: Flags.file({ summary: 'JSON file with the package metadata (flags override its fields).', exists: true }),
    name: Flags.string({ summary: '(required unless in --manifest) Package name (a-z, 0-9, +._-).' }),
    version: Flags.string({ summary: '(required unless in --manifest) Semantic version, e.g. 1.2.3.' }),
    arch: Flags.string({ summary: '(required unless in --manifest) Architecture.', options: ['x86_64', 'aarch64', 'any'] }),
    abi: Flags.string({ summary: 'ABI id.', default: 'linux-musl-static' }),
    summary: Flags.string({ summary: '(required unless in --manifest) One-line description.' }),
    license: Flags.string({ summary: '(required unless in --manifest) SPDX license expression.' }),
    homepage: Flags.string({ summary: 'Project homepage URL.' }),
    depends: Flags.string({ summary: 'Dependencies: "name@range,name2" (range defaults to *).' }),
    provides: Flags.string({ summary: 'Virtual names provided: "name,name@version".' }),
    conflicts: Flags.string({ summary: 'Conflicting packages: "name,name@range".' }),
    'health-check': Flags.string({
      summary:
        'A health check: NAME:COMMAND[:TIMEOUT_SECONDS][:required|advisory] (default 30 s, required). Repeatable; replaces --manifest health.',
      multiple: true,
    }),
    key: Flags.file({ summary: 'Private key to sign the package with.', exists: true }),
    'source-date-epoch': Flags.integer({ summary: 'mtime of every entry (seconds); defaults to $SOURCE_DATE_EPOCH or 0.', min: 0 }),
  };

  override async run(): Promise<Result> {
    const { args, flags } = await this.parse(Pack);
    const base: Partial<PackageMeta> = flags.manifest ? await readPackageMeta(flags.manifest) : {};
    const list = (s: string | undefined): string[] | undefined =>
      s === undefined
        ? undefined
        : s
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean);
    const meta = {
      ...base,
      ...(flags.name !== undefined && { name: flags.name }),
      ...(flags.version !== undefined && { version: flags.version }),
      ...(flags.arch !== undefined && { arch: flags.arch }),
      abi: base.abi ?? flags.abi,
      ...(flags.summary !== undefined && { summary: flags.summary }),
      ...(flags.license !== undefined && { license: flags.license }),
      ...(flags.homepage !== undefined && { homepage: flags.homepage }),
      ...(flags.depends !== undefined && { depends: parseDependsList(flags.depends) }),
      ...(flags.provides !== undefined && { provides: list(flags.provides) }),
      ...(flags.conflicts !== undefined && { conflicts: list(flags.conflicts) }),
      ...(flags['health-check'] !== undefined && { health: flags['health-check'].map(parseHealthCheckSpec) }),
    } as PackageMeta;
    const missing = (['name', 'version', 'arch', 'summary', 'license'] as const).filter((f) => meta[f] === undefined).map((f) => `--${f}`);
    if (missing.length > 0) {
      throw new SwpkgError('E_USAGE', `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required (as flags or in --manifest)`, {
        hint: 'run `swpkg pack --help`',
      });
    }
    const envEpoch = process.env['SOURCE_DATE_EPOCH'];
    const epoch = flags['source-date-epoch'] ?? (envEpoch && /^\d+$/.test(envEpoch) ? Number(envEpoch) : 0);
    const key = flags.key ? await readPrivateKey(flags.key) : undefined;
    const r = await packPackage({
      dir: args.dir,
      meta,
      out: flags.out,
      sourceDateEpoch: epoch,
      reporter: this.reporter(),
      ...(key && { key }),
    });
    return {
      path: r.path,
      sha256: r.sha256,
      size: r.size,
      name: r.manifest.name,
      version: r.manifest.version,
      files: r.manifest.files.length,
      installedSize: r.manifest.installedSize,
      ...(key && { signedBy: key.keyid }),
    };
  }

  protected override render(r: Result): void {
    this.log(`${r.path}: ${r.name}@${r.version}, ${r.files} entries, ${r.size} bytes (installed ${r.installedSize})`);
    this.log(`sha256 ${r.sha256}${r.signedBy ? `\nsigned by ${r.signedBy}` : ''}`);
  }
}
