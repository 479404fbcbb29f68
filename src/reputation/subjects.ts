/**
 * Who a reputation is about: a sender domain (`domain:example.com`) or a client network
 * (`net:192.0.2.0/24`, `net:2001:db8:1:2::/64`). One spelling per subject, whatever the MTA or
 * the SMTP client wrote, so that every MX host counts against the same key.
 */
import { domainToASCII } from 'node:url';
import { clientNetwork, parseClientIp } from '../dns/address.js';
import { REPUTATION_EVENTS, type ReputationEvent } from './events.js';

/** The prefix of a domain subject. */
export const DOMAIN_PREFIX = 'domain:';
/** The prefix of a network subject. */
export const NETWORK_PREFIX = 'net:';

/** One label of a host name: letters, digits, hyphens inside, `_` for service-like names. */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/u;

/**
 * The network subject of a client address as an MTA may give it: any IPv6 spelling, IPv4-mapped
 * IPv6 as IPv4, `[192.0.2.1]` or `[IPv6:2001:db8::1]`. Null when it is no address.
 *
 * @example
 * networkSubject('192.0.2.77')             // 'net:192.0.2.0/24'
 * networkSubject('[IPv6:2001:DB8:1:2::9]')  // 'net:2001:db8:1:2::/64'
 * networkSubject('::ffff:192.0.2.1')       // 'net:192.0.2.0/24'
 */
export function networkSubject(raw: string): string | null {
  const ip = parseClientIp(raw);
  return ip ? `${NETWORK_PREFIX}${clientNetwork(ip)}` : null;
}

/**
 * The domain subject of a sender domain: lower case, without a final dot, international names
 * as their ASCII (`xn--`) form. Null for what is no domain of at least two labels: an address
 * literal, a bare word, text with blanks or control characters, more than 253 characters.
 *
 * @example
 * domainSubject('Mail.Example.COM.')  // 'domain:mail.example.com'
 * domainSubject('bücher.example')     // 'domain:xn--bcher-kva.example'
 * domainSubject('[192.0.2.1]')        // null
 */
export function domainSubject(raw: string): string | null {
  let text = raw.trim();
  // Longer than any domain even in Unicode form: not worth converting.
  if (text.length === 0 || text.length > 1024) return null;
  if (text.endsWith('.')) text = text.slice(0, -1);
  text = text.toLowerCase();
  if (/[^\x21-\x7e]/u.test(text)) {
    if (/[\s\p{Cc}]/u.test(text)) return null;
    text = domainToASCII(text);
  }
  if (text.length === 0 || text.length > 253) return null;
  const labels = text.split('.');
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return null;
  return `${DOMAIN_PREFIX}${text}`;
}

/** What a session tells reputation about its sender; either may be missing. */
export interface SubjectFacts {
  /** The client address, as the MTA gave it. */
  ip?: string | null;
  /** The domain of MAIL FROM (empty or absent for the null sender). */
  senderDomain?: string | null;
}

/**
 * The subjects a session's events count for: the sender domain's and the client network's,
 * those that can be made of what is known, domain first.
 *
 * @example
 * reputationSubjects({ ip: '192.0.2.77', senderDomain: 'Example.org' })
 * // ['domain:example.org', 'net:192.0.2.0/24']
 * reputationSubjects({ ip: '2001:db8::1', senderDomain: '' })  // ['net:2001:db8::/64']
 */
export function reputationSubjects(facts: SubjectFacts): string[] {
  const subjects: string[] = [];
  const domain = facts.senderDomain ? domainSubject(facts.senderDomain) : null;
  if (domain) subjects.push(domain);
  const network = facts.ip ? networkSubject(facts.ip) : null;
  if (network) subjects.push(network);
  return subjects;
}

/**
 * The subject a person means by a domain or an address (the CLI's argument): an address gives its
 * network, anything else is read as a domain. Null when it is neither.
 *
 * @example
 * subjectOf('192.0.2.77')   // 'net:192.0.2.0/24'
 * subjectOf('example.org')  // 'domain:example.org'
 * subjectOf('not a domain') // null
 */
export function subjectOf(text: string): string | null {
  return networkSubject(text) ?? domainSubject(text);
}

/**
 * The subjects an event counts for. Bad evidence counts for the sender domain and the client
 * network alike. Good evidence builds a network's standing only when it shows the client itself
 * behaving as a real MTA (a greylisted triplet that came back): an SPF pass for a domain of the
 * client's own, or a call-back that found a forged but real address, would let anyone on the
 * network earn good standing for every other sender there.
 *
 * @example
 * eventSubjects('spf:pass', ['domain:example.org', 'net:192.0.2.0/24'])  // ['domain:example.org']
 * eventSubjects('spf:fail', ['domain:example.org', 'net:192.0.2.0/24'])  // both
 */
export function eventSubjects(event: ReputationEvent, subjects: readonly string[]): string[] {
  const meaning = REPUTATION_EVENTS[event];
  if (meaning.evidence !== 'good' || event === 'greylist:pass') return [...subjects];
  return subjects.filter((s) => !s.startsWith(NETWORK_PREFIX));
}
