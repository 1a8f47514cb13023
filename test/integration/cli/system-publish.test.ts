/**
 * `swpkg system publish` through the built binary (issue 14): a system
 * release signed by the root's release role, its artifacts streamed into the
 * web root, and every refusal leaving the web root as it was.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoot, sha256Hex, verifySystemRelease } from '../../../catalog/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { treeHash } from '../../helpers/tmp.js';

let d: string;
let web: string;
let rootKey: string;
let releaseKey: string;

async function ok(args: string[]): Promise<ReturnType<typeof runCli> extends Promise<infer R> ? R : never> {
  const r = await runCli('swpkg', args);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

// One repository for the whole file (tempDir would remove it after the first test).
afterAll(async () => {
  await rm(d, { recursive: true, force: true });
});
beforeAll(async () => {
  d = await mkdtemp(join(tmpdir(), 'swpkg-system-publish-'));
  web = join(d, 'web');
  for (const k of ['root', 'release']) await ok(['key', 'generate', '--out', join(d, k)]);
  rootKey = join(d, 'root/swpkg.key');
  releaseKey = join(d, 'release/swpkg.key');
  await mkdir(join(d, 'src/bin'), { recursive: true });
  await writeFile(join(d, 'src/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
  await mkdir(join(d, 'pkgs'));
  await ok([
    'pack',
    join(d, 'src'),
    '--name',
    'tool',
    '--version',
    '1.0.0',
    '--arch',
    'x86_64',
    '--summary',
    't',
    '--license',
    'MIT',
    '--out',
    join(d, 'pkgs/tool.swpkg'),
  ]);
  await ok(['repo', 'publish', join(d, 'pkgs'), '--key', rootKey, '--out', web, '--name', 'main']);
  await ok(['repo', 'rotate-root', web, '--old-key', rootKey, '--new-key', rootKey, '--release-key', join(d, 'release/swpkg.pub')]);
  await mkdir(join(d, 'images'));
  await writeFile(join(d, 'images/vmlinuz'), 'kernel v1');
  await writeFile(join(d, 'images/initramfs.cpio.gz'), 'initramfs v1');
  await writeFile(join(d, 'images/base.img'), Buffer.alloc(1 << 20, 7));
}, 120_000);

describe('swpkg system publish', () => {
  it('publishes version 1 then 2; the document passes the client gate and names the streamed files', async () => {
    const r = await ok(['system', 'publish', web, '--key', releaseKey, '--images', join(d, 'images'), '--json']);
    expect(r.json.result).toMatchObject({ path: 'system/x86_64.json', version: 1, arch: 'x86_64', repo: 'main' });
    await writeFile(join(d, 'k2'), 'kernel v2');
    const r2 = await ok([
      'system',
      'publish',
      web,
      '--key',
      releaseKey,
      '--images',
      join(d, 'images'),
      '--kernel',
      join(d, 'k2'),
      '--json',
    ]);
    expect(r2.json.result.version).toBe(2);
    const root = parseRoot(await readFile(join(web, 'roots/2.json')), 'root');
    const doc = verifySystemRelease(await readFile(join(web, 'system/x86_64.json')), {
      root,
      now: new Date(),
      arch: 'x86_64',
      repo: 'main',
    });
    expect(doc.signed.version).toBe(2);
    // A system whose pkg speaks client format 1 (before zstd packages) can still update to it.
    expect(doc.signed.minClientFormat).toBe(1);
    expect(
      verifySystemRelease(await readFile(join(web, 'system/x86_64.json')), {
        root,
        now: new Date(),
        arch: 'x86_64',
        repo: 'main',
        clientFormat: 1,
      }).signed.version,
    ).toBe(2);
    // --expires defaults to 90 days.
    expect(Date.parse(doc.signed.expires) - Date.parse(doc.signed.generated)).toBe(90 * 86400_000);
    for (const a of Object.values(doc.signed.artifacts)) {
      const bytes = await readFile(join(web, a.path));
      expect([bytes.length, sha256Hex(bytes)]).toEqual([a.size, a.sha256]);
    }
    expect(await readFile(join(web, doc.signed.artifacts.kernel.path), 'utf8')).toBe('kernel v2');
    // The previous version's files stay for guests still staging it.
    expect(await readFile(join(web, 'system/x86_64/1/vmlinuz'), 'utf8')).toBe('kernel v1');
  });

  it.each([
    ['a key the root does not trust as a release key', () => ['--key', rootKey], 'E_UNKNOWN_KEY'],
    ['a version that is not newer', () => ['--key', releaseKey, '--version', '1'], 'E_ROLLBACK'],
  ])('refuses %s with nothing written', async (_name, extra, code) => {
    const before = await treeHash(web);
    const r = await runCli('swpkg', ['system', 'publish', web, '--images', join(d, 'images'), ...extra(), '--json']);
    expect(r.json.error.code).toBe(code);
    expect(await treeHash(web)).toBe(before);
  });

  it('refuses a folder that is not a published repository', async () => {
    const empty = join(d, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, 'note'), 'not a repository');
    const before = await treeHash(empty);
    const r = await runCli('swpkg', ['system', 'publish', empty, '--key', releaseKey, '--images', join(d, 'images'), '--json']);
    expect(r.json.error.code).toBe('E_NOT_FOUND');
    expect(await treeHash(empty)).toBe(before);
  });
});
