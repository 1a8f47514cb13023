import { join } from 'node:path';
import { SwpkgError } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { ensureDir, exists, writeFileAtomic } from './fs-util.js';
import { storeDirName } from './paths.js';
import { cachePath, downloadToCache, resolveForFetch, type Available } from './transaction.js';
import { loadRelease } from './release.js';
import type { GenerationRelease } from './generation.js';
import { withWriterLock } from './writer.js';

export interface FetchResult {
  packages: {
    name: string;
    version: string;
    sha256: string;
    path: string;
    bytes: number;
    resumedFrom: number;
    cached: boolean;
    stored: boolean;
  }[];
  /** `--release`: the verified release and the copy kept in the cache to install from later (`pkg install --release PATH`). */
  release?: GenerationRelease & { saved: string };
}

/**
 * `pkg fetch NAME... | --release X`: downloads and verifies into the cache exactly what the install
 * would, with the same limits and resume, and changes no generation. A later install of the same
 * set finds every file in the cache (hash checked again) and needs no network.
 */
export async function fetchPackages(ctx: PkgContext, o: { names?: string[]; release?: string }): Promise<FetchResult> {
  const names = o.names ?? [];
  if (names.length > 0 === (o.release !== undefined)) {
    throw new SwpkgError('E_USAGE', 'name the packages to fetch, or give --release, not both', {
      hint: 'pkg fetch NAME... | pkg fetch --release FILE|URL',
    });
  }
  const loaded = o.release !== undefined ? await loadRelease(ctx, o.release) : undefined;
  const items: Available[] = loaded ? loaded.available : await resolveForFetch(ctx, names);
  return withWriterLock(ctx, async () => {
    const out: FetchResult['packages'] = [];
    await ensureDir(ctx.paths.cache);
    const transport = await ctx.transport();
    for (const c of items) {
      if (c.source.kind !== 'repo') continue;
      const dest = cachePath(ctx, c);
      // Already extracted into the store (by hash): an install needs nothing more for it (and checks the entry then).
      if (await exists(join(ctx.paths.store, storeDirName(c.sha256, c.name, c.version)))) {
        out.push({ name: c.name, version: c.version, sha256: c.sha256, path: dest, bytes: 0, resumedFrom: 0, cached: true, stored: true });
        continue;
      }
      const r = await downloadToCache(ctx, transport, c, c.source, ctx.reporter);
      out.push({
        name: c.name,
        version: c.version,
        sha256: c.sha256,
        path: dest,
        bytes: r.transferred,
        resumedFrom: r.resumedFrom,
        cached: r.cached,
        stored: false,
      });
    }
    const result: FetchResult = { packages: out.sort((a, b) => (a.name < b.name ? -1 : 1)) };
    if (loaded) {
      const dir = join(ctx.paths.cache, 'releases');
      await ensureDir(dir);
      const saved = join(dir, `${loaded.record.id}-${loaded.record.version}.json`);
      await writeFileAtomic(saved, loaded.bytes);
      result.release = { ...loaded.record, saved };
    }
    return result;
  });
}
