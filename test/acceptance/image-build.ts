import { join } from 'node:path';
import type { GuestArch } from '../../kernel/index.js';
import type { BuildImagesResult } from '../../images/index.js';
import { hostRun } from './util.js';

/**
 * Builds the guest artifact set the way a person does, with `swpkg image build --json`, so the
 * suite runs the command and not a private path into the builder. The result is the command's
 * typed --json result (the interface snapshot's shape).
 */
export async function buildImagesWithCli(
  root: string,
  o: { arch: GuestArch; outDir: string; pkgBundle?: string; stageRepos?: string[] },
  info: (line: string) => void,
): Promise<BuildImagesResult> {
  const args = ['image', 'build', '--arch', o.arch, '--out', o.outDir, '--json'];
  args.push(...(o.pkgBundle ? ['--pkg-bundle', o.pkgBundle] : ['--require-pkg']));
  for (const r of o.stageRepos ?? []) args.push('--stage-repo', r);
  const r = await hostRun(join(root, 'bin', 'swpkg'), args, { cwd: root, timeoutMs: 60 * 60_000 });
  let doc: { ok?: boolean; result?: BuildImagesResult; warnings?: string[]; error?: { code: string; message: string } } | undefined;
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    doc = undefined;
  }
  if (r.code !== 0 || !doc?.ok || !doc.result) {
    const why = doc?.error
      ? `${doc.error.code}: ${doc.error.message}`
      : r.timedOut
        ? 'timed out'
        : r.stderr.split('\n').slice(-5).join('\n');
    throw new Error(`swpkg ${args.join(' ')} exited ${r.code ?? r.signal}: ${why}`);
  }
  for (const w of doc.warnings ?? []) info(`   warning: ${w}`);
  for (const s of doc.result.steps) info(`   ${s.skipped ? 'up to date' : 'built     '} ${s.name} (${s.ms} ms)`);
  return doc.result;
}
