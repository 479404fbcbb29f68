/**
 * Reading what a remote SMTP server said. Its replies are hostile text: they end up in our logs
 * and, for a rejected call-back, in our own reply to a client, so they leave here as one bounded
 * printable line.
 */
import { printableAscii, truncate } from '../text/index.js';
import { normaliseName } from './mailbox.js';

/** Longest reply text kept. */
export const MAX_REPLY = 300;

/**
 * The reply code of a (possibly multi-line) server reply; undefined when it has none.
 *
 * @example
 * replyCode('550-5.1.1 no\n550 5.1.1 such user')  // 550
 */
export function replyCode(response: string): number | undefined {
  const m = /^([1-5]\d\d)(?:[ -]|$)/.exec(response);
  return m ? Number(m[1]) : undefined;
}

/**
 * A server reply as one line: the codes of each line dropped, lines joined by a space, then
 * printable ASCII only and at most `max` characters.
 *
 * @example
 * replyText('550-5.1.1 no such\r\n550 5.1.1 user here')  // '5.1.1 no such 5.1.1 user here'
 */
export function replyText(response: string, max = MAX_REPLY): string {
  const text = response
    .split(/\r?\n/)
    .map((line) => line.replace(/^\d{3}(?:[ -]|$)/, '').trim())
    .filter((line) => line !== '')
    .join(' ');
  return truncate(printableAscii(text).replace(/ {2,}/g, ' '), max);
}

/**
 * The host name a server gives at the start of its EHLO or HELO reply (`250-mx.example.com
 * Hello ...`), lower case; undefined when the first word is not a plausible name.
 *
 * @example
 * greetingName('250-MX.Example.COM Hello [192.0.2.1]\n250 SIZE')  // 'mx.example.com'
 */
export function greetingName(response: string): string | undefined {
  const first = firstWords(response)[0];
  if (first === undefined || first.length > 255) return undefined;
  return /^[\x21-\x7e]+$/.test(first) ? normaliseName(first) : undefined;
}

/**
 * Which of `names` the server named: a word of the banner's first line, or the name in its
 * EHLO reply, compared without case or trailing dot.
 *
 * @example
 * namedHost('220 mx.example.org ESMTP', undefined, ['mx.example.org'])  // 'mx.example.org'
 */
export function namedHost(
  banner: string | undefined,
  greeting: string | undefined,
  names: readonly string[],
): string | undefined {
  if (names.length === 0) return undefined;
  const wanted = new Set(names.map(normaliseName));
  const said = [...(banner === undefined ? [] : firstWords(banner))];
  const name = greeting === undefined ? undefined : greetingName(greeting);
  if (name !== undefined) said.push(name);
  return said.map(normaliseName).find((word) => wanted.has(word));
}

/** The words of a reply's first line after its code. */
function firstWords(response: string): string[] {
  const line = response.split(/\r?\n/, 1)[0] ?? '';
  return line
    .replace(/^\d{3}[ -]?/, '')
    .split(/[ \t]+/)
    .filter((w) => w !== '');
}
