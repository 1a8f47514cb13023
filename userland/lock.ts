import { open, readFile, unlink, stat, rename } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { SwpkgError, fromFsError, type Reporter } from '../catalog/index.js';
import { ensureDir } from './fs-util.js';
import { dirname } from 'node:path';

/** What the lock file says about its holder; shown in E_LOCKED. */
export interface LockHolder {
  pid: number;
  command: string;
  startedAt: string;
  host: string;
  /** Kernel boot id: a lock from an earlier boot is stale whatever its pid says. */
  bootId: string;
}

export interface LockOptions {
  command: string;
  /** How long to wait for another writer (default 30 000 ms); 0 fails at once. */
  timeoutMs?: number;
  reporter?: Reporter;
  /** Poll interval while waiting. */
  pollMs?: number;
}

export interface WriterLock {
  holder: LockHolder;
  release(): Promise<void>;
}

function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.command === 'string') {
      return {
        pid: v.pid,
        command: v.command,
        startedAt: String(v.startedAt ?? ''),
        host: String(v.host ?? ''),
        bootId: String(v.bootId ?? ''),
      };
    }
  } catch {
    // A holder killed between create and write leaves an empty or partial file.
  }
  return undefined;
}

/**
 * A lock is stale when its holder is gone: another boot, or the same host and
 * boot with no such process. A lock from another host (a store disk moved
 * between machines) is judged by boot id alone, which differs.
 */
function isStale(h: LockHolder | undefined, mtimeMs: number): boolean {
  if (h === undefined) {
    // Unparseable: the creator died before writing. Give a live writer a moment to finish writing it.
    return Date.now() - mtimeMs > 2000;
  }
  const boot = currentBootId();
  if (h.bootId !== boot) return true;
  if (h.host !== hostname()) return false;
  return !alive(h.pid);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One writer at a time. Exclusive create of `lock` ('wx') decides races; a
 * stale lock (holder killed, machine rebooted) is taken over through a
 * second exclusive file so two waiters cannot both take it. Readers never
 * touch the lock: they read immutable generations through `current`.
 */
export async function acquireWriterLock(path: string, o: LockOptions): Promise<WriterLock> {
  await ensureDir(dirname(path));
  const holder: LockHolder = {
    pid: process.pid,
    command: o.command,
    startedAt: new Date().toISOString(),
    host: hostname(),
    bootId: currentBootId(),
  };
  const text = JSON.stringify(holder) + '\n';
  const timeout = o.timeoutMs ?? 30_000;
  const poll = o.pollMs ?? 100;
  const deadline = Date.now() + timeout;
  let told = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return { holder, release: () => releaseLock(path, text) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(e, `creating lock ${path}`);
    }
    let other: LockHolder | undefined;
    let mtimeMs = Date.now();
    let otherText: string;
    try {
      otherText = await readFile(path, 'utf8');
      mtimeMs = (await stat(path)).mtimeMs;
      other = parseHolder(otherText);
    } catch {
      continue; // released between our create and read: try again at once
    }
    if (isStale(other, mtimeMs)) {
      await takeOverStale(path, otherText);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new SwpkgError('E_LOCKED', `another pkg is changing this root: pid ${other?.pid ?? '?'} running \`${other?.command ?? '?'}\``, {
        hint: 'wait for it to finish, or raise --lock-timeout; if that process is gone the next run takes the lock over',
        details: { lock: path, pid: other?.pid, command: other?.command, startedAt: other?.startedAt, waitedMs: timeout },
      });
    }
    if (!told) {
      o.reporter?.info(`waiting for pid ${other?.pid ?? '?'} (\`${other?.command ?? '?'}\`) to release the lock...`);
      told = true;
    }
    await sleep(Math.min(poll, Math.max(1, deadline - Date.now())));
  }
}

/** Removes a stale lock only if it is still the same stale lock, under an exclusive takeover file. */
async function takeOverStale(path: string, staleText: string): Promise<void> {
  const guard = `${path}.takeover`;
  let fh;
  try {
    fh = await open(guard, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(e, `creating ${guard}`);
    // Another waiter is taking over; its guard is itself stale if it died mid-takeover.
    try {
      const st = await stat(guard);
      if (Date.now() - st.mtimeMs > 5000) await unlink(guard).catch(() => {});
    } catch {
      // gone already
    }
    await sleep(20);
    return;
  }
  try {
    let now: string | undefined;
    try {
      now = await readFile(path, 'utf8');
    } catch {
      now = undefined;
    }
    if (now === staleText) {
      // Rename before unlink: a rename of a path is atomic, so a reader sees the stale lock or none.
      const aside = `${path}.stale-${process.pid}`;
      await rename(path, aside).catch(() => {});
      await unlink(aside).catch(() => {});
    }
  } finally {
    await fh.close();
    await unlink(guard).catch(() => {});
  }
}

async function releaseLock(path: string, ours: string): Promise<void> {
  try {
    if ((await readFile(path, 'utf8')) === ours) await unlink(path);
  } catch {
    // Already gone: nothing to release.
  }
}

/** The holder of the lock right now, if any (for `pkg doctor`). */
export async function readLockHolder(path: string): Promise<{ holder?: LockHolder; stale: boolean } | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    const st = await stat(path);
    const h = parseHolder(text);
    return { ...(h ? { holder: h } : {}), stale: isStale(h, st.mtimeMs) };
  } catch {
    return undefined;
  }
}
