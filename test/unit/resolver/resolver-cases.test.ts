/**
 * Runs every case in ./cases (one JSON file per case, apk-tools' test/solver
 * style): available packages, installed set, request, and either the expected
 * plan or the expected error code with explanation fragments, plus where the
 * case comes from.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SwpkgError } from '../../../catalog/errors.js';
import { parseRequirement, resolve, type Candidate, type InstalledPackage, type ResolveRequest } from '../../../catalog/resolver.js';
import { candidate, installedPkg, planProblems, stepText } from './resolver-helpers.js';

interface CaseFile {
  description: string;
  source: string;
  available?: (Partial<Candidate> & { name: string; version: string })[];
  installed?: (Partial<InstalledPackage> & { name: string; version: string })[];
  request: { install?: (string | { name: string; range: string })[]; remove?: string[]; upgrade?: string[] | 'all'; maxSteps?: number };
  expect:
    | { steps: string[]; final: string[]; world: string[]; repos?: Record<string, string> }
    | { error: string; explanation?: string[]; message?: string[]; details?: Record<string, unknown> };
}

const dir = join(import.meta.dirname, 'cases');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();

function load(file: string): CaseFile {
  const c = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CaseFile;
  if (typeof c.description !== 'string' || typeof c.source !== 'string' || !c.request || !c.expect) {
    throw new Error(`${file}: a case needs description, source, request and expect`);
  }
  return c;
}

describe('resolver cases', () => {
  it('has the case table', () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
  });

  describe.each(files)('%s', (file) => {
    const c = load(file);
    it(c.description, () => {
      const available = (c.available ?? []).map(candidate);
      const installed = (c.installed ?? []).map(installedPkg);
      const req: ResolveRequest = { available, installed };
      // A string is parsed as `pkg install` would; an object goes to resolve() as is (to test its own checks).
      if (c.request.install) req.install = c.request.install.map((r) => (typeof r === 'string' ? parseRequirement(r) : r));
      if (c.request.remove) req.remove = c.request.remove;
      if (c.request.upgrade) req.upgrade = c.request.upgrade;
      if (c.request.maxSteps !== undefined) req.maxSteps = c.request.maxSteps;
      const snapshot = structuredClone(req);

      if ('error' in c.expect) {
        let caught: unknown;
        try {
          resolve(req);
        } catch (e) {
          caught = e;
        }
        expect(caught, 'resolve should have thrown').toBeInstanceOf(SwpkgError);
        const err = caught as SwpkgError;
        expect(err.code, err.message).toBe(c.expect.error);
        const lines = (err.details['explanation'] as string[] | undefined) ?? [];
        for (const frag of c.expect.explanation ?? []) {
          expect(
            lines.some((l) => l.includes(frag)),
            `no explanation line contains ${JSON.stringify(frag)}:\n${lines.join('\n')}`,
          ).toBe(true);
        }
        for (const frag of c.expect.message ?? []) expect(err.message).toContain(frag);
        for (const [k, v] of Object.entries(c.expect.details ?? {})) expect(err.details[k]).toEqual(v);
      } else {
        const plan = resolve(req);
        expect(plan.steps.map(stepText)).toEqual(c.expect.steps);
        expect(plan.final.map((p) => `${p.name}@${p.version}`)).toEqual(c.expect.final);
        expect(plan.world).toEqual(c.expect.world);
        expect(planProblems(plan, installed)).toEqual([]);
        for (const [name, repo] of Object.entries(c.expect.repos ?? {})) {
          expect(plan.final.find((p) => p.name === name)?.candidate?.repo).toBe(repo);
        }
        // Same input, same plan: nothing in the resolver depends on time or iteration luck.
        expect(resolve(structuredClone(snapshot)).steps.map(stepText)).toEqual(c.expect.steps);
      }
      // The resolver is pure: the request it was given is untouched, success or failure.
      expect(req).toEqual(snapshot);
    });
  });
});
