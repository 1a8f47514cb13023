#!/usr/bin/env node
// Entry of `pkg` (bin/pkg runs the tsc build; the guest runs the esbuild bundle of this file).
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
process.exitCode = code;
// stdin may hold the event loop open after a prompt; pending writes still flush before exit.
process.stdin.unref?.();
