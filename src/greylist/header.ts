/**
 * The X-Greylist header of a message that passed after waiting, as postgrey and milter-greylist
 * users know it: `X-Greylist: delayed 1805 seconds by mailgate-0.1.0 at mx.example.com; DATE`.
 */

import { rfc5322Date } from '../text/index.js';

export { rfc5322Date };

/**
 * A host name safe for a header and a log: letters, digits, `-` and `.` only (anything else
 * becomes `-`), lower case, no trailing dot, at most 253 characters; `localhost` when nothing
 * is left.
 *
 * @example
 * safeHostname('MX1.Example.COM.')  // 'mx1.example.com'
 * safeHostname('evil\r\nX-Bad: 1')   // 'evil--x-bad--1'
 */
export function safeHostname(name: string): string {
  const cleaned = name
    .slice(0, 254)
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/\.+$/, '')
    .slice(0, 253);
  return /[a-z0-9]/.test(cleaned) ? cleaned : 'localhost';
}

/**
 * A version safe for a header: letters, digits, `.`, `-` and `+` (others become `-`), at most
 * 64 characters.
 *
 * @example
 * safeVersion('0.1.0-rc.1')  // '0.1.0-rc.1'
 */
export function safeVersion(version: string): string {
  const cleaned = version.slice(0, 64).replace(/[^A-Za-z0-9.+-]/g, '-');
  return cleaned === '' ? '0' : cleaned;
}

/**
 * The header line, without a line end and without Postfix's `PREPEND `.
 *
 * @example
 * greylistHeader(1805, 'mx.example.com', '0.1.0', Date.UTC(2026, 10, 21, 10, 0, 0))
 * // 'X-Greylist: delayed 1805 seconds by mailgate-0.1.0 at mx.example.com; Sat, 21 Nov 2026 10:00:00 +0000'
 */
export function greylistHeader(
  delaySeconds: number,
  hostname: string,
  version: string,
  now: number,
): string {
  const delay = Math.max(0, Math.floor(delaySeconds));
  return (
    `X-Greylist: delayed ${delay} seconds by mailgate-${safeVersion(version)} ` +
    `at ${safeHostname(hostname)}; ${rfc5322Date(now)}`
  );
}
