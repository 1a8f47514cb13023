import { describe, expect, it } from 'vitest';
import { createServer, request, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, realpath, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serveFile, normalizeRequestPath } from '../../../repo-server/index.js';
import { tempDir } from '../../helpers/tmp.js';

// serveFile alone, behind a bare node:http server with none of startStaticServer's
// lifecycle (timeouts, metrics, shutdown): what it answers and how many body bytes it counts.

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  counted: number;
}

async function fetchVia(root: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  const realRoot = await realpath(root);
  let counted = 0;
  const countBody = (_res: ServerResponse, n: number): void => {
    counted += n;
  };
  const server = createServer((req, res) => {
    const p = normalizeRequestPath(req.url ?? '');
    if (!p.ok) throw new Error(`test path refused: ${req.url}`);
    void serveFile({ realRoot, countBody }, req, res, p.segments, p.directory);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise<Answer>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), counted }),
        );
      });
      req.on('error', reject);
      req.end();
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

async function repoRoot(): Promise<string> {
  const base = await tempDir();
  const root = join(base, 'root');
  await mkdir(join(root, 'packages'), { recursive: true });
  await writeFile(join(root, 'catalog.json'), '{"hello":"world"}\n');
  await writeFile(join(root, 'packages', 'a-1.0.0-any.swpkg'), '0123456789');
  await writeFile(join(root, 'index.html'), '<p>repo</p>\n');
  await writeFile(join(base, 'secret'), 'outside\n');
  await writeFile(join(root, '.hidden'), 'dot\n');
  await symlink(join(base, 'secret'), join(root, 'escape'));
  await symlink(join(root, '.hidden'), join(root, 'to-dotfile'));
  await mkdir(join(root, 'docs'));
  await writeFile(join(root, 'docs', 'index.html'), '<p>docs</p>\n');
  await mkdir(join(root, 'empty'));
  return root;
}

describe('serveFile', () => {
  it('sends a whole file with its validators and counts the body', async () => {
    const root = await repoRoot();
    const a = await fetchVia(root, '/catalog.json');
    expect(a.status).toBe(200);
    expect(a.body).toBe('{"hello":"world"}\n');
    expect(a.headers['content-length']).toBe(String(a.body.length));
    expect(a.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
    expect(a.headers['accept-ranges']).toBe('bytes');
    expect(a.counted).toBe(a.body.length);
  });

  it('sends one byte range as 206 and refuses one past the end with 416', async () => {
    const root = await repoRoot();
    const part = await fetchVia(root, '/packages/a-1.0.0-any.swpkg', 'GET', { Range: 'bytes=2-5' });
    expect(part.status).toBe(206);
    expect(part.body).toBe('2345');
    expect(part.headers['content-range']).toBe('bytes 2-5/10');
    expect(part.counted).toBe(4);
    const past = await fetchVia(root, '/packages/a-1.0.0-any.swpkg', 'GET', { Range: 'bytes=10-' });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe('bytes */10');
  });

  it('ignores the range of a HEAD and of a stale If-Range', async () => {
    const root = await repoRoot();
    const head = await fetchVia(root, '/packages/a-1.0.0-any.swpkg', 'HEAD', { Range: 'bytes=2-5' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('10');
    expect(head.counted).toBe(0);
    const stale = await fetchVia(root, '/packages/a-1.0.0-any.swpkg', 'GET', { Range: 'bytes=2-5', 'If-Range': '"0-0-0"' });
    expect(stale.status).toBe(200);
    expect(stale.body).toBe('0123456789');
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const root = await repoRoot();
    const first = await fetchVia(root, '/catalog.json');
    const again = await fetchVia(root, '/catalog.json', 'GET', { 'If-None-Match': String(first.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it('redirects a folder to its slash URL, then serves its index.html', async () => {
    const root = await repoRoot();
    const bare = await fetchVia(root, '/docs');
    expect(bare.status).toBe(301);
    expect(bare.headers.location).toBe('/docs/');
    const slash = await fetchVia(root, '/docs/');
    expect(slash.status).toBe(200);
    expect(slash.body).toBe('<p>docs</p>\n');
    expect((await fetchVia(root, '/')).body).toBe('<p>repo</p>\n');
    expect((await fetchVia(root, '/empty/')).status).toBe(404);
  });

  it('answers 404, never the bytes, for what is missing, outside the root or dot-named', async () => {
    const root = await repoRoot();
    for (const path of ['/nosuch', '/escape', '/to-dotfile']) {
      const a = await fetchVia(root, path);
      expect(a.status, path).toBe(404);
      expect(a.body, path).not.toMatch(/outside|dot\n/);
    }
  });
});
