import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildImages, type StageRepo } from '../../../images/index.js';
import { failure } from '../../helpers/failure.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * The image builder's staging option refuses bad input before it writes
 * anything: the artifacts folder is not even created (the kernel packages and
 * every image step come after the check).
 */
const FP = 'ab'.repeat(32);
const cases: Array<{ why: string; repos: StageRepo[]; code: string }> = [
  { why: 'a URL that is not http', repos: [{ name: 'main', url: 'ftp://10.0.2.2/', fingerprint: FP }], code: 'E_USAGE' },
  { why: 'a bad name', repos: [{ name: 'Main Repo', url: 'http://10.0.2.2:8080/', fingerprint: FP }], code: 'E_USAGE' },
  { why: 'a short fingerprint', repos: [{ name: 'main', url: 'http://10.0.2.2:8080/', fingerprint: 'abc' }], code: 'E_USAGE' },
  {
    why: 'the same name twice',
    repos: [
      { name: 'main', url: 'http://10.0.2.2:8080/', fingerprint: FP },
      { name: 'main', url: 'http://10.0.2.2:8081/', fingerprint: FP },
    ],
    code: 'E_USAGE',
  },
  {
    why: 'a root file that does not exist',
    repos: [{ name: 'main', url: 'http://10.0.2.2:8080/', rootFile: '/nonexistent/repo-root.pub' }],
    code: 'E_NOT_FOUND',
  },
];

describe('buildImages stagedRepos', () => {
  for (const c of cases) {
    it(`refuses ${c.why} (${c.code}) before writing anything`, async () => {
      const outDir = join(await tempDir('stage-repos-'), 'images');
      const e = await failure(buildImages({ outDir, stagedRepos: c.repos, allowApt: false }));
      expect(e.code).toBe(c.code);
      expect(existsSync(outDir)).toBe(false);
    });
  }
});
