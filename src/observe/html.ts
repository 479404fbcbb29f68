/**
 * Text made safe for HTML and SVG: what the status page and the HTML report place between tags
 * and inside attribute values. Client addresses, HELO names, sender addresses and tags all come
 * from SMTP clients, so every one of them passes through here.
 */

const SPECIAL = /[&<>"']/g;

const ENTITY: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

// C0 controls but tab and line feed, DEL and C1, lone surrogates and U+FFFE/U+FFFF: none may
// appear in XML at all (an SVG file with one is not well-formed), and in HTML they are parse
// errors or invisible, so a hostile HELO name could hide text or break a standalone chart.
const UNSAFE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffe\uffff]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const HAS_UNSAFE = new RegExp(UNSAFE.source);
const HAS_SPECIAL = new RegExp(SPECIAL.source);

/**
 * Text for an HTML or SVG element's content or a quoted attribute value: `&`, `<`, `>`, `"` and
 * `'` become character references, and control characters other than tab and line feed (CR,
 * NUL, ESC, DEL, C1), lone surrogates and the noncharacters U+FFFE/U+FFFF become U+FFFD, so that
 * the text cannot close a tag, leave an attribute or make the document ill-formed.
 *
 * @example
 * escapeHtml('<b onclick="x">\r\n')  // '&lt;b onclick=&quot;x&quot;&gt;\uFFFD\n'
 */
export function escapeHtml(text: string): string {
  // Most values are plain host names and addresses: one scan each, and no copy.
  const safe = HAS_UNSAFE.test(text) ? text.replace(UNSAFE, '\uFFFD') : text;
  return HAS_SPECIAL.test(safe) ? safe.replace(SPECIAL, (c) => ENTITY[c] as string) : safe;
}
