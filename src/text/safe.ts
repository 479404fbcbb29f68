/**
 * Turning untrusted text into text that cannot break the syntax it is placed in.
 */

/**
 * Printable ASCII only: every character outside 0x20-0x7e (CR, LF, NUL, TAB, 8-bit, Unicode)
 * becomes `?`, so nothing can end a line, split a header or smuggle a reply line.
 *
 * @example
 * printableAscii('a\r\nb\u00e9')  // 'a??b?'
 */
export function printableAscii(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, '?');
}

/**
 * Escaped rendering for logs and diagnostics: control and non-ASCII characters as `\xNN` /
 * `\u{NNNN}`, so an operator sees exactly what arrived while the log line stays one line.
 *
 * @example
 * escapeForLog('bad\r\nhelo')  // 'bad\\x0d\\x0ahelo'
 */
export function escapeForLog(text: string): string {
  return text.replace(/[^\x20-\x7e]|\\/gu, (c) => {
    if (c === '\\') return '\\\\';
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * Cut text to at most `max` characters, marking the cut with `...`.
 *
 * @example
 * truncate('abcdef', 5)  // 'ab...'
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 3))}...`;
}

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

/**
 * A header value token: a dot-atom when the text is one (RFC 5322 3.2.3), else a quoted-string
 * with `\` and `"` escaped and unsafe characters replaced.
 *
 * @example
 * headerValue('mx.example.com')  // 'mx.example.com'
 * headerValue('a "b"@c')         // '"a \\"b\\"@c"'
 */
export function headerValue(text: string, max = 256): string {
  const safe = truncate(printableAscii(text), max);
  if (ATEXT.test(safe)) return safe;
  return `"${safe.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Text for inside a header comment `( ... )`: parentheses and backslashes escaped, unsafe
 * characters replaced.
 *
 * @example
 * headerComment('a (b)')  // 'a \\(b\\)'
 */
export function headerComment(text: string, max = 512): string {
  return truncate(printableAscii(text), max).replace(/[()\\]/g, (c) => `\\${c}`);
}
