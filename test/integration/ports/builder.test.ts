import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildPort,
  buildPorts,
  makeRepoFixture,
  packageRecipe,
  probeSandbox,
  runCommand,
  runSmokeTest,
  verifyReproducible,
  type PortsPaths,
} from '../../../ports/index.js';
import type { SwpkgError } from '../../../catalog/index.js';
import { CollectingReporter, ExitCode, extractPackage } from '../../../catalog/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { verifyHosted, writeNewKeyPair } from '../../../publishing/index.js';
import { DirRepoReader } from '../../../cli/shared/repo-readers.js';
import { treeHash } from '../../helpers/tmp.js';
import { helloSources, libSources, makeTarball, recipeFor, writePortsTree, type PortSpec } from '../../unit/ports/fixture.js';
import { failure } from '../../helpers/failure.js';

/**
 * Real builds of tiny C ports: musl-gcc, the bubblewrap sandbox, the build
 * cache, packing, smoke tests and publishing, in seconds. Sources come from a
 * content-addressed mirror folder or a server on 127.0.0.1, made by the test.
 */
let root: string;
let paths: PortsPaths;
let server: Server;
let serverUrl: string;
const requests: string[] = [];
const WRONG_SHA = '0'.repeat(64);

async function cacheEntries(): Promise<string[]> {
  return (await readdir(join(paths.cacheDir, 'builds')).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'swport-it-'));
  const mirror = join(root, 'mirror');
  const served = join(root, 'served');
  await mkdir(mirror);
  await mkdir(served);
  const tarballs: Record<string, { sha256: string; path: string }> = {};
  tarballs['greet'] = await makeTarball(root, 'greet', libSources());
  tarballs['hello'] = await makeTarball(root, 'hello', helloSources('hello', { libCall: 'greet' }));
  tarballs['plain'] = await makeTarball(root, 'plain', helloSources('plain'));
  tarballs['broken'] = await makeTarball(root, 'broken', helloSources('broken', { failBuild: true }));
  for (const t of Object.values(tarballs)) await copyFile(t.path, join(mirror, t.sha256));
  // Only served over HTTP, never in the mirror: its pin is wrong on purpose.
  await copyFile(tarballs['plain'].path, join(served, 'plain-1.0.0.tar.gz'));

  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const file = join(served, (req.url ?? '/').replace(/^\/+/, ''));
    readFile(file).then(
      (b) => res.writeHead(200, { 'content-length': b.length }).end(b),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serverUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const patch = [
    '--- a/plain.c',
    '+++ b/plain.c',
    '@@ -1,5 +1,5 @@',
    ' #include <stdio.h>',
    ' int main(void) {',
    '-  puts("plain says hello");',
    '+  puts("patched says hello");',
    '   return 0;',
    ' }',
    '',
  ].join('\n');
  const badPatch = patch.replace(/plain says hello/, 'text that is not there');
  const makeInstall = { system: 'make', installArgs: ['install', 'DESTDIR=$DESTDIR', 'PREFIX=$PREFIX'] };
  const ports: PortSpec[] = [
    {
      name: 'greet',
      recipe: recipeFor('greet', tarballs['greet'].sha256, { build: makeInstall }),
      smoke: 'set -eu\n[ -f "$PKG_PREFIX/lib/libgreet.a" ]\n',
    },
    {
      name: 'hello',
      recipe: recipeFor('hello', tarballs['hello'].sha256, { buildDepends: ['greet'], build: makeInstall }),
      smoke: 'set -eu\nout=$("$PKG_PREFIX/bin/hello")\necho "$out" | grep -q "greetings from libgreet"\necho "smoke: $out"\n',
    },
    { name: 'plain', recipe: recipeFor('plain', tarballs['plain'].sha256) },
    {
      name: 'patched',
      recipe: recipeFor('patched', tarballs['plain'].sha256, { patches: ['message.patch'] }),
      files: { 'message.patch': patch },
      smoke: 'set -eu\n"$PKG_PREFIX/bin/plain" | grep -q patched\n',
    },
    {
      name: 'badpatch',
      recipe: recipeFor('badpatch', tarballs['plain'].sha256, { patches: ['message.patch'] }),
      files: { 'message.patch': badPatch },
    },
    { name: 'broken', recipe: recipeFor('broken', tarballs['broken'].sha256) },
    {
      name: 'wrongsha',
      recipe: recipeFor('wrongsha', WRONG_SHA, { sources: [{ url: `${serverUrl}/plain-1.0.0.tar.gz`, sha256: WRONG_SHA }] }),
    },
    {
      name: 'unreachable',
      recipe: recipeFor('unreachable', 'a'.repeat(64), {
        sources: [{ url: 'http://127.0.0.1:9/gone-1.0.0.tar.gz', sha256: 'a'.repeat(64) }],
      }),
    },
    { name: 'nosummary', recipe: (({ summary: _s, ...rest }) => rest)(recipeFor('nosummary', tarballs['plain'].sha256)) },
    { name: 'extrafield', recipe: recipeFor('extrafield', tarballs['plain'].sha256, { checksum: 'x' }) },
    { name: 'cycle-a', recipe: recipeFor('cycle-a', tarballs['plain'].sha256, { buildDepends: ['cycle-b'] }) },
    { name: 'cycle-b', recipe: recipeFor('cycle-b', tarballs['plain'].sha256, { buildDepends: ['cycle-a'] }) },
    { name: 'needsghost', recipe: recipeFor('needsghost', tarballs['plain'].sha256, { buildDepends: ['ghost'] }) },
    {
      name: 'badsmoke',
      recipe: recipeFor('badsmoke', tarballs['plain'].sha256),
      smoke: 'set -eu\necho "checking the impossible"\nexit 4\n',
    },
    {
      name: 'netprobe',
      recipe: recipeFor('netprobe', tarballs['plain'].sha256, {
        build: { system: 'custom', script: 'build.sh', env: { PROBE_URL: `${serverUrl}/probe` } },
      }),
      files: {
        'build.sh':
          'if busybox wget -q -T 3 -O /dev/null "$PROBE_URL" 2>/dev/null; then echo "network reachable from the build" >&2; exit 1; fi\nmkdir -p "$DESTDIR$PREFIX/share"\necho isolated > "$DESTDIR$PREFIX/share/netprobe.txt"\n',
      },
      smoke: 'set -eu\ngrep -q isolated "$PKG_PREFIX/share/netprobe.txt"\n',
    },
  ];
  const portsDir = await writePortsTree(root, ports);
  paths = { portsDir, cacheDir: join(root, 'cache'), mirrorDir: mirror };
}, 120_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('building ports', () => {
  it('builds a port after its static library dependency and links against that package', async () => {
    const built = await buildPorts(['hello'], { paths });
    expect(built.map((b) => b.name)).toEqual(['greet', 'hello']);
    const hello = built[1]!;
    expect(hello.cached).toBe(false);
    expect(hello.manifest).toMatchObject({ name: 'hello', version: '1.0.0', arch: 'x86_64', abi: 'linux-musl-static', depends: {} });
    expect(hello.manifest.build).toMatchObject({ sourceDateEpoch: 1700000000, target: 'x86_64-linux-musl', upstreamVersion: '1.0.0' });
    expect(hello.manifest.build?.toolchain).toMatch(/musl/);
    expect(hello.manifest.build?.sources?.[0]?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // Without the libgreet headers and library the link would fail: they came from greet's package.
    const out = join(root, 'x-hello');
    await extractPackage(hello.path, out, { expectedSha256: hello.sha256 });
    const run = await runCommand(join(out, 'bin/hello'), [], { timeoutMs: 10_000 });
    expect(run.output).toBe('hello says hello\ngreetings from libgreet\n');
    expect(existsSync(hello.logPath)).toBe(true);
  }, 120_000);

  it('serves an unchanged port from the cache and rebuilds it when a dependency changes', async () => {
    const first = await buildPort('hello', { paths });
    expect(first.cached).toBe(true);
    const recipePath = join(paths.portsDir, 'recipes/greet/recipe.json');
    const original = await readFile(recipePath, 'utf8');
    try {
      const changed = JSON.parse(original) as Record<string, unknown>;
      changed['summary'] = 'greet, changed';
      await writeFile(recipePath, JSON.stringify(changed));
      const after = await buildPorts(['hello'], { paths });
      expect(after.map((b) => [b.name, b.cached])).toEqual([
        ['greet', false],
        ['hello', false],
      ]);
      expect(after[1]!.cacheKey).not.toBe(first.cacheKey);
    } finally {
      await writeFile(recipePath, original);
    }
  }, 120_000);

  it('gives identical package bytes from two clean builds', async () => {
    const r = await verifyReproducible('hello', { paths });
    expect(r.identical).toBe(true);
    expect(r.sha256[0]).toBe(r.sha256[1]);
  }, 120_000);

  it('applies the recipe patches', async () => {
    const b = await buildPort('patched', { paths });
    const out = join(root, 'x-patched');
    await extractPackage(b.path, out);
    expect((await runCommand(join(out, 'bin/plain'), [], { timeoutMs: 10_000 })).output).toBe('patched says hello\n');
  }, 60_000);

  it('writes the package and its SPDX summary with `package`', async () => {
    const out = join(root, 'out-pkg');
    const r = await packageRecipe('hello', { paths, out });
    expect(r.path).toBe(join(out, 'hello-1.0.0-x86_64.swpkg'));
    expect(r.dependencies.map((d) => d.name)).toEqual(['greet']);
    const spdx = JSON.parse(await readFile(r.spdxPath, 'utf8')) as { packages: { checksums: { checksumValue: string }[] }[] };
    expect(spdx.packages[0]!.checksums[0]!.checksumValue).toBe(r.sha256);
  }, 60_000);

  it('runs the smoke test against the installed package', async () => {
    const r = await runSmokeTest('hello', { paths });
    expect(r.output).toContain('smoke: hello says hello');
    expect(r.installed).toEqual(['hello']);
  }, 60_000);

  it('builds without network: the sandbox cannot reach a server on the host loopback', async () => {
    const sandbox = await probeSandbox();
    expect(sandbox.kind).not.toBe('none');
    const before = requests.filter((r) => r === '/probe').length;
    const b = await buildPort('netprobe', { paths });
    expect(b.manifest.files.map((f) => f.path)).toContain('share/netprobe.txt');
    expect(requests.filter((r) => r === '/probe').length).toBe(before);
  }, 60_000);

  it('still builds with the unshare fallback, warning that paths are not fixed', async () => {
    const rep = new CollectingReporter();
    const b = await buildPort('plain', {
      paths,
      useCache: false,
      sandbox: { kind: 'unshare', fixedPaths: false, reason: 'forced by the test' },
      reporter: rep,
    });
    expect(b.sandbox).toBe('unshare');
    expect(rep.warnings.join('\n')).toMatch(/without bubblewrap/);
  }, 60_000);
});

describe('publishing ports', () => {
  it('publishes built ports into a signed static root that verify-hosted passes', async () => {
    const keys = join(root, 'keys');
    const { privatePath } = await writeNewKeyPair(keys, 'ports');
    const out = join(root, 'repo');
    const r = await makeRepoFixture(['hello', 'plain'], { paths, out, keyPath: privatePath, name: 'ports-test' });
    expect(r.ports.map((p) => p.name).sort()).toEqual(['hello', 'plain']);
    expect(r.publish.packages.map((p) => p.name).sort()).toEqual(['hello', 'plain']);
    const v = await verifyHosted(new DirRepoReader(out));
    expect(v.checks.filter((c) => !c.ok)).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.packages).toBe(2);
  }, 120_000);
});

describe('refusing bad input', () => {
  // Every rejection leaves the build cache as it was and publishes nothing.
  // A verified source may land in the source cache before a later step fails (`sourcesMayGrow`).
  async function refuses(
    port: string,
    code: string,
    opts: { target?: string; out?: string; sourcesMayGrow?: boolean } = {},
  ): Promise<SwpkgError> {
    const before = await cacheEntries();
    const sources = await treeHash(join(paths.cacheDir, 'sources'));
    const out = opts.out ?? join(root, `out-${port}`);
    const e = await failure(packageRecipe(port, { paths, out, ...(opts.target ? { target: opts.target } : {}) }));
    expect(e.code).toBe(code);
    expect(await cacheEntries()).toEqual(before);
    if (!opts.sourcesMayGrow) expect(await treeHash(join(paths.cacheDir, 'sources'))).toBe(sources);
    expect(existsSync(join(out, `${port}-1.0.0-x86_64.swpkg`))).toBe(false);
    return e;
  }

  it('a recipe missing a required field', async () => {
    const e = await refuses('nosummary', 'E_INVALID_RECIPE');
    expect(e.details['field']).toBe('summary');
  });

  it('a recipe with an unknown field', async () => {
    const e = await refuses('extrafield', 'E_INVALID_RECIPE');
    expect(e.details['field']).toBe('checksum');
  });

  it('a wrong SHA-256: the download is deleted and the URL and served hash are named', async () => {
    const e = await refuses('wrongsha', 'E_HASH_MISMATCH');
    expect(e.message).toContain(`${serverUrl}/plain-1.0.0.tar.gz served `);
    expect(requests).toContain('/plain-1.0.0.tar.gz');
  }, 30_000);

  it('an unreachable URL with no mirror', async () => {
    const e = await refuses('unreachable', 'E_FETCH');
    const attempts = e.details['attempts'] as { kind: string; result: string }[];
    expect(attempts.map((a) => a.kind)).toEqual(['mirror', 'debian', 'url']);
    expect(attempts.every((a) => a.result === 'skipped')).toBe(true);
  }, 30_000);

  it('a patch that does not apply', async () => {
    const e = await refuses('badpatch', 'E_PATCH');
    expect(e.details['patch']).toMatch(/message\.patch$/);
    // A build failure has an exit status of its own, not "store or filesystem" (7): a script tells a bad recipe from a full disk.
    expect(e.exitCode).toBe(ExitCode.BUILD);
    const before = await treeHash(paths.cacheDir);
    const cli = await runCli('swport', ['recipe', 'build', 'badpatch', '--ports', paths.portsDir, '--json'], {
      env: { SWPORT_CACHE_DIR: paths.cacheDir, SWPORT_SOURCE_MIRROR: paths.mirrorDir },
    });
    expect([cli.code, cli.json?.error?.code]).toEqual([9, 'E_PATCH']);
    expect(await treeHash(paths.cacheDir)).toBe(before);
  }, 30_000);

  it('a failing build: clear error, the log path and its tail, nothing published', async () => {
    const e = await refuses('broken', 'E_BUILD', { sourcesMayGrow: true });
    expect(e.exitCode).toBe(ExitCode.BUILD);
    const log = e.details['log'] as string;
    expect(existsSync(log)).toBe(true);
    expect(e.message).toContain(log);
    expect(e.message).toContain('deliberate failure for the test');
    expect(e.details['phase']).toBe('build');
    expect(await readFile(log, 'utf8')).toContain('deliberate failure for the test');
  }, 30_000);

  it('an unknown port', async () => {
    const e = await refuses('ghost', 'E_UNKNOWN_PORT');
    expect(e.details['port']).toBe('ghost');
  });

  it('a dependency on an unknown port', async () => {
    const e = await refuses('needsghost', 'E_UNKNOWN_PORT');
    expect(e.details).toMatchObject({ port: 'ghost', wantedBy: 'needsghost' });
  });

  it('a dependency cycle', async () => {
    const e = await refuses('cycle-a', 'E_INVALID_RECIPE');
    expect(e.details['cycle']).toEqual(['cycle-a', 'cycle-b', 'cycle-a']);
  });

  it('a target the recipe does not support', async () => {
    const e = await refuses('plain', 'E_UNSUPPORTED_TARGET', { target: 'aarch64-linux-musl' });
    expect(e.details['target']).toBe('aarch64-linux-musl');
  });

  it('a failing smoke test', async () => {
    const e = await failure(runSmokeTest('badsmoke', { paths }));
    expect(e.code).toBe('E_BUILD');
    expect(e.details['phase']).toBe('smoke');
    expect(e.message).toContain('checking the impossible');
  }, 60_000);
});
