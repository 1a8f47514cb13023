// Public API of the core: formats, canonical JSON, hashing, signing, trust rules, resolver.
export * from './errors.js';
export * from './reporter.js';
export * from './hash.js';
export * from './canonical-json.js';
export * from './keys.js';
export * from './key-files.js';
