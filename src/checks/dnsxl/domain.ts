/**
 * Domain names as DNS lists are asked about them: lower case, A-labels, no trailing dot, and
 * only names that can exist.
 */
import { domainToASCII } from 'node:url';

const LABELS = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)+$/;

/**
 * The domain in the form an RHSBL is asked about, or null when it cannot be a valid domain: two
 * or more labels of letters, digits, `-` and `_`, each 1 to 63 octets, at most 253 in all, with a
 * top label that is not all digits (so an IPv4 address is not taken for a domain). One trailing
 * dot is dropped; internationalised names become A-labels.
 *
 * @example
 * dnsxlDomain('Bücher.Example.')  // 'xn--bcher-kva.example'
 * dnsxlDomain('[192.0.2.1]')      // null
 * dnsxlDomain('')                 // null (the null sender)
 */
export function dnsxlDomain(domain: string): string | null {
  // The URL standard silently drops tabs and newlines from host names: refuse them first, so
  // that `a\r\nb.example` is not looked up as `ab.example`.
  if (/[\x00-\x20\x7f]/.test(domain)) return null;
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (name.length === 0 || name.length > 1024) return null;
  const ascii = domainToASCII(name);
  if (!ascii || ascii.length > 253 || !LABELS.test(ascii)) return null;
  const labels = ascii.split('.');
  for (const label of labels) if (label.length > 63) return null;
  return /^\d+$/.test(labels[labels.length - 1]!) ? null : ascii;
}
