import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../../../ports/index.js';
import { sha256File } from '../../../catalog/index.js';

/** Recipe fields a synthetic port gets unless the test overrides them. */
export function recipeFor(name: string, sha256: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    version: '1.0.0',
    summary: `${name}, a test port`,
    license: 'MIT',
    sourceDateEpoch: 1700000000,
    sources: [{ url: `http://127.0.0.1:9/${name}-1.0.0.tar.gz`, sha256 }],
    targets: ['x86_64-linux-musl'],
    build: { system: 'make', installArgs: ['install', 'DESTDIR=$DESTDIR', 'PREFIX=$PREFIX'] },
    smoke: 'smoke.sh',
    ...extra,
  };
}

export interface PortSpec {
  name: string;
  recipe: Record<string, unknown>;
  /** Extra files in the recipe folder (patches, build scripts). */
  files?: Record<string, string>;
  smoke?: string;
}

/** Writes a ports tree (catalog.json + recipes/<name>/) for the given ports. */
export async function writePortsTree(dir: string, ports: PortSpec[], unlisted: string[] = []): Promise<string> {
  const portsDir = join(dir, 'ports');
  await mkdir(join(portsDir, 'recipes'), { recursive: true });
  await writeFile(
    join(portsDir, 'catalog.json'),
    JSON.stringify({ format: 1, ports: ports.map((p) => ({ name: p.name, path: `recipes/${p.name}` })) }, null, 2),
  );
  for (const p of ports) {
    const d = join(portsDir, 'recipes', p.name);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'recipe.json'), JSON.stringify(p.recipe, null, 2));
    await writeFile(join(d, 'smoke.sh'), p.smoke ?? `set -eu\n"$PKG_PREFIX/bin/${p.name}" | grep -q ${p.name}\necho ok\n`);
    for (const [f, text] of Object.entries(p.files ?? {})) {
      await mkdir(join(d, f, '..'), { recursive: true });
      await writeFile(join(d, f), text);
    }
  }
  for (const u of unlisted) await mkdir(join(portsDir, 'recipes', u), { recursive: true });
  return portsDir;
}

/** A C program that prints its name, with a Makefile honouring CC, DESTDIR and PREFIX. */
export function helloSources(name: string, opts: { failBuild?: boolean; libCall?: string } = {}): Record<string, string> {
  const call = opts.libCall ? `  ${opts.libCall}();\n` : '';
  const decl = opts.libCall ? `void ${opts.libCall}(void);\n` : '';
  return {
    [`${name}.c`]: `#include <stdio.h>\n${decl}int main(void) {\n  puts("${name} says hello");\n${call}  return 0;\n}\n`,
    Makefile: [
      `all: ${name}`,
      `${name}: ${name}.c`,
      opts.failBuild
        ? `\t@echo "deliberate failure for the test" >&2; exit 3`
        : `\t$(CC) $(CFLAGS) $(CPPFLAGS) -o ${name} ${name}.c $(LDFLAGS)${opts.libCall ? ' -lgreet' : ''}`,
      'install:',
      `\tmkdir -p $(DESTDIR)$(PREFIX)/bin`,
      `\tcp ${name} $(DESTDIR)$(PREFIX)/bin/${name}`,
      '',
    ].join('\n'),
  };
}

/** A static library port's sources: libgreet.a with greet(), and its header. */
export function libSources(): Record<string, string> {
  return {
    'greet.c': '#include <stdio.h>\nvoid greet(void) { puts("greetings from libgreet"); }\n',
    'greet.h': 'void greet(void);\n',
    Makefile: [
      'all: libgreet.a',
      'libgreet.a: greet.c',
      '\t$(CC) $(CFLAGS) -c greet.c -o greet.o',
      '\tar rc libgreet.a greet.o',
      'install:',
      '\tmkdir -p $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include',
      '\tcp libgreet.a $(DESTDIR)$(PREFIX)/lib/',
      '\tcp greet.h $(DESTDIR)$(PREFIX)/include/',
      '',
    ].join('\n'),
  };
}

/**
 * Makes `NAME-1.0.0.tar.gz` holding `NAME-1.0.0/<files>` with fixed mtimes and
 * owners (so the bytes are the same every run) and returns its path and hash.
 */
export async function makeTarball(dir: string, name: string, files: Record<string, string>): Promise<{ path: string; sha256: string }> {
  const top = `${name}-1.0.0`;
  const src = join(dir, 'tarball-src', name);
  await mkdir(join(src, top), { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(src, top, f), text);
  const out = join(dir, `${name}-1.0.0.tar.gz`);
  const r = await runCommand(
    'tar',
    ['--sort=name', '--mtime=@1700000000', '--owner=0', '--group=0', '--numeric-owner', '-czf', out, '-C', src, top],
    { timeoutMs: 30_000, env: { ...process.env, GZIP: '-n' } },
  );
  if (r.code !== 0) throw new Error(`tar failed: ${r.output}`);
  return { path: out, sha256: (await sha256File(out)).sha256 };
}
