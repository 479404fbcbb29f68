/**
 * Helpers for people writing milters: building replies, and the error an end-of-message action
 * throws when it is used where it is not allowed.
 */
import { validateReply } from './smtp-reply.js';
import type { SmtpReply } from './types.js';

export { isSmtpReply, MilterReplyError, validateReply } from './smtp-reply.js';

/**
 * An end-of-message action was called outside `eom`, or without having been negotiated, or with
 * arguments the MTA cannot take. The message says which rule was broken.
 */
export class MilterActionError extends Error {
  override name = 'MilterActionError';
}

/**
 * Build a custom SMTP reply, checked at once (code 4xx/5xx, enhanced code of the same class,
 * 1-32 lines without CR or LF), so that a mistake shows where it was made.
 *
 * @example
 * return reply(550, '5.7.1', 'Rejected by policy');
 * return reply(451, '4.7.1', 'Greylisted,', 'please try again later');  // two lines
 * return reply(554, undefined, 'No');  // the enhanced code defaults to 5.0.0 on the wire
 */
export function reply(code: number, xcode: string | undefined, ...lines: string[]): SmtpReply {
  const built: SmtpReply = xcode === undefined ? { code, lines } : { code, xcode, lines };
  validateReply(built);
  return built;
}
