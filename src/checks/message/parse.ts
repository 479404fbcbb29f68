/**
 * A whole message (RFC 5322, as a file or standard input gives it) taken apart into header
 * fields and body, for the command line and for tests. Line ends may be CRLF or bare LF (files
 * on Unix); both come out as CRLF, the form the checks read.
 */
import { type HeaderField, makeField, withCrlf } from './field.js';

/** A message taken apart. */
export interface ParsedMessage {
  /** The header fields in order, top first. */
  headers: HeaderField[];
  /** The body, CRLF line ends, from the line after the empty line (empty when there is none). */
  body: Buffer;
  /**
   * Lines of the header block that were neither a field nor a continuation (no colon, or a
   * continuation with no field before it); they are skipped, and counted here.
   */
  malformedLines: number;
}

const CRLF = Buffer.from('\r\n');

/**
 * Take a message apart. A message that starts with a blank line has no header fields; one with no
 * blank line is all header. A line with no colon ends nothing and is skipped (counted in
 * `malformedLines`), as a lenient reader of real mail must.
 *
 * @example
 * const { headers, body } = parseMessage(Buffer.from('From: a@example.org\nSubject: x\n\nhi\n'));
 * headers.map((h) => h.key)  // ['from', 'subject']
 * body.toString()            // 'hi\r\n'
 */
export function parseMessage(message: Buffer): ParsedMessage {
  const text = withCrlf(message);
  const headers: HeaderField[] = [];
  let malformedLines = 0;
  let at = 0;
  let start = -1; // where the field being gathered starts
  let end = -1; // where its last line ends (before CRLF)
  const close = () => {
    if (start < 0) return;
    const raw = text.subarray(start, end);
    const colon = raw.indexOf(0x3a);
    if (colon > 0 && !hasSpaceOrControl(raw, colon)) headers.push(makeField(raw, colon));
    else malformedLines++;
    start = -1;
  };
  while (at < text.length) {
    let eol = text.indexOf(CRLF, at);
    const last = eol < 0;
    if (last) eol = text.length;
    if (eol === at) {
      // The empty line: the body follows.
      close();
      return { headers, body: text.subarray(eol + 2), malformedLines };
    }
    const first = text[at]!;
    if (first === 0x20 || first === 0x09) {
      if (start >= 0) end = eol;
      else malformedLines++;
    } else {
      close();
      start = at;
      end = eol;
    }
    at = last ? text.length : eol + 2;
  }
  close();
  return { headers, body: Buffer.alloc(0), malformedLines };
}

/** A field name is printable ASCII without spaces (RFC 5322 ftext); anything else is no field. */
function hasSpaceOrControl(raw: Buffer, colon: number): boolean {
  for (let i = 0; i < colon; i++) {
    const byte = raw[i]!;
    if (byte <= 0x20 || byte >= 0x7f) return true;
  }
  return false;
}

/**
 * A message put back together: the fields, CRLF after each, the empty line, the body.
 *
 * @example
 * formatMessage([fieldFromText('Subject: x')], Buffer.from('hi\r\n')).toString()
 * // 'Subject: x\r\n\r\nhi\r\n'
 */
export function formatMessage(headers: readonly HeaderField[], body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const field of headers) parts.push(field.raw, CRLF);
  parts.push(CRLF, body);
  return Buffer.concat(parts);
}
