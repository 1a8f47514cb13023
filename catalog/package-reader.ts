import {
  createReadStream,
  fstatSync,
  openSync,
  readSync,
  writeSync,
  closeSync,
  fsyncSync,
  fchmodSync,
  mkdirSync,
  symlinkSync,
  chmodSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { constants as zlibConstants, createGunzip, createZstdDecompress, type Gunzip, type ZstdDecompress } from 'node:zlib';
import { join, dirname } from 'node:path';
import { corruptPackage as corrupt, TarReader, type TarReadHeader, type TarReadSink } from './tar-reader.js';
import { ERROR_CODES, ExitCode, SwpkgError, fromFsError } from './errors.js';
import { MANIFEST_LIMITS, validateManifest, type FileEntry, type PackageManifest } from './manifest.js';
import { verifyBytes, type PublicKeyFile } from './keys.js';
import { pae, parseDetachedSignature, type DetachedSignature } from './envelope.js';
import { parseStrictJson } from './strict-json.js';
import { MANIFEST_ENTRY, SIGNATURE_ENTRY } from './package-writer.js';

const MAX_SIGNATURE_BYTES = 64 * 1024;
/**
 * The largest zstd window a package may ask for (2^23 = 8 MiB). The decoder holds one window:
 * a frame that declares more (a hostile one could ask for 2 GiB) is refused before any memory
 * is taken for it. The writer's level 3 streams use 2^21.
 */
const ZSTD_WINDOW_LOG_MAX = 23;

/** A package's compression, told by its first bytes: `swpkg pack` writes zstd; gzip, what it wrote before, is still read. */
type PackageCompression = 'gzip' | 'zstd';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** What the first bytes of a file say it is; undefined when neither gzip nor zstd. */
function compressionOf(head: Uint8Array): PackageCompression | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= ZSTD_MAGIC.length && b.subarray(0, ZSTD_MAGIC.length).equals(ZSTD_MAGIC)) return 'zstd';
  if (b.length >= GZIP_MAGIC.length && b.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) return 'gzip';
  return undefined;
}

/** Opens a package and reads its first bytes to pick the decompressor: the descriptor is the stream's from then on. */
function openPackage(path: string): { fd: number; compression: PackageCompression; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fromFsError(e, `reading ${path}`);
  }
  try {
    const head = Buffer.alloc(ZSTD_MAGIC.length);
    const n = readSync(fd, head, 0, head.length, 0);
    const compression = compressionOf(head.subarray(0, n));
    if (compression === undefined) throw corrupt(path, 'neither zstd nor gzip');
    return { fd, compression, size: fstatSync(fd).size };
  } catch (e) {
    closeSync(fd);
    throw e instanceof SwpkgError ? e : fromFsError(e, `reading ${path}`);
  }
}

// 256 KiB output chunks: the default 16 KiB costs one main-thread round trip per chunk (bench/catalog profile).
function decompressor(compression: PackageCompression): Gunzip | ZstdDecompress {
  if (compression === 'gzip') return createGunzip({ chunkSize: 256 * 1024 });
  return createZstdDecompress({ chunkSize: 256 * 1024, params: { [zlibConstants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX } });
}

export interface PackageHeader {
  manifest: PackageManifest;
  /** The exact bytes of `.SWPKG/manifest.json`: what a package signature covers. */
  manifestBytes: Uint8Array;
  signature?: DetachedSignature;
}

export interface VerifiedPackage extends PackageHeader {
  sha256: string;
  size: number;
}

export interface ReadOptions {
  /** Refuse the archive beyond this many compressed bytes (E_TOO_LARGE). */
  maxBytes?: number;
  /** Refuse unless the whole archive hashes to this (E_HASH_MISMATCH). */
  expectedSha256?: string;
  /**
   * The installed size the signed catalog declares. A manifest that
   * declares another size is refused before any payload entry is read
   * (more: E_TOO_LARGE; less: E_CORRUPT), and the payload stops at it.
   */
  installedSize?: number;
  /** Told the compressed bytes read so far after each read, for progress in bytes (a big package moves the bar too). */
  onBytes?: (compressedBytes: number) => void;
}

export interface ExtractOptions extends ReadOptions {
  /** fsync each file before returning, so a rename of destDir afterwards survives power loss. Default true. */
  fsync?: boolean;
  /**
   * Files get their manifest mode without the write bits (a read-only store), set on the open
   * descriptor before it is closed: one fchmod instead of a chmod by path now and another later.
   * Folders are left 0755 (whatever the manifest says) so entries can still be created in them:
   * the caller sets each folder's final mode once when it seals the tree, not a second chmod here.
   */
  readOnlyFiles?: boolean;
}

/**
 * A manifest inside an archive came from outside: a field that fails a
 * check is a verification refusal (exit 3), not the usage error the same
 * check means for `swpkg pack`'s own input. Codes that already say
 * "refused" (E_UNSAFE_PATH, a strict-parser code) pass through.
 */
function outsideManifest(path: string, e: unknown): unknown {
  if (!(e instanceof SwpkgError) || ERROR_CODES[e.code] !== ExitCode.USAGE) return e;
  return new SwpkgError('E_BAD_MANIFEST', `${path}: ${e.message}`, {
    hint: 'the package is malformed or hostile; do not install it, and tell whoever published it',
    details: { path, ...e.details, check: e.code },
    cause: e,
  });
}

function installedSizeMismatch(path: string, m: PackageManifest, declared: number): SwpkgError {
  const larger = m.installedSize > declared;
  return new SwpkgError(
    larger ? 'E_TOO_LARGE' : 'E_CORRUPT',
    `${path}: ${m.name}@${m.version} unpacks to ${m.installedSize} bytes, the signed catalog says ${declared}`,
    {
      hint: 'the repository catalog and the package disagree (a hostile or broken package); tell the publisher',
      details: { path, declared, manifest: m.installedSize },
    },
  );
}

/** What happens to each verified payload entry: nothing (verify) or written below a folder (extract). */
interface Sink {
  dir(e: FileEntry): void;
  symlink(e: FileEntry): void;
  fileStart(e: FileEntry): void;
  fileData(chunk: Buffer): void;
  fileEnd(e: FileEntry): void;
  abort(): void;
}

const nullSink: Sink = { dir() {}, symlink() {}, fileStart() {}, fileData() {}, fileEnd() {}, abort() {} };

/** What the current entry's data and end go to; unset between entries and for entries without data. */
interface EntryConsumer {
  data(chunk: Buffer): void;
  end(): void;
}

/**
 * The tar side of streamPackage, fed by the TarReader. Any throw from here stops the read: the
 * first failure recorded wins, and a header-only read stops once it has what it needs. Entries
 * are checked in order against the manifest read from the first one; only content that matches
 * it reaches the sink.
 */
class EntryChecker implements TarReadSink {
  failure: unknown;
  manifest: PackageManifest | undefined;
  manifestBytes: Uint8Array | undefined;
  signature: DetachedSignature | undefined;
  /** A header-only read has the manifest and signature: the rest is not read. */
  done = false;
  /** Manifest files matched so far, so also the index of the next one expected. */
  filesMatched = 0;
  private entriesSeen = 0;
  private consumer: EntryConsumer | undefined;
  // Payload bytes handed to the sink, against the smaller of the catalog's and the manifest's installed size.
  private unpacked = 0;
  private unpackLimit = Infinity;

  constructor(
    private readonly path: string,
    private readonly opts: ReadOptions,
    private readonly sink: Sink,
    private readonly headerOnly: boolean,
  ) {}

  get stopped(): boolean {
    return this.failure !== undefined || this.done;
  }

  fail(e: unknown): void {
    if (this.failure === undefined) this.failure = e;
  }

  entry(h: TarReadHeader): void {
    const entryPath = h.type === 'dir' && h.path.endsWith('/') ? h.path.slice(0, -1) : h.path;
    const position = this.entriesSeen++;
    if (position === 0) this.readManifest(h, entryPath);
    else if (this.manifest === undefined) throw corrupt(this.path, 'manifest unreadable');
    else if (position === 1 && entryPath === SIGNATURE_ENTRY) this.readSignature(h);
    else if (this.headerOnly) this.done = true;
    else this.checkPayloadEntry(h, entryPath, this.manifest);
  }

  data(chunk: Buffer): void {
    this.consumer?.data(chunk);
  }

  entryEnd(): void {
    const c = this.consumer;
    this.consumer = undefined;
    c?.end();
  }

  private readManifest(h: TarReadHeader, entryPath: string): void {
    const path = this.path;
    if (entryPath !== MANIFEST_ENTRY || h.type !== 'file')
      throw corrupt(path, `first entry must be ${MANIFEST_ENTRY}, found ${JSON.stringify(entryPath)}`);
    if (h.size > MANIFEST_LIMITS.manifestBytes) {
      throw new SwpkgError('E_TOO_LARGE', `${path}: the manifest is ${h.size} bytes, more than ${MANIFEST_LIMITS.manifestBytes}`, {
        hint: 'the package is malformed or hostile; do not install it',
        details: { path, limit: MANIFEST_LIMITS.manifestBytes, size: h.size },
      });
    }
    this.collect((buf) => {
      let manifest: PackageManifest;
      try {
        manifest = validateManifest(parseStrictJson(buf, `${path}: ${MANIFEST_ENTRY}`));
      } catch (e) {
        throw outsideManifest(path, e);
      }
      this.manifest = manifest;
      this.manifestBytes = buf;
      this.unpackLimit = Math.min(manifest.installedSize, this.opts.installedSize ?? Infinity);
      if (this.opts.installedSize !== undefined && manifest.installedSize !== this.opts.installedSize) {
        throw installedSizeMismatch(path, manifest, this.opts.installedSize);
      }
    });
  }

  private readSignature(h: TarReadHeader): void {
    if (h.type !== 'file' || h.size > MAX_SIGNATURE_BYTES) throw corrupt(this.path, 'signature entry is malformed');
    this.collect((buf) => {
      this.signature = parseDetachedSignature(buf, `${this.path}: ${SIGNATURE_ENTRY}`);
      if (this.headerOnly) this.done = true;
    });
  }

  /** A payload entry must be the next file the manifest lists, with its type, mode, target and size. */
  private checkPayloadEntry(h: TarReadHeader, entryPath: string, manifest: PackageManifest): void {
    const path = this.path;
    const expected = manifest.files[this.filesMatched++];
    if (h.type === 'other') {
      throw new SwpkgError(
        'E_UNSAFE_PATH',
        `${path}: entry ${JSON.stringify(entryPath)} is a ${tarTypeName(h.typeflag)}; only files, folders and symlinks are allowed`,
        {
          details: { path, entry: entryPath, type: tarTypeName(h.typeflag) },
        },
      );
    }
    if (!expected || expected.path !== entryPath) {
      throw new SwpkgError(
        'E_UNSAFE_PATH',
        `${path}: entry ${JSON.stringify(entryPath)} is not the next file the manifest lists (${expected ? JSON.stringify(expected.path) : 'none'})`,
        {
          details: { path, entry: entryPath, expected: expected?.path },
        },
      );
    }
    if (expected.type !== h.type || (h.mode & 0o7777) !== expected.mode) {
      throw new SwpkgError('E_HASH_MISMATCH', `${path}: ${entryPath} differs from its manifest entry (type or mode)`, {
        details: {
          path,
          entry: entryPath,
          expectedType: expected.type,
          actualType: h.type,
          expectedMode: expected.mode,
          actualMode: h.mode,
        },
      });
    }
    if (h.type === 'dir') {
      this.sink.dir(expected);
    } else if (h.type === 'symlink') {
      if (h.linkpath !== expected.target) {
        throw new SwpkgError('E_HASH_MISMATCH', `${path}: symlink ${entryPath} points elsewhere than its manifest says`, {
          details: { path, entry: entryPath, expected: expected.target, actual: h.linkpath },
        });
      }
      this.sink.symlink(expected);
    } else {
      if (h.size !== expected.size) {
        throw new SwpkgError('E_HASH_MISMATCH', `${path}: ${entryPath} is ${h.size} bytes, the manifest says ${expected.size}`, {
          details: { path, entry: entryPath, expected: expected.size, actual: h.size },
        });
      }
      this.streamFile(expected);
    }
  }

  /** Hashes a regular file's bytes as they pass to the sink; fileEnd only once the hash matches. */
  private streamFile(expected: FileEntry): void {
    const path = this.path;
    this.sink.fileStart(expected);
    const hash = createHash('sha256');
    let n = 0;
    this.consumer = {
      data: (chunk) => {
        this.unpacked += chunk.length;
        if (this.unpacked > this.unpackLimit) {
          throw new SwpkgError('E_TOO_LARGE', `${path}: the payload unpacks to more than the ${this.unpackLimit} bytes declared`, {
            details: { path, entry: expected.path, limit: this.unpackLimit },
          });
        }
        hash.update(chunk);
        n += chunk.length;
        this.sink.fileData(chunk);
      },
      end: () => {
        const actual = hash.digest('hex');
        if (actual !== expected.sha256 || n !== expected.size) {
          throw new SwpkgError('E_HASH_MISMATCH', `${path}: ${expected.path} does not match its SHA-256 in the manifest`, {
            details: { path, entry: expected.path, expected: expected.sha256, actual },
          });
        }
        this.sink.fileEnd(expected);
      },
    };
  }

  /** Buffers a small entry (manifest, signature: both size-checked before this) and hands it on. */
  private collect(then: (buf: Buffer) => void): void {
    const chunks: Buffer[] = [];
    this.consumer = {
      // The reader's slices are views of a decompressed chunk the decompressor never writes again: kept without a copy.
      data: (c) => chunks.push(c),
      end: () => then(Buffer.concat(chunks)),
    };
  }
}

/** The name of a tar type a package may not hold, for the refusal. */
function tarTypeName(typeflag: string): string {
  switch (typeflag) {
    case '1':
      return 'Link';
    case '3':
      return 'CharacterDevice';
    case '4':
      return 'BlockDevice';
    case '6':
      return 'FIFO';
    case '7':
      return 'ContiguousFile';
    default:
      return `tar type ${JSON.stringify(typeflag)}`;
  }
}

/**
 * Streams an archive once: hashes the compressed bytes, checks every entry
 * against the manifest (order, type, mode, size, SHA-256, link target) and
 * hands verified data to the sink. Throws on the first discrepancy; the
 * caller decides what a partial sink output means (extract deletes it).
 */
async function streamPackage(path: string, opts: ReadOptions, sink: Sink, headerOnly: boolean): Promise<VerifiedPackage> {
  const checker = new EntryChecker(path, opts, sink, headerOnly);
  const tar = new TarReader(path, checker);

  const pkgHash = createHash('sha256');
  let compressed = 0;
  const { fd, compression, size } = openPackage(path);
  // With `end` set, each read buffer is sized to what is left: without it every small package cost
  // a 1 MiB buffer, a copy into one of the size read, and another 1 MiB buffer for the read at EOF.
  const input = createReadStream(path, { fd, start: 0, end: Math.max(size, 1) - 1, highWaterMark: 1 << 20 });
  const inflate = decompressor(compression);
  // Set once reading stops: a chunk already in flight after destroy() must not reach the finished hash
  // (a header-only read of a package larger than one read chunk used to crash with ERR_CRYPTO_HASH_FINALIZED).
  let stopped = false;
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  const stop = (failure?: unknown): void => {
    if (failure !== undefined) checker.fail(failure);
    if (stopped) return;
    stopped = true;
    input.unpipe(inflate);
    input.destroy();
    inflate.destroy();
    settle();
  };
  input.on('error', (e) => stop(fromFsError(e, `reading ${path}`)));
  inflate.on('error', (e) => stop(corrupt(path, `${compression}: ${e.message}`, e)));
  input.on('data', (chunk) => {
    if (stopped) return;
    const buf = chunk as Buffer;
    compressed += buf.length;
    pkgHash.update(buf);
    opts.onBytes?.(compressed);
    if (opts.maxBytes !== undefined && compressed > opts.maxBytes) {
      stop(
        new SwpkgError('E_TOO_LARGE', `${path} is larger than the ${opts.maxBytes} bytes allowed`, {
          details: { path, limit: opts.maxBytes },
        }),
      );
    }
  });
  // Each decompressed chunk is parsed, checked and written synchronously before the next one is
  // emitted, so nothing queues up: no per-chunk promise, and memory stays one chunk deep.
  inflate.on('data', (chunk: Buffer) => {
    if (stopped) return;
    try {
      tar.write(chunk);
    } catch (e) {
      stop(e);
      return;
    }
    if (checker.stopped) stop();
  });
  inflate.on('end', () => {
    if (stopped) return;
    try {
      tar.end();
    } catch (e) {
      checker.fail(e);
    }
    stop();
  });
  input.pipe(inflate);
  await settled;
  const { failure, manifest, manifestBytes, signature } = checker;
  if (failure !== undefined) {
    sink.abort();
    throw failure instanceof SwpkgError ? failure : corrupt(path, String((failure as Error)?.message ?? failure), failure);
  }
  if (manifest === undefined || manifestBytes === undefined) throw corrupt(path, 'archive ended before its manifest');
  if (!headerOnly) {
    if (checker.filesMatched !== manifest.files.length) {
      throw corrupt(path, `archive ended after ${checker.filesMatched} of ${manifest.files.length} files the manifest lists`);
    }
  }
  const result: VerifiedPackage = { manifest, manifestBytes, sha256: pkgHash.digest('hex'), size: compressed };
  if (signature !== undefined) result.signature = signature;
  if (!headerOnly && opts.expectedSha256 !== undefined && result.sha256 !== opts.expectedSha256) {
    throw new SwpkgError('E_HASH_MISMATCH', `${path} has SHA-256 ${result.sha256}, expected ${opts.expectedSha256}`, {
      details: { path, expected: opts.expectedSha256, actual: result.sha256 },
    });
  }
  return result;
}

/** Reads only the manifest and signature entries; the payload is not checked. */
export async function readPackageHeader(path: string): Promise<PackageHeader> {
  const r = await streamPackage(path, {}, nullSink, true);
  const out: PackageHeader = { manifest: r.manifest, manifestBytes: r.manifestBytes };
  if (r.signature !== undefined) out.signature = r.signature;
  return out;
}

/** Reads the whole archive and checks every entry against the manifest, without writing anything. */
export async function verifyPackageFile(path: string, opts: ReadOptions = {}): Promise<VerifiedPackage> {
  return streamPackage(path, opts, nullSink, false);
}

/**
 * Extracts into `destDir`, which must not exist. Every byte is checked while
 * it streams; on any failure the partial folder is removed, so a caller that
 * renames destDir into place afterwards only ever publishes a verified tree.
 */
export async function extractPackage(path: string, destDir: string, opts: ExtractOptions = {}): Promise<VerifiedPackage> {
  try {
    // Synchronous, as every write of the extraction is: each fs/promises call is a hand-off to libuv's thread pool.
    // The parent usually exists (a store): make it only when the first mkdir says it is missing.
    try {
      mkdirSync(destDir, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(dirname(destDir), { recursive: true });
      mkdirSync(destDir, { mode: 0o755 });
    }
  } catch (e) {
    throw fromFsError(e, `creating ${destDir}`);
  }
  const fsync = opts.fsync ?? true;
  const readOnly = opts.readOnlyFiles === true;
  const fileMask = readOnly ? 0o7555 : 0o7777;
  let fd: number | undefined;
  const sink: Sink = {
    dir(e) {
      mkdirSync(join(destDir, e.path), { mode: 0o755 });
      if (!readOnly) chmodSync(join(destDir, e.path), e.mode);
    },
    symlink(e) {
      symlinkSync(e.target!, join(destDir, e.path));
    },
    fileStart(e) {
      // 'wx': an entry can never write through something already there.
      fd = openSync(join(destDir, e.path), 'wx', 0o600);
    },
    fileData(chunk) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd!, chunk, off);
    },
    fileEnd(e) {
      // On the descriptor: exact whatever the umask, and no second walk of the path.
      fchmodSync(fd!, e.mode & fileMask);
      if (fsync) fsyncSync(fd!);
      closeSync(fd!);
      fd = undefined;
    },
    abort() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
  try {
    return await streamPackage(path, opts, sink, false);
  } catch (e) {
    await rm(destDir, { recursive: true, force: true });
    throw e instanceof SwpkgError ? e : fromFsError(e, `extracting ${path}`);
  }
}

/**
 * Checks a package's own signature against keys the caller trusts: a DSSE
 * signature over PAE(manifest type, the manifest entry's exact bytes); the
 * manifest hashes every file, so this signs every byte. One valid signature
 * by a trusted key suffices; a trusted key's signature that fails is
 * tampering and refused even if another verifies.
 */
export function verifyPackageSignature(header: PackageHeader, trustedKeys: PublicKeyFile[]): { keyid: string } {
  const env = header.signature;
  const id = `${header.manifest.name}@${header.manifest.version}`;
  if (!env || env.signatures.length === 0) {
    throw new SwpkgError('E_UNTRUSTED', `${id} is not signed`, {
      hint: 'install it from a repository, sign it with `swpkg pack --key`, or pass --allow-untrusted if you trust this file',
    });
  }
  const message = pae(env.payloadType, header.manifestBytes);
  let good: string | undefined;
  for (const sig of env.signatures) {
    const key = trustedKeys.find((k) => k.keyid === sig.keyid);
    if (!key) continue;
    if (!verifyBytes(message, sig.sig, key.public)) {
      throw new SwpkgError('E_SIGNATURE', `the signature of ${id} does not verify`, { details: { keyid: sig.keyid } });
    }
    good ??= sig.keyid;
  }
  if (good === undefined) {
    const ids = env.signatures.map((s) => s.keyid);
    throw new SwpkgError('E_UNKNOWN_KEY', `${id} is signed by key ${ids.join(', ')}, which is not trusted`, {
      hint: 'trust the key with `pkg key add FILE.pub`, or add the repository whose catalog key signed it',
      details: { keyid: ids[0], keyids: ids },
    });
  }
  return { keyid: good };
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
