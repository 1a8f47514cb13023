import { join } from 'node:path';

/**
 * Where everything lives under a pkg root (`/pkg` in the guest, `--root DIR`
 * on the host). One place, so a layout change is one edit.
 */
export interface RootPaths {
  root: string;
  /** `store/<sha256>-NAME-VERSION/`: extracted, verified, read-only. */
  store: string;
  /** `generations/N/`: generation.json plus a tree of relative links into the store. */
  generations: string;
  /** `current -> generations/N`, a relative symlink switched by rename. */
  current: string;
  /** Staging name for the next `current`; a leftover is removed by the next writer. */
  currentNew: string;
  db: string;
  reposFile: string;
  rootsDir: string;
  catalogsDir: string;
  keysDir: string;
  /** `db/health/N.json`: what the health checks of generation N found (or that they were skipped or interrupted). */
  healthRecords: string;
  cache: string;
  lock: string;
}

export function rootPaths(root: string): RootPaths {
  const db = join(root, 'db');
  return {
    root,
    store: join(root, 'store'),
    generations: join(root, 'generations'),
    current: join(root, 'current'),
    currentNew: join(root, 'current.new'),
    db,
    reposFile: join(db, 'repos.json'),
    rootsDir: join(db, 'roots'),
    catalogsDir: join(db, 'catalogs'),
    keysDir: join(db, 'keys'),
    healthRecords: join(db, 'health'),
    cache: join(root, 'cache'),
    lock: join(root, 'lock'),
  };
}

/** A store folder's name: SHA-256 of the `.swpkg` bytes, then name and version for people. */
export function storeDirName(sha256: string, name: string, version: string): string {
  return `${sha256}-${name}-${version}`;
}

/** Prefix of every staging entry (store, generations); the next writer removes them. */
export const TMP_PREFIX = '.tmp-';
/** Prefix of entries being deleted (gc, replaced corrupt store entries). */
export const TRASH_PREFIX = '.trash-';
