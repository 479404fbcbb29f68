/**
 * What a HELO/EHLO argument is: nothing, a bare IP, an address literal, or a host name, and
 * what is wrong with it as written. Pure: no DNS.
 */
import { domainToASCII } from 'node:url';
import { parse as parseDomain } from 'tldts';
import { type IpAddress, parseIp, unmapIpv4 } from '../../dns/address.js';
import type { HeloForm } from './types.js';

/** Why a name is not a valid host name. */
export type SyntaxProblem =
  | 'bad-characters'
  | 'empty-label'
  | 'label-too-long'
  | 'too-long'
  | 'hyphen';

export interface ParsedHelo {
  form: HeloForm;
  /** The argument without surrounding spaces and tabs. */
  text: string;
  /** For a literal or bare IP: the address (IPv4-mapped unmapped), null when malformed. */
  address?: IpAddress | null;
  /** For an IPv6 literal: whether it carried the `IPv6:` tag. */
  tagged?: boolean;
  /** For a name: lower case, A-labels, no trailing dot; null when its syntax is bad. */
  name?: string | null;
  /** For a name whose syntax is bad: why. */
  problem?: SyntaxProblem;
}

// Anything longer is not a host name, and is not worth converting or scanning further.
const MAX_TEXT = 256;

/**
 * Classify a HELO argument.
 *
 * @example
 * parseHelo('[IPv6:2001:db8::1]')  // { form: 'literal', address: {family: 6, ...}, tagged: true, ... }
 * parseHelo('192.0.2.1').form      // 'bare-ip'
 * parseHelo('Mail.Example.COM.')   // { form: 'name', name: 'mail.example.com', ... }
 */
export function parseHelo(helo: string | null | undefined): ParsedHelo {
  const text = trimBlanks(helo ?? '');
  if (text === '') return { form: 'missing', text };
  if (text.startsWith('[') && text.endsWith(']') && text.length > 1) {
    return { form: 'literal', text, ...parseLiteral(text.slice(1, -1)) };
  }
  const bare = parseIp(text);
  if (bare) return { form: 'bare-ip', text, address: unmapIpv4(bare) };
  // A dotted quad that is no address (999.1.1.1) is as numeric as one that is.
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return { form: 'bare-ip', text, address: null };
  const checked = checkName(text);
  if (typeof checked === 'string') return { form: 'name', text, name: checked };
  return { form: 'name', text, name: null, problem: checked.problem };
}

/**
 * The text without leading and trailing spaces and tabs. A loop, not a regex: `/[ \t]+$/` takes
 * quadratic time on a long run of blanks that does not end the text, and the text is the
 * client's.
 */
function trimBlanks(text: string): string {
  const blank = (i: number) => text[i] === ' ' || text[i] === '\t';
  let start = 0;
  let end = text.length;
  while (start < end && blank(start)) start++;
  while (end > start && blank(end - 1)) end--;
  return text.slice(start, end);
}

function parseLiteral(inner: string): { address: IpAddress | null; tagged?: boolean } {
  if (/^ipv6:/i.test(inner)) {
    const ip = parseIp(inner.slice(5));
    return { address: ip?.family === 6 ? unmapIpv4(ip) : null, tagged: true };
  }
  const ip = parseIp(inner);
  if (!ip) return { address: null };
  // RFC 5321 4.1.3 wants `IPv6:` in front; bley's users send it without, and mean the same.
  return ip.family === 6 ? { address: unmapIpv4(ip), tagged: false } : { address: ip };
}

/**
 * A host name's comparable form (lower case, A-labels, no trailing dot), or why it is not one:
 * labels of letters, digits and inner hyphens, 1 to 63 octets each, at most 253 in all.
 * Internationalised names are converted to A-labels first.
 */
export function checkName(text: string): string | { problem: SyntaxProblem } {
  if (text.length > MAX_TEXT) return { problem: 'too-long' };
  if (/[\x00-\x20\x7f]/.test(text)) return { problem: 'bad-characters' };
  let name = text;
  if (/[^\x21-\x7e]/.test(name)) {
    const ascii = domainToASCII(name);
    if (!ascii) return { problem: 'bad-characters' };
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length > 253) return { problem: 'too-long' };
  for (const label of name.split('.')) {
    if (label === '') return { problem: 'empty-label' };
    if (label.length > 63) return { problem: 'label-too-long' };
    if (/[^a-z0-9-]/.test(label)) return { problem: 'bad-characters' };
    if (label.startsWith('-') || label.endsWith('-')) return { problem: 'hyphen' };
  }
  return name;
}

/**
 * Why a valid name is not fully qualified, or null: one label only, or an all-numeric top label.
 */
export function fqdnProblem(name: string): 'single-label' | 'numeric-tld' | null {
  const labels = name.split('.');
  if (labels.length < 2) return 'single-label';
  return /^\d+$/.test(labels[labels.length - 1]!) ? 'numeric-tld' : null;
}

/**
 * Why a valid name has no usable public suffix, or null: its suffix is on neither section of
 * the public suffix list nor among `extra`, or the name is itself a suffix (`co.uk`).
 */
export function suffixProblem(
  name: string,
  extra: readonly string[],
): 'unknown-suffix' | 'is-suffix' | null {
  for (const suffix of extra) {
    if (name === suffix) return 'is-suffix';
    if (name.endsWith(`.${suffix}`)) return null;
  }
  const parsed = parseDomain(name, { allowPrivateDomains: true, extractHostname: false });
  if (!(parsed.isIcann || parsed.isPrivate)) return 'unknown-suffix';
  return parsed.domain === null ? 'is-suffix' : null;
}

/**
 * The registrable domain of a name (the public suffix and one label more), or null.
 *
 * @example
 * registrableDomain('mail.example.co.uk')  // 'example.co.uk'
 */
export function registrableDomain(name: string): string | null {
  return parseDomain(name, { allowPrivateDomains: true, extractHostname: false }).domain;
}
