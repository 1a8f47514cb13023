/**
 * The one build of the pkg client: the guest's base image, the integration and fault tests
 * (test/integration/userland/helpers.ts) and bench/client all run the file this module writes,
 * so what is measured and tested is byte for byte what the guest runs. As a command:
 *   swpkg image bundle OUT.mjs
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Plugin } from 'esbuild';
import { SwpkgError, type Reporter } from '../catalog/index.js';

/** Where the guest client's entry point lives; DESIGN.md: one file, same sources as the host tools. */
export const PKG_ENTRY = join('userland', 'cli', 'main.ts');

/**
 * ESM output hoists every `import 'node:zlib'` to the top of the bundle, so `pkg --version` would
 * load zlib, crypto, streams… before printing one line. Turning each built-in into a tiny CommonJS
 * module makes esbuild require it inside the lazy initialiser of the module that uses it: a
 * built-in loads only when a command needs it, as with the tsc build.
 */
const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(b) {
    const names = builtinModules.filter((n) => !n.startsWith('_')).map((n) => n.replace(/[/\\]/g, '\\$&'));
    const filter = new RegExp(`^(node:)?(${names.join('|')})$`);
    b.onResolve({ filter }, (a) =>
      a.namespace === 'lazy-builtin' ? { path: a.path, external: true } : { path: a.path, namespace: 'lazy-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({
      contents: `module.exports = require(${JSON.stringify(a.path.startsWith('node:') ? a.path : `node:${a.path}`)});`,
      loader: 'js',
    }));
  },
};

/**
 * The bundle talks HTTP through `node:http` (see defaultTransport in userland/http-transport.ts),
 * so the undici package stays out of it. Anything that still imports it gets a module that says so.
 */
const noUndici: Plugin = {
  name: 'no-undici',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', namespace: 'no-undici' }));
    b.onLoad({ filter: /.*/, namespace: 'no-undici' }, () => ({
      contents: "throw new Error('the pkg bundle talks HTTP through node:http; the undici package is not bundled');",
      loader: 'js',
    }));
  },
};

export interface PkgBundle {
  file: string;
  entry: string;
  bytes: number;
  /** package.json's version, inlined as PKG_VERSION. */
  version: string;
}

/**
 * Bundles `userland/cli/main.ts` into one ESM file for Node 24. The output is deterministic for
 * the same sources (esbuild sorts nothing by time), so the image steps after it are skipped on its
 * hash. CommonJS dependencies inside an ESM bundle call `require` for Node built-ins, so the banner
 * provides one.
 */
export async function bundlePkgClient(repoRoot: string, outFile: string): Promise<PkgBundle> {
  const entry = join(repoRoot, PKG_ENTRY);
  if (!existsSync(entry)) {
    throw new SwpkgError('E_NOT_FOUND', `${PKG_ENTRY} does not exist, so there is no pkg client to bundle`, {
      hint: 'pass a ready bundle with --pkg-bundle FILE, or build without pkg for a runtime-only image',
      details: { entry },
    });
  }
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  const file = resolve(outFile);
  await mkdir(dirname(file), { recursive: true });
  const esbuild = await import('esbuild');
  try {
    const result = await esbuild.build({
      absWorkingDir: repoRoot,
      entryPoints: [entry],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      // Smaller source parses faster: compiling the bundle is most of what pkg adds to node's start.
      minify: true,
      legalComments: 'none',
      metafile: true,
      // userland/cli/version.ts reads PKG_VERSION.
      define: { PKG_VERSION: JSON.stringify(version) },
      plugins: [lazyBuiltins, noUndici],
      banner: {
        js: "import { createRequire as __pkgCreateRequire } from 'node:module'; const require = __pkgCreateRequire(import.meta.url);",
      },
      logLevel: 'silent',
    });
    if (result.errors.length > 0) throw new Error(result.errors.map((m) => m.text).join('; '));
    const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
    return { file, entry, bytes, version };
  } catch (e) {
    const msgs = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const text = msgs?.length
      ? msgs
          .slice(0, 5)
          .map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`)
          .join('; ')
      : String((e as Error).message ?? e);
    throw new SwpkgError('E_BUILD', `bundling ${PKG_ENTRY} failed: ${text}`, { details: { entry }, cause: e });
  }
}

/** How the image builder obtains the guest's pkg: build it, build it if the sources exist, or take a ready file. */
export type PkgBundleMode = 'auto' | 'bundle' | { bundleFile: string };

/**
 * The pkg file the image builder copies into the base image (null: a runtime-only image). A built
 * one comes from `bundlePkgClient` into `workDir`, the same build the tests and benchmarks run.
 */
export async function choosePkgBundle(
  repoRoot: string,
  workDir: string,
  mode: PkgBundleMode,
  reporter: Reporter,
): Promise<{ file: string; source: string; built: boolean } | null> {
  if (typeof mode === 'object') {
    if (!existsSync(mode.bundleFile))
      throw new SwpkgError('E_NOT_FOUND', `pkg bundle ${mode.bundleFile} does not exist`, { details: { path: mode.bundleFile } });
    return { file: resolve(mode.bundleFile), source: `--pkg-bundle ${mode.bundleFile}`, built: false };
  }
  if (mode === 'bundle' || existsSync(join(repoRoot, PKG_ENTRY))) {
    const b = await bundlePkgClient(repoRoot, join(workDir, 'pkg.mjs'));
    return { file: b.file, source: PKG_ENTRY, built: true };
  }
  reporter.warn(`${PKG_ENTRY} does not exist yet: building a runtime-only base image without pkg`);
  return null;
}
