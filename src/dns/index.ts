/**
 * src/dns: a stub DNS resolver over dns-packet — UDP with EDNS0, TCP fallback on truncation,
 * retries across servers, a TTL cache with RFC 2308 negative caching, coalescing of identical
 * queries — plus IP address and reverse-name helpers.
 *
 * Imports: node built-ins and dns-packet only; nothing else of ours but shared types.
 */

export * from './address.js';
export { type CacheOptions, DnsCache } from './cache.js';
export { systemClock } from './clock.js';
export { isRecordType, queryName } from './codec.js';
export {
  DEFAULT_SERVER,
  formatServer,
  parseResolvConf,
  parseServerSpec,
  readResolvConf,
  type ServerAddress,
} from './resolv-conf.js';
export {
  createResolver,
  type ResolverOptions,
  type ResolverStats,
  StubResolver,
} from './resolver.js';
export type * from './types.js';
