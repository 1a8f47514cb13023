import { readFileSync } from 'node:fs';
import { enableCompileCache } from 'node:module';

/**
 * Entry of `swpkg` and `swport` before oclif loads. `--version` is answered here: loading oclif
 * and every command costs several times what node itself takes to start, and a version check
 * (scripts, bug reports) should not pay for it. Everything else goes to oclif.
 */
export async function start(bin: 'swpkg' | 'swport', argv: string[]): Promise<void> {
  // `swpkg --help | head -2`: the reader went away, so the rest of the output has nowhere to go.
  // Without this, the write error leaves oclif waiting forever and node exits 13 with a warning.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    process.stdout.write(`${versionLine(bin)}\n`);
    return;
  }
  // oclif and the command tree are many files: V8's compile cache (NODE_COMPILE_CACHE, else the temp
  // folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off) spares compiling them again on every run.
  enableCompileCache();
  const { main } = await import('./main.js');
  await main(bin, argv);
}

/** The line oclif's own `--version` prints (`swport/0.1.0 linux-x64 node-v24.21.0`), with this tool's name. */
export function versionLine(bin: string): string {
  const pjson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `${bin}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}`;
}
