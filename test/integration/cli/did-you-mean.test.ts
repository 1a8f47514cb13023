import { describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/run-cli.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

/** A near miss of a flag or a topic's command is a usage error (exit 2) that names the nearest real one. */
describe('did you mean, in every tool (built CLIs)', { timeout: 120_000 }, () => {
  it('swpkg and swport suggest the nearest flag of the command for an unknown one', async () => {
    const d = await tempDir();
    const before = await treeHash(d);
    const publish = await runCli('swpkg', ['repo', 'publish', d, '--kye', 'k', '--out', d, '--json']);
    expect([publish.code, publish.json.error.code]).toEqual([2, 'E_USAGE']);
    expect(publish.json.error.hint).toContain('`--key`');
    const build = await runCli('swport', ['recipe', 'build', 'lua', '--tagret', 'aarch64-linux-musl', '--json']);
    expect([build.code, build.json.error.code]).toEqual([2, 'E_USAGE']);
    expect(build.json.error.hint).toContain('`--target`');
    // Nothing near: no guess, only the way to the help.
    const far = await runCli('swpkg', ['pack', '--zzzzzzzz', '--json']);
    expect([far.code, far.json.error.code]).toEqual([2, 'E_USAGE']);
    expect(far.json.error.hint).not.toContain('did you mean');
    expect(await treeHash(d)).toBe(before);
  });

  it('pkg suggests the topic command for a near miss (`pkg repo ad`), and changes nothing', async () => {
    const root = await tempDir();
    const before = await treeHash(root);
    const r = await runCli('pkg', ['--root', root, 'repo', 'ad', 'main', 'http://127.0.0.1:1/', '--json']);
    expect([r.code, r.json.error.code]).toEqual([2, 'E_USAGE']);
    expect(r.json.error.hint).toContain('`pkg repo add`');
    expect(await treeHash(root)).toBe(before);
  });
});
