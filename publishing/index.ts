// Writing and checking a hosted repository: publish, sign, index.html, key files on disk, verify-hosted.
// Built on the trust core in catalog/; nothing in catalog/ or userland/ imports this folder.
export * from './publish.js';
export * from './verify-hosted.js';
export * from './index-html.js';
export * from './key-files.js';
export * from './release.js';
export * from './mirror.js';
export * from './system-release.js';
export * from './storage.js';
export * from './s3.js';
