import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SwpkgError } from '../catalog/index.js';

/** Where the guest client's entry point lives; DESIGN.md: one file, same sources as the host tools. */
export const PKG_ENTRY = join('userland', 'cli', 'main.ts');

/**
 * Bundles `userland/cli/main.ts` into one ESM file for the guest's Node 24,
 * with `version` (package.json's) inlined as PKG_VERSION.
 * CommonJS dependencies inside an ESM bundle call `require` for Node
 * built-ins, so the banner provides one. The output is deterministic for the
 * same sources (esbuild sorts nothing by time), so downstream image steps can
 * be skipped on its hash.
 */
export async function bundlePkgClient(repoRoot: string, outFile: string, version: string): Promise<{ file: string; entry: string }> {
  const entry = join(repoRoot, PKG_ENTRY);
  if (!existsSync(entry)) {
    throw new SwpkgError('E_NOT_FOUND', `${PKG_ENTRY} does not exist, so there is no pkg client to bundle`, {
      hint: 'pass a ready bundle with --pkg-bundle FILE, or build without pkg for a runtime-only image',
      details: { entry },
    });
  }
  await mkdir(dirname(outFile), { recursive: true });
  const esbuild = await import('esbuild');
  try {
    const result = await esbuild.build({
      absWorkingDir: repoRoot,
      entryPoints: [entry],
      outfile: outFile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      // Smaller source parses faster in the guest; names are kept so stack traces stay readable.
      minifySyntax: true,
      minifyWhitespace: true,
      keepNames: true,
      legalComments: 'none',
      // userland/cli/version.ts reads PKG_VERSION when the bundler provides it (package.json's version).
      define: { PKG_VERSION: JSON.stringify(version) },
      logLevel: 'silent',
      banner: {
        js: "import { createRequire as __swpkgCreateRequire } from 'node:module'; const require = __swpkgCreateRequire(import.meta.url);",
      },
    });
    if (result.errors.length > 0) throw new Error(result.errors.map((m) => m.text).join('; '));
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
  return { file: outFile, entry };
}
