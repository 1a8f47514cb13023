/**
 * One client build: the pkg the image builder copies into the base image, the one the
 * integration and fault tests spawn, and the one bench/client measures are the same bytes.
 * Checked without booting: the image builder's own choice of file is compared.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { silentReporter } from '../../../catalog/index.js';
import { choosePkgBundle, PKG_ENTRY } from '../../../images/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { NODE, REPO_ROOT, pkgBundle } from '../userland/helpers.js';

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

describe('the one pkg client build', { timeout: 120_000 }, () => {
  it('the base image, the tests and bench/client get byte-identical bundles', async () => {
    const work = await tempDir('pkg-bundle-');
    const image = await choosePkgBundle(REPO_ROOT, join(work, 'image'), 'bundle', silentReporter);
    expect(image).toMatchObject({ source: PKG_ENTRY, built: true });
    const tests = await pkgBundle();
    // bench/client/bench.sh runs exactly this command line.
    execFileSync(join(REPO_ROOT, 'bin/swpkg'), ['image', 'bundle', join(work, 'bench.mjs'), '-q'], { stdio: 'ignore' });
    const hash = await sha256(image!.file);
    expect(await sha256(tests)).toBe(hash);
    expect(await sha256(join(work, 'bench.mjs'))).toBe(hash);
    // The bundle is the guest's client: it runs with Node alone.
    expect(execFileSync(NODE, [image!.file, '--version'], { encoding: 'utf8' })).toMatch(/^pkg \d+\.\d+\.\d+/);
  });

  it('a ready bundle passed to the image builder is used as it is', async () => {
    const tests = await pkgBundle();
    const work = await tempDir('pkg-bundle-');
    expect(await choosePkgBundle(REPO_ROOT, work, { bundleFile: tests }, silentReporter)).toMatchObject({ file: tests, built: false });
    await expect(choosePkgBundle(REPO_ROOT, work, { bundleFile: join(work, 'missing.mjs') }, silentReporter)).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
  });
});
