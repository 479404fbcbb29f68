/**
 * src/checks/ptr — the client's reverse DNS: PTR names forward-confirmed (FCrDNS), the
 * dynamic-address heuristic, and the PTR names no remote client may have (`localhost`, `.`).
 * May import src/dns and src/text; never policy, serve or a protocol library.
 */
export { checkPtr } from './check.js';
export { type DynamicVerdict, looksDynamic } from './dynamic.js';
export { ptrReply } from './reply.js';
export * from './types.js';
