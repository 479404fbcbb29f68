/**
 * Domain names as DMARC compares them: lowercase A-labels (RFC 9989 section 5.3.1), checked
 * once, so that every comparison after that is a plain string comparison (RFC 4343 makes them
 * case-insensitive), and the parents the DNS Tree Walk visits.
 */
import { domainToASCII } from 'node:url';

const MAX_NAME = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/u;

/**
 * The domain in the form DMARC works with, or null when it cannot be one: lowercase, no final
 * dot, U-labels converted to A-labels, LDH labels (and `_`, which some zones use) of 1 to 63
 * octets, at most 253 in all, and a top label that is not all digits (that is an address).
 *
 * @example
 * dmarcDomain('Mail.Example.COM.')  // 'mail.example.com'
 * dmarcDomain('bücher.example')     // 'xn--bcher-kva.example'
 * dmarcDomain('192.0.2.1')          // null
 */
export function dmarcDomain(text: string): string | null {
  // Nothing this long is a name; nor is it worth converting.
  if (text.length === 0 || text.length > MAX_NAME * 4) return null;
  let name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (/[^\x21-\x7e]/u.test(name)) {
    if (/[\x00-\x20\x7f]/u.test(name)) return null;
    const ascii = domainToASCII(name);
    if (!ascii) return null;
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.length === 0 || name.length > MAX_NAME) return null;
  const labels = name.split('.');
  for (const label of labels) if (!LABEL.test(label)) return null;
  return /^\d+$/u.test(labels[labels.length - 1]!) ? null : name;
}

/**
 * How many labels a (checked) domain has.
 *
 * @example
 * labelCount('mail.example.com')  // 3
 */
export function labelCount(domain: string): number {
  let count = 1;
  for (let at = domain.indexOf('.'); at >= 0; at = domain.indexOf('.', at + 1)) count++;
  return count;
}

/**
 * The domain without its leftmost label; null for a single label.
 *
 * @example
 * parentOf('mail.example.com')  // 'example.com'
 * parentOf('com')               // null
 */
export function parentOf(domain: string): string | null {
  const dot = domain.indexOf('.');
  return dot < 0 ? null : domain.slice(dot + 1);
}

/**
 * The rightmost `count` labels of the domain (all of it when it has no more).
 *
 * @example
 * lastLabels('a.b.c.example.com', 3)  // 'c.example.com'
 */
export function lastLabels(domain: string, count: number): string {
  const labels = domain.split('.');
  return labels.length <= count ? domain : labels.slice(labels.length - count).join('.');
}

/**
 * Whether `domain` is `ancestor` or below it.
 *
 * @example
 * isAtOrBelow('mail.example.com', 'example.com')  // true
 * isAtOrBelow('badexample.com', 'example.com')    // false
 */
export function isAtOrBelow(domain: string, ancestor: string): boolean {
  return domain === ancestor || domain.endsWith(`.${ancestor}`);
}
