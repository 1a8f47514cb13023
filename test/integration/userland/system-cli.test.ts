/**
 * `pkg system status | mark-good | rollback` through the built binary, on a
 * folder standing for the mounted ESP (issue 14). Refusals leave the ESP as
 * it was.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { createContext, entryText, systemStatus } from '../../../userland/index.js';
import { runCli } from '../../helpers/run-cli.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

let d: string;
let esp: string;
let root: string;
const entries = async (): Promise<string[]> => (await readdir(join(esp, 'loader/entries'))).sort();
const pkg = (args: string[]) => runCli('pkg', ['--root', root, 'system', ...args, '--esp', esp, '--json']);

beforeEach(async () => {
  d = await tempDir();
  esp = join(d, 'esp');
  root = join(d, 'root');
  await mkdir(join(esp, 'loader/entries'), { recursive: true });
  await mkdir(root);
  await writeFile(join(esp, 'loader/entries/slotA.conf'), entryText({ slot: 'a', version: 'installed', release: 0, options: 'x' }));
});

describe('pkg system', () => {
  it('status, mark-good after a counted boot of B, then rollback to A', async () => {
    // B was staged with 3 tries and the loader has started it once.
    await writeFile(join(esp, 'loader/entries/slotB+2-1.conf'), entryText({ slot: 'b', version: '5', release: 5, options: 'x' }));
    const s = await pkg(['status', '--slot', 'b']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.json.result).toMatchObject({
      active: 'b',
      nextBoot: 'b',
      lastFailure: null,
      slots: [
        { slot: 'a', state: 'good', version: 'installed', active: false },
        { slot: 'b', state: 'trying', version: '5', triesLeft: 2, triesDone: 1, active: true },
      ],
    });
    const g = await pkg(['mark-good', '--slot', 'b']);
    expect(g.json.result).toEqual({ slot: 'b', changed: true, entry: 'slotB.conf' });
    expect(await entries()).toEqual(['slotA.conf', 'slotB.conf']);
    // B (release 5) sorts before A (release 0): it keeps booting first once good.
    expect((await pkg(['status', '--slot', 'b'])).json.result.nextBoot).toBe('b');
    const before = await treeHash(esp);
    const dry = await pkg(['rollback', '--slot', 'b', '--dry-run']);
    expect(dry.json.result).toMatchObject({ from: 'b', to: 'a', dryRun: true });
    expect(await treeHash(esp)).toBe(before);
    const r = await pkg(['rollback', '--slot', 'b', '--yes']);
    expect(r.json.result).toMatchObject({ from: 'b', to: 'a', changed: true });
    expect(await entries()).toEqual(['slotA.conf', 'slotB+0.conf']);
    const after = (await pkg(['status', '--slot', 'b'])).json.result;
    expect(after.nextBoot).toBe('a');
    // Set aside by the rollback, not reported as a slot whose boots failed.
    expect(after.slots[1]).toMatchObject({ slot: 'b', state: 'set-aside' });
    expect(after.lastFailure).toBeNull();
  });

  it('refuses a rollback with nothing to go back to, a bad slot name, and a missing ESP, changing nothing', async () => {
    const before = await treeHash(esp);
    expect((await pkg(['rollback', '--slot', 'a', '--yes'])).json.error.code).toBe('E_NOT_FOUND');
    expect((await pkg(['status', '--slot', 'c'])).json.error.code).toBe('E_USAGE');
    const noEsp = await runCli('pkg', ['--root', root, 'system', 'mark-good', '--slot', 'a', '--esp', join(d, 'none'), '--json']);
    expect(noEsp.json.error.code).toBe('E_NOT_FOUND');
    expect(await treeHash(esp)).toBe(before);
  });

  it('the running slot comes from swpkg.slot= on the kernel command line; without it the command is refused', async () => {
    const ctx = createContext({ root });
    const withSlot = join(d, 'cmdline-a');
    await writeFile(withSlot, 'initrd=\\slotA\\initramfs.cpio.gz console=ttyS0 swpkg.slot=a\n');
    expect((await systemStatus(ctx, { esp, cmdline: withSlot })).active).toBe('a');
    const without = join(d, 'cmdline-direct');
    await writeFile(without, 'console=ttyS0 swpkg.net=restricted\n');
    await expect(systemStatus(ctx, { esp, cmdline: without })).rejects.toMatchObject({ code: 'E_USAGE' });
    await ctx.close();
  });
});
