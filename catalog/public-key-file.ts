import { readFile } from 'node:fs/promises';
import { fromFsError } from './errors.js';
import { parseJson } from './canonical-json.js';
import { parsePublicKey, type PublicKeyFile } from './keys.js';

/** Reads a public key file: the trust side needs only this, never the private half. */
export async function readPublicKey(path: string): Promise<PublicKeyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, `reading key ${path}`);
  }
  return parsePublicKey(parseJson(text, path), path);
}
