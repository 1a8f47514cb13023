import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SwpkgError, readPublicKey, parsePublicKey, parseJson, type PublicKeyFile } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { listDir, readTextIfExists, writeFileAtomic } from './fs-util.js';
import { readRepos, localTrustStart } from './repos.js';
import { withWriterLock } from './writer.js';

/** A key that may sign local `.swpkg` files, and why it is trusted. */
export interface TrustedKey extends PublicKeyFile {
  /** `pkg key add`, or `repo NAME` for a catalog key of that repository's current root. */
  source: string;
}

/**
 * Keys a local `pkg install ./FILE.swpkg` accepts: the catalog keys of each
 * configured repository's current (verified) root, and keys added with
 * `pkg key add`. Nothing else, whatever the file claims.
 */
export async function trustedKeys(ctx: PkgContext): Promise<TrustedKey[]> {
  const out: TrustedKey[] = [];
  for (const r of await readRepos(ctx)) {
    // A staged repository counts from its staged root document; one pinned by fingerprint only after `pkg update` fetched it.
    const root = (await localTrustStart(ctx, r).catch(() => undefined))?.root;
    if (!root) continue;
    for (const id of root.signed.roles.catalog.keyids) {
      const k = root.signed.keys[id];
      if (k) out.push({ ...parsePublicKey(k, `root of ${r.name}`), source: `repo ${r.name}` });
    }
  }
  for (const n of (await listDir(ctx.paths.keysDir)).sort()) {
    if (!n.endsWith('.pub') || n.startsWith('.')) continue;
    const text = await readTextIfExists(join(ctx.paths.keysDir, n));
    if (text === undefined) continue;
    const k = parsePublicKey(parseJson(text, n), join(ctx.paths.keysDir, n));
    out.push({ ...k, source: 'pkg key add' });
  }
  return out;
}

/** `pkg key add FILE`: trusts a public key (swpkg `.pub`) for local package installs. */
export async function addTrustedKey(ctx: PkgContext, file: string): Promise<TrustedKey> {
  const k = await readPublicKey(file);
  return withWriterLock(ctx, async () => {
    await writeFileAtomic(
      join(ctx.paths.keysDir, `${k.keyid}.pub`),
      JSON.stringify({ type: k.type, public: k.public, keyid: k.keyid }, null, 2) + '\n',
    );
    return { ...k, source: 'pkg key add' };
  });
}

export async function removeTrustedKey(ctx: PkgContext, keyid: string): Promise<{ removed: string }> {
  if (!/^[0-9a-f]{64}$/.test(keyid))
    throw new SwpkgError('E_USAGE', 'KEYID must be 64 hex digits (see `pkg key list`)', { details: { keyid } });
  return withWriterLock(ctx, async () => {
    const path = join(ctx.paths.keysDir, `${keyid}.pub`);
    if ((await readTextIfExists(path)) === undefined) {
      throw new SwpkgError('E_NOT_FOUND', `key ${keyid} was not added with \`pkg key add\``, {
        hint: 'catalog keys of a repository go away with `pkg repo remove NAME`',
        details: { keyid },
      });
    }
    await rm(path, { force: true });
    return { removed: keyid };
  });
}
