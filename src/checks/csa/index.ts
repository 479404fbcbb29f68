/**
 * src/checks/csa — Client SMTP Authorization (draft-ietf-marid-csv-csa-02): whether the HELO
 * name's `_client._smtp` SRV record authorizes the client's address, with the subdomain search of
 * the parent domains. May import src/dns and src/text; never policy, serve or a protocol library.
 */
export { checkCsa } from './check.js';
export { csaReply } from './reply.js';
export * from './types.js';
