import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../catalog/index.js';
import { EXIT_CODE_TABLE } from '../../../userland/cli/help.js';
import { COMMANDS } from '../../../userland/cli/commands.js';
import { parseTokens, UsageProblem } from '../../../userland/cli/args.js';
import { machineArch } from '../../../userland/cli/run.js';
import { pkg } from '../../integration/userland/helpers.js';
import { tempDir } from '../../helpers/tmp.js';

describe('pkg command line', () => {
  it('documents every exit code the registry maps pkg errors to', () => {
    for (const row of EXIT_CODE_TABLE) {
      for (const code of row.codes) expect(ERROR_CODES[code as keyof typeof ERROR_CODES], code).toBe(row.exit);
    }
    expect(EXIT_CODE_TABLE.map((r) => r.exit)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("names the machine's arch in the package format's words, and an unknown arch as Node does (so nothing matches it)", () => {
    expect(machineArch('x64')).toBe('x86_64');
    expect(machineArch('arm64')).toBe('aarch64');
    expect(machineArch('ppc64')).toBe('ppc64');
  });

  it('gives every command a summary, a description and an example using it', () => {
    for (const c of COMMANDS) {
      expect(c.summary.length, c.words.join(' ')).toBeGreaterThan(10);
      expect(c.description.length).toBeGreaterThan(10);
      expect(c.examples.some((e) => e.startsWith(`pkg ${c.words.join(' ')}`))).toBe(true);
    }
  });

  it('parses flags, repeatable flags, = values and --', () => {
    const p = parseTokens(
      ['a', '--mirror', 'x', '--mirror=y', '-n', '--', '--weird'],
      [
        { name: 'mirror', type: 'strings', summary: '' },
        { name: 'dry-run', short: 'n', type: 'boolean', summary: '' },
      ],
      [{ name: 'A', required: true, variadic: true }],
      'pkg t',
    );
    expect(p).toEqual({ flags: { mirror: ['x', 'y'], 'dry-run': true }, args: ['a', '--weird'] });
    expect(() => parseTokens(['--nope'], [], [], 'pkg t')).toThrow(UsageProblem);
    expect(() => parseTokens([], [], [{ name: 'NAME', required: true }], 'pkg t')).toThrow(/needs NAME/);
    expect(() => parseTokens(['--n', 'x'], [{ name: 'n', type: 'number', summary: '' }], [], 'pkg t')).toThrow(/non-negative number/);
  });

  it('prints help with the exit codes, and usage errors exit 2 with a hint', async () => {
    const root = await tempDir();
    const help = await pkg(root, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/EXIT CODES/);
    expect(help.stdout).toMatch(/6 {2}another pkg holds the lock \(E_LOCKED\)/);
    const sub = await pkg(root, ['install', '--help']);
    expect(sub.stdout).toMatch(/^USAGE\n {2}pkg install /m);
    const bad = await pkg(root, ['instal']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error E_USAGE: unknown command/m);
    const json = await pkg(root, ['frobnicate', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: 'E_USAGE' } });
    const version = await pkg(root, ['--version']);
    expect(version.stdout).toMatch(/^pkg \d+\.\d+\.\d+\n$/);
  });

  it('answers queries on an empty root without a lock', async () => {
    const root = await tempDir();
    const list = await pkg(root, ['list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual({ ok: true, result: [], warnings: [] });
    const info = await pkg(root, ['info', 'nothing', '--json']);
    expect(JSON.parse(info.stdout).error.code).toBe('E_NOT_FOUND');
  });
});
