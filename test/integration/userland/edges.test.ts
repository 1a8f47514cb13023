/**
 * Rough edges a new user hits with pkg (issue 11), each fed through the CLI against a loopback
 * repository: what is printed, what the exit code is, and that nothing changed when it should not.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildFakeRepo, cleanupFakeRepos, type FakeRepo } from '../../helpers/fake-repo.js';
import { startTableServer, type TableServer } from '../../helpers/http-table-server.js';
import { tempDir } from '../../helpers/tmp.js';
import { addMainRepo, pkg } from './helpers.js';

/** A hostile summary: clears the screen, retitles the window, hides text with NUL and CR, and a C1 CSI. */
const EVIL_SUMMARY = 'nice\x1b[2J\x1b]0;owned\x07 tool\x00\rhidden \x9b31m';
const EVIL_SHOWN = 'nice\\e[2J\\e]0;owned\\x07 tool\\0\\rhidden \\x9b31m';

let repo: FakeRepo;
let server: TableServer;
let root: string;

beforeEach(async () => {
  repo = await buildFakeRepo({
    packages: [
      // Incompressible, so the archive spans several read chunks.
      { name: 'big', version: '1.0.0', files: { 'share/big.bin': randomBytes(3 * 1024 * 1024) } },
      { name: 'hello', version: '1.0.0', summary: 'Says hello', files: { 'bin/hello': '#!/bin/sh\necho hello\n' } },
      { name: 'evil', version: '1.0.0', summary: EVIL_SUMMARY, files: { 'bin/evil': '#!/bin/sh\n' } },
    ],
  });
  server = await startTableServer(repo.table);
  root = await tempDir('pkg-edges-');
  await addMainRepo(root, server.url, repo.fingerprint);
});
afterEach(async () => {
  await server.close();
});
afterAll(cleanupFakeRepos);

describe('pkg progress', () => {
  it('extraction counts bytes and moves through one big package (2)', async () => {
    const r = await pkg(root, ['install', 'big', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('verifying and extracting: '));
    const pcts = lines.map((l) => Number(/: (\d+)%/.exec(l)?.[1]));
    expect(pcts.at(-1)).toBe(100);
    expect(pcts.some((p) => p > 0 && p < 100)).toBe(true);
    for (const l of lines) expect(l).toMatch(/\((\d+(\.\d)?) (B|KiB|MiB) \/ 3\.\d MiB\)$/);
  });
});

describe('terminal injection (issue 10)', () => {
  it('names and summaries from a catalog are escaped on the terminal and exact under --json', async () => {
    await pkg(root, ['update']);
    const search = await pkg(root, ['search', 'nice']);
    expect(search.code, search.stderr).toBe(0);
    expect(search.stdout).toContain(EVIL_SHOWN);
    expect(search.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    const info = await pkg(root, ['info', 'evil']);
    expect(info.stdout).toContain(EVIL_SHOWN);
    expect(info.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    const json = await pkg(root, ['search', 'nice', '--json']);
    expect(json.json?.result[0].summary).toBe(EVIL_SUMMARY);
  });
});
