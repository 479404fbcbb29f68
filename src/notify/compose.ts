/**
 * Composing a DSN from a template. Every value comes from an SMTP client (the subject, the
 * recipients, the sender) or from DNS (the SPF result), so each is made single-line and bounded
 * before it is placed: printable ASCII in a header, control-free text in the body.
 */
import { randomUUID } from 'node:crypto';
import { logValue, printableAscii, truncate } from '../text/index.js';
import { isHostName, parseMailbox } from './mailbox.js';
import { formatDate, headerLine, isSevenBit, quotedPrintable } from './mime.js';
import { type DsnPlaceholder, expandPlaceholders } from './placeholders.js';
import { type DsnTemplate, RESERVED_HEADERS } from './templates.js';

/** The values a template's placeholders are filled with; missing ones are empty. */
export interface DsnValues {
  /** The recipients of the original message. */
  rcpt?: readonly string[];
  /** The original Subject. */
  subject?: string;
  /** The Received-SPF value. */
  spf_result?: string;
  /** The SPF permanent error text. */
  perm_error?: string;
  /** The SPF result word. */
  result?: string;
  /** The original sender; default: the DSN's recipient. */
  sender?: string;
}

export interface ComposeDsnInput {
  template: DsnTemplate;
  values: DsnValues;
  /** Our postmaster address, for From. */
  from: string;
  /** The original sender, whom the DSN goes to. */
  to: string;
  /** Our host name, for `%(receiver)s`. */
  receiver: string;
  date: Date;
  /** `<id@host>`; default: a random one at `receiver`. */
  messageId?: string;
}

/** How much of each value a DSN shows. */
export const DSN_LIMITS = {
  subject: 200,
  /** Recipients listed; more are counted. */
  recipients: 50,
  address: 256,
  spfResult: 800,
  permError: 400,
  result: 32,
  receiver: 255,
  /** A whole header value after expansion. */
  header: 900,
} as const;

const RESERVED = new Set<string>(RESERVED_HEADERS);
const MESSAGE_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>$/;
// C0 and C1 controls, DEL, line and paragraph separators, bidirectional controls, BOM.
const UNSAFE_IN_BODY = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/gu;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A complete DSN message (RFC 5322, CRLF line ends): From, To, Subject, Date, Message-ID,
 * `Auto-Submitted: auto-replied` (RFC 3834), the template's other header fields, and a
 * text/plain UTF-8 body, 7bit when it is ASCII and quoted-printable otherwise. Throws a
 * TypeError when `from` or `to` is not a mailbox or `messageId` is not a message id: those are
 * checked by the caller before a DSN is worth composing.
 *
 * @example
 * const message = composeDsn({
 *   template: templates.softfail,
 *   values: { rcpt: ['jo@example.org'], subject: 'Hello', result: 'softfail', spf_result: 'softfail (...)' },
 *   from: 'postmaster@mx.example.org', to: 'sender@example.com', receiver: 'mx.example.org',
 *   date: new Date(),
 * });
 */
export function composeDsn(input: ComposeDsnInput): Buffer {
  const from = parseMailbox(input.from);
  if (!from) throw new TypeError(`DSN From is not a mailbox: ${logValue(input.from, 80)}`);
  const to = parseMailbox(input.to);
  if (!to) throw new TypeError(`DSN To is not a mailbox: ${logValue(input.to, 80)}`);
  const host = isHostName(input.receiver) ? input.receiver.toLowerCase() : 'invalid';
  const messageId = input.messageId ?? `<${randomUUID()}@${host}>`;
  if (!MESSAGE_ID.test(messageId)) {
    throw new TypeError(`not a Message-ID: ${logValue(messageId, 80)}`);
  }

  const values = itemsOf(input.values, input.receiver, to.address);
  const headerValue = (name: DsnPlaceholder) =>
    values[name].map((v) => printableAscii(v)).join(', ');
  const expandHeader = (text: string) =>
    truncate(sanitiseBody(expandPlaceholders(text, headerValue)), DSN_LIMITS.header);

  const subject = input.template.headers.find((h) => h.name.toLowerCase() === 'subject');
  const extra = input.template.headers.filter(
    (h) => h.name.toLowerCase() !== 'subject' && !RESERVED.has(h.name.toLowerCase()),
  );
  const body = expandBody(input.template.body, values);
  const sevenBit = isSevenBit(body);
  const header = [
    headerLine('From', from.address),
    headerLine('To', to.address),
    headerLine('Subject', expandHeader(subject?.value ?? '')),
    headerLine('Date', formatDate(input.date)),
    headerLine('Message-ID', messageId),
    'Auto-Submitted: auto-replied',
    ...extra.map((h) => headerLine(h.name, expandHeader(h.value))),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${sevenBit ? '7bit' : 'quoted-printable'}`,
  ];
  const text = sevenBit ? body : quotedPrintable(body);
  return Buffer.from(`${header.join('\r\n')}\r\n\r\n${text}\r\n`, 'utf8');
}

/** Each placeholder's value as bounded single-line items (several only for `rcpt`). */
function itemsOf(
  values: DsnValues,
  receiver: string,
  to: string,
): Record<DsnPlaceholder, string[]> {
  const one = (text: string | undefined, max: number) => [bodyText(text ?? '', max)];
  const all = values.rcpt ?? [];
  const rcpt = all.slice(0, DSN_LIMITS.recipients).map((r) => bodyText(r, DSN_LIMITS.address));
  if (all.length > DSN_LIMITS.recipients) {
    rcpt.push(`(and ${all.length - DSN_LIMITS.recipients} more)`);
  }
  return {
    rcpt,
    subject: one(values.subject, DSN_LIMITS.subject),
    spf_result: one(values.spf_result, DSN_LIMITS.spfResult),
    perm_error: one(values.perm_error, DSN_LIMITS.permError),
    result: one(values.result, DSN_LIMITS.result),
    receiver: one(receiver, DSN_LIMITS.receiver),
    sender: one(values.sender ?? to, DSN_LIMITS.address),
  };
}

/**
 * The body with placeholders filled; a value of several items continues on further lines with
 * the indentation of the line it is on, so a recipient list stays a column.
 */
function expandBody(body: string, values: Record<DsnPlaceholder, string[]>): string {
  const lines = body.replace(/\n+$/, '').split('\n');
  return lines
    .map((line) => {
      const indent = /^[ \t]*/.exec(line)![0];
      const expanded = expandPlaceholders(line, (name) => values[name].join(`\n${indent}`));
      return expanded
        .split('\n')
        .map((l) => sanitiseBody(l).trimEnd())
        .join('\r\n');
    })
    .join('\r\n');
}

/** One line of body text: no control, separator or bidi character, at most `max` long. */
function bodyText(text: string, max: number): string {
  const flat = sanitiseBody(text).replace(/ {2,}/g, ' ').trim();
  return truncate(flat, max).replace(LONE_SURROGATE, '?');
}

function sanitiseBody(text: string): string {
  return text.replace(/\t/g, ' ').replace(UNSAFE_IN_BODY, '?').replace(LONE_SURROGATE, '?');
}
