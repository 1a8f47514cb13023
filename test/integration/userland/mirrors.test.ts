import { afterAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { buildFakeRepo, cleanupFakeRepos } from '../../helpers/fake-repo.js';
import { startTableServer } from '../../helpers/http-table-server.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';
import { pkgJson } from './helpers.js';

afterAll(cleanupFakeRepos);

/** A server that accepts connections and never answers (a dead mirror behind a live load balancer), counting them. */
async function silentServer(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    n++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    connections: () => n,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('mirrors: a dead server costs one timeout per command', () => {
  it('update and install of many packages meet the dead first server in one stall window each, then only the live mirror; repo list shows its error', async () => {
    const pkgs = Array.from({ length: 12 }, (_, i) => ({ name: `p${i}`, version: '1.0.0' }));
    const repo = await buildFakeRepo({ packages: pkgs });
    const live = await startTableServer(repo.table);
    const dead = await silentServer();
    const root = await tempDir('pkg-root-');
    const env = { PKG_STALL_TIMEOUT: '1' };
    try {
      // The root is fetched once at add time; the live mirror answers it.
      expect((await pkgJson(root, ['repo', 'add', 'main', dead.url, '--key', repo.rootFile, '--mirror', live.url], env)).json?.ok).toBe(
        true,
      );
      const before = dead.connections();
      const up = await pkgJson(root, ['update'], env);
      expect(up.json?.ok, up.stdout).toBe(true);
      expect(up.json?.result.repos[0].source.startsWith(live.url)).toBe(true);
      expect(dead.connections() - before).toBe(1);

      const list = await pkgJson(root, ['repo', 'list']);
      const servers = list.json?.result[0].servers as { url: string; ok: boolean; lastError?: { code: string } }[];
      expect(servers.map((s) => [s.url, s.ok, s.lastError?.code])).toEqual([
        [dead.url, false, 'E_STALLED'],
        [live.url, true, undefined],
      ]);

      const mid = dead.connections();
      const inst = await pkgJson(root, ['install', ...pkgs.map((p) => p.name), '--yes'], env);
      expect(inst.json?.ok, inst.stdout).toBe(true);
      expect(inst.json?.result.downloads).toHaveLength(12);
      // Twelve downloads, four at a time: only the first wave meets the dead server (one stall window, in
      // parallel); it is then marked for the rest of the command and every later download goes to the mirror.
      expect(dead.connections() - mid).toBeLessThanOrEqual(4);
    } finally {
      await dead.close();
      await live.close();
    }
  });

  it('--downloads 1: one download at a time, and the dead server is asked exactly once in the whole install', async () => {
    const pkgs = Array.from({ length: 8 }, (_, i) => ({ name: `q${i}`, version: '1.0.0' }));
    const repo = await buildFakeRepo({ packages: pkgs });
    const live = await startTableServer(repo.table);
    const dead = await silentServer();
    const root = await tempDir('pkg-root-');
    const env = { PKG_STALL_TIMEOUT: '1' };
    try {
      expect((await pkgJson(root, ['repo', 'add', 'main', dead.url, '--key', repo.rootFile, '--mirror', live.url], env)).json?.ok).toBe(
        true,
      );
      expect((await pkgJson(root, ['update'], env)).json?.ok).toBe(true);
      const mid = dead.connections();
      const inst = await pkgJson(root, ['install', ...pkgs.map((p) => p.name), '--yes', '--downloads', '1'], env);
      expect(inst.json?.ok, inst.stdout).toBe(true);
      expect(inst.json?.result.downloads).toHaveLength(8);
      expect(dead.connections() - mid).toBe(1);
    } finally {
      await dead.close();
      await live.close();
    }
  });

  it('--downloads outside 1..64 (and PKG_DOWNLOADS) is E_USAGE, nothing created', async () => {
    const parent = await tempDir('pkg-parent-');
    const root = `${parent}/root`;
    for (const [args, env] of [
      [['--downloads', '0'], {}],
      [['--downloads', '1.5'], {}],
      [[], { PKG_DOWNLOADS: '65' }],
    ] as [string[], Record<string, string>][]) {
      const r = await pkgJson(root, ['install', 'x', '--yes', ...args], env);
      expect(r.json?.error?.code).toBe('E_USAGE');
      expect(r.code).toBe(2);
    }
    expect(await treeHash(parent)).toBe(await treeHash(await tempDir('pkg-empty-')));
  });
});
