/**
 * src/checks/dmarc — DMARC over the results of SPF and DKIM: the Author Domain from the From
 * fields, the policy record by the DNS Tree Walk (RFC 9989; or by the public suffix list as
 * RFC 7489 has it, in `psl` mode), identifier alignment, the policy and disposition, and the
 * Authentication-Results clause. The rules were taken from the text of
 * draft-ietf-dmarc-dmarcbis-41, the final draft of RFC 9989, whose section numbers the comments
 * cite. May import src/dns, src/text, src/checks/message and the other checks; never policy,
 * serve or a protocol library.
 */
export { checkDmarc, MAX_AUTHOR_DOMAINS, MAX_DNS_QUERIES } from './check.js';
export { MAX_WALK_QUERIES, pslOrganizationalDomain } from './discovery.js';
export { dmarcDomain } from './domain.js';
export {
  type AuthorDomains,
  authorDomains,
  MAX_FROM_ADDRESSES,
  MAX_FROM_FIELDS,
  MAX_FROM_OCTETS,
} from './from.js';
export {
  type DmarcAuthResultsClause,
  type DmarcAuthResultsProperty,
  dmarcAuthResults,
} from './header.js';
export { isDmarcRecord, MAX_RECORD_LENGTH, parseDmarcRecord } from './record.js';
export * from './types.js';
