/**
 * The serial-console reader on chunked input: a serial line delivers a line in pieces under load,
 * and every marker the harness reads must wait for the whole line (issue 11: `store=c` was read
 * from `SWPKG-SHUTDOWN-OK store=clean`).
 */
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BOOT_FAIL, BOOT_OK, KERNEL_PANIC, SHUTDOWN_OK, SerialConsole, type WaitResult } from '../../../images/index.js';

function consoleOnPipe(): { con: SerialConsole; send: (s: string) => Promise<void> } {
  const out = new PassThrough();
  const con = new SerialConsole(new PassThrough(), out);
  return {
    con,
    send: async (s: string) => {
      out.write(Buffer.from(s, 'utf8'));
      await tick();
    },
  };
}

/** Resolves to the match once the wait settles; `undefined` while it is pending. */
function track(p: Promise<WaitResult>): { value: () => WaitResult | undefined; error: () => unknown } {
  let value: WaitResult | undefined;
  let error: unknown;
  p.then(
    (v) => (value = v),
    (e: unknown) => (error = e),
  );
  return { value: () => value, error: () => error };
}

describe('SerialConsole markers match whole lines only', () => {
  it('reads the full shutdown value when the line arrives in two chunks', async () => {
    const { con, send } = consoleOnPipe();
    const w = track(con.waitFor(SHUTDOWN_OK, 10_000));
    await send('SWPKG-SHUTDOWN t=3.1\r\nSWPKG-SHUTDOWN-OK store=c');
    expect(w.value()).toBeUndefined();
    expect(SHUTDOWN_OK.exec(con.transcript())).toBeNull();
    await send('lean\r\n');
    expect(w.value()?.match[1]).toBe('clean');
    expect(SHUTDOWN_OK.exec(con.transcript())?.[1]).toBe('clean');
  });

  it('reads the shutdown marker when the shell printed its prompt first: the script starts each line with a line break', async () => {
    // The guest's shutdown script runs while the shell that ran `reboot` may print its prompt; a
    // full run waited 15 minutes on "swpkg# SWPKG-SHUTDOWN-OK store=clean".
    const script = readFileSync(new URL('../../../images/guest/lib/swpkg/shutdown', import.meta.url), 'utf8');
    const prints = script.split('\n').filter((l) => l.includes('SWPKG-SHUTDOWN') && !l.trimStart().startsWith('#'));
    expect(prints.length).toBe(2);
    for (const l of prints) expect(l).toMatch(/^printf '\\nSWPKG-SHUTDOWN/);
    const { con, send } = consoleOnPipe();
    const w = track(con.waitFor(SHUTDOWN_OK, 10_000));
    await send('SWPKG-SHUTDOWN t=3.1\r\nswpkg# \x1b[6n');
    await send('\r\nSWPKG-SHUTDOWN-OK store=clean\r\n');
    expect(w.value()?.match[1]).toBe('clean');
  });

  it('waits for the end of the boot line, split inside its number and before the line end', async () => {
    const { con, send } = consoleOnPipe();
    const w = track(con.waitFor(BOOT_OK, 10_000));
    await send('SWPKG-BOOT step=network t=1.0\r\nSWPKG-BOOT-OK t=1.');
    await send('93 kernel=6.1 net=restricted');
    expect(w.value()).toBeUndefined();
    await send('\r');
    expect(w.value()).toBeUndefined();
    await send('\nswpkg# ');
    expect(w.value()?.match[1]).toBe('1.93');
    expect(w.value()?.match[0]).toBe('SWPKG-BOOT-OK t=1.93 kernel=6.1 net=restricted\r\n');
  });

  it('reports the whole fatal line, not the part received first', async () => {
    const { con, send } = consoleOnPipe();
    const w = track(con.waitFor(BOOT_OK, 10_000));
    await send('[    1.234] Kernel panic - not syncing: VFS: Unable');
    expect(w.error()).toBeUndefined();
    await send(' to mount root fs\n');
    expect(w.error()).toMatchObject({
      code: 'E_INTERNAL',
      details: { line: '[    1.234] Kernel panic - not syncing: VFS: Unable to mount root fs' },
    });
    expect(KERNEL_PANIC.test(con.transcript())).toBe(true);
  });

  it('does not take a marker in the middle of a line, even when the wait starts right before it', async () => {
    const { con, send } = consoleOnPipe();
    await send('swpkg# echo x');
    const from = con.position;
    const w = track(con.waitFor(BOOT_FAIL, 10_000, { from, failOn: [] }));
    await send('SWPKG-BOOT-FAIL step=disks t=1 no disk\r\n');
    expect(w.value()).toBeUndefined();
    await send('SWPKG-BOOT-FAIL step=disks t=1 no disk\r\n');
    expect(w.value()?.match[0]).toBe('SWPKG-BOOT-FAIL step=disks t=1 no disk\r\n');
    expect(w.value()?.start).toBe(from + 'SWPKG-BOOT-FAIL step=disks t=1 no disk\r\n'.length);
  });
});
