import { describe, expect, it } from 'vitest';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ERROR_CODES,
  ExitCode,
  MANIFEST_LIMITS,
  packPackage,
  parseHealthCheckSpec,
  verifyPackageFile,
  type PackageMeta,
  type SwpkgError,
} from '../../../catalog/index.js';
import { craftManifest, craftSwpkg, type CraftEntry } from '../../faults/craft.js';
import { tempDir, treeHash } from '../../helpers/tmp.js';

const meta: PackageMeta = {
  name: 'svc',
  version: '1.0.0',
  arch: 'x86_64',
  abi: 'linux-musl-static',
  summary: 'a service',
  license: 'MIT',
};

async function payload(dir: string): Promise<void> {
  await mkdir(join(dir, 'libexec/svc'), { recursive: true });
  await writeFile(join(dir, 'libexec/svc/health'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await writeFile(join(dir, 'libexec/svc/notes.txt'), 'not a program\n');
  await chmod(join(dir, 'libexec/svc/notes.txt'), 0o644);
}

const ok = { name: 'responds', command: 'libexec/svc/health', timeout: 10, level: 'required' };

describe('manifest health checks', () => {
  it('a declared check is packed, signed with the manifest and read back unchanged', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const health = [ok, { name: 'slow-warmup', command: 'libexec/svc/health', timeout: 600, level: 'advisory' }];
    const r = await packPackage({ dir: join(d, 'src'), meta: { ...meta, health } as PackageMeta, out: join(d, 'svc.swpkg') });
    expect(r.manifest.health).toEqual(health);
    expect((await verifyPackageFile(join(d, 'svc.swpkg'))).manifest.health).toEqual(health);
  });

  it('a package without checks has no health field (existing packages keep their bytes)', async () => {
    const d = await tempDir();
    await payload(join(d, 'src'));
    const r = await packPackage({ dir: join(d, 'src'), meta, out: join(d, 'svc.swpkg') });
    expect('health' in r.manifest).toBe(false);
  });

  // Each row: a bad health declaration refused at pack time, with the code and the field it names.
  const bad: { why: string; health: unknown; code: string; field: string }[] = [
    { why: 'absolute command', health: [{ ...ok, command: '/bin/true' }], code: 'E_UNSAFE_PATH', field: 'health[0].command' },
    { why: 'command climbing out', health: [{ ...ok, command: '../../bin/sh' }], code: 'E_UNSAFE_PATH', field: 'health[0].command' },
    {
      why: 'command with ..',
      health: [{ ...ok, command: 'libexec/../libexec/svc/health' }],
      code: 'E_UNSAFE_PATH',
      field: 'health[0].command',
    },
    {
      why: 'command not in the package',
      health: [{ ...ok, command: 'bin/missing' }],
      code: 'E_INVALID_MANIFEST',
      field: 'health[0].command',
    },
    {
      why: 'command not executable',
      health: [{ ...ok, command: 'libexec/svc/notes.txt' }],
      code: 'E_INVALID_MANIFEST',
      field: 'health[0].command',
    },
    { why: 'command is a folder', health: [{ ...ok, command: 'libexec/svc' }], code: 'E_INVALID_MANIFEST', field: 'health[0].command' },
    { why: 'zero timeout', health: [{ ...ok, timeout: 0 }], code: 'E_INVALID_MANIFEST', field: 'health[0].timeout' },
    { why: 'negative timeout', health: [{ ...ok, timeout: -5 }], code: 'E_INVALID_MANIFEST', field: 'health[0].timeout' },
    { why: 'huge timeout', health: [{ ...ok, timeout: 86_400 }], code: 'E_INVALID_MANIFEST', field: 'health[0].timeout' },
    { why: 'fractional timeout', health: [{ ...ok, timeout: 1.5 }], code: 'E_INVALID_MANIFEST', field: 'health[0].timeout' },
    { why: 'timeout as text', health: [{ ...ok, timeout: '10' }], code: 'E_INVALID_MANIFEST', field: 'health[0].timeout' },
    { why: 'unknown level', health: [{ ...ok, level: 'wanted' }], code: 'E_INVALID_MANIFEST', field: 'health[0].level' },
    { why: 'bad name', health: [{ ...ok, name: 'Has Spaces' }], code: 'E_INVALID_MANIFEST', field: 'health[0].name' },
    { why: 'duplicate name', health: [ok, ok], code: 'E_INVALID_MANIFEST', field: 'health[1].name' },
    { why: 'unknown field', health: [{ ...ok, shell: true }], code: 'E_INVALID_MANIFEST', field: 'health[0].shell' },
    { why: 'not an array', health: ok, code: 'E_INVALID_MANIFEST', field: 'health' },
    {
      why: 'too many checks',
      health: Array.from({ length: MANIFEST_LIMITS.healthChecks + 1 }, (_, i) => ({ ...ok, name: `c${i}` })),
      code: 'E_INVALID_MANIFEST',
      field: 'health',
    },
  ];
  for (const c of bad) {
    it(`pack refuses ${c.why} (${c.code}) and writes nothing`, async () => {
      const d = await tempDir();
      await payload(join(d, 'src'));
      const before = await treeHash(d);
      await expect(
        packPackage({ dir: join(d, 'src'), meta: { ...meta, health: c.health } as PackageMeta, out: join(d, 'svc.swpkg') }),
      ).rejects.toMatchObject({ code: c.code, details: { field: c.field } });
      expect(await treeHash(d)).toBe(before);
      expect(await readdir(d)).toEqual(['src']);
    });
  }

  it('a package whose manifest declares a bad check is a verification refusal (exit 3) when read', async () => {
    const d = await tempDir();
    const files: CraftEntry[] = [{ path: 'run', type: 'file', mode: 0o755, content: '#!/bin/sh\n' }];
    const cases: [unknown, string][] = [
      [[{ ...ok, command: '/bin/sh' }], 'E_UNSAFE_PATH'],
      [[{ ...ok, command: 'run', timeout: 0 }], 'E_BAD_MANIFEST'],
      [[{ ...ok, command: 'nope' }], 'E_BAD_MANIFEST'],
    ];
    for (const [i, [health, code]] of cases.entries()) {
      const file = join(d, `bad-${i}.swpkg`);
      await writeFile(file, craftSwpkg({ manifest: craftManifest('svc', '1.0.0', files, { health }), entries: files }));
      const e = await verifyPackageFile(file).then(
        () => undefined,
        (x: unknown) => x as SwpkgError,
      );
      expect(e?.code).toBe(code);
      expect(e && ERROR_CODES[e.code]).toBe(ExitCode.VERIFICATION);
    }
  });

  it('parses --health-check NAME:COMMAND[:TIMEOUT][:LEVEL]', () => {
    expect(parseHealthCheckSpec('up:bin/check')).toEqual({ name: 'up', command: 'bin/check', timeout: 30, level: 'required' });
    expect(parseHealthCheckSpec('up:bin/check:5:advisory')).toEqual({ name: 'up', command: 'bin/check', timeout: 5, level: 'advisory' });
    expect(parseHealthCheckSpec('up:bin/check:advisory')).toEqual({ name: 'up', command: 'bin/check', timeout: 30, level: 'advisory' });
    expect(parseHealthCheckSpec('up:bin/a:b:0')).toEqual({ name: 'up', command: 'bin/a:b', timeout: 0, level: 'required' });
    expect(() => parseHealthCheckSpec('up')).toThrow(expect.objectContaining({ code: 'E_INVALID_MANIFEST' }) as Error);
    expect(() => parseHealthCheckSpec(':bin/x')).toThrow(expect.objectContaining({ code: 'E_INVALID_MANIFEST' }) as Error);
  });
});
