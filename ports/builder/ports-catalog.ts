import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { SwpkgError, parseJson, sha256Hex, silentReporter, type Reporter } from '../../catalog/index.js';
import { parseDependency, parseRecipe, type Recipe } from './recipe.js';

/** `ports/catalog.json`: the ports this tree offers and the folder of each. */
export interface PortsCatalogFile {
  format: 1;
  ports: { name: string; path: string }[];
}

export interface PortsCatalog {
  portsDir: string;
  /** Port name → absolute recipe folder, in catalog order. */
  folders: Map<string, string>;
}

/** A recipe with the folder it came from and the hash of its bytes. */
export interface LoadedRecipe {
  recipe: Recipe;
  dir: string;
  recipePath: string;
  /** SHA-256 of recipe.json's bytes (recorded in the package's build info). */
  recipeSha256: string;
}

export const RECIPE_FILE = 'recipe.json';

function invalid(message: string, details: Record<string, unknown>, hint?: string): SwpkgError {
  return new SwpkgError('E_INVALID_RECIPE', message, { details, ...(hint ? { hint } : {}) });
}

/** Reads and checks `catalog.json` (shape only; `validatePortsCatalog` checks the recipes and graph). */
export async function loadPortsCatalog(portsDir: string): Promise<PortsCatalog> {
  const path = join(portsDir, 'catalog.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SwpkgError('E_NOT_FOUND', `no ports catalog at ${path}`, {
      hint: 'run from a checkout of the repository or pass --ports DIR',
      details: { path },
      cause: e,
    });
  }
  const doc = parseJson(text, path);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid(`${path} must be a JSON object`, { path });
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (k !== 'format' && k !== 'ports' && k !== 'description') throw invalid(`${path}: ${k} is not a known field`, { path, field: k });
  }
  if (d['format'] !== 1) throw invalid(`${path}: format must be 1`, { path, field: 'format' });
  if (!Array.isArray(d['ports'])) throw invalid(`${path}: ports must be an array`, { path, field: 'ports' });
  const folders = new Map<string, string>();
  const root = resolve(portsDir);
  d['ports'].forEach((p: unknown, i) => {
    const field = `ports[${i}]`;
    if (typeof p !== 'object' || p === null) throw invalid(`${path}: ${field} must be {name, path}`, { path, field });
    const e = p as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (k !== 'name' && k !== 'path') throw invalid(`${path}: ${field}.${k} is not a known field`, { path, field: `${field}.${k}` });
    const name = e['name'];
    const rel = e['path'];
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9+._-]*$/.test(name))
      throw invalid(`${path}: ${field}.name must be a port name`, { path, field: `${field}.name` });
    if (typeof rel !== 'string' || rel.length === 0)
      throw invalid(`${path}: ${field}.path must be a folder`, { path, field: `${field}.path` });
    const abs = resolve(root, rel);
    if (!abs.startsWith(root + sep))
      throw invalid(`${path}: ${field}.path leaves the ports folder`, { path, field: `${field}.path`, value: rel });
    if (folders.has(name)) throw invalid(`${path}: port ${name} is listed twice`, { path, field: `${field}.name`, port: name });
    folders.set(name, abs);
  });
  return { portsDir: root, folders };
}

/** Loads one port's recipe; E_UNKNOWN_PORT when the catalog does not list it. */
export async function loadRecipe(catalog: PortsCatalog, name: string): Promise<LoadedRecipe> {
  const dir = catalog.folders.get(name);
  if (dir === undefined) {
    throw new SwpkgError('E_UNKNOWN_PORT', `no port named ${name}`, {
      hint: '`swport catalog list` shows the ports this tree offers',
      details: { port: name, known: [...catalog.folders.keys()] },
    });
  }
  const recipePath = join(dir, RECIPE_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(recipePath);
  } catch {
    throw invalid(
      `port ${name}: ${relative(catalog.portsDir, recipePath)} is missing`,
      { port: name, path: recipePath },
      'each listed port needs its folder with recipe.json',
    );
  }
  const recipe = parseRecipe(parseJson(bytes.toString('utf8'), recipePath), relative(catalog.portsDir, recipePath));
  if (recipe.name !== name) {
    throw invalid(`${recipePath}: recipe name ${recipe.name} differs from the catalog's ${name}`, {
      port: name,
      field: 'name',
      value: recipe.name,
    });
  }
  return { recipe, dir, recipePath, recipeSha256: sha256Hex(bytes) };
}

/** Files a recipe refers to (patches, build script, smoke test) must exist in its folder. */
export async function checkRecipeFiles(loaded: LoadedRecipe): Promise<void> {
  const { recipe, dir } = loaded;
  const wanted: [string, string][] = [
    ...recipe.patches.map((p, i): [string, string] => [`patches[${i}]`, p]),
    ['smoke', recipe.smoke],
    ...(recipe.build.script ? [['build.script', recipe.build.script] as [string, string]] : []),
  ];
  for (const [field, file] of wanted) {
    const ok = await stat(join(dir, file)).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!ok)
      throw invalid(`port ${recipe.name}: ${field} names ${file}, which is not a file in ${dir}`, {
        port: recipe.name,
        field,
        path: join(dir, file),
      });
  }
}

/** Direct edges of one port: build dependencies, runtime dependencies, or both. */
export function edgesOf(recipe: Recipe, kind: 'build' | 'runtime' | 'all'): string[] {
  const runtime = recipe.depends.map((d) => parseDependency(d).name);
  if (kind === 'build') return [...recipe.buildDepends];
  if (kind === 'runtime') return runtime;
  return [...new Set([...recipe.buildDepends, ...runtime])];
}

/**
 * Orders `roots` and everything they need so each port comes after its
 * dependencies. `lookup` returns a port's edges. A cycle is E_INVALID_RECIPE
 * with `details.cycle` listing it; an unknown port is E_UNKNOWN_PORT naming who wanted it.
 */
export function dependencyOrder(roots: string[], lookup: (name: string) => string[] | undefined): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string, wantedBy: string | undefined): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      throw new SwpkgError('E_INVALID_RECIPE', `dependency cycle: ${cycle.join(' → ')}`, {
        hint: 'a port cannot need itself, directly or through others; drop one of these dependencies',
        details: { cycle },
      });
    }
    const edges = lookup(name);
    if (edges === undefined) {
      throw new SwpkgError('E_UNKNOWN_PORT', wantedBy ? `${wantedBy} depends on ${name}, which is not a port` : `no port named ${name}`, {
        hint: 'add the port to ports/catalog.json or fix the dependency name',
        details: { port: name, ...(wantedBy ? { wantedBy } : {}) },
      });
    }
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of [...edges].sort()) visit(dep, name);
    stack.pop();
    state.set(name, 'done');
    order.push(name);
  };
  for (const r of roots) visit(r, undefined);
  return order;
}

export interface CatalogPortSummary {
  name: string;
  version: string;
  upstreamVersion: string;
  summary: string;
  license: string;
  depends: string[];
  buildDepends: string[];
  targets: string[];
  path: string;
}

export interface CatalogValidation {
  ports: CatalogPortSummary[];
  /** Every port, each after its dependencies. */
  order: string[];
  /** Folders under recipes/ the catalog does not list. */
  unlisted: string[];
}

function summarize(l: LoadedRecipe, portsDir: string): CatalogPortSummary {
  const r = l.recipe;
  return {
    name: r.name,
    version: r.version,
    upstreamVersion: r.upstreamVersion,
    summary: r.summary,
    license: r.license,
    depends: r.depends,
    buildDepends: r.buildDepends,
    targets: r.targets,
    path: relative(portsDir, l.dir),
  };
}

/** Loads every recipe of the catalog (each error carries the port). */
export async function loadAllRecipes(catalog: PortsCatalog): Promise<Map<string, LoadedRecipe>> {
  const out = new Map<string, LoadedRecipe>();
  for (const name of catalog.folders.keys()) {
    const dir = catalog.folders.get(name)!;
    const isDir = await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      throw invalid(
        `port ${name}: folder ${relative(catalog.portsDir, dir)} does not exist`,
        { port: name, path: dir },
        'create the folder with recipe.json or remove the entry from catalog.json',
      );
    }
    out.set(name, await loadRecipe(catalog, name));
  }
  return out;
}

/**
 * Loads the recipes of `roots` and of every port they reach through `kind`
 * edges, and nothing else: one broken recipe elsewhere in the tree does not
 * stop building an unrelated port. Names the catalog does not list are left
 * out; `dependencyOrder` then reports them with who wanted them.
 */
export async function loadRecipeClosure(
  catalog: PortsCatalog,
  roots: string[],
  kind: 'build' | 'runtime' | 'all' = 'all',
): Promise<Map<string, LoadedRecipe>> {
  const out = new Map<string, LoadedRecipe>();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (out.has(name) || !catalog.folders.has(name)) continue;
    const l = await loadRecipe(catalog, name);
    out.set(name, l);
    queue.push(...edgesOf(l.recipe, kind));
  }
  return out;
}

/**
 * `swport catalog validate`: every listed folder exists, every recipe parses
 * strictly and its files exist, every dependency names a port, and the graph
 * has no cycle. Throws the first problem as a coded error.
 */
export async function validatePortsCatalog(portsDir: string, reporter: Reporter = silentReporter): Promise<CatalogValidation> {
  const catalog = await loadPortsCatalog(portsDir);
  const recipes = await loadAllRecipes(catalog);
  for (const l of recipes.values()) {
    await checkRecipeFiles(l);
    reporter.info(`ok  ${l.recipe.name} ${l.recipe.version}`);
  }
  const order = dependencyOrder([...recipes.keys()], (n) => {
    const l = recipes.get(n);
    return l ? edgesOf(l.recipe, 'all') : undefined;
  });
  const listed = new Set([...catalog.folders.values()]);
  const unlisted: string[] = [];
  const recipesDir = join(catalog.portsDir, 'recipes');
  for (const entry of await readdir(recipesDir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory() && !listed.has(join(recipesDir, entry.name))) unlisted.push(`recipes/${entry.name}`);
  }
  for (const u of unlisted) reporter.warn(`${u} is not listed in catalog.json`);
  return { ports: [...recipes.values()].map((l) => summarize(l, catalog.portsDir)), order, unlisted };
}

export async function listPorts(portsDir: string): Promise<CatalogPortSummary[]> {
  const catalog = await loadPortsCatalog(portsDir);
  const recipes = await loadAllRecipes(catalog);
  return [...recipes.values()].map((l) => summarize(l, catalog.portsDir));
}

export interface PortInspection extends CatalogPortSummary {
  homepage?: string;
  sources: Recipe['sources'];
  patches: string[];
  build: Recipe['build'];
  smoke: string;
  recipeSha256: string;
  /** Build dependencies, transitively, in build order. */
  buildOrder: string[];
}

export async function inspectPort(portsDir: string, name: string): Promise<PortInspection> {
  const catalog = await loadPortsCatalog(portsDir);
  const l = await loadRecipe(catalog, name);
  const recipes = await loadRecipeClosure(catalog, [name]);
  const buildOrder = dependencyOrder([name], (n) => {
    const r = recipes.get(n);
    return r ? edgesOf(r.recipe, 'build') : undefined;
  });
  const out: PortInspection = {
    ...summarize(l, catalog.portsDir),
    sources: l.recipe.sources,
    patches: l.recipe.patches,
    build: l.recipe.build,
    smoke: l.recipe.smoke,
    recipeSha256: l.recipeSha256,
    buildOrder,
  };
  if (l.recipe.homepage !== undefined) out.homepage = l.recipe.homepage;
  return out;
}
