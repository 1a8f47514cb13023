import { open, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, fromFsError } from './errors.js';
import { parseJson } from './canonical-json.js';
import {
  generateKeyPair,
  parsePrivateKeyFile,
  parsePublicKey,
  toPrivateKeyFile,
  toPublicKeyFile,
  type KeyPair,
  type PublicKeyFile,
} from './keys.js';

/**
 * Writes `DIR/NAME.key` (0600, exclusive create: an existing key is never
 * overwritten) and `DIR/NAME.pub` beside it.
 */
export async function writeNewKeyPair(dir: string, name = 'swpkg'): Promise<{ keyid: string; privatePath: string; publicPath: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
    throw new SwpkgError('E_USAGE', `key name ${JSON.stringify(name)} is not a plain file name`);
  }
  const key = generateKeyPair();
  const privatePath = join(dir, `${name}.key`);
  const publicPath = join(dir, `${name}.pub`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fromFsError(e, `creating ${dir}`);
  }
  await writeExclusive(privatePath, JSON.stringify(toPrivateKeyFile(key), null, 2) + '\n', 0o600);
  await writeExclusive(publicPath, JSON.stringify(toPublicKeyFile(key), null, 2) + '\n', 0o644);
  return { keyid: key.keyid, privatePath, publicPath };
}

async function writeExclusive(path: string, text: string, mode: number): Promise<void> {
  let fh;
  try {
    // 'wx' so two runs never race onto one key file; the mode is applied at creation, before any byte lands.
    fh = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new SwpkgError('E_USAGE', `${path} already exists; refusing to overwrite a key`, {
        hint: 'choose another --out folder or --name, or delete the old key deliberately',
        details: { path },
      });
    }
    throw fromFsError(e, `creating ${path}`);
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readPrivateKey(path: string): Promise<KeyPair> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, `reading key ${path}`);
  }
  return parsePrivateKeyFile(parseJson(text, path), path);
}

export async function readPublicKey(path: string): Promise<PublicKeyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, `reading key ${path}`);
  }
  return parsePublicKey(parseJson(text, path), path);
}
