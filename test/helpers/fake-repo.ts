import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  generateKeyPair,
  packPackage,
  rootFingerprint,
  parseRoot,
  toPublicKeyFile,
  type KeyPair,
  type PackageMeta,
  type RootDocument,
  type HealthCheck,
} from '../../catalog/index.js';
import { packageFileName, publishRepository, rotatePublishedRoot } from '../../publishing/index.js';
import type { RequestInfo, ResponseEntry, ResponseTable, ResponseSpec } from './http-table-server.js';

/** A package to build: payload files by relative path (string or bytes), or `{ symlink }`. */
export interface FakePackage {
  name: string;
  version: string;
  files?: Record<string, string | Uint8Array | { symlink: string }>;
  depends?: Record<string, string>;
  provides?: string[];
  conflicts?: string[];
  arch?: PackageMeta['arch'];
  abi?: string;
  summary?: string;
  /** Sign the package itself with this key (for local-file installs). */
  signWith?: KeyPair;
  /** Health checks (commands under bin/ or libexec/ are packed executable). */
  health?: HealthCheck[];
}

export interface BuiltPackage {
  name: string;
  version: string;
  /** The `.swpkg` in the build folder (outside the web root). */
  file: string;
  /** Path inside the web root, e.g. `packages/a-1.0.0-x86_64.SHA256.swpkg`. */
  path: string;
  sha256: string;
  size: number;
}

export interface FakeRepo {
  name: string;
  /** The published web root. */
  dir: string;
  /** Where packages are built before publishing. */
  buildDir: string;
  /** Catalog key (also the root key unless rotated). */
  key: KeyPair;
  rootKey: KeyPair;
  root: RootDocument;
  fingerprint: string;
  /** A copy of repo-root.pub outside the web root, as a user would download it. */
  rootFile: string;
  packages: Map<string, BuiltPackage>;
  catalogVersion: number;
  /** path → response; rebuilt from the web root by `refresh()`. Tests may override entries. */
  table: ResponseTable;
  /** Builds more packages (optional) and publishes a new catalog version. */
  publish(more?: FakePackage[], o?: { expiresIn?: number; now?: Date }): Promise<void>;
  /** Removes a package from the published set (next publish). */
  unpublish(name: string, version: string): Promise<void>;
  /** Root rotation: new root keys, published as roots/N+1.json. */
  rotateRoot(newRootKey?: KeyPair): Promise<void>;
  /** Reloads every file of the web root into `table` (overrides are dropped). */
  refresh(): Promise<void>;
  /** The bytes currently published at `path`. */
  bytes(path: string): Promise<Buffer>;
  cleanup(): Promise<void>;
}

const made: string[] = [];

export async function buildPackage(buildDir: string, p: FakePackage): Promise<BuiltPackage> {
  const src = join(buildDir, 'src', `${p.name}-${p.version}`);
  await rm(src, { recursive: true, force: true });
  await mkdir(src, { recursive: true });
  const files = p.files ?? { [`share/${p.name}/VERSION`]: `${p.name} ${p.version}\n` };
  for (const [rel, content] of Object.entries(files)) {
    const abs = join(src, rel);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof content === 'object' && 'symlink' in content) await symlink(content.symlink, abs);
    else await writeFile(abs, content, { mode: rel.startsWith('bin/') || rel.startsWith('libexec/') ? 0o755 : 0o644 });
  }
  const meta: PackageMeta = {
    name: p.name,
    version: p.version,
    arch: p.arch ?? 'x86_64',
    abi: p.abi ?? 'linux-musl-static',
    summary: p.summary ?? `the ${p.name} test package`,
    license: 'MIT',
    depends: p.depends ?? {},
    provides: p.provides ?? [],
    conflicts: p.conflicts ?? [],
    ...(p.health ? { health: p.health } : {}),
  };
  const outDir = join(buildDir, 'out');
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `${p.name}-${p.version}-${meta.arch}.swpkg`);
  const r = await packPackage({ dir: src, meta, out: file, ...(p.signWith ? { key: p.signWith } : {}) });
  return {
    name: p.name,
    version: p.version,
    file,
    // Where publishRepository puts it: named by its hash (the same function names it there).
    path: `packages/${packageFileName(meta, r.sha256)}`,
    sha256: r.sha256,
    size: r.size,
  };
}

async function walkFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(rel ? join(dir, rel) : dir, { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walkFiles(dir, p)));
    else out.push(p);
  }
  return out;
}

/**
 * Builds a real signed repository with a fresh key using product code
 * (packPackage, publishRepository): nothing is pasted, every hash is computed.
 */
export async function buildFakeRepo(o: {
  name?: string;
  packages: FakePackage[];
  expiresIn?: number;
  now?: Date;
  key?: KeyPair;
}): Promise<FakeRepo> {
  const base = await mkdtemp(join(tmpdir(), 'pkg-fake-repo-'));
  made.push(base);
  const buildDir = join(base, 'build');
  const dir = join(base, 'www');
  const name = o.name ?? 'main';
  const key = o.key ?? generateKeyPair();
  const packages = new Map<string, BuiltPackage>();
  const table: ResponseTable = new Map();

  const repo: FakeRepo = {
    name,
    dir,
    buildDir,
    key,
    rootKey: key,
    root: undefined as unknown as RootDocument,
    fingerprint: '',
    rootFile: join(base, 'repo-root.pub'),
    packages,
    catalogVersion: 0,
    table,
    async publish(more = [], po = {}) {
      for (const p of more) {
        const b = await buildPackage(buildDir, p);
        packages.set(`${p.name}@${p.version}`, b);
      }
      const staging = join(base, 'publish-in');
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { recursive: true });
      for (const b of packages.values()) await copyFile(b.file, join(staging, b.file.split('/').pop()!));
      const now = po.now ?? o.now ?? new Date();
      // Each publish must move the catalog version forward even within one second.
      const r = await publishRepository({
        packagesDir: staging,
        out: dir,
        key,
        rootKey: repo.rootKey,
        name,
        expiresIn: po.expiresIn ?? o.expiresIn ?? 14 * 86400,
        retainSeconds: 7 * 86400,
        now,
        // Test repositories are often deliberately incomplete (a client must explain what is missing).
        allowUnmetDependencies: true,
      });
      repo.catalogVersion = r.catalogVersion;
      const text = await readFile(join(dir, 'repo-root.pub'));
      repo.root = parseRoot(text, 'repo-root.pub');
      repo.fingerprint = rootFingerprint(repo.root);
      await writeFile(repo.rootFile, text);
      await repo.refresh();
    },
    async unpublish(n, v) {
      packages.delete(`${n}@${v}`);
    },
    async rotateRoot(newRootKey = generateKeyPair()) {
      await rotatePublishedRoot({
        out: dir,
        oldRootKeys: [repo.rootKey],
        newRootKeys: [newRootKey],
        catalogKeys: [toPublicKeyFile(key)],
        expiresIn: 365 * 86400,
      });
      repo.rootKey = newRootKey;
      await repo.refresh();
    },
    async refresh() {
      table.clear();
      for (const rel of await walkFiles(dir)) table.set(rel, { body: await readFile(join(dir, rel)) } satisfies ResponseSpec);
      // Clients follow hosted-repo.json to the content-addressed catalog; tests that replace or drop
      // "the server's catalog" do it under catalog.json, so the current hashed name answers with that entry.
      const hint = JSON.parse(await readFile(join(dir, 'hosted-repo.json'), 'utf8')) as { catalog: string };
      if (hint.catalog !== 'catalog.json') {
        table.set(hint.catalog, (req) => {
          const e = table.get('catalog.json');
          return typeof e === 'function' ? e(req) : e;
        });
        // The gzip sibling answers only while catalog.json is the published one: once a test replaces
        // the catalog, the sibling is gone (404) and clients read the replacement, as they do on a
        // server without siblings.
        const published = table.get('catalog.json');
        const gz = table.get(`${hint.catalog}.gz`);
        if (gz !== undefined)
          table.set(`${hint.catalog}.gz`, (req) => (table.get('catalog.json') === published ? resolveGz(gz, req) : undefined));
      }
    },
    async bytes(path) {
      return readFile(join(dir, path));
    },
    async cleanup() {
      await rm(base, { recursive: true, force: true });
    },
  };
  await repo.publish(o.packages);
  return repo;
}

/** Removes every fake repository made in this process (call from afterAll). */
export async function cleanupFakeRepos(): Promise<void> {
  while (made.length) await rm(made.pop()!, { recursive: true, force: true });
}

function resolveGz(e: ResponseEntry, req: RequestInfo): ResponseSpec | undefined {
  return typeof e === 'function' ? e(req) : e;
}
