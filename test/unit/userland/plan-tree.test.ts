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

  it('links files relatively into the store and copies package symlinks (one link per file)', () => {
    const t = planTree([input('a', [dir('bin'), file('bin/a'), dir('share'), dir('share/a'), file('share/a/x'), link('bin/b', 'a')])], {
      folderLinks: false,
    });
    expect(t.links).toEqual([
      { path: 'bin/a', target: '../../../store/h-a-1.0.0/bin/a', owner: 'a@1.0.0' },
      { path: 'share/a/x', target: '../../../../store/h-a-1.0.0/share/a/x', owner: 'a@1.0.0' },
      { path: 'bin/b', target: 'a', owner: 'a@1.0.0' },
    ]);
    expect(t.dirs).toEqual(['bin', 'share', 'share/a']);
  });

  it('links a folder whole where only one package has anything in it, the shared ones folder by folder', () => {
    const t = planTree([
      input('a', [
        dir('bin'),
        file('bin/a'),
        dir('share'),
        dir('share/a'),
        dir('share/a/doc'),
        file('share/a/doc/x'),
        link('share/a/y', 'doc'),
      ]),
      input('b', [dir('bin'), file('bin/b'), dir('share'), dir('share/b'), file('share/b/x')]),
    ]);
    expect(t.links).toEqual([
      { path: 'bin/a', target: '../../../store/h-a-1.0.0/bin/a', owner: 'a@1.0.0' },
      { path: 'share/a', target: '../../../store/h-a-1.0.0/share/a', owner: 'a@1.0.0', folder: true },
      { path: 'bin/b', target: '../../../store/h-b-1.0.0/bin/b', owner: 'b@1.0.0' },
      { path: 'share/b', target: '../../../store/h-b-1.0.0/share/b', owner: 'b@1.0.0', folder: true },
    ]);
    expect(t.dirs).toEqual(['bin', 'share']);
    // One package alone: its top folders are linked whole.
    expect(planTree([input('a', [dir('bin'), file('bin/a'), link('bin/b', 'a')])]).links).toEqual([
      { path: 'bin', target: '../../store/h-a-1.0.0/bin', owner: 'a@1.0.0', folder: true },
    ]);
  });

  it('does not link a folder whole when a symlink in it could lead out of it', () => {
    // From inside a folder linked whole, `../x` would resolve in the store entry, not in the merged tree.
    for (const target of ['../bin/b', 'sub/x', '.', '..']) {
      const t = planTree([input('a', [dir('lib'), dir('lib/sub'), file('lib/sub/x'), link('lib/l', target)])]);
      expect(t.links.filter((l) => l.folder)).toEqual([
        { path: 'lib/sub', target: '../../../store/h-a-1.0.0/lib/sub', owner: 'a@1.0.0', folder: true },
      ]);
      expect(t.links).toContainEqual({ path: 'lib/l', target, owner: 'a@1.0.0' });
      expect(t.dirs).toEqual(['lib']);
    }
  });

  it('refuses the same conflicts with folder links as without', () => {
    for (const c of cases.filter((x) => x.conflict)) {
      expect(maybeThrown(() => planTree(c.inputs, { folderLinks: false }))?.details).toMatchObject(c.conflict!);
    }
  });
});
