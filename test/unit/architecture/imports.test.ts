import { describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, dirname } from 'node:path';

/**
 * The dependency direction of docs/design.md, enforced: catalog ← publishing, edge ←
 * userland / repo-server / ports ← cli / images ← test. Other folders are reached only
 * through their index.ts. Inside userland only userland/cli/ (the pkg entry
 * point) uses edge/: the library reports through a Reporter.
 */
const ROOT = resolve(import.meta.dirname, '../../..');
const ALLOWED: Record<string, string[]> = {
  catalog: [],
  publishing: ['catalog'],
  edge: ['catalog'],
  userland: ['catalog', 'edge'],
  'repo-server': ['catalog'],
  ports: ['catalog', 'publishing'],
  kernel: [],
  // cli → images: `swpkg image build|boot` are thin commands over the builder and runner (docs/design.md).
  cli: ['catalog', 'publishing', 'edge', 'userland', 'repo-server', 'ports', 'images'],
  images: ['userland', 'catalog', 'edge', 'kernel'],
};
/**
 * edge/ is on the path of every start (`pkg --version` included), so it reaches past catalog's
 * index.ts to these leaf modules only, which import nothing: loading the whole core would cost
 * more than the rest of the start-up.
 */
const LEAF_IMPORTS: Record<string, string[]> = {
  edge: ['catalog/errors.js', 'catalog/reporter.js', 'catalog/format-bytes.js'],
};

async function* tsFiles(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

describe('import boundaries', () => {
  it('every folder imports only what DESIGN.md allows, through index.ts', async () => {
    const violations: string[] = [];
    let checked = 0;
    for (const top of Object.keys(ALLOWED)) {
      for await (const file of tsFiles(join(ROOT, top))) {
        checked++;
        const text = await readFile(file, 'utf8');
        for (const m of text.matchAll(IMPORT_RE)) {
          const spec = m[1] ?? m[2];
          if (!spec || !spec.startsWith('.')) continue;
          const target = relative(ROOT, resolve(dirname(file), spec));
          const targetTop = target.split('/')[0]!;
          if (targetTop === top) continue;
          const rel = relative(ROOT, file);
          if (top === 'userland' && targetTop === 'edge' && !file.includes('/userland/cli/')) {
            violations.push(`${rel} imports ${target}: only userland/cli/ talks to people`);
          }
          if (!ALLOWED[top]!.includes(targetTop)) violations.push(`${rel} imports ${target} (${top} may not import ${targetTop})`);
          else if (target !== `${targetTop}/index.js` && !LEAF_IMPORTS[top]?.includes(target))
            violations.push(`${rel} imports ${target}: use ${targetTop}/index.js`);
        }
        if (top === 'userland' && !file.includes('/userland/cli/') && /\bconsole\.|process\.stdout|process\.stderr/.test(text)) {
          violations.push(`${relative(ROOT, file)} prints: only userland/cli/ may`);
        }
        if ((top === 'userland' || top === 'edge') && /@oclif\//.test(text))
          violations.push(`${relative(ROOT, file)} uses oclif: ${top} is bundled into the small guest client`);
        if ((top === 'catalog' || top === 'publishing' || top === 'edge') && /\bconsole\.|process\.stdout|process\.stderr/.test(text))
          violations.push(`${relative(ROOT, file)} prints: ${top} writes only to a Reporter or a stream it is given`);
      }
    }
    expect(checked).toBeGreaterThan(10);
    expect(violations).toEqual([]);
  });

  it('the leaf modules edge/ may import directly import nothing themselves', async () => {
    for (const leaf of Object.values(LEAF_IMPORTS).flat()) {
      const text = await readFile(join(ROOT, leaf.replace(/\.js$/, '.ts')), 'utf8');
      expect(
        [...text.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2]),
        leaf,
      ).toEqual([]);
    }
  });
});
