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
  // Nearly all text is printable already: one scan, and no copy.
  return UNPRINTABLE.test(text) ? text.replace(/[^\x20-\x7e]/gu, '?') : text;
}

const UNPRINTABLE = /[^\x20-\x7e]/u;

/** A character escapeForLog rewrites. */
const NEEDS_ESCAPE = /[^\x20-\x7e]|\\/u;

/**
 * Escaped rendering for logs and diagnostics: control and non-ASCII characters as `\xNN` /
 * `\u{NNNN}`, so an operator sees exactly what arrived while the log line stays one line.
 *
 * @example
 * escapeForLog('bad\r\nhelo')  // 'bad\\x0d\\x0ahelo'
 */
export function escapeForLog(text: string): string {
  // Almost everything logged is plain printable ASCII: one scan, and no copy.
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(/[^\x20-\x7e]|\\/gu, (c) => {
    if (c === '\\') return '\\\\';
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * A value for a log line: cut to `max` characters (marked `...`), then escaped as escapeForLog
 * does, so that hostile text is shown whole in kind but bounded in size.
 *
 * @example
 * logValue('a\r\nb'.repeat(100), 8)  // 'a\\x0d\\x0aba...'
 */
export function logValue(text: string, max: number): string {
  return escapeForLog(truncate(text, max));
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
// RFC 2045 token: what Authentication-Results allows unquoted (no tspecials such as / = ? @).
const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+$/;

/**
 * Escape `chars` with backslashes, and cut so that the result is at most `max` characters
 * without splitting an escape: the limit holds after escaping, not before.
 */
function escapeWithin(text: string, chars: RegExp, max: number): string {
  // Most values need no escape and fit: returned as they are, without a walk per character.
  if (text.length <= max && !chars.test(text)) return text;
  let out = '';
  for (const c of text) {
    const piece = chars.test(c) ? `\\${c}` : c;
    if (out.length + piece.length > max) return `${out.slice(0, Math.max(0, max - 3))}...`;
    out += piece;
  }
  return out;
}

/**
 * A quoted-string (RFC 5322 3.2.4) of at most `max + 2` characters: unsafe characters replaced,
 * `\` and `"` escaped, cut if longer.
 *
 * @example
 * quotedString('a "b"')  // '"a \\"b\\""'
 */
export function quotedString(text: string, max = 256): string {
  return quoteSafe(printableAscii(text), max);
}

function quoteSafe(safe: string, max: number): string {
  return `"${escapeWithin(safe, /[\\"]/, max)}"`;
}

/**
 * Whether text is an RFC 5322 dot-atom, which header values may carry unquoted.
 *
 * @example
 * isDotAtom('jo.smith')  // true
 * isDotAtom('a b')       // false
 */
export function isDotAtom(text: string): boolean {
  return ATEXT.test(text);
}

/**
 * A header value token: a dot-atom when the text is one (RFC 5322 3.2.3), else a quoted-string;
 * at most `max + 2` characters whatever the input.
 *
 * @example
 * headerValue('mx.example.com')  // 'mx.example.com'
 * headerValue('a "b"@c')         // '"a \\"b\\"@c"'
 */
export function headerValue(text: string, max = 256): string {
  const safe = printableAscii(text);
  if (safe.length <= max && ATEXT.test(safe)) return safe;
  return quoteSafe(safe, max);
}

/**
 * A value for Authentication-Results (RFC 8601): an RFC 2045 token when the text is one, else a
 * quoted-string; at most `max + 2` characters.
 *
 * @example
 * mimeValue('mx.example.com')  // 'mx.example.com'
 * mimeValue('a=b/c')           // '"a=b/c"'
 */
export function mimeValue(text: string, max = 256): string {
  const safe = printableAscii(text);
  if (safe.length <= max && TOKEN.test(safe)) return safe;
  return quoteSafe(safe, max);
}

/**
 * Text for inside a header comment `( ... )`: parentheses and backslashes escaped, unsafe
 * characters replaced; at most `max` characters after escaping.
 *
 * @example
 * headerComment('a (b)')  // 'a \\(b\\)'
 */
export function headerComment(text: string, max = 512): string {
  return escapeWithin(printableAscii(text), /[()\\]/, max);
}
