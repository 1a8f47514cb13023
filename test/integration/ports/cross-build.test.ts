import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  buildPort,
  buildPorts,
  makeRepoFixture,
  packageRecipe,
  readElf,
  runSmokeTest,
  validateRecipe,
  verifyReproducible,
  type PortsPaths,
} from '../../../ports/index.js';
import { SwpkgError, extractPackage } from '../../../catalog/index.js';
import { verifyHosted, writeNewKeyPair } from '../../../publishing/index.js';
import { DirRepoReader } from '../../../cli/shared/repo-readers.js';
import { treeHash } from '../../helpers/tmp.js';
import { helloSources, libSources, makeTarball, recipeFor, writePortsTree, type PortSpec } from '../../unit/ports/fixture.js';

/**
 * Cross builds of tiny C ports for aarch64-linux-musl: the same sandbox and
 * cache as x86_64, the target in the cache key, the ELF checks at packaging,
 * smoke tests under qemu-user and one repository holding both arches.
 */
let root: string;
let paths: PortsPaths;
const BOTH = ['x86_64-linux-musl', 'aarch64-linux-musl'];
const ARM = 'aarch64-linux-musl';

async function failure(p: Promise<unknown>): Promise<SwpkgError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SwpkgError);
    return e as SwpkgError;
  }
  throw new Error('expected a failure');
}

async function cacheEntries(): Promise<string[]> {
  return (await readdir(join(paths.cacheDir, 'builds')).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'swport-cross-'));
  const mirror = join(root, 'mirror');
  await mkdir(mirror);
  const greet = await makeTarball(root, 'greet', libSources());
  const hello = await makeTarball(root, 'hello', helloSources('hello', { libCall: 'greet' }));
  const plain = await makeTarball(root, 'plain', helloSources('plain'));
  for (const t of [greet, hello, plain]) {
    const { copyFile } = await import('node:fs/promises');
    await copyFile(t.path, join(mirror, t.sha256));
  }
  const makeInstall = { system: 'make', installArgs: ['install', 'DESTDIR=$DESTDIR', 'PREFIX=$PREFIX'] };
  const ports: PortSpec[] = [
    { name: 'greet', recipe: recipeFor('greet', greet.sha256, { build: makeInstall, targets: BOTH }), smoke: 'true\n' },
    {
      name: 'hello',
      recipe: recipeFor('hello', hello.sha256, { buildDepends: ['greet'], build: makeInstall, targets: BOTH }),
      smoke: 'set -eu\nout=$(hello)\necho "$out" | grep -q "greetings from libgreet"\necho "hello ok"\n',
    },
    // Lists only x86_64: an aarch64 build is refused before anything runs.
    { name: 'x86only', recipe: recipeFor('x86only', plain.sha256) },
    {
      // A Makefile that hard-codes the host's compiler: the cross build "succeeds" with an x86_64 program.
      name: 'hostcc',
      recipe: recipeFor('hostcc', plain.sha256, {
        targets: BOTH,
        build: { system: 'make', makeArgs: ['CC=musl-gcc -static'], installArgs: ['install', 'DESTDIR=$DESTDIR', 'PREFIX=$PREFIX'] },
      }),
    },
    {
      // Calls the target's musl compiler directly, without the wrapper's -static: a dynamic aarch64 program.
      name: 'dynamic',
      recipe: recipeFor('dynamic', plain.sha256, {
        targets: BOTH,
        build: {
          system: 'make',
          makeArgs: ['CC=/usr/bin/aarch64-linux-musl-gcc'],
          installArgs: ['install', 'DESTDIR=$DESTDIR', 'PREFIX=$PREFIX'],
        },
      }),
    },
  ];
  const portsDir = await writePortsTree(root, ports);
  paths = { portsDir, cacheDir: join(root, 'cache'), mirrorDir: mirror };
}, 120_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('cross-building for aarch64', () => {
  it('builds a static aarch64 program linked against the aarch64 package of its dependency', async () => {
    const built = await buildPorts(['hello'], { paths, target: ARM });
    expect(built.map((b) => [b.name, b.target, b.manifest.arch])).toEqual([
      ['greet', ARM, 'aarch64'],
      ['hello', ARM, 'aarch64'],
    ]);
    const hello = built[1]!;
    expect(hello.file).toBe('hello-1.0.0-aarch64.swpkg');
    expect(hello.manifest.build).toMatchObject({ target: ARM });
    expect(hello.manifest.build?.toolchain).toMatch(/^aarch64-linux-musl /);
    const out = join(root, 'x-hello-arm');
    await extractPackage(hello.path, out, { expectedSha256: hello.sha256 });
    expect(await readElf(join(out, 'bin/hello'))).toMatchObject({ machine: 183, type: 'executable', interpreter: false, needed: 0 });
  }, 120_000);

  it('keeps the target in the cache key: the x86_64 build of the same recipe is another entry', async () => {
    const arm = await buildPort('hello', { paths, target: ARM });
    expect(arm.cached).toBe(true);
    const x86 = await buildPort('hello', { paths });
    expect(x86.cached).toBe(false);
    expect(x86.cacheKey).not.toBe(arm.cacheKey);
    expect(x86.manifest.arch).toBe('x86_64');
    expect(x86.file).not.toBe(arm.file);
  }, 120_000);

  it('names the SPDX summary like the package, so two targets never overwrite it; older cache entries still serve theirs', async () => {
    const out = join(root, 'out-both');
    const arm = await packageRecipe('hello', { paths, out, target: ARM });
    const x86 = await packageRecipe('hello', { paths, out });
    expect([arm.spdxPath, x86.spdxPath]).toEqual([join(out, 'hello-1.0.0-aarch64.spdx.json'), join(out, 'hello-1.0.0-x86_64.spdx.json')]);
    // A cache entry written before the arch was in the SPDX name.
    const greet = await buildPort('greet', { paths, target: ARM });
    await rename(join(dirname(greet.path), 'greet-1.0.0-aarch64.spdx.json'), join(dirname(greet.path), 'greet-1.0.0.spdx.json'));
    const again = await packageRecipe('greet', { paths, out, target: ARM });
    expect(again.cached).toBe(true);
    expect(again.spdxPath).toBe(join(out, 'greet-1.0.0-aarch64.spdx.json'));
    expect(existsSync(again.spdxPath)).toBe(true);
  }, 120_000);

  it('runs the smoke script with the aarch64 programs under qemu-user', async () => {
    const r = await runSmokeTest('hello', { paths, target: ARM });
    expect(r.output).toContain('hello ok');
    expect(r.emulator).toMatch(/qemu-aarch64-static$/);
    expect(r.target).toBe(ARM);
  }, 120_000);

  it('gives identical bytes from two clean aarch64 builds', async () => {
    const r = await verifyReproducible('hello', { paths, target: ARM });
    expect(r.identical).toBe(true);
    expect(r.target).toBe(ARM);
  }, 120_000);

  it('publishes both arches into one signed root', async () => {
    const { privatePath } = await writeNewKeyPair(join(root, 'keys'), 'cross');
    const out = join(root, 'repo');
    const r = await makeRepoFixture(['hello'], { paths, out, keyPath: privatePath, targets: ['x86_64-linux-musl', ARM] });
    expect(r.ports.map((p) => p.file).sort()).toEqual(['hello-1.0.0-aarch64.swpkg', 'hello-1.0.0-x86_64.swpkg']);
    const v = await verifyHosted(new DirRepoReader(out));
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.packages).toBe(2);
  }, 120_000);
});

describe('refusing bad cross builds', () => {
  // Each leaves the build cache as it was and writes no package.
  async function refuses(port: string, code: string): Promise<SwpkgError> {
    const before = await cacheEntries();
    const out = join(root, `out-${port}`);
    const e = await failure(packageRecipe(port, { paths, out, target: ARM }));
    expect(e.code).toBe(code);
    expect(await cacheEntries()).toEqual(before);
    expect(existsSync(out) ? await treeHash(out) : 'absent').toBe('absent');
    return e;
  }

  it('a recipe that does not list the target', async () => {
    const e = await refuses('x86only', 'E_UNSUPPORTED_TARGET');
    expect(e.details).toMatchObject({ port: 'x86only', target: ARM, supported: ['x86_64-linux-musl'] });
    const v = await failure(validateRecipe(paths.portsDir, 'x86only', ARM));
    expect(v.code).toBe('E_UNSUPPORTED_TARGET');
  });

  it('a cross build that produced a host (x86_64) program', async () => {
    const e = await refuses('hostcc', 'E_WRONG_ARCH');
    expect(e.details).toMatchObject({ port: 'hostcc', path: 'bin/plain', arch: 'aarch64', expectedMachine: 183, machine: 62 });
  }, 60_000);

  it('a dynamically linked output for the static target', async () => {
    const e = await refuses('dynamic', 'E_BUILD');
    expect(e.details).toMatchObject({ port: 'dynamic', path: 'bin/plain' });
    expect(e.message).toContain('dynamically linked');
  }, 60_000);
});
