/**
 * A minimal streaming static server for the benchmarks (127.0.0.1 only):
 * Content-Length, Range (206/416), files streamed from disk so a 1 GiB
 * package never sits in memory.
 *
 *   npx node bench/client/serve.ts --root DIR --port N
 */
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, normalize } from 'node:path';

const i = process.argv.indexOf('--root');
const root = i >= 0 ? process.argv[i + 1]! : '.';
const p = process.argv.indexOf('--port');
const port = Number(p >= 0 ? process.argv[p + 1] : '18180');

const server = createServer((req, res) => {
  void (async () => {
    const rel = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '');
    if (rel.split('/').includes('..')) return void res.writeHead(400).end();
    const path = join(root, rel);
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      return void res.writeHead(404, { 'content-length': '0' }).end();
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (m && start >= size) return void res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': '0' }).end();
    res.writeHead(m ? 206 : 200, {
      'content-length': String(size - start),
      'accept-ranges': 'bytes',
      ...(m ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    createReadStream(path, { start, highWaterMark: 1 << 20 }).pipe(res);
  })();
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`serving ${root} on http://127.0.0.1:${port}/\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
