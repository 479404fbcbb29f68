/**
 * src/checks — the sender checks, one folder each, each usable alone from the library and the
 * CLI: a function of the session's facts and injected services (resolver, clock, limits) that
 * returns a typed result with a stable result word and a suggested SMTP reply. Checks never read
 * configuration files or mutable globals; time comes from the clock they are given (the system
 * clock when none is), and reaches the resolver only as time left, never as a clock reading.
 * Process-wide memos of pure functions (parsed records, parsed addresses) are allowed.
 *
 * May import src/dns and src/text; never policy, serve, or a protocol library.
 */

export * from './arc/index.js';
export type * from './auth-results.js';
export * from './csa/index.js';
export * from './dkim/index.js';
export * from './dmarc/index.js';
export * from './dnsxl/index.js';
export * from './helo/index.js';
export * from './ptr/index.js';
export * from './registry/index.js';
export * from './spf/index.js';
