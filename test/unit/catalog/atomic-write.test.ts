import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdir, open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFile, copyFileAtomic, writeFileAtomic } from '../../../catalog/index.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { failure } from '../../helpers/failure.js';

/**
 * What was fsynced, by path: FileHandle.sync is the only way the module reaches fsync(2), so a spy
 * on its prototype sees every file and folder made durable, in order.
 */
async function watchSyncs(dir: string): Promise<{ synced: string[] }> {
  const probe = await open(dir, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: (this: { fd: number }) => Promise<void> };
  await probe.close();
  const synced: string[] = [];
  const real = proto.sync;
  vi.spyOn(proto, 'sync').mockImplementation(async function (this: { fd: number }) {
    synced.push(await readlinkFd(this.fd));
    return real.call(this);
  });
  return { synced };
}

async function readlinkFd(fd: number): Promise<string> {
  const { readlink } = await import('node:fs/promises');
  return readlink(`/proc/self/fd/${fd}`);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the one atomic write (catalog/atomic-write.ts)', () => {
  it('writes the bytes with the mode, fsyncs the temp file before the rename and the folder after, leaves no temp', async () => {
    const d = await tempDir();
    const target = join(d, 'sub', 'state.json');
    const { synced } = await watchSyncs(d);
    await writeFileAtomic(target, '{"a":1}\n', { mode: 0o600 });
    expect(await readFile(target, 'utf8')).toBe('{"a":1}\n');
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(d, 'sub'))).toEqual(['state.json']);
    // The file's data first (under its temp name, in the same folder), then the folder that holds the rename.
    expect(synced).toHaveLength(2);
    expect(synced[0]).toMatch(/\/sub\/\.tmp-[0-9a-f]{12}-state\.json$/);
    expect(synced[1]).toBe(join(d, 'sub'));
  });

  it('replaces an existing file whole', async () => {
    const d = await tempDir();
    const target = join(d, 'f');
    await writeFile(target, 'old contents, longer than the new');
    await writeFileAtomic(target, 'new');
    expect(await readFile(target, 'utf8')).toBe('new');
  });

  it('a write that cannot land (the target is a non-empty folder) is a coded error, and the old state stays', async () => {
    const d = await tempDir();
    await mkdir(join(d, 'target'));
    await writeFile(join(d, 'target', 'keep'), 'x');
    const before = await treeHash(d);
    const e = await failure(writeFileAtomic(join(d, 'target'), 'data'));
    expect(e.code).toBe('E_STORE');
    expect(await treeHash(d)).toBe(before);
  });

  it('copyFileAtomic and commitFile fsync the copy before it is renamed into place', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'src'), 'payload');
    const { synced } = await watchSyncs(d);
    await copyFileAtomic(join(d, 'src'), join(d, 'out', 'dest'));
    expect(await readFile(join(d, 'out', 'dest'), 'utf8')).toBe('payload');
    expect(synced).toHaveLength(2);
    expect(synced[0]).toMatch(/\/out\/\.tmp-[0-9a-f]{12}-dest$/);
    expect(synced[1]).toBe(join(d, 'out'));
    expect(await readdir(join(d, 'out'))).toEqual(['dest']);
  });

  it('commitFile of a temp file that is missing refuses and changes nothing', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'dest'), 'old');
    const before = await treeHash(d);
    const e = await failure(commitFile(join(d, '.tmp-gone'), join(d, 'dest')));
    expect(e.code).toBe('E_NOT_FOUND');
    expect(await treeHash(d)).toBe(before);
  });
});
