/**
 * Dependency resolver: from the available catalog entries, the installed set
 * and a request, computes the whole next installed set (a Plan), or explains
 * in words why none exists (DESIGN.md: "which requirement of which package
 * cannot be met, and why").
 *
 * Model, as apk-tools has it: the "world" is the set of explicitly installed
 * names, and the installed set after any change is exactly what the world
 * needs. Installed packages nothing in the world needs any more are removed
 * as "no longer needed". Ranges given on the command line hold for this
 * resolve only; the world keeps names.
 *
 * Semantics:
 * - one version per name; the highest version satisfying every constraint is
 *   preferred, but an installed version that still satisfies is kept (no
 *   surprise upgrades) unless its name is in `upgrade`;
 * - `provides` entries are `name` or `name@version`: a package satisfies a
 *   dependency on a virtual name it provides; an unversioned provide only
 *   satisfies an unversioned (`*`) dependency;
 * - `conflicts` entries are `name` or `name@range`, matched against real names
 *   and provided names, refused in both directions; a package never conflicts
 *   with itself (the Debian "provides X, conflicts X" idiom);
 * - ranges follow npm `semver` (a prerelease satisfies a range only when the
 *   range names a prerelease of the same version); `*` means any version,
 *   prereleases included but tried after every release;
 * - dependency cycles are fine.
 *
 * The search is depth-first backtracking over requirements, with one step of
 * look-ahead (a candidate whose dependency has nothing left is refused before
 * it is chosen), conflict-directed backjumping (a dead end jumps back to the
 * latest choice that contributed to it, not merely the previous one) and
 * learned nogoods (sets of choices proven incompatible are never retried), so
 * independent sub-problems and long dependency chains do not multiply. The
 * brute-force comparison in test/unit/resolver checks it stays complete. It is
 * bounded by `maxSteps` candidate tries and then fails with E_RESOLVE rather
 * than hang.
 *
 * Explanations are gathered at dead ends (a requirement whose every candidate
 * was refused for a direct reason) and reported most recent first.
 */
import semver from 'semver';
import type { Range, SemVer } from 'semver';
import { SwpkgError, type ErrorCode } from './errors.js';
import { NAME_RE } from './manifest.js';

/** One installable version of a package, as a catalog lists it. Extra fields ride along untouched. */
export interface Candidate {
  name: string;
  version: string;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
  repo?: string;
  arch?: string;
}

/** One installed package, as the store's generation manifest records it. */
export interface InstalledPackage {
  name: string;
  version: string;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
  /** In the world: installed because a person asked for it, not as a dependency. */
  explicit: boolean;
}

/** `name` (a real or virtual name) and an optional semver range (default `*`). */
export interface Requirement {
  name: string;
  range?: string;
}

export interface ResolveRequest<C extends Candidate = Candidate, I extends InstalledPackage = InstalledPackage> {
  /** Catalog entries, in priority order: when two share NAME@VERSION the first wins. */
  available: readonly C[];
  installed: readonly I[];
  install?: readonly Requirement[];
  remove?: readonly string[];
  /** Names whose installed version should give way to the highest one that fits, or every installed name. */
  upgrade?: readonly string[] | 'all';
  /** Candidate tries before giving up with E_RESOLVE (default DEFAULT_MAX_RESOLVE_STEPS). */
  maxSteps?: number;
}

export type PlanAction = 'install' | 'upgrade' | 'downgrade' | 'remove' | 'keep';

export interface PlanStep<C extends Candidate = Candidate, I extends InstalledPackage = InstalledPackage> {
  action: PlanAction;
  name: string;
  /** The installed version (upgrade, downgrade, remove, keep). */
  from?: string;
  /** The version after the change (install, upgrade, downgrade, keep). */
  to?: string;
  /** The catalog entry to fetch (install, upgrade, downgrade). */
  candidate?: C;
  /** The installed record (upgrade, downgrade, remove, keep). */
  installed?: I;
  /** `requested`, `needed by NAME@VERSION`, `upgrade requested`, `explicitly installed`, `no longer needed`. */
  reason: string;
}

/** One package of the resulting installed set. */
export interface PlannedPackage<C extends Candidate = Candidate, I extends InstalledPackage = InstalledPackage> {
  name: string;
  version: string;
  depends: Record<string, string>;
  provides: string[];
  conflicts: string[];
  explicit: boolean;
  /** Set when this version must be fetched from the catalog. */
  candidate?: C;
  /** Set when exactly this version is installed now (nothing to fetch). */
  installed?: I;
}

export interface Plan<C extends Candidate = Candidate, I extends InstalledPackage = InstalledPackage> {
  /** Removals first, then installs/upgrades/downgrades with dependencies before dependents, then keeps of requested names. */
  steps: PlanStep<C, I>[];
  /** The whole installed set after the change, sorted by name. */
  final: PlannedPackage<C, I>[];
  /** Explicit names after the change, sorted. */
  world: string[];
  /** Candidate tries the search needed. */
  searchSteps: number;
}

/** One unmet requirement, as data (rendered into `details.explanation`). */
export interface ResolveProblem {
  /** Who requires what, e.g. `curl@7.88.1 requires openssl@^3.0.0` or `requested foo`. */
  requirement: string;
  /** missing: no such name; version: no version fits; conflict/clash/removed: the fitting candidates were refused for that reason; mixed: several reasons. */
  kind: 'missing' | 'version' | 'conflict' | 'clash' | 'removed' | 'mixed';
  /** The full sentence. */
  text: string;
  /** From the request or an explicit package down to the package that has the requirement. */
  chain: string[];
}

export const DEFAULT_MAX_RESOLVE_STEPS = 100_000;
const MAX_EXPLANATION_LINES = 20;
const MAX_RECORDED_PROBLEMS = 200;
const MAX_LEARNED_NOGOODS = 100_000;
const MAX_LISTED_VERSIONS = 8;

// ---------------------------------------------------------------------------
// Parsed package versions and requirements

interface ProvideRef {
  name: string;
  version: SemVer | null;
  text: string;
}

interface ConflictRef {
  name: string;
  range: Range | null;
  text: string;
}

interface DepRef {
  name: string;
  rangeText: string;
  range: Range | null;
  /** The search's options for this requirement, once computed (nodes live for one resolve). */
  options?: unknown;
}

/** One version of one package that could be in the final set. */
interface Node<C, I> {
  name: string;
  version: string;
  id: string;
  sv: SemVer;
  depends: Record<string, string>;
  providesRaw: string[];
  conflictsRaw: string[];
  deps: DepRef[];
  provides: ProvideRef[];
  /** Distinct provided names other than its own. */
  provideNames: string[];
  conflicts: ConflictRef[];
  /** Memo of range tests on `sv`: the search asks the same questions many times. */
  fits: Map<Range, boolean>;
  installed: I | undefined;
  candidate: C | undefined;
}

class RangeCache {
  private readonly cache = new Map<string, Range | null>();
  /** null means "any version". Throws E_INVALID_RANGE naming `where`. */
  get(text: string, where: string): Range | null {
    const hit = this.cache.get(text);
    if (hit !== undefined) return hit;
    let r: Range | null;
    try {
      r = new semver.Range(text);
    } catch {
      throw new SwpkgError('E_INVALID_RANGE', `${where}: "${text}" is not a semver range`, {
        hint: 'use a range such as ^1.2.0, >=2 <3 or *',
        details: { where, range: text },
      });
    }
    // `*`, `x` and the empty range parse to an empty comparator string: "any version".
    if (r.range === '') r = null;
    this.cache.set(text, r);
    return r;
  }
}

function rangeText(r: DepRef | { rangeText: string; range: Range | null }): string {
  return r.range === null ? '' : `@${r.rangeText}`;
}

function parseVersion(version: string, where: string): SemVer {
  const v = typeof version === 'string' ? semver.parse(version) : null;
  if (v === null || v.version !== version) {
    throw new SwpkgError('E_INVALID_VERSION', `${where}: "${String(version)}" is not a semantic version`, {
      details: { where, version: String(version) },
    });
  }
  return v;
}

function splitRef(ref: string): { name: string; rest: string | null } {
  const at = ref.indexOf('@', 1);
  return at < 0 ? { name: ref, rest: null } : { name: ref.slice(0, at), rest: ref.slice(at + 1) };
}

function makeNode<C, I>(
  p: { name: string; version: string; depends: Record<string, string>; provides: string[]; conflicts: string[] },
  ranges: RangeCache,
): Node<C, I> {
  const id = `${p.name}@${p.version}`;
  const sv = parseVersion(p.version, id);
  const depends = p.depends ?? {};
  const deps = Object.keys(depends)
    .sort()
    .map((name) => {
      const text = depends[name] ?? '*';
      return { name, rangeText: text, range: ranges.get(text, `${id} depends on ${name}`) };
    });
  const provides = (p.provides ?? []).map((text) => {
    const { name, rest } = splitRef(text);
    return { name, version: rest === null ? null : parseVersion(rest, `${id} provides ${text}`), text };
  });
  const conflicts = (p.conflicts ?? []).map((text) => {
    const { name, rest } = splitRef(text);
    return { name, range: rest === null ? null : ranges.get(rest, `${id} conflicts with ${text}`), text };
  });
  return {
    name: p.name,
    version: p.version,
    id,
    sv,
    depends,
    providesRaw: p.provides ?? [],
    conflictsRaw: p.conflicts ?? [],
    deps,
    provides,
    provideNames: [...new Set(provides.map((x) => x.name))].filter((x) => x !== p.name),
    conflicts,
    fits: new Map(),
    installed: undefined,
    candidate: undefined,
  };
}

function nodeFits(n: Node<unknown, unknown>, r: Range | null): boolean {
  if (r === null) return true;
  let hit = n.fits.get(r);
  if (hit === undefined) {
    hit = r.test(n.sv);
    n.fits.set(r, hit);
  }
  return hit;
}

/** Does `n` satisfy a requirement on `name` within `range` (directly or through a provide)? */
function satisfies(n: Node<unknown, unknown>, name: string, range: Range | null): boolean {
  if (n.name === name) {
    if (nodeFits(n, range)) return true;
    if (n.provideNames.length === 0) return false;
  }
  for (const p of n.provides) {
    if (p.name !== name) continue;
    if (range === null) return true;
    if (p.version !== null && range.test(p.version)) return true;
  }
  return false;
}

function conflictHits(c: ConflictRef, m: Node<unknown, unknown>): boolean {
  if (m.name === c.name) return nodeFits(m, c.range);
  for (const p of m.provides) {
    if (p.name !== c.name) continue;
    if (c.range === null) return true;
    if (p.version !== null && c.range.test(p.version)) return true;
  }
  return false;
}

function byVersionDesc(a: Node<unknown, unknown>, b: Node<unknown, unknown>): number {
  return semver.rcompare(a.sv, b.sv);
}

interface RawEntry<C, I> {
  pkg: C | I;
  installed: I | undefined;
  candidate: C | undefined;
}

/**
 * Every known version of every package, indexed by name and by provided name.
 * Versions and ranges are parsed only for the names a resolve touches: a
 * request that pulls 20 packages from a 10 000-entry catalog parses 20.
 */
class Universe<C extends Candidate, I extends InstalledPackage> {
  readonly installedByName = new Map<string, Node<C, I>>();
  readonly ranges = new RangeCache();
  private readonly raw = new Map<string, RawEntry<C, I>[]>();
  /** Virtual name -> real names with a version that provides it. */
  private readonly providerNames = new Map<string, Set<string>>();
  private readonly built = new Map<string, Node<C, I>[]>();
  private readonly builtProviders = new Map<string, Node<C, I>[]>();

  constructor(available: readonly C[], installed: readonly I[]) {
    const byId = new Map<string, RawEntry<C, I>>();
    // The installed record wins over a catalog entry of the same version: it describes what is on disk.
    const seenInstalled = new Set<string>();
    for (const rec of installed) {
      if (seenInstalled.has(rec.name)) {
        throw new SwpkgError('E_STORE', `the installed set lists ${rec.name} twice`, { details: { name: rec.name } });
      }
      seenInstalled.add(rec.name);
      byId.set(`${rec.name}@${rec.version}`, { pkg: rec, installed: rec, candidate: undefined });
    }
    for (const c of available) {
      const id = `${c.name}@${c.version}`;
      const existing = byId.get(id);
      if (existing) existing.candidate ??= c;
      else byId.set(id, { pkg: c, installed: undefined, candidate: c });
    }
    for (const e of byId.values()) {
      push(this.raw, e.pkg.name, e);
      for (const ref of e.pkg.provides ?? []) {
        const name = splitRef(ref).name;
        if (name === e.pkg.name) continue;
        const set = this.providerNames.get(name);
        if (set) set.add(e.pkg.name);
        else this.providerNames.set(name, new Set([e.pkg.name]));
      }
    }
    for (const rec of installed) {
      const node = this.byName(rec.name).find((n) => n.installed === rec);
      if (node) this.installedByName.set(rec.name, node);
    }
  }

  /** Every version of a real name, highest first. */
  byName(name: string): Node<C, I>[] {
    const hit = this.built.get(name);
    if (hit) return hit;
    const nodes = (this.raw.get(name) ?? []).map((e) => {
      const node = makeNode<C, I>(e.pkg, this.ranges);
      node.installed = e.installed;
      node.candidate = e.candidate;
      return node;
    });
    nodes.sort(byVersionDesc);
    this.built.set(name, nodes);
    return nodes;
  }

  /** Versions of other names that provide `name`, by provider name then highest version first. */
  providersOf(name: string): Node<C, I>[] {
    const hit = this.builtProviders.get(name);
    if (hit) return hit;
    const out: Node<C, I>[] = [];
    for (const real of [...(this.providerNames.get(name) ?? [])].sort()) {
      for (const n of this.byName(real)) if (n.provides.some((p) => p.name === name)) out.push(n);
    }
    this.builtProviders.set(name, out);
    return out;
  }

  private known: string[] | undefined;
  knownNames(): string[] {
    this.known ??= [...new Set([...this.raw.keys(), ...this.providerNames.keys()])];
    return this.known;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

// ---------------------------------------------------------------------------
// Search state

type ReqKind = 'request' | 'world' | 'depends';

interface Req<C, I> {
  name: string;
  rangeText: string;
  range: Range | null;
  /** The dependency entry this requirement comes from, which caches its options. */
  dep?: DepRef;
  kind: ReqKind;
  by: Sel<C, I> | null;
  /** Decision level that selected `by` (0 for the request and the world). */
  origin: number;
}

interface Sel<C, I> {
  node: Node<C, I>;
  level: number;
  via: Req<C, I>;
}

/** Requirements still to meet, as an immutable stack: a level saves its state by keeping a pointer. */
interface Pending<C, I> {
  req: Req<C, I>;
  next: Pending<C, I> | null;
}

/** What the catalog offers for one requirement, before any choice: fitting candidates in preference order, and why the others do not fit. */
interface Options<C, I> {
  cands: Node<C, I>[];
  misses: string[];
  /** No package or provide of that name exists at all. */
  unknown: boolean;
}

interface Rejection {
  kind: 'clash' | 'conflict' | 'removed' | 'missing' | 'version' | 'learned';
  text: string;
  /** Decision levels whose choices cause the rejection (empty: the catalog alone rules the candidate out). */
  levels: number[];
  /** True when every level is needed to explain it (a dependency blocked several ways); else any one suffices. */
  allLevels: boolean;
  /** The text is a whole sentence about the candidate's own dependency, not a reason next to the requirement. */
  standalone: boolean;
  node: string;
}

interface Level<C, I> {
  n: number;
  req: Req<C, I>;
  options: Options<C, I>;
  idx: number;
  rest: Pending<C, I> | null;
  undoLen: number;
  conflictSet: Set<number>;
  rejections: Rejection[];
  selectedAny: boolean;
  /** The node chosen at this level now, if any. */
  current: Node<C, I> | null;
}

class Unsatisfiable extends Error {
  constructor(readonly gaveUp: boolean) {
    super('unsatisfiable');
  }
}

class Search<C extends Candidate, I extends InstalledPackage> {
  readonly selected = new Map<string, Sel<C, I>>();
  private readonly providersSel = new Map<string, Sel<C, I>[]>();
  private readonly conflictsSel = new Map<string, { sel: Sel<C, I>; c: ConflictRef }[]>();
  private readonly undo: Sel<C, I>[] = [];
  private pending: Pending<C, I> | null = null;
  private readonly levels: Level<C, I>[] = [];
  private readonly optionsCache = new Map<string, Options<C, I>>();
  /**
   * Learned nogoods: sets of nodes that cannot all be chosen together, indexed
   * by each member. Without them, a failure under one version of a package is
   * searched again under each of its other versions and each version of its
   * dependents, which multiplies along a dependency chain.
   */
  private readonly nogoods = new Map<Node<C, I>, Node<C, I>[][]>();
  private learnedCount = 0;
  steps = 0;
  /** By text; re-recording moves a problem to the end, so the end holds what the search met last. */
  private readonly problemsByText = new Map<string, ResolveProblem>();
  private requests: Req<C, I>[] = [];

  constructor(
    private readonly u: Universe<C, I>,
    private readonly removing: ReadonlySet<string>,
    private readonly upgrading: ReadonlySet<string>,
    private readonly maxSteps: number,
  ) {}

  /**
   * Problems met, most recent first: the last dead ends are the ones closest to
   * the final refutation, so they read best as the headline.
   */
  get problems(): ResolveProblem[] {
    return [...this.problemsByText.values()].reverse();
  }

  /**
   * Depth first: a package's dependencies are met right after it is chosen, so
   * a failure is found near the choice that caused it and a backjump throws
   * away little unrelated work.
   */
  run(roots: Req<C, I>[]): void {
    this.requests = roots.filter((r) => r.kind === 'request');
    for (let i = roots.length - 1; i >= 0; i--) this.pending = { req: roots[i]!, next: this.pending };
    for (;;) {
      while (this.pending && this.isSatisfied(this.pending.req)) this.pending = this.pending.next;
      if (!this.pending) return;
      const level: Level<C, I> = {
        n: this.levels.length + 1,
        req: this.pending.req,
        options: this.optionsFor(this.pending.req.dep ?? this.pending.req),
        idx: 0,
        rest: this.pending.next,
        undoLen: this.undo.length,
        conflictSet: new Set(),
        rejections: [],
        selectedAny: false,
        current: null,
      };
      this.levels.push(level);
      let cur = level;
      while (!this.tryCandidates(cur)) cur = this.backjump(cur);
    }
  }

  private isSatisfied(req: { name: string; range: Range | null }): boolean {
    const s = this.selected.get(req.name);
    if (s && nodeFits(s.node, req.range)) return true;
    for (const p of this.providersSel.get(req.name) ?? []) {
      if (satisfies(p.node, req.name, req.range)) return true;
    }
    return false;
  }

  /** Static: depends only on the catalog, the installed set, removals and upgrades, so it is cached per requirement. */
  private optionsFor(ref: DepRef): Options<C, I> {
    if (ref.options) return ref.options as Options<C, I>;
    const { name, range, rangeText } = ref;
    const key = `${name}\0${range === null ? '*' : rangeText}`;
    const hit = this.optionsCache.get(key);
    if (hit) {
      ref.options = hit;
      return hit;
    }
    const keep: Node<C, I>[] = [];
    const real: Node<C, I>[] = [];
    const providers: Node<C, I>[] = [];
    const misses: string[] = [];
    const versionMisses: Node<C, I>[] = [];
    const byName = this.u.byName(name);
    const byProvide = this.u.providersOf(name);
    const consider = (n: Node<C, I>, isReal: boolean): void => {
      if (this.removing.has(n.name)) {
        misses.push(`${n.id} is being removed`);
        return;
      }
      if (!satisfies(n, name, range)) {
        if (isReal) versionMisses.push(n);
        else misses.push(describeProvideMiss(n, name, rangeText));
        return;
      }
      // Keep what is installed unless asked to upgrade it: no surprise upgrades.
      if (n.installed && !this.upgrading.has(n.name)) keep.push(n);
      else if (isReal) real.push(n);
      else providers.push(n);
    };
    for (const n of byName) consider(n, true);
    for (const n of byProvide) consider(n, false);
    if (versionMisses.length > 0) misses.unshift(describeVersionMisses(name, range, rangeText, versionMisses));
    // "Any version" admits prereleases, but only after every release: `pkg install foo` must not pick 2.0.0-rc.1 over 1.9.0.
    const releasesFirst = (xs: Node<C, I>[]): Node<C, I>[] =>
      range === null ? [...xs.filter((n) => n.sv.prerelease.length === 0), ...xs.filter((n) => n.sv.prerelease.length > 0)] : xs;
    const out = {
      cands: [...keep, ...releasesFirst(real), ...releasesFirst(providers)],
      misses,
      unknown: byName.length === 0 && byProvide.length === 0,
    };
    this.optionsCache.set(key, out);
    ref.options = out;
    return out;
  }

  private readonly whyNoneCache = new Map<Options<C, I>, string>();
  private whyNone(name: string, o: Options<C, I>): string {
    const hit = this.whyNoneCache.get(o);
    if (hit !== undefined) return hit;
    let why = o.misses.join('; ');
    if (o.unknown) {
      const hint = didYouMean(name, this.u.knownNames());
      why = `nothing provides "${name}" (no package or provides named ${name}${hint ? `; did you mean "${hint}"?` : ''})`;
    }
    this.whyNoneCache.set(o, why);
    return why;
  }

  /** Tries the level's remaining candidates; true once one is selected. */
  private tryCandidates(level: Level<C, I>): boolean {
    this.restore(level);
    const cands = level.options.cands;
    while (level.idx < cands.length) {
      const node = cands[level.idx++]!;
      if (++this.steps > this.maxSteps) throw new Unsatisfiable(true);
      const rejections = this.check(node);
      if (rejections === null) {
        this.select(node, level);
        level.selectedAny = true;
        return true;
      }
      // Any one single-culprit rejection refuses the node; the lowest lets the search jump furthest.
      const single = rejections.filter((r) => !r.allLevels);
      if (single.length > 0) {
        const lowest = Math.min(...single.map((r) => (r.levels.length === 0 ? 0 : Math.min(...r.levels))));
        level.conflictSet.add(lowest);
      } else {
        for (const l of rejections[0]!.levels) level.conflictSet.add(l);
      }
      level.rejections.push(...rejections);
    }
    return false;
  }

  /** The level is exhausted: record why, then return the level to resume at (or throw when none). */
  private backjump(level: Level<C, I>): Level<C, I> {
    this.record(level);
    const cs = new Set(level.conflictSet);
    cs.add(level.req.origin);
    cs.delete(level.n);
    cs.delete(0);
    if (cs.size === 0) throw new Unsatisfiable(false);
    // By resolution over "the requirement needs one of its candidates" and each candidate's reason,
    // the choices at the conflict-set levels cannot all stand together: remember that.
    this.learn([...cs].map((l) => this.levels[l - 1]!.current!));
    const target = Math.max(...cs);
    this.levels.length = target;
    const t = this.levels[target - 1]!;
    for (const x of cs) if (x !== target) t.conflictSet.add(x);
    return t;
  }

  private restore(level: Level<C, I>): void {
    while (this.undo.length > level.undoLen) this.unselect(this.undo.pop()!);
    this.pending = level.rest;
    level.current = null;
  }

  private learn(nodes: Node<C, I>[]): void {
    if (this.learnedCount >= MAX_LEARNED_NOGOODS) return;
    this.learnedCount++;
    for (const n of nodes) push(this.nogoods, n, nodes);
  }

  /**
   * Why `node` cannot join the current selection: another version of its name
   * is chosen, a conflict either way, or (looking one step ahead) one of its
   * dependencies has no candidate left. Empty when it can join.
   */
  private check(node: Node<C, I>): Rejection[] | null {
    // The common case (nothing against the node) allocates nothing: this runs once per search step.
    const ngs = this.nogoods.get(node);
    if (ngs !== undefined) {
      for (const ng of ngs) {
        if (!ng.every((n) => n === node || this.selected.get(n.name)?.node === n)) continue;
        const others = ng.filter((n) => n !== node);
        // Its reasons were recorded when it was learned; it only saves the search from repeating them.
        const text = `${node.id} cannot be chosen with ${others.map((n) => n.id).join(', ')}`;
        const levels = others.map((n) => this.selected.get(n.name)!.level);
        return [{ kind: 'learned', text, levels, allLevels: true, standalone: true, node: node.id }];
      }
    }
    let out: Rejection[] | null = null;
    const same = this.selected.get(node.name);
    if (same) {
      const text = `${same.node.id} is already chosen (${this.role(same)})`;
      (out ??= []).push({ kind: 'clash', text, levels: [same.level], allLevels: false, standalone: false, node: node.id });
    }
    for (const c of node.conflicts) {
      const m = this.selected.get(c.name);
      const candidates = m ? [m, ...(this.providersSel.get(c.name) ?? [])] : (this.providersSel.get(c.name) ?? []);
      for (const x of candidates) {
        if (x.node.name === node.name || !conflictHits(c, x.node)) continue;
        const text = `${node.id} conflicts with ${x.node.id} (${this.role(x)})`;
        (out ??= []).push({ kind: 'conflict', text, levels: [x.level], allLevels: false, standalone: false, node: node.id });
      }
    }
    if (this.conflictsSel.size > 0) {
      for (let i = -1; i < node.provideNames.length; i++) {
        for (const { sel, c } of this.conflictsSel.get(i < 0 ? node.name : node.provideNames[i]!) ?? []) {
          if (sel.node.name === node.name || !conflictHits(c, node)) continue;
          const text = `${sel.node.id} (${this.role(sel)}) conflicts with ${node.id}`;
          (out ??= []).push({ kind: 'conflict', text, levels: [sel.level], allLevels: false, standalone: false, node: node.id });
        }
      }
    }
    if (out) return out;
    for (const d of node.deps) {
      if (this.isSatisfied(d) || satisfies(node, d.name, d.range)) continue;
      const o = this.optionsFor(d);
      if (o.cands.length === 0) {
        const kind = o.unknown ? 'missing' : o.misses.every((m) => m.endsWith('is being removed')) ? 'removed' : 'version';
        const text = `${node.id} requires ${d.name}${rangeText(d)}, but ${this.whyNone(d.name, o)}`;
        return [{ kind, text, levels: [], allLevels: false, standalone: true, node: node.id }];
      }
      let blockers: Sel<C, I>[] | null = null;
      for (const c of o.cands) {
        const s = this.selected.get(c.name);
        if (!s) {
          blockers = null;
          break;
        }
        if (!blockers) blockers = [s];
        else if (!blockers.includes(s)) blockers.push(s);
      }
      if (blockers) {
        const why = blockers.map((s) => `${s.node.id} is already chosen (${this.role(s)})`).join('; ');
        const text = `${node.id} requires ${d.name}${rangeText(d)}, but ${why}`;
        return [{ kind: 'clash', text, levels: blockers.map((s) => s.level), allLevels: true, standalone: true, node: node.id }];
      }
    }
    return null;
  }

  private select(node: Node<C, I>, level: Level<C, I>): void {
    const sel: Sel<C, I> = { node, level: level.n, via: level.req };
    level.current = node;
    this.selected.set(node.name, sel);
    for (const name of node.provideNames) push(this.providersSel, name, sel);
    for (const c of node.conflicts) push(this.conflictsSel, c.name, { sel, c });
    this.undo.push(sel);
    let pending = level.rest;
    for (let i = node.deps.length - 1; i >= 0; i--) {
      const d = node.deps[i]!;
      pending = {
        req: { name: d.name, rangeText: d.rangeText, range: d.range, dep: d, kind: 'depends', by: sel, origin: level.n },
        next: pending,
      };
    }
    this.pending = pending;
  }

  /** Exact reverse of select(); called in LIFO order, so each entry is the last of its list. */
  private unselect(sel: Sel<C, I>): void {
    this.selected.delete(sel.node.name);
    for (const name of sel.node.provideNames) this.providersSel.get(name)?.pop();
    for (const c of sel.node.conflicts) this.conflictsSel.get(c.name)?.pop();
  }

  private record(level: Level<C, I>): void {
    // A level whose candidates were all tried deeper has its reasons recorded at deeper levels.
    if (level.selectedAny && level.rejections.length === 0) return;
    const req = level.req;
    const subject = describeRequirement(req);
    const chain = chainOf(req);
    const via = (c: string[]): string => (c.length > 1 ? ` (via ${c.join(' → ')})` : '');
    if (level.options.cands.length === 0) {
      const o = level.options;
      const kind = o.unknown ? 'missing' : o.misses.every((m) => m.endsWith('is being removed')) ? 'removed' : 'version';
      const why = this.whyNone(req.name, o);
      const text = o.unknown && req.kind === 'request' && req.range === null ? why : `${subject}, but ${why}`;
      this.addProblem({ requirement: subject, kind, text: text + via(chain), chain });
      return;
    }
    const plain = level.rejections.filter((r) => !r.standalone);
    for (const r of level.rejections) {
      if (!r.standalone || r.kind === 'learned') continue;
      const c = [...chain, r.node];
      this.addProblem({
        requirement: r.text.slice(0, r.text.indexOf(', but ')),
        kind: r.kind,
        text: r.text + via(c),
        chain: c,
      });
    }
    if (plain.length > 0) {
      const kinds = new Set(plain.map((r) => r.kind));
      const kind = kinds.size === 1 ? ([...kinds][0] as ResolveProblem['kind']) : 'mixed';
      const text = `${subject}, but ${[...new Set(plain.map((r) => r.text))].join('; ')}`;
      this.addProblem({ requirement: subject, kind, text: text + via(chain), chain });
    }
  }

  private addProblem(p: ResolveProblem): void {
    this.problemsByText.delete(p.text);
    this.problemsByText.set(p.text, p);
    if (this.problemsByText.size > MAX_RECORDED_PROBLEMS) this.problemsByText.delete(this.problemsByText.keys().next().value!);
  }

  /** How a chosen package is described next to its name in an explanation: why it is there. */
  private role(sel: Sel<C, I>): string {
    const parts: string[] = [];
    if (sel.node.installed) parts.push('installed');
    if (this.requests.some((r) => satisfies(sel.node, r.name, r.range))) parts.push('requested');
    else if (sel.via.kind === 'world' && !sel.node.installed) parts.push('explicitly installed');
    if (sel.via.kind === 'depends' && sel.via.by) parts.push(`${sel.via.by.node.id} requires ${sel.via.name}${rangeText(sel.via)}`);
    return parts.join('; ');
  }
}

function describeRequirement(req: Req<unknown, unknown>): string {
  const what = `${req.name}${rangeText(req)}`;
  if (req.kind === 'request') return `requested ${what}`;
  if (req.kind === 'world') return `explicitly installed ${what}`;
  return `${req.by?.node.id ?? '?'} requires ${what}`;
}

function chainOf(req: Req<unknown, unknown>): string[] {
  const out: string[] = [];
  let s = req.by;
  // Bounded by the number of selections: every step goes to an earlier selection.
  while (s) {
    out.unshift(s.node.id);
    s = s.via.by;
  }
  return out;
}

function describeVersionMisses(name: string, range: Range | null, text: string, nodes: Node<unknown, unknown>[]): string {
  const shown = nodes.slice(0, MAX_LISTED_VERSIONS).map((n) => {
    // A prerelease of a version the range accepts is what people most often mean to ask for.
    const pre = range !== null && n.sv.prerelease.length > 0 && range.test(`${n.sv.major}.${n.sv.minor}.${n.sv.patch}`);
    return pre ? `${n.version} (a prerelease: ask for it by name, e.g. ${name}@${n.version})` : n.version;
  });
  const more = nodes.length > MAX_LISTED_VERSIONS ? ` and ${nodes.length - MAX_LISTED_VERSIONS} older` : '';
  const verdict = nodes.length === 1 ? `does not satisfy ${text}` : `none satisfies ${text}`;
  return `the only available ${name} versions are ${shown.join(', ')}${more} (${verdict})`;
}

function describeProvideMiss(n: Node<unknown, unknown>, name: string, rangeText: string): string {
  const p = n.provides.find((x) => x.name === name && x.version !== null);
  if (p) return `${n.id} provides ${p.text} (does not satisfy ${rangeText})`;
  return `${n.id} provides ${name} without a version (a versioned requirement needs a versioned provide)`;
}

/** The closest known name within a small edit distance, for "did you mean". */
export function didYouMean(name: string, known: Iterable<string>): string | undefined {
  const limit = Math.min(2, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    if (k === name || Math.abs(k.length - name.length) > limit) continue;
    const d = editDistance(name, k, limit);
    if (d <= limit && (d < bestD || (d === bestD && best !== undefined && k < best))) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string
 * alignment: "ngnix" is one edit from "nginx"), giving up (returning
 * limit + 1) once a whole row exceeds `limit`.
 */
function editDistance(a: string, b: string, limit: number): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      row.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin > limit) return limit + 1;
    prev2 = prev;
    prev = row;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------
// Installed-set graph helpers (no search)

type Pkg = Pick<InstalledPackage, 'name' | 'version' | 'depends' | 'provides' | 'conflicts'>;

/** An installed set indexed by name and provided name, so each dependency is looked up, not scanned for. */
class InstalledGraph {
  readonly nodes: Node<unknown, unknown>[];
  readonly byName = new Map<string, Node<unknown, unknown>>();
  private readonly providers = new Map<string, Node<unknown, unknown>[]>();

  constructor(installed: readonly Pkg[]) {
    const ranges = new RangeCache();
    this.nodes = installed.map((p) => makeNode<unknown, unknown>(p, ranges));
    for (const n of this.nodes) {
      this.byName.set(n.name, n);
      for (const v of n.provideNames) push(this.providers, v, n);
    }
  }

  satisfiers(d: DepRef): Node<unknown, unknown>[] {
    const out: Node<unknown, unknown>[] = [];
    const real = this.byName.get(d.name);
    if (real && satisfies(real, d.name, d.range)) out.push(real);
    for (const p of this.providers.get(d.name) ?? []) if (p !== real && satisfies(p, d.name, d.range)) out.push(p);
    return out;
  }

  /** Names reachable from `roots` through dependencies met inside the set. */
  reachable(roots: Iterable<string>): Set<string> {
    const seen = new Set<string>();
    const stack = [...roots].filter((r) => this.byName.has(r));
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      for (const d of this.byName.get(name)!.deps) {
        for (const s of this.satisfiers(d)) if (!seen.has(s.name)) stack.push(s.name);
      }
    }
    return seen;
  }
}

interface NeedRecord {
  dependent: string;
  requires: string;
  satisfiedBy: string[];
}

function needs(installed: readonly Pkg[], removing: ReadonlySet<string>): NeedRecord[] {
  const g = new InstalledGraph(installed);
  const out: NeedRecord[] = [];
  for (const n of g.nodes) {
    if (removing.has(n.name)) continue;
    for (const d of n.deps) {
      const sat = g.satisfiers(d).filter((s) => s.name !== n.name);
      if (sat.length > 0 && sat.every((s) => removing.has(s.name))) {
        out.push({ dependent: n.id, requires: `${d.name}${rangeText(d)}`, satisfiedBy: sat.map((s) => s.name) });
      }
    }
  }
  return out;
}

/**
 * Installed packages that need `name` (or all of `names`, removed together):
 * those with a dependency that only the removed package(s) meet now. Sorted.
 * `pkg remove` refuses while this is not empty, naming them.
 */
export function findReverseDependencies(installed: readonly Pkg[], name: string | readonly string[]): string[] {
  const removing = new Set(typeof name === 'string' ? [name] : name);
  return [...new Set(needs(installed, removing).map((r) => r.dependent.slice(0, r.dependent.lastIndexOf('@'))))].sort();
}

/** Installed packages no explicit (world) name needs, directly or through others. Sorted. */
export function orphans(installed: readonly Pkg[], world: Iterable<string>): string[] {
  const g = new InstalledGraph(installed);
  const keep = g.reachable(world);
  return g.nodes
    .map((n) => n.name)
    .filter((n) => !keep.has(n))
    .sort();
}

/** Parses `name`, `name@range` (as `pkg install` takes them). */
export function parseRequirement(spec: string): Required<Requirement> {
  const at = spec.indexOf('@', 1);
  const name = at < 0 ? spec : spec.slice(0, at);
  const range = at < 0 ? '*' : spec.slice(at + 1);
  if (!NAME_RE.test(name)) {
    throw new SwpkgError('E_USAGE', `"${spec}" is not a package name (a-z, 0-9, +, ., _, -), optionally followed by @RANGE`, {
      details: { spec },
    });
  }
  if (semver.validRange(range) === null) {
    throw new SwpkgError('E_INVALID_RANGE', `"${range}" in "${spec}" is not a semver range`, {
      hint: 'use a range such as ^1.2.0, >=2 <3, 1.2.3 or *',
      details: { spec, range },
    });
  }
  return { name, range };
}

// ---------------------------------------------------------------------------
// resolve()

/**
 * Computes the installed set after installing, removing and upgrading as asked.
 * Pure: reads nothing but its argument, and the same input gives the same plan.
 *
 * Throws SwpkgError with
 * - E_RESOLVE: no installed set meets every requirement (or the search gave up),
 * - E_CONFLICT: the same, and every reason found is a `conflicts` entry,
 * - E_NEEDED: a package to remove is needed by one that stays,
 * - E_NOT_INSTALLED: removing or upgrading a name that is not installed,
 * - E_USAGE / E_INVALID_RANGE / E_INVALID_VERSION: malformed request or data.
 * E_RESOLVE and E_CONFLICT carry `details.explanation` (lines of text) and
 * `details.problems` (ResolveProblem[]).
 */
export function resolve<C extends Candidate, I extends InstalledPackage>(req: ResolveRequest<C, I>): Plan<C, I> {
  const u = new Universe<C, I>(req.available, req.installed);
  const install = (req.install ?? []).map((r) => {
    const range = r.range ?? '*';
    if (!NAME_RE.test(r.name)) throw new SwpkgError('E_USAGE', `"${r.name}" is not a package name`, { details: { name: r.name } });
    if (semver.validRange(range) === null) {
      throw new SwpkgError('E_INVALID_RANGE', `"${range}" (for ${r.name}) is not a semver range`, {
        hint: 'use a range such as ^1.2.0, >=2 <3, 1.2.3 or *',
        details: { name: r.name, range },
      });
    }
    return { name: r.name, range };
  });
  const removing = new Set(req.remove ?? []);
  for (const name of removing) {
    if (!u.installedByName.has(name)) {
      throw new SwpkgError('E_NOT_INSTALLED', `${name} is not installed`, { hint: 'pkg list shows what is installed', details: { name } });
    }
    if (install.some((r) => r.name === name)) {
      throw new SwpkgError('E_USAGE', `${name} is both to be installed and removed`, { details: { name } });
    }
  }
  const upgrading = new Set<string>(req.upgrade === 'all' ? u.installedByName.keys() : (req.upgrade ?? []));
  for (const name of upgrading) {
    if (!u.installedByName.has(name)) {
      const known = u.knownNames();
      // Suggest installing only what a catalog offers; for a name nothing offers, the nearest installed one.
      const nearest = known.includes(name) ? undefined : didYouMean(name, u.installedByName.keys());
      throw new SwpkgError('E_NOT_INSTALLED', `${name} is not installed, so it cannot be upgraded`, {
        hint: known.includes(name)
          ? `install it instead: pkg install ${name}`
          : `no catalog offers ${name} either${nearest ? `; did you mean "${nearest}"?` : ''} (see pkg list)`,
        details: { name },
      });
    }
  }
  const explicitBefore = req.installed.filter((p) => p.explicit && !removing.has(p.name)).map((p) => p.name);
  if (removing.size > 0) assertRemovable(req.installed, removing, explicitBefore);

  // The installed world is met first, so it is the context a request is judged against
  // ("nginx conflicts with apache (installed)"); backjumping moves it when the request needs that.
  const roots: Req<C, I>[] = [
    ...[...explicitBefore].sort().map((name) => ({ name, rangeText: '*', range: null, kind: 'world' as const, by: null, origin: 0 })),
    ...install.map((r) => ({
      name: r.name,
      rangeText: r.range,
      range: u.ranges.get(r.range, `requested ${r.name}`),
      kind: 'request' as const,
      by: null,
      origin: 0,
    })),
  ];
  const search = new Search<C, I>(u, removing, upgrading, req.maxSteps ?? DEFAULT_MAX_RESOLVE_STEPS);
  try {
    search.run(roots);
  } catch (e) {
    if (e instanceof Unsatisfiable) throw unsatisfiable(search.problems, search.steps, e.gaveUp, req.maxSteps ?? DEFAULT_MAX_RESOLVE_STEPS);
    throw e;
  }
  return buildPlan(u, search, roots, removing, upgrading, explicitBefore);
}

function assertRemovable(installed: readonly InstalledPackage[], removing: ReadonlySet<string>, worldAfter: string[]): void {
  // Only packages that stay matter: a dependent that would itself be pruned as no longer needed does not block.
  const staying = new InstalledGraph(installed.filter((p) => !removing.has(p.name))).reachable(worldAfter);
  const blocking = needs(installed, removing).filter((r) => staying.has(r.dependent.slice(0, r.dependent.lastIndexOf('@'))));
  if (blocking.length === 0) return;
  const explanation = blocking.map((b) => `${b.dependent} requires ${b.requires}, which only ${b.satisfiedBy.join(', ')} provides`);
  const dependents = [...new Set(blocking.map((b) => b.dependent.slice(0, b.dependent.lastIndexOf('@'))))].sort();
  const names = [...removing].sort();
  throw new SwpkgError('E_NEEDED', `cannot remove ${names.join(', ')}: needed by ${dependents.join(', ')}`, {
    hint: `remove the dependents as well (pkg remove ${[...names, ...dependents].join(' ')}) or keep ${names.join(', ')}`,
    details: { remove: names, dependents, explanation },
  });
}

function unsatisfiable(problems: ResolveProblem[], searchSteps: number, gaveUp: boolean, maxSteps: number): SwpkgError {
  const lines = problems.slice(0, MAX_EXPLANATION_LINES).map((p) => p.text);
  if (problems.length > MAX_EXPLANATION_LINES) lines.push(`… and ${problems.length - MAX_EXPLANATION_LINES} more`);
  if (gaveUp) {
    lines.unshift(
      `the search gave up after ${maxSteps} candidate tries (too many combinations); ask for specific versions (NAME@RANGE) to narrow it`,
    );
  }
  if (lines.length === 0) lines.push('no combination of available versions meets every requirement');
  const conflictOnly = !gaveUp && problems.length > 0 && problems.every((p) => p.kind === 'conflict');
  const code: ErrorCode = conflictOnly ? 'E_CONFLICT' : 'E_RESOLVE';
  const first = gaveUp ? `gave up after ${maxSteps} steps` : lines[0]!;
  const more = problems.length > 1 && !gaveUp ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  const hint = conflictOnly
    ? 'remove the conflicting package first (pkg remove NAME), or ask for another version (NAME@RANGE)'
    : problems.some((p) => p.kind === 'missing')
      ? 'check the name (pkg search TERM) and refresh the catalogs (pkg update)'
      : 'ask for other versions (NAME@RANGE), refresh the catalogs (pkg update), or remove what holds an old version';
  return new SwpkgError(code, `cannot resolve: ${first}${more}`, {
    hint,
    details: { explanation: lines, problems, searchSteps, gaveUp },
  });
}

function buildPlan<C extends Candidate, I extends InstalledPackage>(
  u: Universe<C, I>,
  search: Search<C, I>,
  roots: Req<C, I>[],
  removing: ReadonlySet<string>,
  upgrading: ReadonlySet<string>,
  explicitBefore: string[],
): Plan<C, I> {
  const selected = search.selected;
  const sorted = [...selected.values()].sort((a, b) => (a.node.name < b.node.name ? -1 : 1));
  const providers = new Map<string, Sel<C, I>[]>();
  // Who depends on each name, for explaining version changes.
  const dependents = new Map<string, { by: Sel<C, I>; d: DepRef }[]>();
  for (const x of sorted) {
    for (const v of x.node.provideNames) push(providers, v, x);
    for (const d of x.node.deps) push(dependents, d.name, { by: x, d });
  }
  const satisfierOf = (name: string, range: Range | null): Sel<C, I> | undefined => {
    const s = selected.get(name);
    if (s && nodeFits(s.node, range)) return s;
    return providers.get(name)?.find((x) => satisfies(x.node, name, range));
  };
  const requested = new Set<string>();
  for (const r of roots) {
    if (r.kind !== 'request') continue;
    const s = satisfierOf(r.name, r.range);
    if (s) requested.add(s.node.name);
  }
  const world = new Set([...explicitBefore, ...requested]);

  // Dependencies before dependents; a cycle is broken at the first name met (sorted), deterministically.
  const order: Sel<C, I>[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (root: Sel<C, I>): void => {
    const stack: { sel: Sel<C, I>; i: number }[] = [{ sel: root, i: 0 }];
    state.set(root.node.name, 'open');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = top.sel.node.deps;
      if (top.i < deps.length) {
        const d = deps[top.i++]!;
        const s = satisfierOf(d.name, d.range);
        if (s && !state.has(s.node.name)) {
          state.set(s.node.name, 'open');
          stack.push({ sel: s, i: 0 });
        }
        continue;
      }
      stack.pop();
      state.set(top.sel.node.name, 'done');
      order.push(top.sel);
    }
  };
  for (const s of sorted) if (!state.has(s.node.name)) visit(s);

  const reasonOf = (s: Sel<C, I>): string => {
    if (s.via.kind === 'request' || requested.has(s.node.name)) return 'requested';
    if (upgrading.has(s.node.name)) return 'upgrade requested';
    const before = u.installedByName.get(s.node.name);
    if (before) {
      // A version change of an installed package is explained by whoever rules the installed version out.
      const why = [s.node.name, ...s.node.provideNames].flatMap((name) =>
        (dependents.get(name) ?? [])
          .filter(({ d }) => satisfies(s.node, d.name, d.range) && !satisfies(before, d.name, d.range))
          .map(({ by, d }) => `${by.node.id} (requires ${d.name}${rangeText(d)})`),
      );
      if (why.length > 0) return `needed by ${why.join(', ')}`;
    }
    if (s.via.kind === 'world') return 'explicitly installed';
    return `needed by ${s.via.by?.node.id ?? '?'}`;
  };

  const removes: PlanStep<C, I>[] = [];
  for (const [name, node] of [...u.installedByName].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (selected.has(name)) continue;
    const step: PlanStep<C, I> = {
      action: 'remove',
      name,
      from: node.version,
      reason: removing.has(name) ? 'requested' : 'no longer needed',
    };
    if (node.installed) step.installed = node.installed;
    removes.push(step);
  }
  const changes: PlanStep<C, I>[] = [];
  const keeps: PlanStep<C, I>[] = [];
  for (const s of order) {
    const node = s.node;
    const before = u.installedByName.get(node.name);
    if (before === node) {
      if (requested.has(node.name)) {
        const step: PlanStep<C, I> = { action: 'keep', name: node.name, from: node.version, to: node.version, reason: 'requested' };
        if (node.installed) step.installed = node.installed;
        keeps.push(step);
      }
      continue;
    }
    const step: PlanStep<C, I> = { action: 'install', name: node.name, to: node.version, reason: reasonOf(s) };
    if (node.candidate) step.candidate = node.candidate;
    if (before) {
      step.action = semver.gt(node.sv, before.sv) ? 'upgrade' : 'downgrade';
      step.from = before.version;
      if (before.installed) step.installed = before.installed;
    }
    changes.push(step);
  }

  const final = sorted.map((s): PlannedPackage<C, I> => {
    const n = s.node;
    const out: PlannedPackage<C, I> = {
      name: n.name,
      version: n.version,
      depends: n.depends,
      provides: n.providesRaw,
      conflicts: n.conflictsRaw,
      explicit: world.has(n.name),
    };
    if (n.installed) out.installed = n.installed;
    else if (n.candidate) out.candidate = n.candidate;
    return out;
  });
  return {
    steps: [...removes, ...changes, ...keeps],
    final,
    world: [...world].filter((w) => selected.has(w)).sort(),
    searchSteps: search.steps,
  };
}
