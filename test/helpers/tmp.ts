import { mkdtemp, rm, readdir, lstat, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, expect } from 'vitest';
import { extractPackage, verifyPackageFile } from '../../catalog/index.js';

const made: string[] = [];

/** A temp folder removed after the current test. */
export async function tempDir(prefix = 'swpkg-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

afterEach(async () => {
  while (made.length) await rm(made.pop()!, { recursive: true, force: true });
});

/**
 * A fingerprint of a whole tree (paths, types, modes, contents, link targets):
 * rejection tests compare it before and after to prove nothing changed.
 */
export async function treeHash(root: string): Promise<string> {
  const h = createHash('sha256');
  async function walk(rel: string): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(join(root, rel))).sort();
    } catch {
      h.update(`missing:${rel}\n`);
      return;
    }
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) {
        h.update(`d ${p} ${st.mode}\n`);
        await walk(p);
      } else if (st.isSymbolicLink()) h.update(`l ${p} ${await readlink(join(root, p))}\n`);
      else
        h.update(
          `f ${p} ${st.mode} ${createHash('sha256')
            .update(await readFile(join(root, p)))
            .digest('hex')}\n`,
        );
    }
  }
  await walk('');
  return h.digest('hex');
}

/**
 * `file` (a package inside `dir`) is refused with `code` by verifyPackageFile and by extractPackage
 * into `dir/out`, and `dir` is left exactly as it was: nothing extracted, nothing left behind.
 */
export async function expectPackageRefused(dir: string, file: string, code: string): Promise<void> {
  const before = await treeHash(dir);
  await expect(verifyPackageFile(file)).rejects.toMatchObject({ code });
  await expect(extractPackage(file, join(dir, 'out'))).rejects.toMatchObject({ code });
  expect(await treeHash(dir)).toBe(before);
}
