/**
 * DKIM-Signature fields (RFC 6376 section 3.5, RFC 8301, RFC 8463): every tag read and checked
 * before any DNS work is done for it. A field that does not parse still yields what could be
 * read of it (domain, selector, algorithm, b=), so that the result can name the signature.
 */
import { printableAscii, truncate } from '../../text/index.js';
import type { HeaderField } from '../message/index.js';
import type { Canonicalization } from './canonicalize.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from './crypto.js';
import { isDnsName } from './key.js';
import { decodeBase64Tag, parseTagList, splitColonList, type TagList } from './tags.js';

/** A DKIM-Signature that parsed: every value checked, ready for the key lookup. */
export interface DkimSignature {
  field: HeaderField;
  algorithm: SigningAlgorithm;
  /** b=, decoded. */
  signature: Buffer;
  /** b= as written, whitespace removed (for header.b). */
  signatureText: string;
  /** bh=, decoded. */
  bodyHash: Buffer;
  headerCanonicalization: Canonicalization;
  bodyCanonicalization: Canonicalization;
  /** d=, lowercased. */
  domain: string;
  /** s=, lowercased. */
  selector: string;
  /** h=, in order, as written (trimmed). */
  signedHeaders: string[];
  /** i=, or `@` and d= when absent. */
  identity: string;
  /** The domain of i=, lowercased. */
  identityDomain: string;
  /** l=. */
  bodyLength?: number;
  /** t=, seconds. */
  timestamp?: number;
  /** x=, seconds. */
  expiration?: number;
}

/** What could be read of a signature that did not parse, for naming it in the result. */
export interface SignatureFacts {
  domain: string;
  selector: string;
  algorithm: string;
  identity: string;
  signatureText: string;
}

export type SignatureParse =
  | { ok: true; signature: DkimSignature }
  | { ok: false; reason: string; facts: SignatureFacts };

/** Longest tag value copied into a result (domains are at most 253). */
const FACT_MAX = 255;
const DIGITS = /^[0-9]+$/;
// RFC 5322 field names: printable ASCII but the colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Parse and check a DKIM-Signature field.
 *
 * @example
 * const r = parseDkimSignature(fieldFromText(
 *   'DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=...; b=...'));
 * r.ok && r.signature.domain  // 'example.com'
 * parseDkimSignature(fieldFromText('DKIM-Signature: v=2')).ok  // false ('v= is not 1')
 */
export function parseDkimSignature(field: HeaderField): SignatureParse {
  const value = field.raw.toString('latin1', field.name.length + 1);
  const parsed = parseTagList(value);
  if (!parsed.ok)
    return { ok: false, reason: `bad tag list: ${parsed.reason}`, facts: emptyFacts() };
  const tags = parsed.tags;

  const version = tags.get('v');
  if (version === undefined) return failure(tags, 'no v= tag');
  if (version !== '1') return failure(tags, 'v= is not 1');
  for (const tag of ['a', 'b', 'bh', 'd', 'h', 's']) {
    if (!tags.has(tag)) return failure(tags, `no ${tag}= tag`);
  }
  const algorithmText = tags.get('a')!.toLowerCase();
  if (!(SIGNING_ALGORITHMS as readonly string[]).includes(algorithmText)) {
    return failure(tags, `unknown algorithm a=${shown(algorithmText)}`);
  }
  const algorithm = algorithmText as SigningAlgorithm;
  const signatureText = compact(tags.get('b')!);
  const signature = decodeBase64Tag(signatureText);
  if (!signature || signature.length === 0) return failure(tags, 'b= is not base64');
  const bodyHash = decodeBase64Tag(tags.get('bh')!);
  if (!bodyHash || bodyHash.length === 0) return failure(tags, 'bh= is not base64');

  const canonicalization = readCanonicalization(tags.get('c'));
  if (!canonicalization)
    return failure(tags, `unknown canonicalization c=${shown(tags.get('c') ?? '')}`);

  const domain = tags.get('d')!.toLowerCase();
  if (!isDnsName(domain) || !domain.includes('.')) return failure(tags, 'd= is not a domain name');
  const selector = tags.get('s')!.toLowerCase();
  if (!isDnsName(selector)) return failure(tags, 's= is not a selector');

  const signedHeaders = splitColonList(tags.get('h')!);
  if (!signedHeaders.every((name) => FIELD_NAME.test(name))) {
    return failure(tags, 'h= holds something that is no field name');
  }
  if (!signedHeaders.some((name) => name.toLowerCase() === 'from')) {
    return failure(tags, 'h= does not include From');
  }

  const identity = compact(tags.get('i') ?? `@${domain}`);
  const at = identity.lastIndexOf('@');
  if (at < 0) return failure(tags, 'i= has no @');
  const identityDomain = identity.slice(at + 1).toLowerCase();
  if (identityDomain !== domain && !identityDomain.endsWith(`.${domain}`)) {
    return failure(tags, 'i= is not in the d= domain');
  }

  const query = tags.get('q');
  if (query !== undefined && !splitColonList(query).some((m) => m.toLowerCase() === 'dns/txt')) {
    return failure(tags, `unsupported query method q=${shown(query)}`);
  }

  const result: DkimSignature = {
    field,
    algorithm,
    signature,
    signatureText,
    bodyHash,
    headerCanonicalization: canonicalization[0],
    bodyCanonicalization: canonicalization[1],
    domain,
    selector,
    signedHeaders,
    identity,
    identityDomain,
  };
  const length = tags.get('l');
  if (length !== undefined) {
    if (!DIGITS.test(length) || length.length > 76) return failure(tags, 'l= is not a length');
    // Longer than any body could be: a limit that never cuts.
    result.bodyLength = Math.min(Number(length), Number.MAX_SAFE_INTEGER);
  }
  const timestamp = tags.get('t');
  if (timestamp !== undefined) {
    if (!DIGITS.test(timestamp) || timestamp.length > 12)
      return failure(tags, 't= is not a timestamp');
    result.timestamp = Number(timestamp);
  }
  const expiration = tags.get('x');
  if (expiration !== undefined) {
    if (!DIGITS.test(expiration) || expiration.length > 12)
      return failure(tags, 'x= is not a timestamp');
    result.expiration = Number(expiration);
    if (result.timestamp !== undefined && result.expiration <= result.timestamp) {
      return failure(tags, 'x= is not after t=');
    }
  }
  return { ok: true, signature: result };
}

/**
 * c= as header and body canonicalizations; one word is the header's, the body's being simple.
 * Undefined when either is unknown.
 */
function readCanonicalization(
  value: string | undefined,
): [Canonicalization, Canonicalization] | undefined {
  if (value === undefined) return ['simple', 'simple'];
  const parts = value.toLowerCase().split('/');
  if (parts.length > 2) return undefined;
  const header = parts[0];
  const body = parts[1] ?? 'simple';
  if (!isCanonicalization(header) || !isCanonicalization(body)) return undefined;
  return [header, body];
}

function isCanonicalization(text: string | undefined): text is Canonicalization {
  return text === 'simple' || text === 'relaxed';
}

function factsOf(tags: TagList): SignatureFacts {
  return {
    domain: fact(tags.get('d')?.toLowerCase()),
    selector: fact(tags.get('s')?.toLowerCase()),
    algorithm: fact(tags.get('a')?.toLowerCase()),
    identity: fact(tags.get('i')),
    signatureText: fact(compact(tags.get('b') ?? '')),
  };
}

function emptyFacts(): SignatureFacts {
  return { domain: '', selector: '', algorithm: '', identity: '', signatureText: '' };
}

/** A tag value fit for a result: printable ASCII, bounded. */
function fact(value: string | undefined): string {
  return value === undefined ? '' : truncate(printableAscii(compact(value)), FACT_MAX);
}

function compact(value: string): string {
  return WHITESPACE.test(value) ? value.replace(/[ \t\r\n]+/g, '') : value;
}

const WHITESPACE = /[ \t\r\n]/;

function shown(text: string): string {
  return truncate(printableAscii(text), 40);
}

/** A failure, with the facts for reporting it worked out only now. */
function failure(tags: TagList, reason: string): SignatureParse {
  return { ok: false, reason, facts: factsOf(tags) };
}
