import { DEFAULT_CLIENT, silentReporter, type ClientIdentity, type Reporter } from '../catalog/index.js';
import { join } from 'node:path';
import { rootPaths, type RootPaths } from './paths.js';
import { DEFAULT_LIMITS, type TransferLimits } from './download.js';
import type { HttpTransport } from './http-transport.js';

/** Everything a pkg operation needs from outside: where, when, who, and how to reach the network. */
export interface PkgOptions {
  /** The pkg root (`/pkg` in the guest). */
  root: string;
  reporter?: Reporter;
  /** Reference time for expiry checks; default the clock. */
  now?: () => Date;
  /** What this machine is, for catalog and package compatibility. */
  client?: ClientIdentity;
  /** The network; default node:http (see defaultTransport), created on first use. */
  transport?: HttpTransport;
  limits?: Partial<TransferLimits>;
  /** Resume attempts per mirror after a reset or stall. */
  retries?: number;
  /** Package downloads at once (default 4). */
  downloads?: number;
  /** How long a writer waits for the lock (default 30 s). */
  lockTimeoutMs?: number;
  /** The command line, recorded in the lock and in generation.json. */
  command?: string;
  /** Catalog size cap (default 64 MiB). */
  maxCatalogBytes?: number;
  /** System-wide health checks (default: /etc/pkg/health.d for the root /pkg, else ROOT/health.d). */
  healthDir?: string;
  /** Repositories staged by the image, read-only (default: /usr/lib/pkg/repos.d for the root /pkg, else ROOT/repos.d). */
  stagedReposDir?: string;
}

/** Where the image builder writes staged repositories: `lib/pkg/repos.d/` of the base disk, mounted on /usr. */
export const STAGED_REPOS_DIR_IN_GUEST = '/usr/lib/pkg/repos.d';

export interface PkgContext {
  paths: RootPaths;
  reporter: Reporter;
  now(): Date;
  client: ClientIdentity;
  limits: TransferLimits;
  retries: number;
  /** Package downloads at once. */
  downloads: number;
  lockTimeoutMs: number;
  command: string;
  maxCatalogBytes: number;
  /** Folder of system-wide health checks (executables); a missing folder means none. */
  healthDir: string;
  /** Folder of `NAME.json` repositories staged by the image; a missing folder means none. */
  stagedReposDir: string;
  transport(): Promise<HttpTransport>;
  /** Frees network resources; call once when done. */
  close(): Promise<void>;
}

export function createContext(o: PkgOptions): PkgContext {
  let transport: Promise<HttpTransport> | undefined = o.transport ? Promise.resolve(o.transport) : undefined;
  const ownsTransport = o.transport === undefined;
  return {
    paths: rootPaths(o.root),
    reporter: o.reporter ?? silentReporter,
    now: o.now ?? (() => new Date()),
    client: o.client ?? DEFAULT_CLIENT,
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    retries: o.retries ?? 2,
    downloads: o.downloads ?? 4,
    lockTimeoutMs: o.lockTimeoutMs ?? 30_000,
    command: o.command ?? 'pkg',
    maxCatalogBytes: o.maxCatalogBytes ?? 64 * 1024 * 1024,
    // The guest's image owns /etc/pkg; a host root keeps its checks beside its store so two roots never share them.
    healthDir: o.healthDir ?? (o.root === '/pkg' ? '/etc/pkg/health.d' : join(o.root, 'health.d')),
    // The base disk (/usr, read-only in the guest) carries what the image staged; a host root keeps its own beside its db/.
    stagedReposDir: o.stagedReposDir ?? (o.root === '/pkg' ? STAGED_REPOS_DIR_IN_GUEST : join(o.root, 'repos.d')),
    transport() {
      transport ??= import('./http-transport.js').then((m) => m.defaultTransport());
      return transport;
    },
    async close() {
      if (transport && ownsTransport) await (await transport).close?.();
    },
  };
}
