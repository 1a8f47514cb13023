import { describe, expect, it } from 'vitest';
import { copyFile, lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  BuildCache,
  buildKey,
  driverScript,
  firstDifference,
  defaultPortsPaths,
  findRepoRoot,
  normalizeTree,
  parseRecipe,
  parseTimes,
  sandboxCommand,
  spdxDocument,
  writeToolchainWrappers,
  type BuildKeyInputs,
  type LoadedRecipe,
} from '../../../ports/index.js';
import { sha256Hex, type PackageManifest, type SwpkgError } from '../../../catalog/index.js';
import { tempDir } from '../../helpers/tmp.js';

const SHA = 'c'.repeat(64);

function recipe(build: Record<string, unknown>): ReturnType<typeof parseRecipe> {
  return parseRecipe(
    {
      name: 'demo',
      version: '1.0.0',
      summary: 'demo',
      license: 'MIT',
      sourceDateEpoch: 1700000000,
      sources: [{ url: 'https://example.invalid/demo.tar.gz', sha256: SHA }],
      targets: ['x86_64-linux-musl'],
      build,
      smoke: 'smoke.sh',
    },
    'demo',
  );
}

describe('normalizeTree', () => {
  it('drops docs and libtool archives, relinks absolute links into the prefix as relative ones', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'bin'), { recursive: true });
    await mkdir(join(dir, 'share/man/man1'), { recursive: true });
    await mkdir(join(dir, 'lib'), { recursive: true });
    await writeFile(join(dir, 'bin/tool'), '#!/bin/sh\n');
    await writeFile(join(dir, 'share/man/man1/tool.1'), '.TH\n');
    await writeFile(join(dir, 'lib/libx.la'), 'libtool\n');
    await writeFile(join(dir, 'lib/keep.txt'), 'keep\n');
    await symlink('/pkg/current/bin/tool', join(dir, 'bin/alias'));
    const r = await normalizeTree(dir, ['lib/keep.txt'], 'demo');
    expect(r.removed.sort()).toEqual(['lib/keep.txt', 'lib/libx.la', 'share/man']);
    expect(await readlink(join(dir, 'bin/alias'))).toBe('tool');
    expect(r.relinked).toEqual(['bin/alias']);
    expect(existsSync(join(dir, 'share/man'))).toBe(false);
  });

  it('refuses a link pointing outside the package', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'etc'));
    await symlink('/etc/passwd', join(dir, 'etc/passwd'));
    try {
      await normalizeTree(dir, [], 'demo');
      throw new Error('expected a failure');
    } catch (e) {
      expect((e as SwpkgError).code).toBe('E_BUILD');
      expect((e as SwpkgError).details['path']).toBe('etc/passwd');
    }
  });

  it('refuses a dynamically linked executable: ports are fully static', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'bin'));
    // The host's own /usr/bin/env is a dynamically linked glibc program.
    await copyFile('/usr/bin/env', join(dir, 'bin/env'));
    try {
      await normalizeTree(dir, [], 'demo');
      throw new Error('expected a failure');
    } catch (e) {
      expect((e as SwpkgError).code).toBe('E_BUILD');
      expect((e as SwpkgError).message).toContain('dynamically linked');
    }
  });

  it('strips a static executable and clears setuid bits', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'bin'));
    await copyFile('/usr/bin/busybox', join(dir, 'bin/bb'));
    const { chmod } = await import('node:fs/promises');
    await chmod(join(dir, 'bin/bb'), 0o4755);
    const r = await normalizeTree(dir, [], 'demo');
    expect(r.stripped).toEqual(['bin/bb']);
    expect((await lstat(join(dir, 'bin/bb'))).mode & 0o7777).toBe(0o755);
  });
});

describe('build cache', () => {
  const inputs: BuildKeyInputs = {
    port: 'demo',
    target: 'x86_64-linux-musl',
    recipeFiles: { 'recipe.json': SHA },
    sources: [SHA],
    dependencies: {},
    toolchain: SHA,
    sandbox: 'fixed-paths',
  };

  it('keys change with every input', () => {
    const base = buildKey(inputs);
    expect(buildKey({ ...inputs })).toBe(base);
    const variants: Partial<BuildKeyInputs>[] = [
      { recipeFiles: { 'recipe.json': 'd'.repeat(64) } },
      { recipeFiles: { 'recipe.json': SHA, 'fix.patch': SHA } },
      { sources: ['e'.repeat(64)] },
      { dependencies: { zlib: SHA } },
      { toolchain: 'f'.repeat(64) },
      { target: 'aarch64-linux-musl' },
      { sandbox: 'host-paths' },
    ];
    for (const v of variants) expect(buildKey({ ...inputs, ...v })).not.toBe(base);
  });

  it('stores with one rename and re-verifies on lookup: a tampered package is a miss and is removed', async () => {
    const cacheDir = await tempDir();
    const cache = new BuildCache(cacheDir);
    const key = buildKey(inputs);
    const staged = await tempDir();
    await writeFile(join(staged, 'demo.swpkg'), 'package bytes');
    const entry = await cache.store(key, [{ path: join(staged, 'demo.swpkg'), name: 'demo.swpkg' }], {
      port: 'demo',
      version: '1.0.0',
      file: 'demo.swpkg',
      sha256: sha256Hex('package bytes'),
      size: 13,
      seconds: 1,
      builtAt: '2026-01-01T00:00:00Z',
      inputs,
      manifest: {
        format: 1,
        name: 'demo',
        version: '1.0.0',
        arch: 'x86_64',
        abi: 'linux-musl-static',
        summary: 's',
        license: 'MIT',
        depends: {},
        provides: [],
        conflicts: [],
        installedSize: 0,
        files: [],
      },
    });
    expect((await cache.lookup(key))?.sha256).toBe(sha256Hex('package bytes'));
    await writeFile(entry.packagePath, 'tampered bytes');
    expect(await cache.lookup(key)).toBeUndefined();
    expect(existsSync(entry.dir)).toBe(false);
  });

  it('misses on an unknown key', async () => {
    expect(await new BuildCache(await tempDir()).lookup('0'.repeat(64))).toBeUndefined();
  });
});

describe('driver script', () => {
  it('runs configure with the fixed prefix, quotes arguments and keeps $VAR expansion', () => {
    const s = driverScript(recipe({ system: 'autotools', configureArgs: ['--with-zlib=$SYSROOT', 'CFLAGS=a "b" `c`'] }), {
      src: '/build/src',
      recipe: '/build/recipe',
    });
    expect(s).toContain('./configure --prefix=/pkg/current "--with-zlib=$SYSROOT" "CFLAGS=a \\"b\\" \\`c\\`"');
    expect(s).toContain('make install DESTDIR="$DESTDIR"');
    expect(s.split('\n')[0]).toBe('set -eu');
  });

  it('runs a custom script from the recipe folder and marks phases', () => {
    const s = driverScript(recipe({ system: 'custom', script: 'build.sh' }), { src: '/build/src', recipe: '/build/recipe' });
    expect(s).toContain('sh -eu "/build/recipe/build.sh"');
    expect(s).toMatch(/echo '==> build'/);
    expect(s).toMatch(/echo '==> done'\ntimes\n$/);
  });

  it('defaults a make install to DESTDIR', () => {
    expect(driverScript(recipe({ system: 'make' }), { src: '/s', recipe: '/r' })).toContain('make "install" "DESTDIR=$DESTDIR"');
  });

  it('gives autotools --build and --host, and CMake the toolchain file, only for the cross target', () => {
    const inner = { src: '/build/src', recipe: '/build/recipe', toolchain: '/build/toolchain' };
    const auto = recipe({ system: 'autotools', configureArgs: ['--disable-shared'] });
    expect(driverScript(auto, inner, 'aarch64-linux-musl')).toContain(
      './configure --prefix=/pkg/current --build=x86_64-pc-linux-gnu --host=aarch64-linux-musl "--disable-shared"',
    );
    // The native script is byte-for-byte what it was before cross targets existed.
    expect(driverScript(auto, inner, 'x86_64-linux-musl')).toBe(driverScript(auto, inner));
    expect(driverScript(auto, inner)).toContain('./configure --prefix=/pkg/current "--disable-shared"');
    const cmake = recipe({ system: 'cmake' });
    expect(driverScript(cmake, inner, 'aarch64-linux-musl')).toContain('-DCMAKE_TOOLCHAIN_FILE=/build/toolchain/cross.cmake');
    expect(driverScript(cmake, inner)).not.toContain('CMAKE_TOOLCHAIN_FILE');
  });
});

describe('toolchain wrappers', () => {
  it('for aarch64: the musl cross compiler, the target binutils under the triple and plain archive tools, never a plain as or ld', async () => {
    const dir = await tempDir();
    const w = await writeToolchainWrappers({
      target: 'aarch64-linux-musl',
      binDir: join(dir, 'bin'),
      headersDir: join(dir, 'kernel-headers'),
      innerHeadersDir: '/build/toolchain/kernel-headers',
      innerSrcDir: '/build/src',
    });
    expect(w.cc).toBe('aarch64-linux-musl-gcc');
    expect(await readFile(join(dir, 'bin', w.cc), 'utf8')).toContain('exec /usr/bin/aarch64-linux-musl-gcc -static ');
    expect(await readlink(join(dir, 'bin/aarch64-linux-musl-ar'))).toBe('/usr/bin/aarch64-linux-gnu-ar');
    expect(await readlink(join(dir, 'bin/ar'))).toBe('/usr/bin/aarch64-linux-gnu-ar');
    expect(await readlink(join(dir, 'bin/aarch64-linux-musl-ld'))).toBe('/usr/bin/aarch64-linux-gnu-ld');
    // The host gcc builds build-time tools and finds as/ld through PATH; cc/gcc stay the host's.
    for (const plain of ['as', 'ld', 'cc', 'gcc']) expect(existsSync(join(dir, 'bin', plain))).toBe(false);
    expect(await readlink(join(dir, 'kernel-headers/asm'))).toBe('/usr/aarch64-linux-gnu/include/asm');
    expect(w.env).toMatchObject({
      AR: 'aarch64-linux-musl-ar',
      STRIP: 'aarch64-linux-musl-strip',
      CC_FOR_BUILD: 'gcc',
      CONFIGURE_CROSS_ARGS: '--build=x86_64-pc-linux-gnu --host=aarch64-linux-musl',
      CROSS_EMULATOR: 'qemu-aarch64-static',
    });
    const cmake = await readFile(join(dir, 'cross.cmake'), 'utf8');
    expect(cmake).toContain('set(CMAKE_SYSTEM_PROCESSOR aarch64)');
    expect(cmake).toContain('set(CMAKE_C_COMPILER aarch64-linux-musl-gcc)');
  });

  it('for x86_64: musl-gcc under every compiler name and no extra environment', async () => {
    const dir = await tempDir();
    const w = await writeToolchainWrappers({
      binDir: join(dir, 'bin'),
      headersDir: join(dir, 'kernel-headers'),
      innerHeadersDir: '/h',
      innerSrcDir: '/s',
    });
    expect(w).toEqual({ cc: 'x86_64-linux-musl-gcc', env: {} });
    for (const alias of ['cc', 'gcc', 'musl-gcc']) expect(await readlink(join(dir, 'bin', alias))).toBe('x86_64-linux-musl-gcc');
    expect(existsSync(join(dir, 'bin/ar'))).toBe(false);
  });
});

describe('paths', () => {
  it('defaults to the repository ports, .cache and ../shared/sources, with environment overrides', () => {
    const root = findRepoRoot();
    expect(root).toBeDefined();
    const d = defaultPortsPaths({}, {});
    expect(d).toEqual({
      portsDir: join(root!, 'ports'),
      cacheDir: join(root!, '.cache'),
      mirrorDir: join(root!, '..', 'shared', 'sources'),
    });
    const e = defaultPortsPaths({}, { SWPORT_CACHE_DIR: '/tmp/c', SWPORT_SOURCE_MIRROR: '/tmp/m', SWPORT_PORTS_DIR: '/tmp/p' });
    expect(e).toEqual({ portsDir: '/tmp/p', cacheDir: '/tmp/c', mirrorDir: '/tmp/m' });
    expect(defaultPortsPaths({ cacheDir: '/x' }, { SWPORT_CACHE_DIR: '/tmp/c' }).cacheDir).toBe('/x');
  });
});

describe('build CPU time', () => {
  it("sums the shell's and its children's user and system time from `times`", () => {
    expect(parseTimes(['make: done', '==> done', '0m0.010000s 0m0.004000s', '1m2.500000s 0m3.250000s'])).toBeCloseTo(65.764, 3);
    expect(parseTimes(['no times here'])).toBeUndefined();
  });
});

describe('sandbox command', () => {
  it('unshares the network and binds folders at fixed paths under bwrap', async () => {
    const c = await sandboxCommand(
      { kind: 'bwrap', fixedPaths: true },
      {
        mounts: [
          { host: '/tmp/x', inner: '/build/src', writable: true },
          { host: '/tmp/y', inner: '/pkg/current', writable: false },
        ],
        env: { B: '2', A: '1' },
        cwd: '/build/src',
        argv: ['/bin/sh', 'x.sh'],
      },
    );
    expect(c.cmd).toBe('bwrap');
    expect(c.args).toContain('--unshare-all');
    expect(c.args).not.toContain('--share-net');
    expect(c.args.join(' ')).toContain('--bind /tmp/x /build/src --ro-bind /tmp/y /pkg/current --clearenv --setenv A 1 --setenv B 2');
    expect(c.args.slice(-3)).toEqual(['--', '/bin/sh', 'x.sh']);
  });

  it('falls back to unshare -n with real paths and refuses a remapped mount', async () => {
    const spec = { mounts: [{ host: '/tmp/x', inner: '/tmp/x', writable: true }], env: {}, cwd: '/tmp/x', argv: ['/bin/true'] };
    const c = await sandboxCommand({ kind: 'unshare', fixedPaths: false }, spec);
    expect([c.cmd, ...c.args]).toEqual(['unshare', '-n', '--', '/bin/true']);
    await expect(
      sandboxCommand({ kind: 'none', fixedPaths: false }, { ...spec, mounts: [{ host: '/a', inner: '/b', writable: true }] }),
    ).rejects.toThrow();
  });
});

describe('reproducibility report', () => {
  const m = (files: PackageManifest['files']): PackageManifest => ({
    format: 1,
    name: 'demo',
    version: '1.0.0',
    arch: 'x86_64',
    abi: 'linux-musl-static',
    summary: 's',
    license: 'MIT',
    depends: {},
    provides: [],
    conflicts: [],
    installedSize: 0,
    files,
  });

  it('names the first differing file in archive order', () => {
    const a = m([
      { path: 'bin', type: 'dir', mode: 0o755 },
      { path: 'bin/a', type: 'file', mode: 0o755, size: 1, sha256: SHA },
      { path: 'bin/b', type: 'file', mode: 0o755, size: 1, sha256: SHA },
    ]);
    const b = m([
      { path: 'bin', type: 'dir', mode: 0o755 },
      { path: 'bin/a', type: 'file', mode: 0o755, size: 1, sha256: SHA },
      { path: 'bin/b', type: 'file', mode: 0o755, size: 1, sha256: 'd'.repeat(64) },
    ]);
    expect(firstDifference(a, b)?.path).toBe('bin/b');
    expect(firstDifference(a, a)).toBeUndefined();
    const missing = firstDifference(a, m([{ path: 'bin', type: 'dir', mode: 0o755 }]));
    expect(missing?.path).toBe('bin/a');
    expect(missing?.second).toBeUndefined();
  });
});

describe('SPDX summary', () => {
  it('is deterministic and records license, source pins and the package hash', () => {
    const l: LoadedRecipe = { recipe: recipe({ system: 'make' }), dir: '/x', recipePath: '/x/recipe.json', recipeSha256: SHA };
    const manifest = { files: [], installedSize: 0, build: { toolchain: 'tc' } } as unknown as PackageManifest;
    const a = spdxDocument(l, manifest, 'f'.repeat(64), 'demo-1.0.0-x86_64.swpkg');
    const b = spdxDocument(l, manifest, 'f'.repeat(64), 'demo-1.0.0-x86_64.swpkg');
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const text = JSON.stringify(a);
    expect(text).toContain('"licenseDeclared":"MIT"');
    expect(text).toContain(SHA);
    expect(text).toContain('f'.repeat(64));
    expect((a['creationInfo'] as { created: string }).created).toBe('2023-11-14T22:13:20Z');
  });
});

describe('recipe files on disk', () => {
  it('every seed recipe folder has a smoke test in POSIX sh without bash-isms', async () => {
    const root = join(import.meta.dirname, '../../../ports/recipes');
    const { readdir } = await import('node:fs/promises');
    for (const name of await readdir(root)) {
      const smoke = await readFile(join(root, name, 'smoke.sh'), 'utf8');
      expect(smoke, name).toMatch(/set -eu/);
      // bash-isms busybox ash would not run the same way
      expect(smoke, name).not.toMatch(/\[\[|\bfunction\s|<<<|\$\{[A-Za-z_]+\/\/|^#!\/bin\/bash/m);
    }
  });
});
