/**
 * Header canonicalization (RFC 6376 section 3.4.1 and 3.4.2) and the choice of the fields a
 * signature covers (section 5.4.2). Works on the field bytes as sent: simple keeps them exactly,
 * relaxed rewrites only names, folding and whitespace, so 8-bit bytes pass through untouched.
 */
import type { HeaderField } from '../message/index.js';

export type Canonicalization = 'simple' | 'relaxed';

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const CRLF = Buffer.from('\r\n');

/**
 * One header field canonicalized, followed by CRLF, as it enters the header hash.
 *
 * @example
 * canonicalizeHeader(fieldFromText('SubJect : AbC\r\n\t def  '), 'relaxed').toString()
 * // 'subject:AbC def\r\n'
 * canonicalizeHeader(fieldFromText('Subject: x'), 'simple').toString()  // 'Subject: x\r\n'
 */
export function canonicalizeHeader(field: HeaderField, how: Canonicalization): Buffer {
  if (how === 'simple') return Buffer.concat([field.raw, CRLF]);
  return relaxedField(field.raw, true);
}

/**
 * The signature field itself as it enters the hash: canonicalized, the value of its b= tag
 * emptied (from after `b=` to the next `;` or the end, whitespace included, RFC 6376 section
 * 3.7), everything else byte for byte, and no final CRLF. Serves DKIM-Signature,
 * ARC-Message-Signature and ARC-Seal.
 *
 * @example
 * canonicalizeSignatureField(fieldFromText('DKIM-Signature: a=x; b=AbC\r\n dEf; bh=1'), 'relaxed')
 *   .toString()  // 'dkim-signature:a=x; b=; bh=1'
 */
export function canonicalizeSignatureField(field: HeaderField, how: Canonicalization): Buffer {
  const emptied = withoutSignatureValue(field.raw);
  if (how === 'simple') return emptied;
  return relaxedField(emptied, false);
}

/**
 * The fields an h= list covers, in the order of the list (RFC 6376 section 5.4.2): for each name,
 * case-insensitively, the bottom-most field of that name not yet picked; a name with no field
 * left picks nothing, which is how oversigning works. Fields in `exclude` (the signature being
 * verified) are never picked.
 *
 * @example
 * // headers: Received, From, To, From (top to bottom)
 * selectSignedFields(headers, ['from', 'from', 'from', 'to']).map((f) => f.raw.toString())
 * // [the lower From, the upper From, To]
 */
export function selectSignedFields(
  headers: readonly HeaderField[],
  names: readonly string[],
  exclude?: ReadonlySet<HeaderField>,
): HeaderField[] {
  const wanted = new Set<string>();
  for (const name of names) wanted.add(name.trim().toLowerCase());
  // Fields of each wanted name, top to bottom; picked from the end.
  const byName = new Map<string, HeaderField[]>();
  for (const field of headers) {
    if (!wanted.has(field.key) || exclude?.has(field)) continue;
    const list = byName.get(field.key);
    if (list) list.push(field);
    else byName.set(field.key, [field]);
  }
  const picked: HeaderField[] = [];
  for (const name of names) {
    const field = byName.get(name.trim().toLowerCase())?.pop();
    if (field) picked.push(field);
  }
  return picked;
}

/**
 * Relaxed header canonicalization of a whole field: name lowercased (ASCII only) without the
 * whitespace before the colon, folds removed, whitespace runs made one space, whitespace at the
 * start and end of the value removed.
 */
function relaxedField(raw: Buffer, crlf: boolean): Buffer {
  const out = Buffer.allocUnsafe(raw.length + 2);
  let colon = raw.indexOf(COLON);
  if (colon < 0) colon = raw.length;
  let to = 0;
  let nameEnd = colon;
  while (nameEnd > 0 && isFwsByte(raw[nameEnd - 1]!)) nameEnd--;
  for (let i = 0; i < nameEnd; i++) {
    const byte = raw[i]!;
    out[to++] = byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte;
  }
  if (colon < raw.length) out[to++] = COLON;
  let space = false; // whitespace seen since the last value byte written
  let started = false; // a value byte has been written
  for (let i = colon + 1; i < raw.length; i++) {
    const byte = raw[i]!;
    if (byte === SP || byte === TAB) {
      space = true;
      continue;
    }
    if (byte === CR && raw[i + 1] === LF) {
      // A fold: the CRLF goes; the whitespace after it is seen next.
      i++;
      continue;
    }
    if (space && started) out[to++] = SP;
    space = false;
    started = true;
    out[to++] = byte;
  }
  if (crlf) {
    out[to++] = CR;
    out[to++] = LF;
  }
  return out.subarray(0, to);
}

function isFwsByte(byte: number): boolean {
  return byte === SP || byte === TAB || byte === CR || byte === LF;
}

/**
 * The field with the value of its first b= tag removed (tag values never hold ';', so splitting
 * on it finds the tags). A field without b= comes back unchanged.
 */
function withoutSignatureValue(raw: Buffer): Buffer {
  const colon = raw.indexOf(COLON);
  if (colon < 0) return raw;
  let start = colon + 1;
  while (start <= raw.length) {
    let end = raw.indexOf(SEMICOLON, start);
    if (end < 0) end = raw.length;
    const eq = raw.indexOf(EQUALS, start);
    if (eq >= 0 && eq < end && isTagB(raw, start, eq)) {
      return Buffer.concat([raw.subarray(0, eq + 1), raw.subarray(end)]);
    }
    start = end + 1;
  }
  return raw;
}

/** Whether `raw[start, eq)` is the tag name `b` with folding whitespace around it. */
function isTagB(raw: Buffer, start: number, eq: number): boolean {
  let from = start;
  let to = eq;
  while (from < to && isFwsByte(raw[from]!)) from++;
  while (to > from && isFwsByte(raw[to - 1]!)) to--;
  return to - from === 1 && raw[from] === 0x62;
}

/**
 * The header hash input of a DKIM signature or an ARC-Message-Signature (RFC 6376 section 3.7):
 * the fields `names` picks, bottom-up as DKIM does, canonicalized, then the signature field
 * itself with b= emptied.
 *
 * @example
 * verifySignature(algorithm, key, signedHeaderData(headers, field, ['from', 'subject'], 'relaxed'), b)
 */
export function signedHeaderData(
  headers: readonly HeaderField[],
  signature: HeaderField,
  names: readonly string[],
  how: Canonicalization,
): Buffer {
  const parts = selectSignedFields(headers, names, new Set([signature])).map((field) =>
    canonicalizeHeader(field, how),
  );
  parts.push(canonicalizeSignatureField(signature, how));
  return Buffer.concat(parts);
}
