import { spawn } from 'node:child_process';
import { openSync, closeSync, writeSync } from 'node:fs';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the process group after this long (a build that hangs must not hang the caller). */
  timeoutMs: number;
  /** Append stdout and stderr here; otherwise they are collected and returned. */
  logPath?: string;
  /** Text written to the log before the command's own output. */
  logHeader?: string;
  /** Called about once a second while the command runs. */
  onTick?: (elapsedMs: number) => void;
  /** Bytes fed to stdin (stdin is closed otherwise). */
  input?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Collected output when no log path was given (bounded to the last 1 MiB). */
  output: string;
  elapsedMs: number;
}

const MAX_COLLECT = 1 << 20;

/**
 * Runs one process to completion without a shell (arguments are never
 * re-parsed). The child gets its own process group so a timeout kills
 * everything it started, not only the first process.
 */
export function runCommand(cmd: string, args: string[], o: RunOptions): Promise<RunResult> {
  const start = Date.now();
  return new Promise((resolvePromise, reject) => {
    let fd: number | undefined;
    if (o.logPath) {
      fd = openSync(o.logPath, 'a', 0o644);
      if (o.logHeader) writeSync(fd, o.logHeader);
    }
    const child = spawn(cmd, args, {
      cwd: o.cwd,
      env: o.env ?? process.env,
      stdio: [o.input === undefined ? 'ignore' : 'pipe', fd ?? 'pipe', fd ?? 'pipe'],
      detached: true,
    });
    let output = '';
    const collect = (b: Buffer): void => {
      output += b.toString('utf8');
      if (output.length > MAX_COLLECT) output = output.slice(-MAX_COLLECT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    if (o.input !== undefined) child.stdin?.end(o.input);
    let timedOut = false;
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, o.timeoutMs);
    const ticker = o.onTick ? setInterval(() => o.onTick!(Date.now() - start), 1000) : undefined;
    const done = (): void => {
      clearTimeout(timer);
      if (ticker) clearInterval(ticker);
      if (fd !== undefined) closeSync(fd);
    };
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code, signal) => {
      done();
      resolvePromise({ code, signal, timedOut, output, elapsedMs: Date.now() - start });
    });
  });
}

/** Runs a short command and returns its trimmed stdout+stderr, or undefined when it cannot run or fails. */
export async function probeOutput(cmd: string, args: string[], timeoutMs = 20_000): Promise<string | undefined> {
  try {
    const r = await runCommand(cmd, args, { timeoutMs });
    return r.code === 0 ? r.output.trim() : undefined;
  } catch {
    return undefined;
  }
}
