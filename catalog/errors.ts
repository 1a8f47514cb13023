/**
 * The one coded error type shared by swpkg, swport and pkg.
 *
 * The code is the contract: tests assert codes, never wording, and codes are
 * only ever added. Each code maps to one process exit code (DESIGN.md):
 * 0 ok, 1 unexpected, 2 usage, 3 refused by verification, 4 cannot resolve,
 * 5 network or fetch, 6 lock held, 7 store or filesystem, 8 a required
 * health check failed after a change (the change was undone), 9 a port's
 * build or patch failed (the recipe or the toolchain, not the disk: a
 * script tells "fix the recipe" from "free space" by the exit status).
 */

export const ExitCode = {
  OK: 0,
  UNEXPECTED: 1,
  USAGE: 2,
  VERIFICATION: 3,
  RESOLVE: 4,
  NETWORK: 5,
  LOCKED: 6,
  STORE: 7,
  HEALTH: 8,
  BUILD: 9,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Every error code and the exit code it maps to. Only ever add rows. */
export const ERROR_CODES = {
  // usage and input
  E_USAGE: ExitCode.USAGE,
  E_INVALID_MANIFEST: ExitCode.USAGE,
  E_INVALID_VERSION: ExitCode.USAGE,
  E_INVALID_RANGE: ExitCode.USAGE,
  E_INVALID_JSON: ExitCode.USAGE,
  E_NOT_FOUND: ExitCode.USAGE,
  E_INVALID_KEY: ExitCode.USAGE,
  E_INVALID_RECIPE: ExitCode.USAGE,
  E_UNKNOWN_PORT: ExitCode.USAGE,
  E_UNSUPPORTED_TARGET: ExitCode.USAGE,
  E_CONFIRM: ExitCode.USAGE,
  E_KEY_PERMISSIONS: ExitCode.USAGE,
  // verification: refused because something is not what it claims to be
  E_SIGNATURE: ExitCode.VERIFICATION,
  E_UNKNOWN_KEY: ExitCode.VERIFICATION,
  E_THRESHOLD: ExitCode.VERIFICATION,
  E_EXPIRED: ExitCode.VERIFICATION,
  E_ROLLBACK: ExitCode.VERIFICATION,
  E_EQUIVOCATION: ExitCode.VERIFICATION,
  E_INCOMPATIBLE: ExitCode.VERIFICATION,
  E_HASH_MISMATCH: ExitCode.VERIFICATION,
  E_TOO_LARGE: ExitCode.VERIFICATION,
  E_UNSAFE_PATH: ExitCode.VERIFICATION,
  E_CORRUPT: ExitCode.VERIFICATION,
  E_BAD_ROOT: ExitCode.VERIFICATION,
  E_UNTRUSTED: ExitCode.VERIFICATION,
  E_IMMUTABLE: ExitCode.VERIFICATION,
  E_REPRODUCIBILITY: ExitCode.VERIFICATION,
  E_HOSTED_CHECK: ExitCode.VERIFICATION,
  /** A package's manifest (bytes from outside) fails a check; `swpkg pack` input stays E_INVALID_MANIFEST (usage). */
  E_BAD_MANIFEST: ExitCode.VERIFICATION,
  /** A redirect pkg refuses to follow: to another origin than the repository's servers, or to a non-HTTP scheme. */
  E_REDIRECT: ExitCode.VERIFICATION,
  /** Read-only configuration staged in the image (a `repos.d/NAME.json` file) fails a check; `details.path` names the file. */
  E_BAD_CONFIG: ExitCode.VERIFICATION,
  // verification: bytes that are not a well-formed signed document (strict-json.ts, envelope.ts)
  E_MALFORMED: ExitCode.VERIFICATION,
  E_ENCODING: ExitCode.VERIFICATION,
  E_DUPLICATE_KEY: ExitCode.VERIFICATION,
  E_UNSAFE_NUMBER: ExitCode.VERIFICATION,
  E_RESERVED_KEY: ExitCode.VERIFICATION,
  E_UNKNOWN_FIELD: ExitCode.VERIFICATION,
  E_PAYLOAD_TYPE: ExitCode.VERIFICATION,
  E_BAD_CATALOG: ExitCode.VERIFICATION,
  E_WRONG_REPO: ExitCode.VERIFICATION,
  /** A release manifest (issue 15) whose payload fails a structural check. */
  E_BAD_RELEASE: ExitCode.VERIFICATION,
  // resolution
  E_RESOLVE: ExitCode.RESOLVE,
  E_CONFLICT: ExitCode.RESOLVE,
  E_FILE_CONFLICT: ExitCode.RESOLVE,
  E_NEEDED: ExitCode.RESOLVE,
  E_NOT_INSTALLED: ExitCode.RESOLVE,
  // network and fetch
  E_NETWORK: ExitCode.NETWORK,
  E_HTTP: ExitCode.NETWORK,
  E_STALLED: ExitCode.NETWORK,
  E_FETCH: ExitCode.NETWORK,
  /** Redirects that come back to a URL already visited, or more hops than allowed. */
  E_REDIRECT_LOOP: ExitCode.NETWORK,
  /** Response headers larger than the client accepts. */
  E_HEADERS_TOO_LARGE: ExitCode.NETWORK,
  // lock
  E_LOCKED: ExitCode.LOCKED,
  // store and filesystem
  E_STORE: ExitCode.STORE,
  E_DISK_FULL: ExitCode.STORE,
  E_READ_ONLY: ExitCode.STORE,
  // building: a build step, a patch, or its output failed (ports/builder, the image builder's host tools)
  E_BUILD: ExitCode.BUILD,
  E_PATCH: ExitCode.BUILD,
  E_WRONG_ARCH: ExitCode.BUILD,
  E_NO_EMULATOR: ExitCode.BUILD,
  // health: a required check failed after `current` switched; pkg switched back and kept the failed generation
  E_HEALTH_CHECK: ExitCode.HEALTH,
  // a system release document that is not well-formed (issue 14)
  E_BAD_SYSTEM_RELEASE: ExitCode.VERIFICATION,
  // publishing to object storage: another publish moved the pointer first (retry), a target that holds
  // something other than a repository, credentials or a policy the store refuses
  E_PUBLISH_RACE: ExitCode.LOCKED,
  E_NOT_REPOSITORY: ExitCode.USAGE,
  E_ACCESS_DENIED: ExitCode.USAGE,
  // anything else
  E_INTERNAL: ExitCode.UNEXPECTED,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export interface SwpkgErrorInit {
  /** The fix, in words a user can act on. */
  hint?: string;
  /** Facts: path, package, key id, expected vs actual. JSON-serialisable. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class SwpkgError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, init: SwpkgErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'SwpkgError';
    this.code = code;
    this.hint = init.hint;
    this.details = init.details ?? {};
  }

  get exitCode(): ExitCode {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      details: this.details,
    };
  }
}

export function isSwpkgError(e: unknown): e is SwpkgError {
  return e instanceof SwpkgError;
}

/** Maps Node filesystem errors to store codes so disk-full and read-only are told apart. */
export function fromFsError(e: unknown, what: string): SwpkgError {
  if (e instanceof SwpkgError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    return new SwpkgError('E_DISK_FULL', `no space left while ${what}`, {
      hint: 'free space on the filesystem (pkg gc removes unreferenced store entries) and retry',
      details: { errno: err.code, path: err.path },
      cause: e,
    });
  }
  if (err?.code === 'EROFS') {
    return new SwpkgError('E_READ_ONLY', `filesystem is read-only while ${what}`, {
      hint: 'remount the filesystem read-write or choose another --root',
      details: { errno: err.code, path: err.path },
      cause: e,
    });
  }
  if (err?.code === 'ENOENT') {
    return new SwpkgError('E_NOT_FOUND', `${what}: ${err.path ?? 'file'} does not exist`, {
      details: { errno: err.code, path: err.path },
      cause: e,
    });
  }
  return new SwpkgError('E_STORE', `${what}: ${err?.message ?? String(e)}`, {
    details: { errno: err?.code, path: err?.path },
    cause: e,
  });
}

/**
 * Bytes a server sent that fail a check are a verification refusal (exit 3),
 * never a usage error (exit 2): they are not the user's mistake. A failure
 * whose code is usage-class (a JSON syntax error, a schema rule, a version
 * string) is re-coded E_CORRUPT naming the source, with the original code in
 * `details.check`; every other error passes through unchanged.
 */
export function refusedFromServer(e: unknown, source: string): unknown {
  if (!(e instanceof SwpkgError) || ERROR_CODES[e.code] !== ExitCode.USAGE) return e;
  return new SwpkgError('E_CORRUPT', `${source} from the server is malformed: ${e.message}`, {
    hint: 'the server sends a broken or hostile document; use another mirror or tell the publisher',
    details: { ...e.details, source, check: e.code },
    cause: e,
  });
}

/** Wraps anything thrown into a SwpkgError for rendering at the edge. */
export function toSwpkgError(e: unknown): SwpkgError {
  if (e instanceof SwpkgError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new SwpkgError('E_INTERNAL', message, { cause: e, hint: 'this is a bug; please report it with the command you ran' });
}
