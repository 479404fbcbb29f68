/**
 * The floor of the DKIM benchmark: what verifying a relaxed/relaxed signature costs with
 * node:crypto and nothing else. Everything that is not hashing or public-key work is done once,
 * before timing, by {@link prepareFloor}: the message is taken apart, both canonical forms are
 * made (written here from RFC 6376 sections 3.4.2 and 3.4.4, independently of mailgate's, so
 * that a pass by the floor is also a check of mailgate's signer) and the key record becomes a
 * KeyObject. {@link verifyFloor}, the timed part, hashes the canonical body, compares it with
 * bh=, and verifies b= over the canonical header data.
 *
 * @example
 * const prepared = prepareFloor(signed, keyRecords);
 * verifyFloor(prepared)  // 'pass'
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';

export interface FloorPrepared {
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  canonicalBody: Buffer;
  bodyHash: Buffer;
  headerData: Buffer;
  signature: Buffer;
  key: KeyObject;
}

const WSP_RUN = /[ \t]+/g;

/** The relaxed form of one header field (RFC 6376 section 3.4.2), with CRLF. */
function relaxedField(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).trimEnd().toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(WSP_RUN, ' ')
    .trim();
  return `${name}:${value}\r\n`;
}

/** The relaxed canonical body (RFC 6376 section 3.4.4). */
function relaxedBody(body: string): Buffer {
  const lines = body.split('\r\n');
  // A body that ends in CRLF splits into a last empty piece, which is no line.
  if (lines.at(-1) === '') lines.pop();
  const out = lines.map((line) => line.replace(WSP_RUN, ' ').replace(/ $/, ''));
  while (out.length > 0 && out.at(-1) === '') out.pop();
  return Buffer.from(out.length === 0 ? '' : `${out.join('\r\n')}\r\n`, 'latin1');
}

/** The value of tag `name` in a tag list, whitespace removed. */
function tag(list: string, name: string): string | undefined {
  for (const part of list.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).replace(/\s+/g, '');
  }
  return undefined;
}

function keyFrom(record: string, algorithm: FloorPrepared['algorithm']): KeyObject {
  const der = Buffer.from(tag(record, 'p') ?? '', 'base64');
  if (algorithm === 'ed25519-sha256') {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: der.toString('base64url') },
      format: 'jwk',
    });
  }
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/**
 * Everything but the hashing and the signature check, for the message's first (top)
 * DKIM-Signature; keys from `keyRecords` (`selector._domainkey.domain` → TXT value). Throws
 * when the message is not what the benchmark signs (relaxed/relaxed, rsa-sha256 or
 * ed25519-sha256, no l=).
 */
export function prepareFloor(message: Buffer, keyRecords: Record<string, string>): FloorPrepared {
  // latin1 keeps one character per byte, so that the canonical forms are the bytes sent.
  const text = message.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split + 2);
  const body = text.slice(split + 4);
  const fields: string[] = [];
  for (const line of head.split('\r\n').slice(0, -1)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1] += `\r\n${line}`;
    } else {
      fields.push(line);
    }
  }
  const nameOf = (field: string) => field.slice(0, field.indexOf(':')).trim().toLowerCase();
  const signatureField = fields.find((f) => nameOf(f) === 'dkim-signature');
  if (!signatureField) throw new Error('floor: no DKIM-Signature');
  const tags = signatureField.slice(signatureField.indexOf(':') + 1);
  const algorithm = tag(tags, 'a');
  if (algorithm !== 'rsa-sha256' && algorithm !== 'ed25519-sha256') {
    throw new Error(`floor: a=${algorithm} is not one the benchmark signs with`);
  }
  if (tag(tags, 'c') !== 'relaxed/relaxed' || tag(tags, 'l') !== undefined) {
    throw new Error('floor: only relaxed/relaxed without l= is prepared');
  }
  const record = keyRecords[`${tag(tags, 's')}._domainkey.${tag(tags, 'd')}`];
  if (!record) throw new Error('floor: no key record for the signature');

  // h= picks fields from the bottom up, each instance once (RFC 6376 section 5.4.2).
  const used = new Set<number>();
  const picked: string[] = [];
  for (const name of (tag(tags, 'h') ?? '').toLowerCase().split(':')) {
    for (let i = fields.length - 1; i >= 0; i--) {
      if (used.has(i) || nameOf(fields[i]!) !== name || fields[i] === signatureField) continue;
      used.add(i);
      picked.push(relaxedField(fields[i]!));
      break;
    }
  }
  // The signature field itself, b= emptied and no CRLF after it (RFC 6376 section 3.7).
  const unsigned = signatureField.replace(/(^|;|:)(\s*b\s*=)[^;]*/, '$1$2');
  picked.push(relaxedField(unsigned).slice(0, -2));
  return {
    algorithm,
    canonicalBody: relaxedBody(body),
    bodyHash: Buffer.from(tag(tags, 'bh') ?? '', 'base64'),
    headerData: Buffer.from(picked.join(''), 'latin1'),
    signature: Buffer.from(tag(tags, 'b') ?? '', 'base64'),
    key: keyFrom(record, algorithm),
  };
}

/**
 * The timed part: the body hash, then the signature.
 *
 * @example
 * verifyFloor(prepareFloor(tampered, keyRecords))  // 'fail'
 */
export function verifyFloor(p: FloorPrepared): 'pass' | 'fail' {
  if (!createHash('sha256').update(p.canonicalBody).digest().equals(p.bodyHash)) return 'fail';
  const ok =
    p.algorithm === 'ed25519-sha256'
      ? verify(null, createHash('sha256').update(p.headerData).digest(), p.key, p.signature)
      : verify('sha256', p.headerData, p.key, p.signature);
  return ok ? 'pass' : 'fail';
}
