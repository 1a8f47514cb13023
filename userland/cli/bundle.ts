/**
 * Bundles pkg into one ESM file for the guest image (no node_modules there):
 *   npx node --experimental-strip-types userland/cli/bundle.ts [OUT]   (default build/pkg.mjs)
 * or programmatically via bundlePkg(). Not imported by pkg itself.
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import type { Plugin } from 'esbuild';

/**
 * ESM output hoists every `import 'node:zlib'` to the top of the bundle, so
 * `pkg --version` would load zlib, crypto, streams… before printing one
 * line. Turning each built-in into a tiny CommonJS module makes esbuild
 * require it inside the lazy initialiser of the module that uses it: a
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
 * The bundle talks HTTP through Node's built-in undici (fetch; see
 * defaultTransport in http-transport.ts), so the undici package stays out
 * of it. Anything that still imports it gets a module that says so.
 */
const builtinUndici: Plugin = {
  name: 'builtin-undici',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', namespace: 'no-undici' }));
    b.onLoad({ filter: /.*/, namespace: 'no-undici' }, () => ({
      contents: "throw new Error('the pkg bundle uses Node\\'s built-in fetch; the undici package is not bundled');",
      loader: 'js',
    }));
  },
};

export interface BundleResult {
  outfile: string;
  bytes: number;
  version: string;
}

export async function bundlePkg(
  outfile = 'build/pkg.mjs',
  repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..'),
): Promise<BundleResult> {
  const { build } = await import('esbuild');
  const version = (JSON.parse(readFileSync(resolve(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const out = resolve(repoRoot, outfile);
  const r = await build({
    entryPoints: [resolve(repoRoot, 'userland/cli/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    outfile: out,
    minify: true,
    legalComments: 'none',
    metafile: true,
    define: { PKG_VERSION: JSON.stringify(version), PKG_BUILTIN_FETCH: 'true' },
    plugins: [lazyBuiltins, builtinUndici],
    // Some dependencies are CommonJS and call require() for Node built-ins; ESM output needs a require.
    banner: {
      js: "import { createRequire as __pkgCreateRequire } from 'node:module'; const require = __pkgCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  const bytes = Object.values(r.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  return { outfile: out, bytes, version };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await bundlePkg(process.argv[2]);
  process.stdout.write(`${r.outfile}: ${r.bytes} bytes, pkg ${r.version}\n`);
}
