/**
 * Tag=value lists (RFC 6376 section 3.2), the syntax of DKIM-Signature fields, key records and
 * the ARC fields built on them. Parsing is strict about structure (a list that does not follow
 * the grammar says where it breaks) and keeps values byte for byte inside, so that the callers
 * decide what a value means.
 */

/** Tag name → value, the value with its folding whitespace removed at both ends (inner kept). */
export type TagList = ReadonlyMap<string, string>;

export type TagListParse = { ok: true; tags: TagList } | { ok: false; reason: string };

// tag-name = ALPHA *ALNUMPUNC (RFC 6376 section 3.2).
const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
// tag-value: VALCHARs (0x21-0x7e but ';') separated by folding whitespace. Bytes of 8 bits
// (decoded byte for byte) are let through, as internationalized identities (RFC 8616) carry them.
const TAG_VALUE = /^(?:[^\x00-\x20\x7f;]+(?:(?:[ \t]|\r\n[ \t])+[^\x00-\x20\x7f;]+)*)?$/;

/** Longest tag name or value shown in a reason. */
const SHOWN = 40;

/**
 * Parse a tag=value list. Duplicate tags, bad tag names, a part without `=` or a value with
 * characters outside the grammar give `ok: false` with a reason naming the tag. A trailing `;`
 * is allowed; an empty list is not.
 *
 * @example
 * parseTagList('v=1; a=rsa-sha256; d=example.com;')
 * // { ok: true, tags: Map { 'v' => '1', 'a' => 'rsa-sha256', 'd' => 'example.com' } }
 * parseTagList('v=1; v=2')  // { ok: false, reason: "tag 'v' appears twice" }
 */
export function parseTagList(text: string): TagListParse {
  const tags = new Map<string, string>();
  const parts = text.split(';');
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index]!;
    const eq = part.indexOf('=');
    if (eq < 0) {
      // Only the part after a final ';' may be empty (whitespace at most).
      if (index === parts.length - 1 && index > 0 && isOnlyFws(part)) break;
      if (isOnlyFws(part))
        return fail(index === 0 ? 'empty tag list' : `empty tag at part ${index + 1}`);
      return fail(`tag '${shown(trimFws(part))}' has no '='`);
    }
    const name = trimFws(part.slice(0, eq));
    if (!TAG_NAME.test(name)) return fail(`bad tag name '${shown(name)}'`);
    const value = trimFws(part.slice(eq + 1));
    if (!TAG_VALUE.test(value)) return fail(`tag '${name}' has a malformed value`);
    if (tags.has(name)) return fail(`tag '${name}' appears twice`);
    tags.set(name, value);
  }
  return { ok: true, tags };
}

/**
 * A base64 tag value (b=, bh=, p=) decoded, all whitespace removed first (FWS may appear
 * anywhere in it). `null` when it is not base64: characters outside the alphabet, misplaced or
 * missing padding. An empty value decodes to an empty buffer.
 *
 * @example
 * decodeBase64Tag('aGVs\r\n bG8=')?.toString()  // 'hello'
 * decodeBase64Tag('not base64!')                 // null
 */
export function decodeBase64Tag(value: string): Buffer | null {
  const compact = WHITESPACE.test(value) ? value.replace(/[ \t\r\n]+/g, '') : value;
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) return null;
  return Buffer.from(compact, 'base64');
}

const WHITESPACE = /[ \t\r\n]/;
const BASE64 = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Split a colon-separated tag value (h=, s=, t= of keys, q=) into its items, FWS trimmed.
 *
 * @example
 * splitColonList('from : to:\r\n subject')  // ['from', 'to', 'subject']
 */
export function splitColonList(value: string): string[] {
  return value.split(':').map(trimFws);
}

/**
 * `text` without folding whitespace at its ends: spaces, tabs, and CRLF where a space or tab
 * follows it (a fold); a CRLF that folds nothing is no whitespace and stays, for the value
 * check to refuse.
 */
function trimFws(text: string): string {
  let start = 0;
  let end = text.length;
  for (;;) {
    const c = text.charCodeAt(start);
    if (c === 0x20 || c === 0x09) start++;
    else if (c === 0x0d && text.charCodeAt(start + 1) === 0x0a && isWsp(text.charCodeAt(start + 2)))
      start += 3;
    else break;
  }
  for (;;) {
    const c = text.charCodeAt(end - 1);
    if (end > start && (c === 0x20 || c === 0x09)) {
      end--;
      // Whitespace after a CRLF: the CRLF folds, and goes too.
      if (
        end - 2 >= start &&
        text.charCodeAt(end - 1) === 0x0a &&
        text.charCodeAt(end - 2) === 0x0d
      )
        end -= 2;
    } else break;
  }
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function isOnlyFws(text: string): boolean {
  return trimFws(text) === '';
}

function shown(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > SHOWN ? `${printable.slice(0, SHOWN - 3)}...` : printable;
}

function fail(reason: string): TagListParse {
  return { ok: false, reason };
}
