import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { TerminalReporter, formatBytes } from '../../../edge/index.js';

function capture(isTTY: boolean): { stream: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 100 });
  let out = '';
  stream.on('data', (c: Buffer) => (out += c.toString()));
  return { stream, text: () => out };
}

const flush = (): Promise<void> => new Promise((res) => setImmediate(res));

describe('progress for people (every tool)', () => {
  it('draws one redrawn bar on a terminal and ends the line at 100%', async () => {
    const { stream, text } = capture(true);
    const r = new TerminalReporter(stream);
    r.progress('downloading 2 packages', 0, 2048);
    r.progress('downloading 2 packages', 2048, 2048);
    await flush();
    expect(text()).toMatch(/\r\x1b\[K.*\[#+\] 100% 2\.0 KiB \/ 2\.0 KiB\n$/);
  });

  it('redraws at most every 100 ms, but always draws the end', async () => {
    const { stream, text } = capture(true);
    let now = 0;
    const r = new TerminalReporter(stream, { now: () => now });
    for (let i = 0; i <= 10; i++) {
      now = i * 20;
      r.progress('extracting', i * 10, 100);
    }
    await flush();
    // Drawn at t=0, 100 and 200 (100 %): three frames, not eleven.
    expect(text().split('\r\x1b[K').filter(Boolean)).toHaveLength(3);
  });

  it('prints plain lines at each quarter when not a terminal', async () => {
    const { stream, text } = capture(false);
    const r = new TerminalReporter(stream);
    for (let i = 0; i <= 100; i++) r.progress('downloading lua', i, 100);
    r.warn('careful');
    await flush();
    expect(text().split('\n').filter(Boolean)).toEqual([
      'downloading lua: 0% (0 B / 100 B)',
      'downloading lua: 25% (25 B / 100 B)',
      'downloading lua: 50% (50 B / 100 B)',
      'downloading lua: 75% (75 B / 100 B)',
      'downloading lua: 100% (100 B / 100 B)',
      'warning: careful',
    ]);
    expect(text()).not.toMatch(/\r/);
  });

  it('shows counts as counts, never as bytes', async () => {
    const { stream, text } = capture(false);
    const r = new TerminalReporter(stream);
    r.progress('checking packages', 1, 4, 'items');
    r.progress('checking packages', 4, 4, 'items');
    await flush();
    expect(text()).toBe('checking packages: 25% (1 / 4)\nchecking packages: 100% (4 / 4)\n');
  });

  it('quiet drops info and progress, never warnings', async () => {
    const { stream, text } = capture(false);
    const r = new TerminalReporter(stream, { quiet: true });
    r.info('publishing');
    r.progress('indexing', 1, 2, 'items');
    r.warn('expires soon');
    await flush();
    expect(text()).toBe('warning: expires soon\n');
    expect(r.warnings).toEqual(['expires soon']);
  });

  it('escapes control characters in messages and labels', async () => {
    const { stream, text } = capture(false);
    const r = new TerminalReporter(stream);
    r.info('fetched evil\x1b]0;pwned\x07 1.0');
    r.progress('downloading \x1b[2Jx', 1, 1);
    r.warn('server said \x9b31m');
    await flush();
    expect(text()).toBe('fetched evil\\e]0;pwned\\x07 1.0\ndownloading \\e[2Jx: 100% (1 B / 1 B)\nwarning: server said \\x9b31m\n');
  });

  it('formats sizes with one formatter', () => {
    expect([formatBytes(0), formatBytes(1536), formatBytes(-3 * 1048576), formatBytes(1024 ** 3), formatBytes(123_456)]).toEqual([
      '0 B',
      '1.5 KiB',
      '-3.0 MiB',
      '1.0 GiB',
      '121 KiB',
    ]);
  });
});
