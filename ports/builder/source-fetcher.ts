import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { SwpkgError, sha256File, silentReporter, type Reporter } from '../../catalog/index.js';
import { runCommand } from './run-command.js';
import type { RecipeSource } from './recipe.js';

/** One way of obtaining a source's bytes. Bytes are never trusted here: the caller hashes them. */
export interface SourceFetcher {
  readonly kind: 'mirror' | 'debian' | 'url';
  /**
   * Writes candidate bytes to `dest` and returns where they came from, or
   * returns `{skipped}` with the reason this fetcher has nothing to offer.
   */
  fetch(src: RecipeSource, dest: string, reporter: Reporter): Promise<{ origin: string } | { skipped: string; origin?: string }>;
}

export interface FetchAttempt {
  kind: 'cache' | SourceFetcher['kind'];
  origin: string;
  result: 'ok' | 'skipped' | 'hash-mismatch' | 'failed';
  /** The SHA-256 the origin actually served, on a mismatch. */
  sha256?: string;
  reason?: string;
}

export interface FetchedSource {
  sha256: string;
  path: string;
  size: number;
  /** Where the bytes came from this time (`cache` when nothing was downloaded). */
  from: FetchAttempt['kind'];
  origin: string;
  attempts: FetchAttempt[];
}

/** The content-addressed mirror folder: a file named by the hash it must have. */
export class MirrorFolderFetcher implements SourceFetcher {
  readonly kind = 'mirror' as const;
  constructor(private readonly dir: string) {}

  async fetch(src: RecipeSource, dest: string): Promise<{ origin: string } | { skipped: string; origin: string }> {
    const path = join(this.dir, src.sha256);
    const exists = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) return { skipped: `not in mirror folder ${this.dir}`, origin: path };
    await copyFile(path, dest);
    return { origin: path };
  }
}

interface ShowsrcEntry {
  version: string;
  directory: string;
  files: { sha256: string; size: number; name: string }[];
}

/** Parses `apt-cache showsrc` output: one stanza per source version the configured deb-src lists know. */
export function parseShowsrc(text: string): ShowsrcEntry[] {
  const out: ShowsrcEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const lines = stanza.split('\n');
    let version = '';
    let directory = '';
    const files: ShowsrcEntry['files'] = [];
    let inSha = false;
    for (const line of lines) {
      if (/^\S/.test(line)) {
        inSha = line.startsWith('Checksums-Sha256:');
        const m = /^(Version|Directory):\s*(\S+)/.exec(line);
        if (m?.[1] === 'Version') version = m[2]!;
        if (m?.[1] === 'Directory') directory = m[2]!;
      } else if (inSha) {
        const m = /^\s+([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
        if (m) files.push({ sha256: m[1]!, size: Number(m[2]), name: m[3]! });
      }
    }
    if (version && directory) out.push({ version, directory, files });
  }
  return out;
}

/**
 * A Debian source mirror reached through the machine's own apt configuration
 * (deb-src entries; `scripts/setup-apt-sources.sh` adds them). Only the one
 * `.orig` (or native) tarball is fetched: `apt-get source` fails as a whole
 * when any part of a source package is missing (DESIGN.md "Ports").
 */
export class DebianSourceFetcher implements SourceFetcher {
  readonly kind = 'debian' as const;
  private readonly aptGet: string;
  private readonly aptCache: string;
  private readonly aptHelper: string;
  /** The apt programs can be replaced (tests point them at a mirror on 127.0.0.1). */
  constructor(tools: { aptGet?: string; aptCache?: string; aptHelper?: string } = {}) {
    this.aptGet = tools.aptGet ?? 'apt-get';
    this.aptCache = tools.aptCache ?? 'apt-cache';
    this.aptHelper = tools.aptHelper ?? '/usr/lib/apt/apt-helper';
  }

  private async sourceUris(): Promise<string[]> {
    const r = await runCommand(this.aptGet, ['indextargets', '--format', '$(REPO_URI)', 'Created-By: Sources'], {
      timeoutMs: 60_000,
    }).catch(() => undefined);
    if (!r || r.code !== 0) return [];
    return [
      ...new Set(
        r.output
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => /^https?:\/\//.test(l)),
      ),
    ];
  }

  async fetch(src: RecipeSource, dest: string, reporter: Reporter): Promise<{ origin: string } | { skipped: string; origin?: string }> {
    const deb = src.debian;
    if (!deb) return { skipped: 'the recipe names no Debian source package' };
    const origin = `debian:${deb.package}/${deb.file}`;
    const uris = await this.sourceUris();
    if (uris.length === 0) {
      return { skipped: 'apt has no deb-src entries (run scripts/setup-apt-sources.sh)', origin };
    }
    const r = await runCommand(this.aptCache, ['showsrc', '--only-source', deb.package], { timeoutMs: 120_000 }).catch(() => undefined);
    if (!r || r.code !== 0)
      return { skipped: `apt-cache showsrc ${deb.package} failed: ${r?.output.trim().split('\n').pop() ?? 'apt-cache missing'}`, origin };
    const entries = parseShowsrc(r.output);
    const same = entries.filter((e) => e.files.some((f) => f.name === deb.file && f.sha256 === src.sha256));
    if (same.length === 0) {
      const other = entries.flatMap((e) =>
        e.files.filter((f) => f.name === deb.file).map((f) => `${e.version} lists it with sha256 ${f.sha256}`),
      );
      const why =
        other.length > 0
          ? `Debian's ${deb.file} is not the pinned bytes: ${other.join('; ')}`
          : `the pinned version has left the Debian mirror: ${deb.package} now offers ${entries.map((e) => e.version).join(', ') || 'nothing'}, none with ${deb.file}`;
      reporter.warn(`${deb.package}: ${why}`);
      return { skipped: why, origin };
    }
    const failures: string[] = [];
    for (const e of same) {
      for (const base of uris) {
        const uri = `${base.replace(/\/+$/, '')}/${e.directory}/${deb.file}`;
        const got = await runCommand(this.aptHelper, ['download-file', uri, dest, `SHA256:${src.sha256}`], {
          timeoutMs: 30 * 60_000,
        }).catch((err: Error): { code: number; output: string } => ({ code: -1, output: err.message }));
        // apt-helper leaves a mismatching download beside the target as FILE.FAILED.
        await rm(`${dest}.FAILED`, { force: true });
        if (got.code === 0) return { origin: uri };
        const served = /Hashes of received file:\s*\n\s*- SHA256:([0-9a-f]{64})/.exec(got.output)?.[1];
        if (served) {
          throw new SourceHashMismatch(uri, served);
        }
        failures.push(
          `${uri}: ${
            got.output
              .trim()
              .split('\n')
              .filter((l) => l.startsWith('E:'))
              .pop() ?? `exit ${got.code}`
          }`,
        );
        await rm(dest, { force: true });
      }
    }
    return { skipped: `no Debian mirror served it (${failures.join('; ')})`, origin };
  }
}

/** Thrown by a fetcher that saw the served bytes' hash itself (apt-helper checks while downloading). */
export class SourceHashMismatch extends Error {
  constructor(
    readonly origin: string,
    readonly served: string,
  ) {
    super(`${origin} served sha256 ${served}`);
  }
}

/** The upstream URL over HTTP(S), streamed to disk with a size cap and a time limit. */
export class UrlFetcher implements SourceFetcher {
  readonly kind = 'url' as const;
  constructor(
    private readonly timeoutMs = 10 * 60_000,
    private readonly maxBytes = 2 * 1024 * 1024 * 1024,
  ) {}

  async fetch(src: RecipeSource, dest: string, reporter: Reporter): Promise<{ origin: string } | { skipped: string; origin: string }> {
    let res: Response;
    try {
      res = await fetch(src.url, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'follow' });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return { skipped: `unreachable: ${cause?.code ?? cause?.message ?? (e as Error).message}`, origin: src.url };
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return { skipped: `HTTP ${res.status}`, origin: src.url };
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    let n = 0;
    const max = this.maxBytes;
    const label = `fetch ${src.url.split('/').pop() ?? src.url}`;
    const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      n += chunk.length;
      if (n > max) body.destroy(new Error(`more than ${max} bytes`));
      reporter.progress(label, n, Number.isFinite(declared) ? declared : undefined);
    });
    try {
      await pipeline(body, createWriteStream(dest));
    } catch (e) {
      await rm(dest, { force: true });
      return { skipped: `download failed: ${(e as Error).message}`, origin: src.url };
    }
    return { origin: src.url };
  }
}

export interface FetchOptions {
  cacheDir: string;
  mirrorDir: string;
  reporter?: Reporter;
  /** Replaces the default chain (mirror folder → Debian → upstream URL); tests use it. */
  fetchers?: SourceFetcher[];
}

export function defaultFetchers(mirrorDir: string): SourceFetcher[] {
  return [new MirrorFolderFetcher(mirrorDir), new DebianSourceFetcher(), new UrlFetcher()];
}

/**
 * Returns a verified copy of `src` in `cacheDir/sources/<sha256>`. Order:
 * the cache, then each fetcher. Bytes land in a temp file, are hashed, and
 * move into the cache only when they match the pin; a mismatch deletes them
 * and is reported with the origin and the hash it served. Nothing found is
 * E_FETCH; only wrong bytes found is E_HASH_MISMATCH; both list every attempt.
 */
export async function fetchSource(src: RecipeSource, o: FetchOptions): Promise<FetchedSource> {
  const reporter = o.reporter ?? silentReporter;
  const dir = join(o.cacheDir, 'sources');
  await mkdir(dir, { recursive: true });
  const final = join(dir, src.sha256);
  const attempts: FetchAttempt[] = [];

  const cached = await stat(final).then(
    (s) => s.isFile(),
    () => false,
  );
  if (cached) {
    // Anything found on disk is verified before it is trusted.
    const { sha256, size } = await sha256File(final);
    if (sha256 === src.sha256)
      return { sha256, path: final, size, from: 'cache', origin: final, attempts: [{ kind: 'cache', origin: final, result: 'ok' }] };
    reporter.warn(`cached source ${final} hashes to ${sha256}; deleting it and fetching again`);
    await rm(final, { force: true });
    attempts.push({ kind: 'cache', origin: final, result: 'hash-mismatch', sha256 });
  }

  for (const fetcher of o.fetchers ?? defaultFetchers(o.mirrorDir)) {
    const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      let got: Awaited<ReturnType<SourceFetcher['fetch']>>;
      try {
        got = await fetcher.fetch(src, tmp, reporter);
      } catch (e) {
        if (e instanceof SourceHashMismatch) {
          reporter.warn(`${e.origin} served sha256 ${e.served}, but the recipe pins ${src.sha256}; download deleted`);
          attempts.push({ kind: fetcher.kind, origin: e.origin, result: 'hash-mismatch', sha256: e.served });
          continue;
        }
        attempts.push({ kind: fetcher.kind, origin: src.url, result: 'failed', reason: (e as Error).message });
        continue;
      }
      if ('skipped' in got) {
        attempts.push({ kind: fetcher.kind, origin: got.origin ?? '-', result: 'skipped', reason: got.skipped });
        continue;
      }
      const { sha256, size } = await sha256File(tmp);
      if (sha256 !== src.sha256) {
        reporter.warn(`${got.origin} served sha256 ${sha256}, but the recipe pins ${src.sha256}; download deleted`);
        attempts.push({ kind: fetcher.kind, origin: got.origin, result: 'hash-mismatch', sha256 });
        continue;
      }
      await rename(tmp, final);
      attempts.push({ kind: fetcher.kind, origin: got.origin, result: 'ok' });
      return { sha256, path: final, size, from: fetcher.kind, origin: got.origin, attempts };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  const mismatches = attempts.filter((a) => a.result === 'hash-mismatch');
  const file = src.debian?.file ?? src.url.split('/').pop() ?? src.url;
  if (mismatches.length > 0) {
    throw new SwpkgError(
      'E_HASH_MISMATCH',
      `no origin served ${file} with the pinned sha256 ${src.sha256}: ${mismatches.map((m) => `${m.origin} served ${m.sha256}`).join('; ')}`,
      {
        hint: 'the pinned bytes changed or a mirror is corrupt; check the recipe pin against the upstream release before changing it',
        details: { expected: src.sha256, attempts },
      },
    );
  }
  throw new SwpkgError('E_FETCH', `cannot fetch ${file} (sha256 ${src.sha256}) from any origin`, {
    hint: 'put the file into the source mirror folder (SWPORT_SOURCE_MIRROR, named by its sha256), add deb-src entries (scripts/setup-apt-sources.sh), or restore network access to the upstream URL',
    details: { expected: src.sha256, attempts },
  });
}

/** Fetches every source of a recipe, in order. */
export async function fetchSources(sources: RecipeSource[], o: FetchOptions): Promise<FetchedSource[]> {
  const out: FetchedSource[] = [];
  for (const s of sources) out.push(await fetchSource(s, o));
  return out;
}
