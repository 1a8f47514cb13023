/**
 * Entry of the QEMU acceptance suite: `node_modules/.bin/node test/acceptance/run.ts [--ci | --all | --scenario NAME]...`
 * (`--help` lists every flag).
 *
 * Why a bundle: Node 24 strips types from this file, but the suite imports the
 * product's sources (images/, catalog/, ports/, repo-server/), which use `.js`
 * import specifiers and TypeScript that is not erasable (parameter
 * properties), so Node cannot run them as they are. esbuild (a devDependency,
 * the same tool that bundles `pkg` for the guest) turns `main.ts` and
 * everything it imports into one ESM file under `.cache/acceptance/` in about
 * a second; npm packages stay external and load from node_modules. So the
 * suite always runs the current sources, with or without `npm run build`, and
 * this file keeps to erasable syntax and imports nothing local.
 */
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const outDir = join(repoRoot, '.cache', 'acceptance');
// One bundle per process: a second run started while this one is bundling never reads half a file.
const outFile = join(outDir, `suite-${process.pid}.mjs`);

mkdirSync(outDir, { recursive: true });
try {
  await build({
    absWorkingDir: repoRoot,
    entryPoints: [join(here, 'main.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'error',
  });
} catch (e) {
  process.stderr.write(`acceptance: bundling test/acceptance/main.ts failed: ${(e as Error).message}\n`);
  process.exit(1);
}

interface SuiteModule {
  main(argv: string[], bundleFile: string): Promise<number>;
}
const suite = (await import(pathToFileURL(outFile).href)) as SuiteModule;
process.exitCode = await suite.main(process.argv.slice(2), outFile);
