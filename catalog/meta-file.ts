import { readFile } from 'node:fs/promises';
import { fromFsError } from './errors.js';
import { parseJson } from './canonical-json.js';
import { validateMeta, type PackageMeta } from './manifest.js';

/** Reads package metadata (`swpkg pack --manifest FILE`): the manifest fields minus the computed file list. */
export async function readPackageMeta(path: string): Promise<PackageMeta> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, `reading ${path}`);
  }
  const value = parseJson(text, path) as Record<string, unknown>;
  // A full manifest (from `swpkg inspect --json`) is accepted too: its computed fields are recomputed.
  if (value && typeof value === 'object') {
    delete value['format'];
    delete value['files'];
    delete value['installedSize'];
  }
  return validateMeta(value);
}
