/**
 * src/checks/dnsxl — DNS lists (RFC 5782): the client address against DNSBLs and DNSWLs (IPv4 by
 * reversed octets, IPv6 by reversed nibbles), a domain against RHSBLs, with return-code
 * restrictions, weights, TXT reasons, and "query refused" codes kept apart from listings. May
 * import src/dns and src/text; never policy, serve or a protocol library.
 */
export { checkDnsxl } from './check.js';
export { dnsxlDomain } from './domain.js';
export { validateDnsxlLists } from './list.js';
export { dnsxlReply } from './reply.js';
export * from './types.js';
