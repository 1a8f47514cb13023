import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../shared/base-command.js';
import { repoReaderFor } from '../../../shared/repo-readers.js';
import { SwpkgError } from '../../../../catalog/index.js';
import { verifyHosted, type VerifyHostedResult } from '../../../../publishing/index.js';

export default class RepoVerifyHosted extends BaseCommand<VerifyHostedResult> {
  static override summary = 'Check a published repository from the outside, the way a client would.';
  static override description = `Fetches hosted-repo.json, repo-root.pub and the roots/ chain, verifies the catalog's signatures and expiry, the sidecars, and downloads every package to check its size, SHA-256 (also against a hash name) and contents; then every retained catalog and every listed release (its release-role signature, and each package a live one pins present with its SHA-256). Each check prints PASS or FAIL; any FAIL exits 3. A catalog expiring within 7 days is a warning.`;
  static override examples = [
    '<%= config.bin %> repo verify-hosted http://127.0.0.1:8080/',
    '<%= config.bin %> repo verify-hosted ./webroot --json',
    '<%= config.bin %> repo verify-hosted http://127.0.0.1:8080/ --name main --fingerprint HEX',
  ];
  static override args = { target: Args.string({ description: 'URL or folder of the published root.', required: true }) };
  static override flags = {
    fingerprint: Flags.string({ summary: 'Root fingerprint you expect (as pinned by clients).' }),
    name: Flags.string({ summary: "Repository name the signed catalog must carry (default: hosted-repo.json's name)." }),
  };

  private failed = false;

  override async run(): Promise<VerifyHostedResult> {
    const { args, flags } = await this.parse(RepoVerifyHosted);
    const reader = repoReaderFor(args.target);
    let r: VerifyHostedResult;
    try {
      r = await verifyHosted(reader, {
        reporter: this.reporter(),
        ...(flags.fingerprint && { pinnedFingerprint: flags.fingerprint }),
        ...(flags.name && { name: flags.name }),
      });
    } finally {
      await reader.close?.();
    }
    if (!flags.fingerprint) {
      // Without a pin every check is against whatever root the server hands out, which proves consistency, not identity.
      r.warnings.push(
        'no --fingerprint given: nothing was pinned, so the checks only show the repository agrees with the root it serves; pass the fingerprint clients pin',
      );
    }
    this.warnings.push(...r.warnings);
    if (!r.ok) {
      this.failed = true;
      if (this.jsonEnabled()) {
        const failures = r.checks.filter((c) => !c.ok);
        throw new SwpkgError('E_HOSTED_CHECK', `${failures.length} check(s) failed`, { details: { checks: r.checks } });
      }
    }
    return r;
  }

  protected override render(r: VerifyHostedResult): void {
    for (const c of r.checks) this.log(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}${c.code ? ` [${c.code}]` : ''}`);
    for (const w of r.warnings) this.log(`WARN  ${w}`);
    const failures = r.checks.filter((c) => !c.ok).length;
    this.log(failures ? `${failures} check(s) failed` : `all ${r.checks.length} checks passed`);
    if (this.failed) process.exitCode = 3;
  }
}
