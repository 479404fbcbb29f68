/**
 * The SMTP reply a receiver would give for a HELO verdict. The HELO argument is the client's
 * text: it is escaped and shortened before it is quoted, and the whole reply is printable ASCII.
 */
import { escapeForLog, printableAscii, truncate } from '../../text/index.js';
import type { HeloOutcome, HeloReply, HeloVerdict } from './types.js';

/** What a reply needs to know. */
export interface ReplyFacts {
  result: HeloVerdict;
  /** The deciding outcome, for `reject` and `tempfail`. */
  decided?: HeloOutcome;
  /** The HELO argument as given. */
  helo: string;
  /** The previous HELO argument, for `changed`. */
  previousHelo?: string;
  /** The client address in canonical form. */
  ip: string;
}

/**
 * The suggested reply: 550 5.7.1 for a policy reject (501 5.5.2 for a malformed name or
 * literal, 504 5.5.2 for a name that is not fully qualified), 451 4.4.3 when DNS could not
 * decide, 250 2.0.0 otherwise.
 *
 * @example
 * heloReply({ result: 'reject', decided: { rule: 'own-name', result: 'fail', reason: 'our-name', detail: '' },
 *   helo: 'mx.example.com', ip: '192.0.2.1' })
 * // { code: 550, xcode: '5.7.1', text: 'HELO name mx.example.com is one of ours, and this client is not' }
 */
export function heloReply(facts: ReplyFacts): HeloReply {
  const h = shownHelo(facts.helo);
  const d = facts.decided;
  if (facts.result === 'tempfail' && d) {
    return reply(
      451,
      '4.4.3',
      `HELO name ${h} cannot be checked now (${d.reason}); try again later`,
    );
  }
  if (facts.result !== 'reject' || !d) return reply(250, '2.0.0', `HELO name ${h} accepted`);
  switch (d.rule) {
    case 'missing':
      return reply(550, '5.7.1', 'a HELO or EHLO command naming this host is required');
    case 'bare-ip':
      return reply(
        550,
        '5.7.1',
        `HELO name ${h} is a bare IP address; use an address literal such as ${literalOf(facts.ip)}`,
      );
    case 'literal':
      if (d.reason === 'malformed') {
        return reply(501, '5.5.2', `HELO address literal ${h} is malformed`);
      }
      return reply(
        550,
        '5.7.1',
        `HELO address literal ${h} is not the address of this client (${facts.ip})`,
      );
    case 'syntax':
      return reply(501, '5.5.2', `HELO name ${h} is not a valid host name`);
    case 'fqdn':
      return reply(504, '5.5.2', `HELO name ${h} is not a fully qualified domain name`);
    case 'public-suffix':
      return reply(550, '5.7.1', `HELO name ${h} is not under a public domain suffix`);
    case 'own-name':
      return reply(550, '5.7.1', `HELO name ${h} is one of ours, and this client is not`);
    case 'localhost':
      return reply(
        550,
        '5.7.1',
        `HELO name ${h} names a loopback host, and ${facts.ip} is not one`,
      );
    case 'resolves':
      return reply(550, '5.7.1', `HELO name ${h} has no address or MX record`);
    case 'matches':
      return reply(550, '5.7.1', `no address of HELO name ${h} is this client's (${facts.ip})`);
    case 'changed':
      return reply(
        550,
        '5.7.1',
        `HELO name changed from ${shownHelo(facts.previousHelo ?? '')} to ${h} in one session`,
      );
  }
}

/**
 * Client text as it may appear in a reply, detail or log line: control and non-ASCII characters
 * escaped, at most 100 characters, `(none)` when empty.
 *
 * @example
 * shownHelo('evil\r\n250 OK')  // 'evil\\x0d\\x0a250 OK'
 */
export function shownHelo(text: string): string {
  // Cut before escaping as well as after: the text may be megabytes long.
  return text === '' ? '(none)' : truncate(escapeForLog(text.slice(0, 101)), 100);
}

/** The address literal RFC 5321 4.1.3 asks a client at `ip` to send. */
function literalOf(ip: string): string {
  return ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`;
}

function reply(code: number, xcode: string, text: string): HeloReply {
  return { code, xcode, text: truncate(printableAscii(text), 400) };
}
