/**
 * src/checks/registry — the sender-registry ID check: the registered ID of the HELO name, its
 * record in the registry's DNS zone, the trusted ratings in it, and the authentication methods
 * it offers (QR1 netblocks, CSA, SPF). May import src/dns, src/text and the other checks; never
 * policy, serve or a protocol library.
 */
export { checkId, chooseMethods } from './check.js';
export { registeredId } from './id.js';
export { weighRatings } from './ratings.js';
export type { OfferedMethod, RegistryRecord, ServiceRating } from './record.js';
export { parseRegistryRecord } from './record.js';
export * from './types.js';
