/**
 * src/checks/arc — ARC (RFC 8617): reading ARC sets, validating a message's chain as it streams
 * (sharing body hashes with DKIM), sealing a message that we forward, and the `arc=` clause of
 * Authentication-Results. Built on the DKIM primitives of src/checks/dkim (tag lists,
 * canonicalization, body hashes, keys, signatures) and the message model of src/checks/message.
 * May import src/dns, src/text, src/checks/message and the other checks; never src/policy,
 * src/serve, src/config or a protocol library.
 */
export {
  type ArcClauseFacts,
  arcAuthResults,
  gatherAuthResults,
} from './auth-results.js';
export { type ArcSet, type ChainStructure, readChain } from './chain.js';
export {
  MAX_ARC_FIELD_BYTES,
  readAuthResults,
  readMessageSignature,
  readSeal,
} from './fields.js';
export { ArcSealing, DEFAULT_SEALED_HEADERS, sealArc } from './seal.js';
export * from './types.js';
export { ArcVerification, verifyArc } from './verify.js';
