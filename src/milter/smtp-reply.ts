/**
 * Custom SMTP replies: checking them (they come from milter code, so a bad one is a programming
 * error, reported at once) and writing them as the SMFIR_REPLYCODE text libmilter's
 * smfi_setmlreply builds.
 */
import type { SmtpReply } from './types.js';

/** libmilter's MAXREPLIES: at most this many lines in one reply. */
export const MAX_REPLY_LINES = 32;
/** libmilter's MAXREPLYLEN: the longest text of one line. */
export const MAX_REPLY_LINE_LENGTH = 980;

const XCODE = /^([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

/** An SmtpReply that cannot be sent: the message says which rule it breaks. */
export class MilterReplyError extends Error {
  override name = 'MilterReplyError';
}

/**
 * Whether a value has the shape of an SmtpReply (it may still be invalid).
 *
 * @example
 * isSmtpReply({ code: 550, lines: ['no'] })  // true
 * isSmtpReply('reject')                      // false
 */
export function isSmtpReply(value: unknown): value is SmtpReply {
  return typeof value === 'object' && value !== null && 'code' in value && 'lines' in value;
}

/**
 * Check a reply against the rules of SmtpReply; throws MilterReplyError naming the broken rule.
 *
 * @example
 * validateReply({ code: 550, xcode: '5.7.1', lines: ['no'] })  // fine
 * validateReply({ code: 550, xcode: '4.7.1', lines: ['no'] })  // throws: class digit disagrees
 */
export function validateReply(reply: SmtpReply): void {
  const { code, xcode, lines } = reply;
  if (!(Number.isInteger(code) && code >= 400 && code <= 599)) {
    throw new MilterReplyError(`SMTP reply code ${String(code)} is not a 4xx or 5xx code`);
  }
  if (xcode !== undefined) {
    const match = typeof xcode === 'string' ? XCODE.exec(xcode) : null;
    if (!match) {
      throw new MilterReplyError(
        `enhanced status code ${JSON.stringify(xcode)} is not of the form 5.7.1 (RFC 3463)`,
      );
    }
    if (match[1] !== String(code)[0]) {
      throw new MilterReplyError(
        `enhanced status code ${xcode} does not agree with reply code ${code}: its class must be ${String(code)[0]}`,
      );
    }
  }
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > MAX_REPLY_LINES) {
    throw new MilterReplyError(`an SMTP reply needs 1 to ${MAX_REPLY_LINES} lines of text`);
  }
  lines.forEach((line, i) => {
    if (typeof line !== 'string') throw new MilterReplyError(`reply line ${i + 1} is not a string`);
    if (/[\r\n\0]/.test(line)) {
      throw new MilterReplyError(`reply line ${i + 1} contains CR, LF or NUL`);
    }
    if (line.length > MAX_REPLY_LINE_LENGTH) {
      throw new MilterReplyError(
        `reply line ${i + 1} is longer than ${MAX_REPLY_LINE_LENGTH} characters`,
      );
    }
  });
}

/**
 * The SMFIR_REPLYCODE text of a reply: validated, `%` doubled (Sendmail uses the text as a
 * format string and Postfix undoes the doubling), and multi-line replies as smfi_setmlreply
 * writes them: `code-xcode text` lines joined with CRLF, the last one `code xcode text`. The
 * enhanced code defaults to `4.0.0` or `5.0.0`, as in smfi_setmlreply, because Postfix refuses
 * a reply text whose fifth character is not the class digit.
 *
 * @example
 * formatReply({ code: 550, xcode: '5.7.1', lines: ['one', '100%'] })
 * // '550-5.7.1 one\r\n550 5.7.1 100%%'
 */
export function formatReply(reply: SmtpReply): string {
  validateReply(reply);
  const xcode = reply.xcode ?? `${String(reply.code)[0]}.0.0`;
  const last = reply.lines.length - 1;
  return reply.lines
    .map(
      (line, i) => `${reply.code}${i === last ? ' ' : '-'}${xcode} ${line.replaceAll('%', '%%')}`,
    )
    .join('\r\n');
}
