/**
 * Test-side helpers for the resolver: a plan checker written independently of
 * the resolver (straight from the semantics in catalog/resolver.ts's header),
 * so a wrong plan fails even when a case's expectation was written carelessly.
 */
import semver from 'semver';
import type { Candidate, InstalledPackage, Plan, PlanStep } from '../../../catalog/resolver.js';

export interface PkgLike {
  name: string;
  version: string;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
}

function split(ref: string): [string, string | null] {
  const at = ref.indexOf('@', 1);
  return at < 0 ? [ref, null] : [ref.slice(0, at), ref.slice(at + 1)];
}

const ranges = new Map<string, semver.Range>();
function rangeOf(text: string): semver.Range {
  let r = ranges.get(text);
  if (!r) ranges.set(text, (r = new semver.Range(text)));
  return r;
}

function fits(version: string, range: string): boolean {
  return rangeOf(range).test(version);
}

function isAny(range: string): boolean {
  return rangeOf(range).range === '';
}

/** Does `p` meet a requirement on NAME within RANGE? */
export function meets(p: PkgLike, name: string, range: string): boolean {
  const any = isAny(range);
  if (p.name === name && (any || fits(p.version, range))) return true;
  return p.provides.some((ref) => {
    const [n, v] = split(ref);
    if (n !== name) return false;
    if (any) return true;
    return v !== null && fits(v, range);
  });
}

function conflictHits(ref: string, q: PkgLike): boolean {
  const [n, range] = split(ref);
  if (q.name === n) return range === null || fits(q.version, range);
  return q.provides.some((pr) => {
    const [pn, pv] = split(pr);
    if (pn !== n) return false;
    if (range === null) return true;
    return pv !== null && fits(pv, range);
  });
}

/** Every problem of an installed set: duplicate names, unmet dependencies, conflicts. Empty when consistent. */
export function inconsistencies(set: readonly PkgLike[]): string[] {
  const out: string[] = [];
  const names = new Set<string>();
  for (const p of set) {
    if (names.has(p.name)) out.push(`${p.name} appears twice`);
    names.add(p.name);
  }
  for (const p of set) {
    for (const [d, r] of Object.entries(p.depends)) {
      if (!set.some((q) => meets(q, d, r))) out.push(`${p.name}@${p.version} needs ${d}@${r}, unmet`);
    }
    for (const c of p.conflicts) {
      for (const q of set)
        if (q.name !== p.name && conflictHits(c, q)) out.push(`${p.name}@${p.version} conflicts with ${q.name}@${q.version}`);
    }
  }
  return out;
}

/** `install a@1.0.0 (requested)`, `upgrade lib 1.0.0 -> 2.0.0 (needed by …)`, `remove x@1.0.0 (no longer needed)`. */
export function stepText(s: PlanStep): string {
  switch (s.action) {
    case 'install':
      return `install ${s.name}@${s.to} (${s.reason})`;
    case 'upgrade':
    case 'downgrade':
      return `${s.action} ${s.name} ${s.from} -> ${s.to} (${s.reason})`;
    case 'remove':
      return `remove ${s.name}@${s.from} (${s.reason})`;
    case 'keep':
      return `keep ${s.name}@${s.to} (${s.reason})`;
  }
}

export function candidate(p: Partial<Candidate> & { name: string; version: string }): Candidate {
  return { depends: {}, provides: [], conflicts: [], ...p };
}

export function installedPkg(p: Partial<InstalledPackage> & { name: string; version: string }): InstalledPackage {
  return { depends: {}, provides: [], conflicts: [], explicit: false, ...p };
}

/** Checks the structural promises every plan makes, whatever the case. */
export function planProblems(plan: Plan, installed: readonly InstalledPackage[]): string[] {
  const out = inconsistencies(plan.final);
  const before = new Map(installed.map((p) => [p.name, p]));
  const after = new Map(plan.final.map((p) => [p.name, p]));
  for (const s of plan.steps) {
    if (['install', 'upgrade', 'downgrade'].includes(s.action) && s.candidate === undefined)
      out.push(`${s.action} ${s.name} has no candidate`);
    if (s.action === 'install' && before.has(s.name)) out.push(`install ${s.name} but it is installed`);
    if (s.action === 'remove' && after.has(s.name)) out.push(`remove ${s.name} but it is in the final set`);
    if (s.action === 'upgrade' && !semver.gt(s.to!, s.from!)) out.push(`upgrade ${s.name} is not upward`);
    if (s.action === 'downgrade' && !semver.lt(s.to!, s.from!)) out.push(`downgrade ${s.name} is not downward`);
  }
  for (const [name, p] of before) {
    const a = after.get(name);
    const step = plan.steps.find((s) => s.name === name && s.action !== 'keep');
    if (!a && step?.action !== 'remove') out.push(`${name} disappears without a remove step`);
    if (a && a.version !== p.version && !step) out.push(`${name} changes version without a step`);
  }
  for (const [name] of after) {
    if (!before.has(name) && !plan.steps.some((s) => s.name === name && s.action === 'install'))
      out.push(`${name} appears without an install step`);
  }
  for (const w of plan.world) if (!after.get(w)?.explicit) out.push(`world name ${w} is not an explicit final package`);
  return out;
}
