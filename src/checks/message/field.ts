/**
 * One header field as bytes: `Name:value` exactly as sent, folding included, inner line ends
 * CRLF, no final CRLF.
 */

/** One header field of a message. */
export interface HeaderField {
  /** The field name as sent (case kept), decoded byte for byte. */
  readonly name: string;
  /** The name lowercased, for matching names. */
  readonly key: string;
  /** The whole field: name, colon, value with its folding (CRLF inside), without the final CRLF. */
  readonly raw: Buffer;
}

const COLON = 0x3a;
const CR = 0x0d;
const LF = 0x0a;

/**
 * A field from a name and a value as a milter receives them. With `leadingSpaceKept` (the MTA
 * granted SMFIP_HDR_LEADSPC) the value holds everything after the colon as sent; without it the
 * MTA removed the whitespace after the colon, and one space is put back, which is what most
 * senders write (only DKIM's simple header canonicalization can tell). Bare LF line ends, as
 * MTAs pass folded values, become CRLF.
 *
 * @example
 * fieldFromParts(Buffer.from('Subject'), Buffer.from(' hi\n\tthere'), true).raw.toString()
 * // 'Subject: hi\r\n\tthere'
 * fieldFromParts(Buffer.from('Subject'), Buffer.from('hi'), false).raw.toString()
 * // 'Subject: hi'
 */
export function fieldFromParts(
  name: Buffer,
  value: Buffer,
  leadingSpaceKept: boolean,
): HeaderField {
  const head = leadingSpaceKept ? 1 : 2;
  const crlfValue = withCrlf(value);
  const raw = Buffer.allocUnsafe(name.length + head + crlfValue.length);
  name.copy(raw, 0);
  raw[name.length] = COLON;
  if (!leadingSpaceKept) raw[name.length + 1] = 0x20;
  crlfValue.copy(raw, name.length + head);
  return makeField(raw, name.length);
}

/**
 * A field from its whole text (`Name: value`), for fields we write ourselves and for tests.
 * Throws a TypeError when there is no colon.
 *
 * @example
 * fieldFromText('From: jo@example.com').key  // 'from'
 */
export function fieldFromText(text: string): HeaderField {
  const raw = withCrlf(Buffer.from(text, 'utf8'));
  const colon = raw.indexOf(COLON);
  if (colon < 0) throw new TypeError(`header field without a colon: ${JSON.stringify(text)}`);
  return makeField(raw, colon);
}

/**
 * A field over `raw` whose name ends at `colon`.
 *
 * @example
 * makeField(Buffer.from('To: b@example.org'), 2).name  // 'To'
 */
export function makeField(raw: Buffer, colon: number): HeaderField {
  const name = raw.toString('latin1', 0, colon);
  return { name, key: name.toLowerCase(), raw };
}

/**
 * The value of a field: everything after the colon, decoded byte for byte (latin1, so no byte is
 * lost), still folded.
 *
 * @example
 * fieldValue(fieldFromText('Subject: hi'))  // ' hi'
 */
export function fieldValue(field: HeaderField): string {
  return field.raw.toString('latin1', field.name.length + 1);
}

/**
 * The value unfolded (CRLF before whitespace removed) and trimmed, for reading addresses and tags.
 *
 * @example
 * unfoldedValue(fieldFromText('To: a@example.org,\r\n b@example.org'))  // 'a@example.org, b@example.org'
 */
export function unfoldedValue(field: HeaderField): string {
  return fieldValue(field)
    .replace(/\r?\n(?=[ \t])/gu, '')
    .trim();
}

/** `bytes` with every LF not preceded by CR made CRLF (a copy only when something changes). */
export function withCrlf(bytes: Buffer): Buffer {
  let bare = 0;
  for (let at = bytes.indexOf(LF); at >= 0; at = bytes.indexOf(LF, at + 1)) {
    if (at === 0 || bytes[at - 1] !== CR) bare++;
  }
  if (bare === 0) return bytes;
  const out = Buffer.allocUnsafe(bytes.length + bare);
  let to = 0;
  for (let from = 0; from < bytes.length; from++) {
    const byte = bytes[from]!;
    if (byte === LF && (from === 0 || bytes[from - 1] !== CR)) out[to++] = CR;
    out[to++] = byte;
  }
  return out;
}
