/** A published web root with a release key in its root, built through the CLIs (issue 15 tests). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli } from './run-cli.js';

/** Runs a built CLI with --json and returns its result, failing the test (with its output) unless it exits 0. */
export async function ok(bin: 'swpkg' | 'pkg', args: string[]) {
  const r = await runCli(bin, [...args, '--json']);
  expect(r.code, `${bin} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.json.result;
}

export async function pack(d: string, name: string, version: string, extra: string[] = []): Promise<void> {
  const src = join(d, 'src', `${name}-${version}`);
  await mkdir(join(src, 'bin'), { recursive: true });
  await writeFile(join(src, 'bin', name), `#!/bin/sh\necho ${name} ${version}\n`, { mode: 0o755 });
  const args = ['pack', src, '--name', name, '--version', version, '--arch', 'x86_64', '--summary', name, '--license', 'MIT'];
  await ok('swpkg', [...args, '--out', join(d, 'pkgs', `${name}-${version}.swpkg`), ...extra]);
}

/** A published web root `web` whose root names a release key: tool@1.0.0 needs lib@1.0.0. */
export async function releaseRepo(d: string): Promise<{ web: string; releaseKey: string; catalogKey: string; fingerprint: string }> {
  for (const k of ['root', 'release']) await ok('swpkg', ['key', 'generate', '--out', join(d, k)]);
  await mkdir(join(d, 'pkgs'), { recursive: true });
  // lib is signed by the catalog key, so a copy of it is trusted wherever the repository is configured.
  await pack(d, 'lib', '1.0.0', ['--key', join(d, 'root/swpkg.key')]);
  await pack(d, 'tool', '1.0.0', ['--depends', 'lib@^1']);
  const web = join(d, 'web');
  const rootKey = join(d, 'root/swpkg.key');
  await ok('swpkg', ['repo', 'publish', join(d, 'pkgs'), '--key', rootKey, '--out', web, '--name', 'main']);
  const rot = await ok('swpkg', [
    'repo',
    'rotate-root',
    web,
    '--old-key',
    rootKey,
    '--new-key',
    rootKey,
    '--release-key',
    join(d, 'release/swpkg.pub'),
  ]);
  return { web, releaseKey: join(d, 'release/swpkg.key'), catalogKey: rootKey, fingerprint: rot.fingerprint as string };
}
