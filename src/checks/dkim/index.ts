/**
 * src/checks/dkim — DKIM (RFC 6376, RFC 8301, RFC 8463): verifying the signatures of a message
 * as its body streams in, signing messages, and the primitives ARC (RFC 8617) shares: tag
 * lists, canonicalization, body hashes, key records and the signing algorithms. May import
 * src/dns, src/text, src/checks/message and the other checks; never policy, serve, config or a
 * protocol library.
 */
export * from './auth-results.js';
export * from './body-hash.js';
export * from './canonicalize.js';
export * from './crypto.js';
export * from './key.js';
export * from './sign.js';
export * from './signature.js';
export * from './tags.js';
export * from './types.js';
export * from './verify.js';
