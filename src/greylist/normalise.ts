/**
 * Greylist keys: envelope addresses and client addresses in the one form the store sees, so that
 * a retry of the same mail finds its triplet whatever the spelling, and nothing an SMTP client
 * sends (CR, LF, NUL, megabytes) reaches a key, a header or a log line.
 */
import {
  clientNetwork,
  formatIp,
  type IpAddress,
  parseClientIp,
  unmapIpv4,
} from '../dns/address.js';

// Where greylisting's users have always found it.
export { parseClientIp };

import { escapeForLog } from '../text/index.js';

/** Longest normalised address, in characters (RFC 5321's path limit, 256, less the brackets). */
export const MAX_ADDRESS_LENGTH = 254;

/**
 * BATV-style tagged local parts, which change with every message a sender sends and would make
 * each retry a new triplet:
 * - `prvs=TAG=local` (draft-levine-smtp-batv-01), and the same syntax under `msprvs1=`;
 * - `prvs=local/TAG` (the earlier draft's order, still sent by older signers);
 * - `btv1==TAG==local` (Barracuda's variant).
 * The tag is a short run of letters and digits; anything else is left alone.
 */
const BATV_FORMS: readonly RegExp[] = [
  /^(?:prvs|msprvs1)=[0-9a-z]{1,64}=(.+)$/,
  /^prvs=(.+)\/[0-9a-z]{1,64}$/,
  /^btv1==[0-9a-z]{1,64}==(.+)$/,
];

/**
 * The form of an envelope address that greylisting keys on: surrounding blanks and `<>` removed,
 * lower case, BATV tags and a `+extension` removed from the local part (never from the domain:
 * `user@a+b.example` keeps its domain), control and non-ASCII characters escaped (`\x0d`),
 * and at most 254 characters. The null sender (`''` or `<>`) is `''`.
 *
 * @example
 * normaliseAddress('<Jo.Smith+lists@Example.COM>')        // 'jo.smith@example.com'
 * normaliseAddress('prvs=0123abcdef=bounce@example.com')  // 'bounce@example.com'
 * normaliseAddress('<>')                                  // ''
 * normaliseAddress('a\r\nb@example.com')                  // 'a\\x0d\\x0ab@example.com'
 */
export function normaliseAddress(raw: string): string {
  let text = raw.trim();
  if (text.startsWith('<') && text.endsWith('>')) text = text.slice(1, -1).trim();
  if (text === '') return '';
  text = text.toLowerCase();
  const at = text.lastIndexOf('@');
  let local = at < 0 ? text : text.slice(0, at);
  const domain = at < 0 ? '' : text.slice(at);
  for (const form of BATV_FORMS) {
    const m = form.exec(local);
    if (m?.[1]) {
      local = m[1];
      break;
    }
  }
  const plus = local.indexOf('+');
  // `+tag@example.com` has nothing left of the `+`: that is the whole name, not an extension.
  if (plus > 0) local = local.slice(0, plus);
  return escapeForLog(local + domain).slice(0, MAX_ADDRESS_LENGTH);
}

/**
 * The local part of a normalised address (the whole of it when there is no `@`).
 *
 * @example
 * localPart('postmaster@example.com')  // 'postmaster'
 */
export function localPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : address.slice(0, at);
}

/**
 * The domain of a normalised address, or `''` when it has none.
 *
 * @example
 * domainPart('jo@example.com')  // 'example.com'
 */
export function domainPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

/**
 * The canonical text of a client address: IPv4 dotted quad, IPv6 compressed lower case, mapped
 * IPv4 as IPv4. Null when it is no address.
 *
 * @example
 * canonicalIp('2001:DB8:0:0:0:0:0:1')  // '2001:db8::1'
 * canonicalIp('::ffff:192.0.2.1')      // '192.0.2.1'
 */
export function canonicalIp(raw: string): string | null {
  const ip = parseClientIp(raw);
  return ip ? formatIp(ip) : null;
}

/**
 * The client part of a greylist key: the canonical address, or with `byNetwork` its network,
 * IPv4 /24 or IPv6 /64, written as `192.0.2.0/24` or `2001:db8:1:2::/64`.
 *
 * @example
 * clientKey(parseClientIp('192.0.2.77')!, true)            // '192.0.2.0/24'
 * clientKey(parseClientIp('2001:db8:1:2:3:4:5:6')!, true)  // '2001:db8:1:2::/64'
 * clientKey(parseClientIp('192.0.2.77')!, false)           // '192.0.2.77'
 */
export function clientKey(ip: IpAddress, byNetwork: boolean): string {
  return byNetwork ? clientNetwork(ip) : formatIp(unmapIpv4(ip));
}
