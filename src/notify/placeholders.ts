/**
 * Template placeholders, written `%(name)s` as in the templates bms.py sites already have (Python
 * %-formatting with a mapping): `%%` is a literal `%`, and anything else is left as written.
 */

/** The placeholders a DSN template may use. */
export const DSN_PLACEHOLDERS = [
  'rcpt',
  'subject',
  'spf_result',
  'perm_error',
  'receiver',
  'result',
  'sender',
] as const;

export type DsnPlaceholder = (typeof DSN_PLACEHOLDERS)[number];

const KNOWN = new Set<string>(DSN_PLACEHOLDERS);
// `%%`, or `%(` up to the closing parenthesis on the same line and the conversion letter.
const TOKEN = /%%|%\(([^()\r\n]{0,64})\)([A-Za-z]?)/g;

/**
 * Replace the placeholders in `text`: `%(name)s` with `lookup(name)` for a known name, `%%`
 * with `%`; unknown placeholders stay as written.
 *
 * @example
 * expandPlaceholders('To: %(sender)s, 100%%, %(other)s', () => 'jo@example.com')
 * // 'To: jo@example.com, 100%, %(other)s'
 */
export function expandPlaceholders(text: string, lookup: (name: DsnPlaceholder) => string): string {
  return text.replace(TOKEN, (token, name: string | undefined, conversion: string) => {
    if (token === '%%') return '%';
    return conversion === 's' && KNOWN.has(name!) ? lookup(name as DsnPlaceholder) : token;
  });
}

/**
 * The placeholders of `text` that expansion leaves alone: unknown names and conversions other
 * than `s`, as written.
 *
 * @example
 * unknownPlaceholders('%(rcpt)s %(rcpts)s %(sender)r')  // ['%(rcpts)s', '%(sender)r']
 */
export function unknownPlaceholders(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(TOKEN)) {
    if (m[0] === '%%') continue;
    if (m[2] !== 's' || !KNOWN.has(m[1]!)) out.push(m[0]);
  }
  return out;
}
