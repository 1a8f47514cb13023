import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A published package's name pattern: packages/STEM.SHA256.swpkg (publishing/publish.ts). */
export function hashedName(stem: string): RegExp {
  return new RegExp(`^packages/${stem.replace(/[.+]/g, '\\$&')}\\.[0-9a-f]{64}\\.swpkg$`);
}

/**
 * The path below a web root of the package published as STEM (NAME-VERSION-ARCH), whatever its
 * hash; fails the test unless exactly one file has that stem.
 */
export async function publishedPath(web: string, stem: string): Promise<string> {
  const re = hashedName(stem);
  const found = (await readdir(join(web, 'packages'))).map((n) => `packages/${n}`).filter((p) => re.test(p));
  if (found.length !== 1) throw new Error(`${web}: ${found.length} files published as ${stem}: ${found.join(', ')}`);
  return found[0]!;
}
