import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { mirrorRepository, type MirrorResult } from '../../../../publishing/index.js';
import { repoReaderFor } from '../../../shared/repo-readers.js';

export default class RepoMirror extends BaseCommand<MirrorResult> {
  static override summary = 'Copy a published repository (folder or URL), or one release of it, into a new folder, verifying everything.';
  static override description = `Checks the source as a client would (the root chain, the catalog, every release against the release keys, every package file in full) before writing anything, then copies it into DEST (which must not exist yet), whole or not at all. With --release ID[@VERSION] only that release, its packages, the roots and the catalog are copied.
The folder can be burnt to media and used on a machine with no network: \`pkg repo add NAME /media/repo --fingerprint HEX\`, then \`pkg install --release /media/repo/releases/ID/N.json\`.`;
  static override examples = [
    '<%= config.bin %> repo mirror ./webroot /mnt/usb/repo --fingerprint 3f2a…',
    '<%= config.bin %> repo mirror https://repo.example/ /mnt/usb/repo --release edge@3',
  ];
  static override args = {
    source: Args.string({ description: 'Published web root to copy: a folder or an http(s):// URL.', required: true }),
    dest: Args.string({ description: 'New folder to write.', required: true }),
  };
  static override flags = {
    release: Flags.string({ summary: 'Copy only this release (ID, its newest version, or ID@VERSION) and what it needs.' }),
    fingerprint: Flags.string({ summary: 'Refuse unless the root chain contains the root with this fingerprint.' }),
  };

  override async run(): Promise<MirrorResult> {
    const { args, flags } = await this.parse(RepoMirror);
    const remote = /^https?:\/\//.test(args.source);
    return mirrorRepository({
      reader: repoReaderFor(args.source),
      source: args.source,
      ...(!remote && { sourceDir: args.source }),
      dest: args.dest,
      ...(flags.release !== undefined && { release: flags.release }),
      ...(flags.fingerprint !== undefined && { fingerprint: flags.fingerprint }),
    });
  }

  protected override render(r: MirrorResult): void {
    for (const rel of r.releases) this.log(`release ${rel.id} v${rel.version}  ${rel.digest}`);
    this.log(`${r.dest}: ${r.files} files (${r.bytes} bytes) verified and copied; root v${r.rootVersion} fingerprint ${r.rootFingerprint}`);
  }
}
