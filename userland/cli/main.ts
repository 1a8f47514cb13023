#!/usr/bin/env node
// Entry of `pkg` (bin/pkg runs the tsc build; the guest runs the esbuild bundle of this file).
import { enableCompileCache } from 'node:module';
import { pkgVersion } from './version.js';

const argv = process.argv.slice(2);
// A version check (scripts, the guest's start-up probe) should cost about what node does: the
// command table, readline and the edge kit are loaded only past this point. In the bundle the
// dynamic import keeps them in lazily initialised wrappers that V8 only pre-parses.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(`pkg ${pkgVersion()}\n`);
} else {
  // The tsc build is many files loaded from here on: V8's compile cache (NODE_COMPILE_CACHE, else
  // the temp folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off) spares compiling them again. The
  // bundle is compiled before this line runs; its launcher in the guest sets NODE_COMPILE_CACHE.
  enableCompileCache();
  const { runCli } = await import('./run.js');
  // process.stdin is made on first use (a tty, pipe or socket stream, with the modules behind it):
  // only a prompt reads it, so commands that never ask (the guest's boot-check) do not pay for it.
  let stdinUsed = false;
  const code = await runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    get stdin() {
      stdinUsed = true;
      return process.stdin;
    },
    env: process.env,
  });
  process.exitCode = code;
  // stdin may hold the event loop open after a prompt; pending writes still flush before exit.
  if (stdinUsed) process.stdin.unref?.();
}
