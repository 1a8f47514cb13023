import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { SwpkgError } from '../catalog/index.js';

/** The shell prompt the guest prints (images/guest/etc/profile sets PS1 to exactly this). */
export const GUEST_PROMPT = 'swpkg# ';
/**
 * A pattern for one complete line whose text matches `body`: it starts after a line break (or at
 * the start of the transcript) and needs the line's end (`\n`, after an optional `\r`) to match.
 */
export function wholeLine(body: string): RegExp {
  return new RegExp(`(?<=^|\\n)${body}\\r?\\n`);
}

// Every marker is a whole line: it matches only from the start of a line (so the echo of a typed
// command that merely mentions a marker, whose line starts with the prompt, is never taken for it)
// through the line's end. A serial line delivers a line in several chunks under load, and a pattern
// that matched a partial line read `store=c` from `SWPKG-SHUTDOWN-OK store=clean` (issue 11).
/** One line per boot when everything is up (images/guest/init). */
export const BOOT_OK = wholeLine('SWPKG-BOOT-OK t=([0-9.]+)[^\\r\\n]*');
/** Printed instead of BOOT_OK when a boot step fails; a rescue shell follows. */
export const BOOT_FAIL = wholeLine('SWPKG-BOOT-FAIL [^\\r\\n]*');
/** Printed by the shutdown script when it is done; `store=clean` means /pkg was unmounted. */
export const SHUTDOWN_OK = wholeLine('SWPKG-SHUTDOWN-OK store=([a-z-]+)');
/** The kernel's panic line (with or without a printk timestamp). */
export const KERNEL_PANIC = wholeLine('(?:\\[[ 0-9.]+\\] )?Kernel panic - not syncing[^\\r\\n]*');
/** Lines that end any wait at once: nothing good follows them. */
export const GUEST_FATAL = [KERNEL_PANIC, BOOT_FAIL];

export interface RunResult {
  exitCode: number;
  /** What the command printed, `\r\n` turned into `\n`. */
  output: string;
  ms: number;
}

export interface WaitResult {
  match: RegExpExecArray;
  /** Transcript offsets of the match. */
  start: number;
  end: number;
}

interface Waiter {
  pattern: RegExp;
  from: number;
  failOn: RegExp[];
  resolve: (r: WaitResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  label: string;
}

/** How far back each new chunk is searched: a match longer than this may be missed. */
const SEARCH_OVERLAP = 64 * 1024;
/** Transcript kept in memory; older text is only in the log file. */
const MAX_TRANSCRIPT = 32 * 1024 * 1024;
/** Longest command typed directly; the shell's line editor stops at 1024 bytes. */
const MAX_TYPED = 700;
/** Base64 sent per upload batch, below the tty's 4 KiB input buffer. */
const UPLOAD_BATCH = 2048;

/** The searching form of a pattern: `g` so `lastIndex` picks the start while lookbehind still sees the text before it. */
function searching(re: RegExp): RegExp {
  return new RegExp(re.source, re.flags.replace(/[gy]/g, '') + 'g');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Drives a busybox shell over a serial line. Every wait is bounded; a command
 * is bracketed by markers whose typed form differs from their printed form
 * (`printf 'SWPKG-E-%s:%s\n' ID "$?"` prints `SWPKG-E-ID:0`), so the echo of
 * the typed line can never be mistaken for the result, and marker ids carry a
 * random token so output from an earlier boot never matches. Commands run one
 * at a time in the console's shell, so `cd` and variables persist.
 */
export class SerialConsole {
  private text = '';
  /** Transcript offset of text[0] (older text was dropped from memory). */
  private base = 0;
  /** Where the next `waitFor` starts by default: the end of the last match. */
  private cursor = 0;
  private readonly waiters = new Set<Waiter>();
  private closedReason: string | null = null;
  private readonly decoder = new StringDecoder('utf8');
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private readonly token = randomBytes(4).toString('hex');

  constructor(
    private readonly input: Writable,
    output: Readable,
    private readonly onRaw?: (chunk: Buffer) => void,
  ) {
    output.on('data', (chunk: Buffer) => {
      this.onRaw?.(chunk);
      this.append(this.decoder.write(chunk));
    });
    output.on('end', () => this.append(this.decoder.end()));
    input.on('error', () => {
      // A write after the guest died fails here; the exit is reported through close().
    });
  }

  /** Transcript offset of the end of everything received so far. */
  get position(): number {
    return this.base + this.text.length;
  }

  /** Everything received from `from` on (as far as it is still in memory). */
  transcript(from = 0): string {
    return this.text.slice(Math.max(0, from - this.base));
  }

  /** The last `n` characters, for error messages. */
  tail(n = 2000): string {
    return this.text.slice(-n);
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Sends raw characters to the guest (no newline added). */
  write(data: string): void {
    if (this.closedReason !== null) {
      throw new SwpkgError('E_INTERNAL', `guest console is closed (${this.closedReason})`, { details: { reason: this.closedReason } });
    }
    this.input.write(data);
  }

  /** Ends every wait: the guest is gone. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.append(this.decoder.end());
    this.closedReason = reason;
    for (const w of [...this.waiters]) {
      this.settle(w);
      w.reject(
        new SwpkgError('E_INTERNAL', `guest stopped (${reason}) while waiting for ${w.label}`, {
          details: { pattern: w.pattern.source, reason, tail: this.tail() },
        }),
      );
    }
  }

  /**
   * Waits until `pattern` appears at or after `from` (default: the end of the
   * previous match). Rejects with E_STALLED after `timeoutMs`, and at once when
   * the guest stops or a `failOn` pattern (default: kernel panic, boot failure)
   * appears after `from`.
   */
  waitFor(pattern: RegExp | string, timeoutMs: number, opts: { from?: number; failOn?: RegExp[] } = {}): Promise<WaitResult> {
    const re = searching(typeof pattern === 'string' ? new RegExp(escapeRegExp(pattern)) : pattern);
    const from = opts.from ?? this.cursor;
    const failOn = (opts.failOn ?? GUEST_FATAL).map(searching);
    return new Promise<WaitResult>((resolve, reject) => {
      const label = `/${re.source}/`;
      const w: Waiter = {
        pattern: re,
        from,
        failOn,
        label,
        resolve: (r) => {
          this.cursor = Math.max(this.cursor, r.end);
          resolve(r);
        },
        reject,
        timer: setTimeout(() => {
          this.settle(w);
          reject(
            new SwpkgError('E_STALLED', `guest console: ${label} did not appear within ${timeoutMs} ms`, {
              hint: 'the serial log has the whole transcript',
              details: { pattern: re.source, timeoutMs, tail: this.tail() },
            }),
          );
        }, timeoutMs),
      };
      this.waiters.add(w);
      if (!this.scan(w, from) && this.closedReason !== null) {
        this.settle(w);
        reject(
          new SwpkgError('E_INTERNAL', `guest stopped (${this.closedReason}) before ${label} appeared`, { details: { tail: this.tail() } }),
        );
      }
    });
  }

  /**
   * Runs one shell command and returns its exit status and output. Long or
   * multi-line commands are uploaded as a script first and sourced, so they
   * behave like typed ones. On timeout the command is interrupted (Ctrl-C),
   * the console resynchronised, and E_STALLED thrown with the partial output.
   */
  run(cmd: string, opts: number | { timeoutMs?: number } = {}): Promise<RunResult> {
    const timeoutMs = typeof opts === 'number' ? opts : (opts.timeoutMs ?? 60_000);
    return this.exclusive(() => this.runNow(cmd, timeoutMs));
  }

  /** `run`, but a non-zero exit status is an error (E_INTERNAL with the output in details). */
  async check(cmd: string, opts: number | { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(cmd, opts);
    if (r.exitCode !== 0) {
      throw new SwpkgError('E_INTERNAL', `guest command failed with exit status ${r.exitCode}: ${cmd}`, {
        details: { cmd, exitCode: r.exitCode, output: r.output.slice(-4000) },
      });
    }
    return r.output;
  }

  /**
   * Proves the shell is reading input: prints a fresh marker and waits for it,
   * clearing any half-typed line first. Retried, since characters sent while
   * the shell starts can be dropped.
   */
  sync(timeoutMs = 15_000): Promise<void> {
    return this.exclusive(() => this.syncNow(timeoutMs, false));
  }

  private async syncNow(timeoutMs: number, interrupt: boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const id = this.nextId();
      const from = this.position;
      // Ctrl-U clears a partly typed line; Ctrl-C (at once when interrupting, else from the second try) leaves a stuck command.
      this.write(`${interrupt || attempt > 0 ? '\x03' : ''}\x15printf 'SWPKG-S-%s\\n' ${id}\n`);
      try {
        await this.waitFor(new RegExp(`SWPKG-S-${id}\\r?\\n`), Math.min(5_000, Math.max(1, deadline - Date.now())), { from });
        return;
      } catch (e) {
        last = e;
        if (this.closedReason !== null) throw e;
      }
    }
    throw new SwpkgError('E_STALLED', `guest shell did not answer within ${timeoutMs} ms`, { cause: last, details: { tail: this.tail() } });
  }

  private nextId(): string {
    return `${this.token}-${++this.seq}`;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(cmd: string, timeoutMs: number): Promise<RunResult> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    const id = this.nextId();
    // The shell's line editor treats tabs and other control characters as keys, and non-ASCII is unreliable there.
    // A trailing backslash would join the typed line with the closing brace.
    const typeable = cmd.length <= MAX_TYPED && /^[\x20-\x7e]*$/.test(cmd) && !cmd.endsWith('\\');
    let line = cmd;
    let cleanup = '';
    if (!typeable) {
      const script = `/tmp/.swpkg-run-${id}`;
      await this.upload(`${script}.sh`, Buffer.from(cmd.endsWith('\n') ? cmd : `${cmd}\n`, 'utf8'), deadline);
      line = `. ${script}.sh`;
      cleanup = `; rm -f ${script}.sh`;
    }
    const from = this.position;
    // A brace group on its own lines keeps a trailing comment or `&` in cmd from swallowing the end marker.
    this.write(`printf 'SWPKG-B-%s\\n' ${id}; { ${line}\n}; printf 'SWPKG-E-%s:%s\\n' ${id} "$?"${cleanup}\n`);
    let begin: WaitResult;
    let end: WaitResult;
    try {
      begin = await this.waitFor(new RegExp(`SWPKG-B-${id}\\r?\\n`), Math.max(1, deadline - Date.now()), { from, failOn: [KERNEL_PANIC] });
      end = await this.waitFor(new RegExp(`SWPKG-E-${id}:(\\d+)\\r?\\n`), Math.max(1, deadline - Date.now()), {
        from: begin.end,
        failOn: [KERNEL_PANIC],
      });
    } catch (e) {
      if (this.closedReason !== null || !(e instanceof SwpkgError) || e.code !== 'E_STALLED') throw e;
      const partial = this.transcript(from).replace(/\r\n/g, '\n');
      // Interrupt and make sure the shell reads input again before anything else is sent.
      await this.syncNow(15_000, true).catch(() => undefined);
      throw new SwpkgError('E_STALLED', `guest command did not finish within ${timeoutMs} ms: ${cmd.slice(0, 200)}`, {
        hint: 'it was interrupted with Ctrl-C; raise the timeout if it is merely slow',
        details: { cmd, timeoutMs, output: partial.slice(-4000) },
        cause: e,
      });
    }
    const output = this.transcript(begin.end)
      .slice(0, end.start - begin.end)
      .replace(/\r\n/g, '\n')
      .replace(/\r/g, '');
    return { exitCode: Number(end.match[1]), output, ms: Date.now() - started };
  }

  /** Writes bytes to a guest file through base64 batches, each acknowledged before the next is sent. */
  private async upload(path: string, data: Buffer, deadline: number): Promise<void> {
    const b64 = data.toString('base64');
    const tmp = `${path}.b64`;
    this.write(`: > ${tmp}\n`);
    for (let off = 0; off < b64.length || off === 0; off += UPLOAD_BATCH) {
      const part = b64.slice(off, off + UPLOAD_BATCH);
      const id = this.nextId();
      const from = this.position;
      const lines: string[] = [];
      for (let i = 0; i < part.length; i += 512) lines.push(`printf '%s' ${part.slice(i, i + 512)} >> ${tmp}`);
      lines.push(`printf 'SWPKG-U-%s\\n' ${id}`);
      this.write(lines.join('\n') + '\n');
      await this.waitFor(new RegExp(`SWPKG-U-${id}\\r?\\n`), Math.max(1, deadline - Date.now()), { from, failOn: [] });
      if (part.length === 0) break;
    }
    const id = this.nextId();
    const from = this.position;
    this.write(`base64 -d ${tmp} > ${path}; rm -f ${tmp}; printf 'SWPKG-U-%s\\n' ${id}\n`);
    await this.waitFor(new RegExp(`SWPKG-U-${id}\\r?\\n`), Math.max(1, deadline - Date.now()), { from, failOn: [] });
  }

  private append(s: string): void {
    if (s.length === 0) return;
    const before = this.position;
    this.text += s;
    if (this.text.length > MAX_TRANSCRIPT) {
      const drop = this.text.length - MAX_TRANSCRIPT / 2;
      this.text = this.text.slice(drop);
      this.base += drop;
    }
    for (const w of [...this.waiters]) this.scan(w, Math.max(w.from, before - SEARCH_OVERLAP));
  }

  /** Looks for the waiter's pattern (and its fail patterns) from `scanFrom`; settles it on a hit. */
  private scan(w: Waiter, scanFrom: number): boolean {
    const start = Math.max(scanFrom, w.from, this.base);
    const m = this.execFrom(w.pattern, start);
    for (const f of w.failOn) {
      const fm = this.execFrom(f, start);
      if (fm && (!m || fm.index < m.index)) {
        this.settle(w);
        w.reject(
          new SwpkgError('E_INTERNAL', `guest reported a fatal condition while waiting for ${w.label}: ${fm[0].trim()}`, {
            details: { line: fm[0].trim(), tail: this.tail() },
          }),
        );
        return true;
      }
    }
    if (!m) return false;
    this.settle(w);
    w.resolve({ match: m, start: this.base + m.index, end: this.base + m.index + m[0].length });
    return true;
  }

  /** Matches at or after transcript offset `start`; the text before it stays visible to lookbehind (line starts). */
  private execFrom(re: RegExp, start: number): RegExpExecArray | null {
    re.lastIndex = start - this.base;
    return re.exec(this.text);
  }

  private settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.waiters.delete(w);
  }
}
