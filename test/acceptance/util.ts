import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A scenario check that did not hold; `why` is what result.json and manifest.txt show. */
export class AcceptanceFailure extends Error {
  constructor(
    readonly why: string,
    readonly details?: string,
  ) {
    super(why);
    this.name = 'AcceptanceFailure';
  }
}

/** Throws an AcceptanceFailure unless `cond` holds. */
export function check(cond: boolean, why: string, details?: string): asserts cond {
  if (!cond) throw new AcceptanceFailure(why, details);
}

/** The checkout this suite runs from: the folder above test/ holding package.json and ports/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 12; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'ports', 'catalog.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve(process.cwd());
}

export interface HostRunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Runs a host program with a hard time limit (SIGKILL when it is exceeded); never throws for a non-zero exit. */
export function hostRun(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; input?: string },
): Promise<HostRunResult> {
  return new Promise((resolveRun) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      resolveRun({ code: null, signal: null, stdout, stderr: stderr + String(e.message), ms: Date.now() - started, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });
}

/** Single-quotes a word for the guest's busybox sh. */
export function q(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `2026-11-24T05-40-12Z`: sortable, and a valid file name everywhere. */
export function utcStamp(d = new Date()): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '-');
}

export function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function errorText(e: unknown): string {
  if (e instanceof AcceptanceFailure) return e.why;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && code.startsWith('E_') ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
