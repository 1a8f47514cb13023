import { describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireWriterLock, readLockHolder } from '../../../userland/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { failure } from '../../helpers/failure.js';

const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

describe('writer lock', () => {
  it('is exclusive: a second writer fails with E_LOCKED naming the holder', async () => {
    const path = join(await tempDir(), 'lock');
    const a = await acquireWriterLock(path, { command: 'pkg install lua' });
    const e = await failure(acquireWriterLock(path, { command: 'pkg remove lua', timeoutMs: 200, pollMs: 20 }));
    expect(e.code).toBe('E_LOCKED');
    expect(e.details).toMatchObject({ pid: process.pid, command: 'pkg install lua' });
    await a.release();
    const b = await acquireWriterLock(path, { command: 'pkg remove lua', timeoutMs: 0 });
    await b.release();
  });

  it('waits for the holder within the timeout', async () => {
    const path = join(await tempDir(), 'lock');
    const a = await acquireWriterLock(path, { command: 'first' });
    setTimeout(() => void a.release(), 150);
    const b = await acquireWriterLock(path, { command: 'second', timeoutMs: 5000, pollMs: 20 });
    expect(JSON.parse(await readFile(path, 'utf8')).command).toBe('second');
    await b.release();
  });

  it('takes over a lock whose holder is gone (dead pid, or an earlier boot)', async () => {
    const path = join(await tempDir(), 'lock');
    // A pid far above pid_max: no such process.
    await writeFile(path, JSON.stringify({ pid: 2 ** 30, command: 'pkg install x', startedAt: '', host: hostname(), bootId: bootId() }));
    expect((await readLockHolder(path))?.stale).toBe(true);
    const a = await acquireWriterLock(path, { command: 'next', timeoutMs: 0 });
    await a.release();
    await writeFile(
      path,
      JSON.stringify({ pid: process.pid, command: 'old boot', startedAt: '', host: hostname(), bootId: 'another-boot' }),
    );
    const b = await acquireWriterLock(path, { command: 'next', timeoutMs: 0 });
    await b.release();
  });

  it('does not take over a live holder, and release leaves a foreign lock alone', async () => {
    const path = join(await tempDir(), 'lock');
    await writeFile(path, JSON.stringify({ pid: process.pid, command: 'live', startedAt: '', host: hostname(), bootId: bootId() }));
    expect((await failure(acquireWriterLock(path, { command: 'x', timeoutMs: 0 }))).code).toBe('E_LOCKED');
    expect(JSON.parse(await readFile(path, 'utf8')).command).toBe('live');
  });
});
