/**
 * The serial-console driver against the guest's own kind of shell: busybox ash,
 * interactive, on a pseudo-terminal (util-linux `script` provides one), so line
 * editing, echo and Ctrl-C behave as on the guest's ttyS0.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GUEST_PROMPT, SerialConsole } from '../../../images/index.js';

const BUSYBOX = existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox';

describe('SerialConsole on an interactive busybox shell', () => {
  let child: ChildProcessByStdio<Writable, Readable, null>;
  let con: SerialConsole;

  beforeEach(async () => {
    child = spawn('script', ['-qfec', `${BUSYBOX} sh -i`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { PATH: '/usr/bin:/bin', HOME: '/tmp', TERM: 'vt100', PS1: GUEST_PROMPT },
    });
    const own = new SerialConsole(child.stdin, child.stdout);
    // Bound to this test's console: a previous shell's late exit must not close the next one.
    child.on('exit', (code, signal) => own.close(`shell exited with ${signal ?? code}`));
    con = own;
    await con.waitFor(GUEST_PROMPT, 10_000);
    await con.sync(10_000);
  });

  afterEach(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('returns output and exit status, and keeps shell state between commands', async () => {
    expect(await con.run('echo hello')).toMatchObject({ exitCode: 0, output: 'hello\n' });
    expect(await con.run(`sh -c 'echo out; exit 3'`)).toMatchObject({ exitCode: 3, output: 'out\n' });
    expect(await con.run('false # a trailing comment must not hide the end marker')).toMatchObject({ exitCode: 1, output: '' });
    expect(await con.run('cd /tmp && X=42')).toMatchObject({ exitCode: 0 });
    expect(await con.run('echo "$PWD $X"')).toMatchObject({ exitCode: 0, output: '/tmp 42\n' });
    expect(await con.run('printf no-newline')).toMatchObject({ exitCode: 0, output: 'no-newline' });
    expect(await con.run('echo tail \\')).toMatchObject({ exitCode: 0, output: 'tail\n' });
    expect(await con.run('echo after-tail')).toMatchObject({ exitCode: 0, output: 'after-tail\n' });
  });

  it('runs long, multi-line and non-ASCII commands through an uploaded script', async () => {
    const long = `x=${'b'.repeat(5000)}; echo \${#x}`;
    expect(await con.run(long)).toMatchObject({ exitCode: 0, output: '5000\n' });
    const multi = 'for i in 1 2 3; do\n\techo "line $i"\ndone\necho "grüße"\nfalse';
    expect(await con.run(multi)).toMatchObject({ exitCode: 1, output: 'line 1\nline 2\nline 3\ngrüße\n' });
    // The uploaded script runs in the console's shell: its variables stay.
    expect(await con.run('Y=7\necho set')).toMatchObject({ exitCode: 0, output: 'set\n' });
    expect(await con.run('echo $Y')).toMatchObject({ exitCode: 0, output: '7\n' });
  });

  it('interrupts a command that outlives its timeout and keeps working', async () => {
    await expect(con.run('echo started; sleep 30', 1500)).rejects.toMatchObject({
      code: 'E_STALLED',
      details: { output: expect.stringContaining('started') },
    });
    expect(await con.run('echo after')).toMatchObject({ exitCode: 0, output: 'after\n' });
  });

  it('bounds waits and ends them when the line closes', async () => {
    await expect(con.waitFor(/never-printed-marker/, 300)).rejects.toMatchObject({ code: 'E_STALLED' });
    const pending = con.waitFor(/also-never/, 30_000);
    child.kill('SIGKILL');
    await expect(pending).rejects.toMatchObject({ code: 'E_INTERNAL' });
    await expect(con.run('echo x')).rejects.toMatchObject({ code: 'E_INTERNAL' });
  });

  it('fails a wait at once when a fatal line appears before the awaited one', async () => {
    const from = con.position;
    const waiting = con.waitFor(/SWPKG-BOOT-OK/, 30_000, { from });
    con.write(`printf 'SWPKG-BOOT-FAIL step=%s t=1 no disk\\n' disks\n`);
    await expect(waiting).rejects.toMatchObject({ code: 'E_INTERNAL', details: { line: 'SWPKG-BOOT-FAIL step=disks t=1 no disk' } });
  });
});
