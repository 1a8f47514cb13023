import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import dnsPacket from 'dns-packet';
import { makeFixture, rawRequest, type Fixture } from './helpers.js';

// The CLI runs from dist/ (bin/swpkg); build first: npx tsc -p tsconfig.build.json
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(repo, 'bin', 'swpkg');

let fx: Fixture;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(join(repo, 'dist', 'cli', 'swpkg', 'commands', 'serve.js'))) {
    throw new Error('dist/ has no serve command: run `npx tsc -p tsconfig.build.json` before this suite');
  }
  fx = await makeFixture();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await fx?.cleanup();
});

interface Running {
  child: ChildProcess;
  first: Record<string, unknown>;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Starts `swpkg serve ...` and resolves with its first stdout line parsed as JSON (bounded). */
function startServe(args: string[]): Promise<Running> {
  const child = spawn(bin, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`swpkg serve printed nothing in time; stderr: ${err}`)), 20_000);
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, first: JSON.parse(line) as Record<string, unknown>, stderr: () => err, exit });
      } catch (e) {
        reject(new Error(`first stdout line is not one JSON document: ${line}`, { cause: e }));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`swpkg serve exited early with ${code}; stderr: ${err}`));
    });
  });
}

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('swpkg serve', () => {
  it('--json prints one line {ok:true,result:{url}} once listening, serves, logs to stderr, stops on SIGTERM with 0', async () => {
    const s = await startServe([fx.root, '--port', '0', '--json']);
    const result = s.first['result'] as { url: string; port: number; root: string };
    expect(s.first['ok']).toBe(true);
    expect(result.url).toBe(`http://127.0.0.1:${result.port}/`);
    const r = await rawRequest(result.url, '/catalog.json');
    expect(r.status).toBe(200);
    const refused = await rawRequest(result.url, '/../outside/secret.txt');
    expect(refused.status).toBe(400);
    s.child.kill('SIGTERM');
    expect(await bounded(s.exit, 20_000, 'exit after SIGTERM')).toBe(0);
    expect(s.stderr()).toMatch(/"GET \/catalog\.json HTTP\/1\.1" 200 /);
  });

  it('with --dns-port also answers DNS for --dns-name with --dns-address', async () => {
    const s = await startServe([
      fx.root,
      '--port',
      '0',
      '--json',
      '--dns-port',
      '0',
      '--dns-name',
      'repo.test',
      '--dns-address',
      '10.0.2.2',
    ]);
    const result = s.first['result'] as { dns: { port: number; name: string; addresses: string[] } };
    expect(result.dns.name).toBe('repo.test');
    const client = createSocket('udp4');
    try {
      const reply = new Promise<dnsPacket.DecodedPacket>((resolve) => client.once('message', (m) => resolve(dnsPacket.decode(m))));
      client.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ name: 'repo.test', type: 'A' }] }), result.dns.port, '127.0.0.1');
      const r = await bounded(reply, 5000, 'DNS reply');
      expect(r.answers?.map((a) => (a as { data: string }).data)).toEqual(['10.0.2.2']);
    } finally {
      client.close();
      s.child.kill('SIGINT');
    }
    expect(await bounded(s.exit, 20_000, 'exit after SIGINT')).toBe(0);
  });

  it('a ROOT that does not exist → E_NOT_FOUND, exit 2', async () => {
    const child = spawn(bin, ['serve', join(fx.root, 'missing'), '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await bounded(new Promise<number | null>((resolve) => child.once('exit', resolve)), 20_000, 'exit');
    expect(code).toBe(2);
    expect(JSON.parse(out)).toMatchObject({ ok: false, error: { code: 'E_NOT_FOUND' } });
  });
});
