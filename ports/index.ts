// Public API of the ports tree: recipes, the ports catalog, and the builder that turns a recipe into a package.
export * from './builder/paths.js';
export * from './builder/recipe.js';
export * from './builder/ports-catalog.js';
export * from './builder/source-fetcher.js';
export * from './builder/sandbox.js';
export * from './builder/toolchain.js';
export * from './builder/build-cache.js';
export * from './builder/package-tree.js';
export * from './builder/elf.js';
export * from './builder/build-port.js';
export * from './builder/spdx.js';
export * from './builder/smoke-test.js';
export * from './builder/recipe-actions.js';
export * from './builder/run-command.js';
export * from './builder/repo-fixture.js';
