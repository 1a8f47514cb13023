import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  generateKeyPair,
  packPackage,
  parseCatalog,
  encodeEnvelope,
  sha256File,
  sha256Hex,
  signCatalog,
  toPublicKeyFile,
  type CatalogDocument,
  type KeyPair,
  type PackageMeta,
  type Reporter,
} from '../../catalog/index.js';
import { publishRepository, type PublishResult } from '../../publishing/index.js';
import { buildPorts, defaultPortsPaths, loadPortsCatalog, loadRecipeClosure, edgesOf } from '../../ports/index.js';
import { GUEST_ARCH_PROFILES } from '../../images/index.js';
import type { GuestArch } from '../../kernel/index.js';
import { errorText } from './util.js';

/** Guest-side port numbers; the host side of each is whatever port its server got. */
export const GUEST_PORTS = {
  main: 8080,
  aux: 8081,
  expired: 8091,
  replay: 8092,
  unknownKey: 8093,
  incompatibleArch: 8094,
  incompatibleAbi: 8095,
  tampered: 8096,
  dnsRepo: 8097,
  dns: 53,
} as const;

export type RootName = Exclude<keyof typeof GUEST_PORTS, 'dns'>;
export const ROOT_NAMES = Object.keys(GUEST_PORTS).filter((k) => k !== 'dns') as RootName[];

/** The host name the DNS-hosted repository is reached by. */
export const DNS_REPO_HOST = 'repo.swpkg.test';

/** What `$SMOKE_HTTP_URL/hello.txt` serves, as ports/builder/smoke-test.ts does on the host. */
const SMOKE_HTTP_BODY = 'swport smoke ok\n';

export const SEED_PORTS_CI = ['lua', 'zlib', 'bzip2'];

/** One power@VERSION per power cut (the scenario makes at most this many). */
export const POWER_VERSIONS = ['1.0.0', '1.0.1', '1.0.2', '1.0.3'];

export interface SeedPort {
  name: string;
  version?: string;
  /** Runtime dependencies (other ports), from the recipe. */
  depends: string[];
  /** Package file in the main repository's package folder, when it built. */
  file?: string;
  sha256?: string;
  /** Why it is not in the repository. */
  failed?: string;
  smokeFile?: string;
  smokeSha256?: string;
  cached?: boolean;
  seconds?: number;
}

export interface TestPackage {
  name: string;
  version: string;
  file: string;
  sha256: string;
  size: number;
}

export interface Fixture {
  /** The guest's arch: every package made or built here is for it (except the deliberately foreign ones). */
  arch: GuestArch;
  workDir: string;
  www: Record<RootName, string>;
  keys: { root: KeyPair; catalog: KeyPair; unknown: KeyPair; dnsRoot: KeyPair };
  /** repo-root.pub of each repository as text (handed to the guest over the serial console). */
  mainRootPub: string;
  dnsRootPub: string;
  mainPackagesDir: string;
  seed: SeedPort[];
  test: Record<string, TestPackage>;
  /** Every publish of the main repository, oldest first. */
  publishes: PublishResult[];
  /** Bytes of the first (older) main catalog: the replay attack serves them. */
  oldCatalog: Buffer;
  dnsPublish: PublishResult;
  /** Files the guest fetches from the aux server: smoke scripts, local packages. */
  auxFiles: Record<string, { path: string; sha256: string }>;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

async function writeTree(dir: string, files: Record<string, { text?: string; bytes?: Buffer; mode?: number }>): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const [rel, f] of Object.entries(files)) {
    const p = join(dir, rel);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, f.bytes ?? f.text ?? '');
    await chmod(p, f.mode ?? 0o644);
  }
}

/** Packs a test package with the product's packer; the payload is written fresh into `scratch`. */
export async function makeTestPackage(
  scratch: string,
  outDir: string,
  meta: Omit<PackageMeta, 'arch' | 'abi' | 'license'> & { arch?: PackageMeta['arch']; abi?: string },
  files: Record<string, { text?: string; bytes?: Buffer; mode?: number }>,
  key?: KeyPair,
  outName?: string,
): Promise<TestPackage> {
  const dir = join(scratch, `${meta.name}-${meta.version}`);
  await writeTree(dir, files);
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, outName ?? `${meta.name}-${meta.version}-${meta.arch ?? 'x86_64'}.swpkg`);
  const r = await packPackage({
    dir,
    meta: { arch: 'x86_64', abi: 'linux-musl-static', license: 'MIT', ...meta },
    out,
    ...(key ? { key } : {}),
    sourceDateEpoch: 1704067200,
  });
  return { name: meta.name, version: meta.version, file: r.path, sha256: r.sha256, size: r.size };
}

const sh = (body: string): { text: string; mode: number } => ({ text: `#!/bin/sh\n${body}\n`, mode: 0o755 });

/** The other guest arch: what the incompatibility checks offer this guest. */
export function foreignArch(arch: GuestArch): GuestArch {
  return arch === 'x86_64' ? 'aarch64' : 'x86_64';
}

export function helloPackage(version: string): {
  meta: Omit<PackageMeta, 'arch' | 'abi' | 'license'>;
  files: Record<string, { text?: string; mode?: number }>;
} {
  return {
    meta: { name: 'hello', version, summary: `acceptance test program hello ${version}`, depends: { libgreet: '^1.0.0' } },
    files: {
      'bin/hello': sh(`g=$(cat /pkg/current/share/libgreet/greeting.txt) || exit 1\necho "hello ${version}: $g"`),
      'share/doc/hello/VERSION': { text: `${version}\n` },
    },
  };
}

/**
 * Builds the seed ports through the ports builder (cache under `.cache/`,
 * reused when the recipe, sources and toolchain are unchanged), one at a time
 * so one failing port is recorded with its reason and the rest still build.
 */
export async function buildSeedPorts(
  names: string[],
  packagesDir: string,
  auxDir: string,
  reporter: Reporter,
  info: (l: string) => void,
  arch: GuestArch = 'x86_64',
): Promise<SeedPort[]> {
  const target = GUEST_ARCH_PROFILES[arch].portTarget;
  const paths = defaultPortsPaths();
  const catalog = await loadPortsCatalog(paths.portsDir);
  const recipes = await loadRecipeClosure(catalog, names, 'all');
  const out: SeedPort[] = [];
  await mkdir(packagesDir, { recursive: true });
  await mkdir(join(auxDir, 'smoke'), { recursive: true });
  const have = new Map<string, { file: string; sha256: string }>();
  for (const name of names) {
    const l = recipes.get(name);
    const port: SeedPort = { name, depends: l ? edgesOf(l.recipe, 'runtime') : [] };
    out.push(port);
    if (!l) {
      port.failed = `no recipe named ${name} in ports/catalog.json`;
      continue;
    }
    port.version = l.recipe.version;
    const t0 = Date.now();
    try {
      const built = await buildPorts([name], { paths, withRuntime: true, reporter, target });
      for (const b of built) {
        if (have.has(b.name)) continue;
        const dest = join(packagesDir, b.file);
        await copyFile(b.path, dest);
        have.set(b.name, { file: dest, sha256: b.sha256 });
        if (b.name === name) port.cached = b.cached;
      }
      const mine = have.get(name);
      if (mine) {
        port.file = mine.file;
        port.sha256 = mine.sha256;
      }
      const smokeSrc = join(l.dir, l.recipe.smoke);
      const smokeDest = join(auxDir, 'smoke', `${name}.sh`);
      await copyFile(smokeSrc, smokeDest);
      port.smokeFile = `smoke/${name}.sh`;
      port.smokeSha256 = (await sha256File(smokeDest)).sha256;
    } catch (e) {
      port.failed = `did not build: ${errorText(e).split('\n').slice(0, 6).join(' | ')}`;
    }
    port.seconds = Math.round((Date.now() - t0) / 100) / 10;
    info(
      `ports: ${name} (${target}) ${port.failed ? `FAILED (${port.failed})` : `${port.version} ${port.cached ? 'from the build cache' : 'built'} in ${port.seconds} s`}`,
    );
  }
  return out;
}

/**
 * Re-signs (or re-dates) a copy of a catalog and writes it, with its sidecar, into a web root, and
 * points the root's hosted-repo.json at it: an attacker who controls a mirror controls its pointer
 * too, so the client must refuse the catalog itself, not miss it.
 */
async function writeCatalog(root: string, doc: CatalogDocument | Buffer): Promise<void> {
  const bytes = Buffer.isBuffer(doc) ? doc : encodeEnvelope(doc);
  await writeFile(join(root, 'catalog.json'), bytes);
  await writeFile(join(root, 'catalog.json.sha256'), `${sha256Hex(bytes)}  catalog.json\n`);
  const pointer = join(root, 'hosted-repo.json');
  const hint = JSON.parse(await readFile(pointer, 'utf8')) as Record<string, unknown>;
  await writeFile(pointer, JSON.stringify({ ...hint, catalog: 'catalog.json', retainedCatalogs: [] }, null, 2) + '\n');
}

/** Replaces a web root's contents with a copy of another (the folder itself stays: a server is serving it). */
async function mirrorRoot(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const n of await readdir(to)) await rm(join(to, n), { recursive: true, force: true });
  await cp(from, to, { recursive: true });
}

/**
 * Fills the rejection roots from the main repository as it is now: same
 * root, same packages, and one defect each. Called by the rejection scenario
 * just before it runs, so they always sit on top of the catalog the guest
 * last accepted.
 */
export async function prepareRejectionRoots(f: Fixture, victim: TestPackage): Promise<Record<string, string>> {
  const main = f.www.main;
  const current = parseCatalog(await readFile(join(main, 'catalog.json')));
  const now = Date.now();
  const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const what: Record<string, string> = {};

  await mirrorRoot(main, f.www.expired);
  await writeCatalog(
    f.www.expired,
    signCatalog({ ...current.signed, version: current.signed.version + 100, generated: iso(now - 30 * DAY), expires: iso(now - DAY) }, [
      f.keys.catalog,
    ]),
  );
  what['expired'] = `catalog v${current.signed.version + 100} signed by the catalog key, expired ${iso(now - DAY)}`;

  await mirrorRoot(main, f.www.replay);
  await writeCatalog(f.www.replay, f.oldCatalog);
  const old = parseCatalog(f.oldCatalog);
  what['replay'] = `the genuine older catalog v${old.signed.version} (the guest accepted v${current.signed.version} or newer)`;

  await mirrorRoot(main, f.www.unknownKey);
  await writeCatalog(f.www.unknownKey, signCatalog({ ...current.signed, version: current.signed.version + 200 }, [f.keys.unknown]));
  what['unknownKey'] =
    `catalog v${current.signed.version + 200} signed only by key ${f.keys.unknown.keyid.slice(0, 16)}…, which the root does not list`;

  await mirrorRoot(main, f.www.incompatibleArch);
  const other = foreignArch(f.arch);
  await writeCatalog(
    f.www.incompatibleArch,
    signCatalog(
      { ...current.signed, version: current.signed.version + 300, compatibility: { ...current.signed.compatibility, arch: [other] } },
      [f.keys.catalog],
    ),
  );
  what['incompatibleArch'] = `catalog v${current.signed.version + 300} for arch ${other} only, signed by the catalog key`;

  await mirrorRoot(main, f.www.incompatibleAbi);
  await writeCatalog(
    f.www.incompatibleAbi,
    signCatalog(
      { ...current.signed, version: current.signed.version + 400, compatibility: { ...current.signed.compatibility, abi: ['linux-gnu'] } },
      [f.keys.catalog],
    ),
  );
  what['incompatibleAbi'] = `catalog v${current.signed.version + 400} for ABI linux-gnu only, signed by the catalog key`;

  // Same catalog bytes as the main repository; one package file swapped for other bytes of the same size.
  await mirrorRoot(main, f.www.tampered);
  const entry = current.signed.packages.find((p) => p.name === victim.name && p.version === victim.version);
  if (!entry) throw new Error(`${victim.name}@${victim.version} is not in the main catalog`);
  const target = join(f.www.tampered, entry.path);
  const bytes = await readFile(target);
  const evil = Buffer.from(bytes);
  const at = Math.floor(evil.length / 2);
  evil[at] = (evil[at]! ^ 0xff) & 0xff;
  await writeFile(target, evil);
  // An attacker who controls the mirror rewrites the sidecar too: only the signed catalog counts.
  await writeFile(`${target}.sha256`, `${sha256Hex(evil)}  ${entry.path.split('/').pop()}\n`);
  what['tampered'] =
    `${entry.path}: one byte flipped (sha256 ${sha256Hex(evil).slice(0, 16)}…, catalog says ${entry.sha256.slice(0, 16)}…), catalog unchanged`;
  return what;
}

/**
 * Makes everything the guest will be served: keys (fresh per run, kept only
 * in memory), the test packages, the seed ports, the main repository
 * (published twice, so a genuine older catalog exists for the replay
 * attack), the DNS-hosted repository and the aux files.
 */
export async function makeFixture(o: {
  arch?: GuestArch;
  workDir: string;
  seedPorts: string[];
  reporter: Reporter;
  info: (l: string) => void;
}): Promise<Fixture> {
  const w = o.workDir;
  const arch = o.arch ?? 'x86_64';
  const www = Object.fromEntries(ROOT_NAMES.map((n) => [n, join(w, 'www', n)])) as Record<RootName, string>;
  for (const d of Object.values(www)) await mkdir(d, { recursive: true });
  const scratch = join(w, 'payloads');
  const mainPackagesDir = join(w, 'packages', 'main');
  const dnsPackagesDir = join(w, 'packages', 'dns');
  const localDir = join(www.aux, 'files');
  await mkdir(mainPackagesDir, { recursive: true });

  const keys = { root: generateKeyPair(), catalog: generateKeyPair(), unknown: generateKeyPair(), dnsRoot: generateKeyPair() };
  o.info(
    `keys: root ${keys.root.keyid.slice(0, 16)}…, catalog ${keys.catalog.keyid.slice(0, 16)}…, unknown ${keys.unknown.keyid.slice(0, 16)}… (per run, in memory only)`,
  );

  const test = await makeTestPackages({ scratch, mainPackagesDir, localDir, arch, keys });

  // Seed ports.
  const seed = await buildSeedPorts(o.seedPorts, mainPackagesDir, www.aux, o.reporter, o.info, arch);

  // Aux root: the smoke page, smoke scripts (written by buildSeedPorts), local packages.
  await writeFile(join(www.aux, 'hello.txt'), SMOKE_HTTP_BODY);
  const auxFiles: Fixture['auxFiles'] = {};
  for (const p of seed) if (p.smokeFile && p.smokeSha256) auxFiles[p.smokeFile] = { path: p.smokeFile, sha256: p.smokeSha256 };
  for (const id of ['localSigned', 'localUnsigned', 'localStranger', 'localForeign']) {
    const t = test[id]!;
    const rel = `files/${t.file.split('/').pop()}`;
    auxFiles[rel] = { path: rel, sha256: t.sha256 };
  }

  // Main repository: published an hour ago and again now (two genuine catalogs, the older one for the replay attack).
  const now = Date.now();
  const first = await publishRepository({
    packagesDir: mainPackagesDir,
    out: www.main,
    key: keys.catalog,
    rootKey: keys.root,
    name: 'main',
    now: new Date(now - HOUR),
    reporter: o.reporter,
  });
  const oldCatalog = await readFile(join(www.main, 'catalog.json'));
  const second = await publishRepository({
    packagesDir: mainPackagesDir,
    out: www.main,
    key: keys.catalog,
    name: 'main',
    now: new Date(now),
    reporter: o.reporter,
  });
  o.info(
    `main repository: catalog v${first.catalogVersion} then v${second.catalogVersion}, ${second.packages.length} packages, root ${second.rootFingerprint.slice(0, 16)}…`,
  );

  // DNS-hosted repository: its own keys and one package.
  await makeTestPackage(
    scratch,
    dnsPackagesDir,
    {
      arch,
      name: 'dnsdemo',
      version: '1.0.0',
      summary: 'installed from a repository found through DNS',
    },
    {
      'bin/dnsdemo': sh('echo dnsdemo 1.0.0 from repo.swpkg.test'),
    },
  );
  const dnsPublish = await publishRepository({
    packagesDir: dnsPackagesDir,
    out: www.dnsRepo,
    key: keys.dnsRoot,
    name: 'dnsrepo',
    reporter: o.reporter,
  });

  return {
    arch,
    workDir: w,
    www,
    keys,
    mainRootPub: await readFile(join(www.main, 'repo-root.pub'), 'utf8'),
    dnsRootPub: await readFile(join(www.dnsRepo, 'repo-root.pub'), 'utf8'),
    mainPackagesDir,
    seed,
    test,
    publishes: [first, second],
    oldCatalog,
    dnsPublish,
    auxFiles,
  };
}

/**
 * The test packages of the main repository (libgreet, hello, the power-cut payloads) and the
 * local files (signed, unsigned, signed by an unknown key, foreign arch), made with the product's packer.
 */
async function makeTestPackages(o: {
  scratch: string;
  mainPackagesDir: string;
  localDir: string;
  arch: GuestArch;
  keys: Fixture['keys'];
}): Promise<Record<string, TestPackage>> {
  const { scratch, mainPackagesDir, localDir, arch, keys } = o;
  const test: Record<string, TestPackage> = {};
  const add = (id: string, p: TestPackage): void => {
    test[id] = p;
  };
  add(
    'libgreet',
    await makeTestPackage(
      scratch,
      mainPackagesDir,
      {
        arch,
        name: 'libgreet',
        version: '1.0.0',
        summary: 'acceptance test library: a greeting',
      },
      {
        'share/libgreet/greeting.txt': { text: 'greetings from libgreet 1.0.0\n' },
        'bin/greet': sh('cat /pkg/current/share/libgreet/greeting.txt'),
      },
    ),
  );
  const h = helloPackage('1.0.0');
  add('hello', await makeTestPackage(scratch, mainPackagesDir, { ...h.meta, arch }, h.files));
  add(
    'extra',
    await makeTestPackage(
      scratch,
      mainPackagesDir,
      {
        arch,
        name: 'extra',
        version: '1.0.0',
        summary: 'acceptance test package the tampered mirror corrupts',
      },
      {
        'bin/extra': sh('echo extra 1.0.0'),
        'share/extra/data.bin': { bytes: randomBytes(64 * 1024) },
      },
    ),
  );
  // Big enough (incompressible, several read chunks) that download, hashing and extraction take a while under
  // TCG; one version per power cut, so every cut interrupts a first install.
  for (const version of POWER_VERSIONS) {
    const files: Record<string, { text?: string; bytes?: Buffer; mode?: number }> = { 'bin/power': sh(`echo power ${version}`) };
    for (let i = 0; i < 12; i++) files[`share/power/blob-${String(i).padStart(2, '0')}.bin`] = { bytes: randomBytes(512 * 1024) };
    add(
      `power${version}`,
      await makeTestPackage(
        scratch,
        mainPackagesDir,
        { arch, name: 'power', version, summary: 'acceptance test package installed across a power cut' },
        files,
      ),
    );
  }

  // Local files (scenario: local file install): not in any catalog.
  add(
    'localSigned',
    await makeTestPackage(
      scratch,
      localDir,
      {
        arch,
        name: 'local-signed',
        version: '1.0.0',
        summary: 'local package signed by the main catalog key',
      },
      { 'bin/local-signed': sh('echo local-signed 1.0.0') },
      keys.catalog,
    ),
  );
  add(
    'localUnsigned',
    await makeTestPackage(
      scratch,
      localDir,
      {
        arch,
        name: 'local-unsigned',
        version: '1.0.0',
        summary: 'local package without a signature',
      },
      {
        'bin/local-unsigned': sh('echo local-unsigned 1.0.0'),
      },
    ),
  );
  add(
    'localStranger',
    await makeTestPackage(
      scratch,
      localDir,
      {
        arch,
        name: 'local-stranger',
        version: '1.0.0',
        summary: 'local package signed by a key nobody trusts',
      },
      { 'bin/local-stranger': sh('echo local-stranger 1.0.0') },
      keys.unknown,
    ),
  );

  // A trusted package this guest cannot run: only its arch stands in the way (E_INCOMPATIBLE, naming both arches).
  add(
    'localForeign',
    await makeTestPackage(
      scratch,
      localDir,
      { arch: foreignArch(arch), name: 'local-foreign', version: '1.0.0', summary: `local package built for ${foreignArch(arch)}` },
      { 'bin/local-foreign': sh('echo local-foreign 1.0.0') },
      keys.catalog,
    ),
  );
  return test;
}

/** Adds hello@1.1.0 to the main repository and publishes it (the upgrade scenario, while the guest runs). */
export async function publishHelloUpgrade(f: Fixture, reporter: Reporter): Promise<{ pkg: TestPackage; publish: PublishResult }> {
  const h = helloPackage('1.1.0');
  const existing = join(f.mainPackagesDir, `hello-1.1.0-${f.arch}.swpkg`);
  const pkg = existsSync(existing)
    ? { name: 'hello', version: '1.1.0', file: existing, ...(await sha256File(existing)) }
    : await makeTestPackage(join(f.workDir, 'payloads'), f.mainPackagesDir, { ...h.meta, arch: f.arch }, h.files);
  f.test['hello11'] = pkg;
  const publish = await publishRepository({ packagesDir: f.mainPackagesDir, out: f.www.main, key: f.keys.catalog, name: 'main', reporter });
  f.publishes.push(publish);
  return { pkg, publish };
}

/**
 * Publishes `svc@VERSION` into the main repository for the health-rollback scenario: `bin/svc`
 * prints its version; its required health check `svc/responds` exits `checkExit` after a line
 * that names the version (so the output tail is recognisable).
 */
export async function publishSvc(
  f: Fixture,
  reporter: Reporter,
  version: string,
  checkExit: number,
): Promise<{ pkg: TestPackage; publish: PublishResult }> {
  const pkg = await makeTestPackage(
    join(f.workDir, 'payloads'),
    f.mainPackagesDir,
    {
      name: 'svc',
      version,
      // For the guest's own arch: makeTestPackage defaults to x86_64, which an aarch64 guest refuses (E_INCOMPATIBLE).
      arch: f.arch,
      summary: `acceptance test service ${version}`,
      health: [{ name: 'responds', command: 'libexec/svc/check', timeout: 10, level: 'required' }],
    },
    {
      'bin/svc': sh(`echo "svc ${version}"`),
      'libexec/svc/check': sh(`echo "svc ${version} health: exit ${checkExit}"\nexit ${checkExit}`),
    },
  );
  f.test[`svc-${version}`] = pkg;
  const publish = await publishRepository({ packagesDir: f.mainPackagesDir, out: f.www.main, key: f.keys.catalog, name: 'main', reporter });
  f.publishes.push(publish);
  return { pkg, publish };
}

export function publicKeyText(k: KeyPair): string {
  return JSON.stringify(toPublicKeyFile(k), null, 2) + '\n';
}
