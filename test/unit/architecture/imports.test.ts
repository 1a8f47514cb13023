import { describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, dirname } from 'node:path';

/**
 * The dependency direction of DESIGN.md, enforced: catalog ← userland /
 * repo-server / ports ← cli / images ← test. Other folders are reached only
 * through their index.ts.
 */
const ROOT = resolve(import.meta.dirname, '../../..');
const ALLOWED: Record<string, string[]> = {
  catalog: [],
  userland: ['catalog'],
  'repo-server': ['catalog'],
  ports: ['catalog'],
  kernel: [],
  cli: ['catalog', 'userland', 'repo-server', 'ports'],
  images: ['userland', 'catalog', 'kernel'],
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
          if (!ALLOWED[top]!.includes(targetTop)) violations.push(`${rel} imports ${target} (${top} may not import ${targetTop})`);
          else if (target !== `${targetTop}/index.js`) violations.push(`${rel} imports ${target}: use ${targetTop}/index.js`);
        }
        if (top === 'userland' && !file.includes('/userland/cli/') && /\bconsole\.|process\.stdout|process\.stderr/.test(text)) {
          violations.push(`${relative(ROOT, file)} prints: only userland/cli/ may`);
        }
        if (top === 'userland' && /@oclif\//.test(text)) violations.push(`${relative(ROOT, file)} uses oclif: userland must bundle small`);
        if (top === 'catalog' && /\bconsole\.|process\.stdout/.test(text))
          violations.push(`${relative(ROOT, file)} prints: catalog reports through a Reporter`);
      }
    }
    expect(checked).toBeGreaterThan(10);
    expect(violations).toEqual([]);
  });
});
