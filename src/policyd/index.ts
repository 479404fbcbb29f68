/**
 * src/policyd — the Postfix policy delegation protocol (SMTPD_POLICY_README), usable on its own:
 * a request is `name=value` lines ended by an empty line, a reply is `action=...` and an empty
 * line, and Postfix sends many requests over one connection. Exim asks the same server through
 * `${readsocket}`, one request per connection (mode `exim`). Layers, each usable alone: codec
 * (bytes to requests and replies, no sockets) and server (sockets, ordering, timeouts, graceful
 * close, handler swap for configuration reloads).
 *
 * Imports nothing of ours but shared types and the leaves src/listen, src/text (log escaping) and
 * src/observe/stderr.ts (the logger used when none is given).
 */
export {
  actionProblem,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_MAX_REQUEST_BYTES,
  type DecoderOptions,
  encodeReply,
  MAX_ACTION_LENGTH,
  PolicyActionError,
  PolicyDecoder,
  PolicyProtocolError,
  type PolicyProtocolErrorCode,
} from './codec.js';
export {
  createPolicyServer,
  DEFAULT_CLOSE_DEADLINE_MS,
  DEFAULT_ERROR_ACTION,
  DEFAULT_HANDLER_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  type PolicyServer,
  type PolicyServerStats,
} from './server.js';
export type * from './types.js';
