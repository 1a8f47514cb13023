import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { TerminalReporter, formatBytes } from '../../../userland/cli/terminal-reporter.js';

function capture(isTTY: boolean): { stream: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 100 });
  let out = '';
  stream.on('data', (c: Buffer) => (out += c.toString()));
  return { stream, text: () => out };
}

describe('progress for people', () => {
  it('draws one redrawn bar on a terminal and ends the line at 100%', async () => {
    const { stream, text } = capture(true);
    const r = new TerminalReporter(stream);
    r.progress('downloading 2 packages', 0, 2048);
    r.progress('downloading 2 packages', 2048, 2048);
    await new Promise((res) => setImmediate(res));
    expect(text()).toMatch(/\r\x1b\[K.*\[#+\] 100% 2\.0 KiB \/ 2\.0 KiB\n$/);
  });

  it('prints plain lines at each quarter when not a terminal', async () => {
    const { stream, text } = capture(false);
    const r = new TerminalReporter(stream);
    for (let i = 0; i <= 100; i++) r.progress('downloading lua', i, 100);
    r.warn('careful');
    await new Promise((res) => setImmediate(res));
    expect(text().split('\n').filter(Boolean)).toEqual([
      'downloading lua: 0% of 100 B',
      'downloading lua: 25% of 100 B',
      'downloading lua: 50% of 100 B',
      'downloading lua: 75% of 100 B',
      'downloading lua: 100% of 100 B',
      'warning: careful',
    ]);
    expect(text()).not.toMatch(/\r/);
  });

  it('formats sizes', () => {
    expect([formatBytes(0), formatBytes(1536), formatBytes(-3 * 1048576), formatBytes(1024 ** 3)]).toEqual([
      '0 B',
      '1.5 KiB',
      '-3.0 MiB',
      '1.0 GiB',
    ]);
  });
});
