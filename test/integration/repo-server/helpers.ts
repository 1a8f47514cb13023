import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdtemp, mkdir, writeFile, symlink, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request with node:http, sending `path` byte-for-byte: unlike fetch/URL, node:http
 * does not normalise `..` or `%2e%2e`, so traversal attempts reach the server as written.
 */
export function rawRequest(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: Number(u.port),
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` every 20 ms until it returns true; fails after `timeoutMs` (bounded wait). */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Fixture {
  /** The served root. */
  root: string;
  /** A folder beside the root holding a secret the server must never send. */
  outside: string;
  secret: string;
  pkg: Buffer;
  bigPath: string;
  bigSize: number;
  cleanup(): Promise<void>;
}

/**
 * A published-root-shaped folder (the file names of DESIGN.md "Static web root") plus every
 * trap a static server must not fall into: dotfiles, a .git folder, symlinks leaving the root
 * or naming a dotfile, a FIFO. Content is generated, not pasted.
 */
export async function makeFixture(opts: { bigSize?: number } = {}): Promise<Fixture> {
  const base = await mkdtemp(join(tmpdir(), 'swpkg-repo-server-'));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(join(root, 'packages'), { recursive: true });
  await mkdir(join(root, 'roots'));
  await mkdir(join(root, 'sub'));
  await mkdir(join(root, 'empty-dir'));
  await mkdir(join(root, '.git'));
  await mkdir(outside);
  const secret = `SECRET-${randomBytes(8).toString('hex')}`;
  await writeFile(join(outside, 'secret.txt'), secret);
  await writeFile(join(root, '.hidden'), secret);
  await writeFile(join(root, '.git', 'config'), secret);
  const pkg = randomBytes(256 * 1024 + 17);
  await writeFile(join(root, 'packages', 'a-1.0.0-any.swpkg'), pkg);
  await writeFile(join(root, 'packages', 'a-1.0.0-any.swpkg.sha256'), 'abc  a-1.0.0-any.swpkg\n');
  await writeFile(join(root, 'catalog.json'), JSON.stringify({ signed: { type: 'catalog' }, signatures: [] }));
  await writeFile(join(root, 'catalog.json.sha256'), 'abc  catalog.json\n');
  await writeFile(join(root, 'hosted-repo.json'), JSON.stringify({ format: 1, name: 'test' }));
  await writeFile(join(root, 'repo-root.pub'), 'root\n');
  await writeFile(join(root, 'roots', '1.json'), '{}');
  await writeFile(join(root, 'index.html'), '<!doctype html><title>repo</title>');
  await writeFile(join(root, 'sub', 'index.html'), '<p>sub</p>');
  await writeFile(join(root, 'empty.json'), '');
  await symlink(join(outside, 'secret.txt'), join(root, 'escape.txt'));
  await symlink('../outside', join(root, 'escape-dir'));
  await symlink('.hidden', join(root, 'to-hidden.txt'));
  await symlink('packages/a-1.0.0-any.swpkg', join(root, 'latest.swpkg'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const bigSize = opts.bigSize ?? 0;
  const bigPath = join(root, 'packages', 'big-1.0.0-any.swpkg');
  if (bigSize > 0) await writeFile(bigPath, Buffer.alloc(bigSize, 0x5a));
  return { root, outside, secret, pkg, bigPath, bigSize, cleanup: () => rm(base, { recursive: true, force: true }) };
}
