/**
 * mailgate as a library: the resolver, the checks, and the text helpers they use. The milter
 * library and the protocol servers are exported from their own entry points as they arrive.
 */
export * from './checks/index.js';
export * from './dns/index.js';
export * from './text/index.js';
