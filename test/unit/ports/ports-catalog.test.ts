import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  dependencyOrder,
  inspectPort,
  listPorts,
  loadPortsCatalog,
  loadRecipe,
  validatePortsCatalog,
  validateRecipe,
} from '../../../ports/index.js';
import type { SwpkgError } from '../../../catalog/index.js';
import { CollectingReporter } from '../../../catalog/index.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { recipeFor, writePortsTree } from './fixture.js';
import { failure } from '../../helpers/failure.js';

const SHA = 'b'.repeat(64);
const REAL_PORTS = resolve(import.meta.dirname, '../../../ports');
const SEED = [
  'lua',
  'zlib',
  'bzip2',
  'zstd',
  'xz',
  'libarchive',
  'ca-certificates',
  'openssl',
  'pcre2',
  'curl',
  'tzdata',
  'nginx',
  'sqlite',
];

describe('dependencyOrder', () => {
  const graph: Record<string, string[]> = { app: ['lib', 'util'], lib: ['util'], util: [] };
  it('puts every port after its dependencies', () => {
    expect(dependencyOrder(['app'], (n) => graph[n])).toEqual(['util', 'lib', 'app']);
  });

  it('names the cycle', () => {
    const cyclic: Record<string, string[]> = { a: ['b'], b: ['c'], c: ['a'] };
    const e = (() => {
      try {
        dependencyOrder(['a'], (n) => cyclic[n]);
      } catch (err) {
        return err as SwpkgError;
      }
      throw new Error('expected a cycle');
    })();
    expect(e.code).toBe('E_INVALID_RECIPE');
    expect(e.details['cycle']).toEqual(['a', 'b', 'c', 'a']);
  });

  it('names who wanted an unknown port', () => {
    try {
      dependencyOrder(['app'], (n) => ({ app: ['ghost'] })[n]);
      throw new Error('expected an error');
    } catch (e) {
      expect((e as SwpkgError).code).toBe('E_UNKNOWN_PORT');
      expect((e as SwpkgError).details).toMatchObject({ port: 'ghost', wantedBy: 'app' });
    }
  });
});

describe('the seed ports tree', () => {
  it('validates: thirteen ports, every recipe strict, no cycles, build order respects dependencies', async () => {
    const r = await validatePortsCatalog(REAL_PORTS);
    expect(r.ports.map((p) => p.name).sort()).toEqual([...SEED].sort());
    expect(r.unlisted).toEqual([]);
    const pos = (n: string): number => r.order.indexOf(n);
    expect(pos('openssl')).toBeLessThan(pos('curl'));
    expect(pos('ca-certificates')).toBeLessThan(pos('curl'));
    for (const d of ['zlib', 'bzip2', 'xz', 'zstd']) expect(pos(d)).toBeLessThan(pos('libarchive'));
    for (const d of ['pcre2', 'zlib', 'openssl']) expect(pos(d)).toBeLessThan(pos('nginx'));
  });

  it('lists and inspects ports', async () => {
    const list = await listPorts(REAL_PORTS);
    const curl = list.find((p) => p.name === 'curl')!;
    expect(curl.depends).toEqual(['ca-certificates@>=20230311.0.0']);
    const info = await inspectPort(REAL_PORTS, 'nginx');
    expect(info.buildOrder.at(-1)).toBe('nginx');
    expect(info.buildOrder).toEqual(expect.arrayContaining(['pcre2', 'zlib', 'openssl']));
    expect(info.sources[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('pins every source to a Debian .orig file and says when bytes are a Debian repack', async () => {
    for (const p of await listPorts(REAL_PORTS)) {
      const info = await inspectPort(REAL_PORTS, p.name);
      for (const s of info.sources) expect(s.debian?.file, p.name).toBeTruthy();
    }
    const zlib = await inspectPort(REAL_PORTS, 'zlib');
    expect(zlib.sources[0]!.note).toMatch(/dfsg/i);
    const zstd = await inspectPort(REAL_PORTS, 'zstd');
    expect(zstd.sources[0]!.note).toMatch(/dfsg/i);
  });
});

describe('catalog validation of bad trees', () => {
  it('refuses an unknown port by name', async () => {
    const e = await failure(validateRecipe(REAL_PORTS, 'emacs'));
    expect(e.code).toBe('E_UNKNOWN_PORT');
    expect(e.details['port']).toBe('emacs');
  });

  it('refuses a dependency cycle across recipes', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, [
      { name: 'a', recipe: recipeFor('a', SHA, { buildDepends: ['b'] }) },
      { name: 'b', recipe: recipeFor('b', SHA, { depends: ['a'] }) },
    ]);
    const before = await treeHash(ports);
    const e = await failure(validatePortsCatalog(ports));
    expect(e.code).toBe('E_INVALID_RECIPE');
    expect(e.details['cycle']).toEqual(['a', 'b', 'a']);
    expect(await treeHash(ports)).toBe(before);
  });

  it('refuses a dependency on a port that does not exist', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, [{ name: 'a', recipe: recipeFor('a', SHA, { buildDepends: ['nothere'] }) }]);
    const e = await failure(validatePortsCatalog(ports));
    expect(e.code).toBe('E_UNKNOWN_PORT');
    expect(e.details).toMatchObject({ port: 'nothere', wantedBy: 'a' });
  });

  it('refuses a listed folder that does not exist', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, [{ name: 'a', recipe: recipeFor('a', SHA) }]);
    await rm(join(ports, 'recipes', 'a'), { recursive: true });
    const e = await failure(validatePortsCatalog(ports));
    expect(e.code).toBe('E_INVALID_RECIPE');
    expect(e.details['port']).toBe('a');
  });

  it('refuses a recipe whose name differs from its catalog entry', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, [{ name: 'a', recipe: recipeFor('b', SHA) }]);
    const e = await failure(loadRecipe(await loadPortsCatalog(ports), 'a'));
    expect(e.code).toBe('E_INVALID_RECIPE');
    expect(e.details['field']).toBe('name');
  });

  it('refuses a patch file that is missing', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, [{ name: 'a', recipe: recipeFor('a', SHA, { patches: ['fix.patch'] }) }]);
    const e = await failure(validatePortsCatalog(ports));
    expect(e.code).toBe('E_INVALID_RECIPE');
    expect(e.details['field']).toBe('patches[0]');
  });

  it('refuses unknown fields in catalog.json and warns about unlisted folders', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, [{ name: 'a', recipe: recipeFor('a', SHA) }], ['stray']);
    const rep = new CollectingReporter();
    const r = await validatePortsCatalog(ports, rep);
    expect(r.unlisted).toEqual(['recipes/stray']);
    expect(rep.warnings.join('\n')).toContain('recipes/stray');
  });

  it('refuses a catalog entry whose folder leaves the ports tree', async () => {
    const dir = await tempDir();
    const ports = await writePortsTree(dir, []);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(ports, 'catalog.json'), JSON.stringify({ format: 1, ports: [{ name: 'a', path: '../../etc' }] }));
    const e = await failure(loadPortsCatalog(ports));
    expect(e.code).toBe('E_INVALID_RECIPE');
  });
});
