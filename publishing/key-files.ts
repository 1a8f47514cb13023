import { open, readFile, mkdir, link, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import { parseJson } from '../catalog/index.js';
import { generateKeyPair, parsePrivateKeyFile, toPrivateKeyFile, toPublicKeyFile, type KeyPair } from '../catalog/index.js';

/**
 * Writes `DIR/NAME.key` (0600) and `DIR/NAME.pub` as one pair: refused when
 * either exists (a new private key beside an old public key is a pair that
 * does not match), both written to temp files first, then each published
 * with link(), which never replaces an existing file. If the second link
 * fails the first is removed, so no half pair stays behind.
 */
export async function writeNewKeyPair(dir: string, name = 'swpkg'): Promise<{ keyid: string; privatePath: string; publicPath: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
    throw new SwpkgError('E_USAGE', `key name ${JSON.stringify(name)} is not a plain file name`);
  }
  const privatePath = join(dir, `${name}.key`);
  const publicPath = join(dir, `${name}.pub`);
  for (const path of [privatePath, publicPath]) {
    if (
      await stat(path).then(
        () => true,
        () => false,
      )
    )
      throw exists(path);
  }
  const key = generateKeyPair();
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fromFsError(e, `creating ${dir}`);
  }
  const tag = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmpKey = join(dir, `${name}.key${tag}`);
  const tmpPub = join(dir, `${name}.pub${tag}`);
  try {
    await writeExclusive(tmpKey, JSON.stringify(toPrivateKeyFile(key), null, 2) + '\n', 0o600);
    await writeExclusive(tmpPub, JSON.stringify(toPublicKeyFile(key), null, 2) + '\n', 0o644);
    await linkNew(tmpKey, privatePath);
    try {
      await linkNew(tmpPub, publicPath);
    } catch (e) {
      await rm(privatePath, { force: true });
      throw e;
    }
  } finally {
    await rm(tmpKey, { force: true });
    await rm(tmpPub, { force: true });
  }
  return { keyid: key.keyid, privatePath, publicPath };
}

function exists(path: string): SwpkgError {
  return new SwpkgError('E_USAGE', `${path} already exists; refusing to overwrite a key or to write half of a new pair`, {
    hint: 'choose another --out folder or --name, or delete the old key pair (both files) deliberately',
    details: { path },
  });
}

async function linkNew(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists(to);
    throw fromFsError(e, `creating ${to}`);
  }
}

async function writeExclusive(path: string, text: string, mode: number): Promise<void> {
  let fh;
  try {
    // 'wx' so two runs never race onto one file; the mode is applied at creation, before any byte lands.
    fh = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists(path);
    throw fromFsError(e, `creating ${path}`);
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Reads a private key, refusing one that group or others may read (as ssh
 * does): a key others could have copied signs nothing here.
 */
export async function readPrivateKey(path: string): Promise<KeyPair> {
  let text: string;
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) {
      throw new SwpkgError('E_KEY_PERMISSIONS', `${path} is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`, {
        hint: `chmod 600 ${path}`,
        details: { path, mode: st.mode & 0o777 },
      });
    }
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, `reading key ${path}`);
  }
  return parsePrivateKeyFile(parseJson(text, path), path);
}
