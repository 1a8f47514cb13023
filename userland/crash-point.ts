import { appendFileSync, existsSync, writeFileSync } from 'node:fs';

/**
 * Test-only fault hooks at the named steps of every mutation. The fault
 * harness (test/faults/) reads the trace of a clean run, then reruns the
 * same command once per point with `PKG_TEST_CRASH_AT=<name>:<n>` and
 * SIGKILLs the process when the n-th arrival at that point happens, the
 * way a power cut or `kill -9` would. Without the variables set these are
 * one Map lookup.
 *
 *   PKG_TEST_CRASH_TRACE=FILE   append "<name>:<n>" for every point reached
 *   PKG_TEST_CRASH_AT=NAME:N    SIGKILL self at the N-th arrival at NAME
 *   PKG_TEST_PAUSE_AT=NAME:N    create PKG_TEST_PAUSE_FILE and wait (max 60 s) until it is deleted
 */
const counts = new Map<string, number>();

function parseTarget(v: string | undefined): { name: string; n: number } | undefined {
  if (!v) return undefined;
  const at = v.lastIndexOf(':');
  if (at <= 0) return { name: v, n: 1 };
  return { name: v.slice(0, at), n: Number(v.slice(at + 1)) || 1 };
}

const env = process.env;
const trace = env['PKG_TEST_CRASH_TRACE'];
const crashAt = parseTarget(env['PKG_TEST_CRASH_AT']);
const pauseAt = parseTarget(env['PKG_TEST_PAUSE_AT']);
const pauseFile = env['PKG_TEST_PAUSE_FILE'];
const active = trace !== undefined || crashAt !== undefined || pauseAt !== undefined;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Marks a named step. A no-op unless a test hook is configured in the environment. */
export function crashPoint(name: string): void {
  if (!active) return;
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  if (trace !== undefined) appendFileSync(trace, `${name}:${n}\n`);
  if (crashAt && crashAt.name === name && crashAt.n === n) {
    process.kill(process.pid, 'SIGKILL');
    // SIGKILL is delivered asynchronously on some kernels: never run past the point.
    for (;;) sleepSync(1000);
  }
  if (pauseAt && pauseFile && pauseAt.name === name && pauseAt.n === n) {
    writeFileSync(pauseFile, `${process.pid}\n`);
    const deadline = Date.now() + 60_000;
    while (existsSync(pauseFile) && Date.now() < deadline) sleepSync(20);
  }
}
