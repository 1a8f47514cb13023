// Public API of the trust core: formats, strict JSON, DSSE envelopes, canonical JSON, hashing, signing, trust rules, resolver.
// Writing a repository (publish, keys on disk, index.html, verify-hosted) lives in publishing/.
export * from './errors.js';
export * from './reporter.js';
export * from './format-bytes.js';
export * from './hash.js';
export * from './atomic-write.js';
export * from './canonical-json.js';
export * from './strict-json.js';
export * from './envelope.js';
export * from './keys.js';
export * from './public-key-file.js';
export * from './hosted-repo.js';
export * from './manifest.js';
export * from './tar-writer.js';
export * from './package-writer.js';
export * from './package-reader.js';
export * from './root.js';
export * from './system-release.js';
export * from './catalog-doc.js';
export * from './trust-walk.js';
export * from './release.js';
export * from './duration.js';
export * from './meta-file.js';
export * from './dependency-closure.js';
export * from './resolver.js';
