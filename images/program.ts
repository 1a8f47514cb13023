import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toSwpkgError } from '../catalog/index.js';
import { renderError } from '../edge/index.js';

/**
 * Runs `main` when the module at `moduleUrl` is the process's entry file, so
 * the same module can be a library (imported, or bundled into another tool)
 * and a program (`node dist/images/NAME.js`). `fileName` is the module's base
 * name without extension: a bundle that inlined the module never matches it.
 * An error that escapes `main` is rendered as every tool renders it and sets the exit code.
 */
export function runIfEntry(moduleUrl: string, fileName: string, main: (argv: string[]) => Promise<number>): void {
  const entry = process.argv[1];
  if (entry === undefined || resolve(entry) !== fileURLToPath(moduleUrl)) return;
  if (!new RegExp(`(^|/)${fileName}\\.[cm]?[jt]s$`).test(entry)) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const err = toSwpkgError(e);
      process.stderr.write(renderError(err));
      process.exit(err.exitCode);
    },
  );
}
