/**
 * src/checks/helo — the HELO/EHLO check: named, switchable rules (no HELO, bare IP, address
 * literals, syntax, FQDN, public suffix, our own names, localhost, DNS resolution and match,
 * a changed HELO), a verdict with a suggested reply, and bley's HELO score.
 * May import src/dns, src/text and the PTR check's name helpers; never policy, serve or a
 * protocol library.
 */
export { bleyScore, checkHelo, DEFAULT_REJECT_RULES } from './check.js';
export { heloReply } from './reply.js';
export { MATCH_PREFIX } from './resolve.js';
export * from './types.js';
