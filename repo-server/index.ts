// Public API of the repository server: static HTTP serving of a published root and the
// test-zone DNS responder (DESIGN.md "Repo server").
export { startStaticServer } from './static-server.js';
export type { StaticServer, StaticServerOptions, StaticServerTimeouts } from './static-server.js';
export { startDnsResponder } from './dns-responder.js';
export type { DnsResponder, DnsResponderOptions, DnsZoneEntry } from './dns-responder.js';
export { serveRepository } from './serve-repository.js';
export type { ServeRepositoryHandle, ServeRepositoryOptions } from './serve-repository.js';
export type { ServerMetricsSnapshot } from './server-metrics.js';
export { parseRange } from './parse-range.js';
export type { RangeRequest } from './parse-range.js';
export { normalizeRequestPath, encodePath, MAX_TARGET_LENGTH } from './normalize-request-path.js';
export type { RequestPath, RequestPathRefusal } from './normalize-request-path.js';
export { contentTypeFor, defaultCacheControl } from './file-headers.js';
export { serveFile } from './serve-file.js';
export type { ServeFileContext } from './serve-file.js';
