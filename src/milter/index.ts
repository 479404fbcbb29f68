/**
 * src/milter — a milter library anyone can use on its own: the Sendmail/Postfix milter protocol
 * (version 6) spoken natively, without libmilter. A milter is a definition (name, handler
 * factory, actions, macros); the server negotiates with each MTA connection, calls one handler
 * per SMTP connection step by step, and sends its verdicts and end-of-message modifications.
 * Layers, each usable alone: codec (wire format), session (protocol state of one connection,
 * no sockets), server (sockets), testing (the MTA side, for tests).
 *
 * Imports nothing of ours but shared types and the leaves src/listen, src/text (log escaping) and
 * src/observe/stderr.ts (the logger used when none is given).
 */
export { isSmtpReply, MilterActionError, MilterReplyError, reply, validateReply } from './api.js';
export * from './codec.js';
export * from './constants.js';
export { bareMacroName, MacroStore, stageOfCommand } from './macros.js';
export {
  MIN_MILTER_VERSION,
  type Negotiated,
  type NegotiationPlan,
  negotiate,
  type PreparedMilter,
  planNegotiation,
  prepareMilter,
} from './negotiate.js';
export {
  createMilterServer,
  DEFAULT_CLOSE_DEADLINE_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  type MilterServer,
} from './server.js';
export {
  DEFAULT_CALLBACK_TIMEOUT_MS,
  MilterCallbackTimeout,
  MilterSession,
  type SessionIO,
  type SessionOptions,
} from './session.js';
export { formatReply, MAX_REPLY_LINE_LENGTH, MAX_REPLY_LINES } from './smtp-reply.js';
export * from './testing/index.js';
export type * from './types.js';
