import { describe, expect, it } from 'vitest';
import type { FileEntry, PackageManifest } from '../../../catalog/index.js';
import { planTree } from '../../../userland/index.js';
import { maybeThrown } from '../../helpers/failure.js';

function manifest(name: string, files: FileEntry[]): PackageManifest {
  return {
    format: 1,
    name,
    version: '1.0.0',
    arch: 'x86_64',
    abi: 'linux-musl-static',
    summary: name,
    license: 'MIT',
    depends: {},
    provides: [],
    conflicts: [],
    installedSize: 0,
    files,
  };
}
const dir = (path: string): FileEntry => ({ path, type: 'dir', mode: 0o755 });
const file = (path: string): FileEntry => ({ path, type: 'file', mode: 0o644, size: 0, sha256: '0'.repeat(64) });
const link = (path: string, target: string): FileEntry => ({ path, type: 'symlink', mode: 0o777, target });
const input = (name: string, files: FileEntry[]) => ({
  pkg: { name, version: '1.0.0', store: `h-${name}-1.0.0` },
  manifest: manifest(name, files),
});

/** One row per rule of the merged generation tree (DESIGN.md: conflicts refused with both owners named). */
const cases: { why: string; inputs: ReturnType<typeof input>[]; conflict?: { path: string; owners: string[] } }[] = [
  { why: 'folders are shared', inputs: [input('a', [dir('bin'), file('bin/a')]), input('b', [dir('bin'), file('bin/b')])] },
  {
    why: 'one file in two packages',
    inputs: [input('a', [dir('bin'), file('bin/x')]), input('b', [dir('bin'), file('bin/x')])],
    conflict: { path: 'bin/x', owners: ['a@1.0.0', 'b@1.0.0'] },
  },
  {
    why: 'a file where another has a folder',
    inputs: [input('a', [dir('lib')]), input('b', [file('lib')])],
    conflict: { path: 'lib', owners: ['a@1.0.0', 'b@1.0.0'] },
  },
  {
    why: 'a path below another package’s symlink',
    inputs: [input('a', [link('lib', 'lib64')]), input('b', [dir('lib'), file('lib/x')])],
    conflict: { path: 'lib', owners: ['a@1.0.0', 'b@1.0.0'] },
  },
  {
    why: 'the generation record is reserved',
    inputs: [input('a', [file('generation.json')])],
    conflict: { path: 'generation.json', owners: ['pkg (generation record)', 'a@1.0.0'] },
  },
];

describe('planTree', () => {
  for (const c of cases) {
    it(c.why, () => {
      const e = maybeThrown(() => planTree(c.inputs));
      if (c.conflict) {
        expect(e?.code).toBe('E_FILE_CONFLICT');
        expect(e?.details).toMatchObject(c.conflict);
      } else expect(e).toBeUndefined();
    });
  }

  it('links files relatively into the store and copies package symlinks', () => {
    const t = planTree([input('a', [dir('bin'), file('bin/a'), dir('share'), dir('share/a'), file('share/a/x'), link('bin/b', 'a')])]);
    expect(t.links).toEqual([
      { path: 'bin/a', target: '../../../store/h-a-1.0.0/bin/a', owner: 'a@1.0.0' },
      { path: 'share/a/x', target: '../../../../store/h-a-1.0.0/share/a/x', owner: 'a@1.0.0' },
      { path: 'bin/b', target: 'a', owner: 'a@1.0.0' },
    ]);
    expect(t.dirs).toEqual(['bin', 'share', 'share/a']);
  });
});
