// Public API of the core: formats, canonical JSON, hashing, signing, trust rules, resolver.
export * from './errors.js';
export * from './reporter.js';
export * from './hash.js';
export * from './canonical-json.js';
export * from './keys.js';
export * from './key-files.js';
export * from './manifest.js';
export * from './tar-writer.js';
export * from './package-writer.js';
export * from './package-reader.js';
export * from './root.js';
export * from './catalog-doc.js';
export * from './duration.js';
export * from './meta-file.js';
export * from './publish.js';
export * from './verify-hosted.js';
export * from './index-html.js';
