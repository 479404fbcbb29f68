/**
 * src/checks/spf — the SPF check (RFC 7208) with pyspf's extras, and the header values that
 * record its result. May import src/dns and src/text; never policy, serve or a protocol library.
 */
export { checkSpf, DEFAULT_EXPLANATION, isCheckableDomain } from './check.js';
export {
  authenticationResults,
  authResultsClause,
  receivedSpf,
  receivedSpfComment,
} from './header.js';
export { isSpfRecord, parseRecord } from './record.js';
export { spfReply } from './reply.js';
export * from './types.js';
