/**
 * The RFC 5322 / MIME details of a generated message: dates, header lines that are folded and
 * encoded, and a body that is 7bit when it can be and quoted-printable when it cannot.
 */

import { rfc5322Date } from '../text/index.js';

/** RFC 5322 2.1.1: lines SHOULD stay within 78 characters, MUST within 998. */
const FOLD_AT = 78;
const MAX_LINE = 998;

/**
 * An RFC 5322 date-time in UTC.
 *
 * @example
 * formatDate(new Date(Date.UTC(2025, 6, 1, 12, 0, 5)))  // 'Tue, 01 Jul 2025 12:00:05 +0000'
 */
export function formatDate(date: Date): string {
  return rfc5322Date(date.getTime());
}

/**
 * One header field, folded at spaces, its lines joined by CRLF (no final CRLF). A value with
 * non-ASCII text becomes RFC 2047 encoded words. `value` must hold no control characters;
 * runs of white space become one space.
 *
 * @example
 * headerLine('Subject', 'SPF softfail')  // 'Subject: SPF softfail'
 * headerLine('Subject', 'Grüße')         // 'Subject: =?utf-8?B?R3LDvMOfZQ==?='
 */
export function headerLine(name: string, value: string): string {
  const text = value.replace(/[ \t]+/g, ' ').trim();
  const words = /^[\x00-\x7f]*$/.test(text) ? text.split(' ') : encodedWords(text);
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of words) {
    if (word === '') continue;
    if (line.length + 1 + word.length > FOLD_AT && line !== `${name}:`) {
      lines.push(line);
      line = ` ${word}`;
    } else {
      line = `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.map((l) => (l.length > MAX_LINE ? l.slice(0, MAX_LINE) : l)).join('\r\n');
}

/** RFC 2047 B encoded words of at most 75 characters, never splitting a character. */
function encodedWords(text: string): string[] {
  const words: string[] = [];
  let chunk: Buffer[] = [];
  let size = 0;
  const flush = () => {
    if (size === 0) return;
    words.push(`=?utf-8?B?${Buffer.concat(chunk).toString('base64')}?=`);
    chunk = [];
    size = 0;
  };
  for (const ch of text) {
    const bytes = Buffer.from(ch, 'utf8');
    // 39 bytes are 52 base64 characters, 64 with `=?utf-8?B?` and `?=`: the word fits in a
    // 78-character line after `Subject: ` as well as after the folding space.
    if (size + bytes.length > 39) flush();
    chunk.push(bytes);
    size += bytes.length;
  }
  flush();
  return words;
}

/**
 * Whether a body (CRLF line ends) may go as 7bit: ASCII only, no line over 998 characters.
 *
 * @example
 * isSevenBit('hello\r\nworld')  // true
 */
export function isSevenBit(body: string): boolean {
  if (!/^[\x00-\x7f]*$/.test(body)) return false;
  return body.split('\r\n').every((line) => line.length <= MAX_LINE);
}

/**
 * Quoted-printable (RFC 2045 6.7) of text with CRLF line ends, encoded as UTF-8; the line
 * breaks stay hard breaks, and encoded lines are at most 76 characters.
 *
 * @example
 * quotedPrintable('Grüße = hi ')  // 'Gr=C3=BC=C3=9Fe =3D hi=20'
 */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\r\n')) {
    const bytes = Buffer.from(line, 'utf8');
    let current = '';
    bytes.forEach((byte, i) => {
      const last = i === bytes.length - 1;
      const literal =
        (byte >= 0x21 && byte <= 0x7e && byte !== 0x3d) ||
        ((byte === 0x20 || byte === 0x09) && !last);
      const piece = literal
        ? String.fromCharCode(byte)
        : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      if (current.length + piece.length > 75) {
        out.push(`${current}=`);
        current = '';
      }
      current += piece;
    });
    out.push(current);
  }
  return out.join('\r\n');
}
