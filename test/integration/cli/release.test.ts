/**
 * Pinned releases through the built binaries (issue 15): the release role in the root, and the
 * commands that write, publish, mirror and install releases.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRoot } from '../../../catalog/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { tempDir } from '../../helpers/tmp.js';

async function payload(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  return dir;
}

describe('swpkg release keys', () => {
  it('rotate-root --release-key adds a release role that later rotations keep', async () => {
    const d = await tempDir();
    for (const k of ['root', 'release']) expect((await runCli('swpkg', ['key', 'generate', '--out', join(d, k)])).code).toBe(0);
    await mkdir(join(d, 'pkgs'));
    const src = await payload(join(d, 'src'));
    const pack = await runCli('swpkg', [
      'pack',
      src,
      '--name',
      'tool',
      '--version',
      '1.0.0',
      '--arch',
      'x86_64',
      '--summary',
      'tool',
      '--license',
      'MIT',
      '--out',
      join(d, 'pkgs/tool.swpkg'),
    ]);
    expect(pack.code, pack.stderr).toBe(0);
    const pub = await runCli('swpkg', [
      'repo',
      'publish',
      join(d, 'pkgs'),
      '--key',
      join(d, 'root/swpkg.key'),
      '--out',
      join(d, 'web'),
      '--json',
    ]);
    expect(pub.code, pub.stderr).toBe(0);
    const rootKey = join(d, 'root/swpkg.key');
    const rot = await runCli('swpkg', [
      'repo',
      'rotate-root',
      join(d, 'web'),
      '--old-key',
      rootKey,
      '--new-key',
      rootKey,
      '--release-key',
      join(d, 'release/swpkg.pub'),
      '--json',
    ]);
    expect(rot.code, rot.stderr).toBe(0);
    const v2 = parseRoot(await readFile(join(d, 'web/roots/2.json')), 'v2');
    expect(v2.signed.roles.release?.keyids).toHaveLength(1);
    expect(v2.signed.roles.release?.keyids[0]).not.toBe(v2.signed.roles.catalog.keyids[0]);
    const again = await runCli('swpkg', ['repo', 'rotate-root', join(d, 'web'), '--old-key', rootKey, '--new-key', rootKey, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(parseRoot(await readFile(join(d, 'web/roots/3.json')), 'v3').signed.roles.release).toEqual(v2.signed.roles.release);
  });
});
