/**
 * The three header fields of an ARC set (RFC 8617 section 4.1) read into what validation needs.
 * Each field is hostile: a field that cannot be read gives a reason, never an exception. What
 * structure needs (the instance, the seal's cv=) is kept apart from what only signature checks
 * need, so that a bad `a=` fails that signature, not the grouping of the sets.
 */

import type { Canonicalization } from '../dkim/canonicalize.js';
import type { SigningAlgorithm } from '../dkim/crypto.js';
import { isDnsName } from '../dkim/key.js';
import { decodeBase64Tag, parseTagList, splitColonList, type TagList } from '../dkim/tags.js';
import { fieldValue, type HeaderField } from '../message/index.js';
import { ARC_MAX_INSTANCES, type ChainValidation } from './types.js';

/** Longest ARC field read, in bytes: real ones are a few hundred; a 2 MB one is an attack. */
export const MAX_ARC_FIELD_BYTES = 16 * 1024;
/** Most names an AMS h= may list (RFC 6376 sets no bound; real lists hold about 20). */
const MAX_SIGNED_HEADERS = 100;

export type ArcFieldKind = 'seal' | 'signature' | 'results';

/** The field names of an ARC set, lowercased, by kind. */
export const ARC_FIELD_KIND: Readonly<Record<string, ArcFieldKind>> = Object.freeze({
  'arc-seal': 'seal',
  'arc-message-signature': 'signature',
  'arc-authentication-results': 'results',
});

/** Words for each kind in reasons. */
export const KIND_NAME: Readonly<Record<ArcFieldKind, string>> = Object.freeze({
  seal: 'ARC-Seal',
  signature: 'ARC-Message-Signature',
  results: 'ARC-Authentication-Results',
});

/** What signing with a=, as named in the field, means. */
export interface SignatureBasics {
  algorithm: SigningAlgorithm;
  signature: Buffer;
  domain: string;
  selector: string;
  /** t=, seconds since the epoch. */
  timestamp?: number;
}

/** c= of a signature: header and body canonicalization. */
export interface CanonicalizationPair {
  header: Canonicalization;
  body: Canonicalization;
}

export interface SealTags extends SignatureBasics {
  cv: ChainValidation;
}

export interface MessageSignatureTags extends SignatureBasics {
  bodyHash: Buffer;
  /**
   * The canonicalizations to try, in order: c= as given. Without c=, RFC 6376's default
   * simple/simple, then relaxed/relaxed, which is what ARC signers that omit c= use (the ARC
   * suite's ams_fields_c_na is signed so).
   */
  canonicalizations: readonly CanonicalizationPair[];
  /** h= names as written (empty names dropped). */
  signedHeaders: string[];
  /** l=, canonical body bytes signed. */
  bodyLength?: number;
  /** x=, seconds since the epoch. */
  expires?: number;
}

/** A field whose instance is known; its other tags either read or why they did not. */
export type ReadField<T> =
  | { instance: number; field: HeaderField; ok: true; tags: T }
  | { instance: number; field: HeaderField; ok: false; problem: string };

/** An ARC-Seal as structure sees it: its cv= when readable, for the chain's cv rules. */
export type ReadSeal = ReadField<SealTags> & { cv?: ChainValidation };

export interface ResultsTags {
  authservId: string;
  results: string;
}

/** A field that could not even be placed in a set. */
export interface UnplacedField {
  kind: ArcFieldKind;
  reason: string;
}

/**
 * Read an ARC-Seal (RFC 8617 section 4.1.3): a=, b=, cv=, d=, s=, i=, optional t=; an h= tag
 * makes the seal fail (section 4.1.3: the seal's scope is fixed, not chosen).
 *
 * @example
 * const r = readSeal(fieldFromText('ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=s1; b=AAAA'));
 * r.ok && r.instance  // 1
 */
export function readSeal(field: HeaderField): ReadSeal | UnplacedField {
  const start = readStart(field, 'seal');
  if ('reason' in start) return start;
  const { tags, instance } = start;
  const cvText = tags.get('cv');
  const cv = cvText === 'none' || cvText === 'pass' || cvText === 'fail' ? cvText : undefined;
  const failed = (problem: string): ReadSeal =>
    cv === undefined
      ? { instance, field, ok: false, problem }
      : { instance, field, ok: false, problem, cv };
  if (cvText === undefined) return failed('no cv= tag');
  if (cv === undefined) return failed(`cv= is not none, pass or fail`);
  if (tags.has('h')) return failed('an ARC-Seal may not have h=');
  const basics = readSignatureBasics(tags);
  if (typeof basics === 'string') return failed(basics);
  return { instance, field, ok: true, tags: { ...basics, cv }, cv };
}

/**
 * Read an ARC-Message-Signature (RFC 8617 section 4.1.2): a DKIM-Signature in all but name, with
 * i= the instance and no v=. An h= naming ARC-Seal makes it fail (section 4.1.2).
 *
 * @example
 * readMessageSignature(amsField).ok  // true for a well-formed AMS
 */
export function readMessageSignature(
  field: HeaderField,
): ReadField<MessageSignatureTags> | UnplacedField {
  const start = readStart(field, 'signature');
  if ('reason' in start) return start;
  const { tags, instance } = start;
  const failed = (problem: string): ReadField<MessageSignatureTags> => ({
    instance,
    field,
    ok: false,
    problem,
  });
  const basics = readSignatureBasics(tags);
  if (typeof basics === 'string') return failed(basics);
  const bh = tags.get('bh');
  if (bh === undefined) return failed('no bh= tag');
  const bodyHash = decodeBase64Tag(bh);
  if (bodyHash === null || bodyHash.length === 0) return failed('bh= is not base64');
  const c = tags.get('c');
  const given = c === undefined ? undefined : readCanonicalization(c);
  if (given === null) return failed('c= is not a canonicalization');
  const h = tags.get('h');
  if (h === undefined) return failed('no h= tag');
  const signedHeaders = splitColonList(h).filter((name) => name !== '');
  if (signedHeaders.length > MAX_SIGNED_HEADERS) return failed('h= lists too many fields');
  for (const name of signedHeaders) {
    if (!FIELD_NAME.test(name)) return failed('h= holds a malformed field name');
    if (name.toLowerCase() === 'arc-seal') return failed('h= may not name ARC-Seal');
  }
  const sig: MessageSignatureTags = {
    ...basics,
    bodyHash,
    canonicalizations: given ? [given] : WITHOUT_C,
    signedHeaders,
  };
  const l = tags.get('l');
  if (l !== undefined) {
    const length = readNumber(l, 15);
    if (length === null) return failed('l= is not a number');
    sig.bodyLength = length;
  }
  const x = tags.get('x');
  if (x !== undefined) {
    const expires = readNumber(x, 12);
    if (expires === null) return failed('x= is not a number');
    if (sig.timestamp !== undefined && expires < sig.timestamp) return failed('x= is before t=');
    sig.expires = expires;
  }
  const q = tags.get('q');
  if (q !== undefined && !splitColonList(q).includes('dns/txt')) {
    return failed('q= offers no dns/txt');
  }
  return { instance, field, ok: true, tags: sig };
}

/**
 * Read an ARC-Authentication-Results (RFC 8617 section 4.1.1): `i=N;` first, then the
 * authserv-id and the results of Authentication-Results (RFC 8601).
 *
 * @example
 * const r = readAuthResults(fieldFromText('ARC-Authentication-Results: i=1; mx.example.org; spf=pass'));
 * r.ok && r.tags  // { authservId: 'mx.example.org', results: 'spf=pass' }
 */
export function readAuthResults(field: HeaderField): ReadField<ResultsTags> | UnplacedField {
  if (field.raw.length > MAX_ARC_FIELD_BYTES) return tooLong('results');
  const value = unfold(fieldValue(field));
  const m = AAR_START.exec(value);
  if (!m) return { kind: 'results', reason: 'ARC-Authentication-Results does not start with i=N;' };
  const instance = readInstance(m[1]!);
  if (instance === null) {
    return { kind: 'results', reason: 'ARC-Authentication-Results has i= out of range' };
  }
  const rest = m[2]!;
  const id = AUTHSERV_ID.exec(rest);
  if (!id) return { instance, field, ok: false, problem: 'no authserv-id' };
  return {
    instance,
    field,
    ok: true,
    tags: { authservId: id[1]!, results: rest.slice(id[0].length).trim() },
  };
}

// RFC 5322 field-name: printable ASCII but colon.
const FIELD_NAME = /^[!-9;-~]+$/;
// RFC 8617 instance: 1*2DIGIT, 1..50.
const INSTANCE = /^[0-9]{1,2}$/;
// `i=N;` at the very start of an AAR value (FWS allowed around the parts), then the rest.
const AAR_START = /^i[ \t]*=[ \t]*([0-9]{1,2})[ \t]*;[ \t]*(.*)$/s;
// authserv-id (a value: token or quoted-string), an optional version, then ';' or the end.
const AUTHSERV_ID = /^([^\s;"()]+|"(?:[^"\\]|\\.)*")(?:[ \t]+[0-9]+)?[ \t]*(?:;|$)/s;

function readStart(
  field: HeaderField,
  kind: ArcFieldKind,
): { tags: TagList; instance: number } | UnplacedField {
  if (field.raw.length > MAX_ARC_FIELD_BYTES) return tooLong(kind);
  const parsed = parseTagList(fieldValue(field));
  if (!parsed.ok) return { kind, reason: `${KIND_NAME[kind]} unreadable: ${parsed.reason}` };
  const i = parsed.tags.get('i');
  if (i === undefined) return { kind, reason: `${KIND_NAME[kind]} has no i= tag` };
  const instance = readInstance(i);
  if (instance === null) return { kind, reason: `${KIND_NAME[kind]} has i= out of range` };
  return { tags: parsed.tags, instance };
}

function tooLong(kind: ArcFieldKind): UnplacedField {
  return { kind, reason: `${KIND_NAME[kind]} longer than ${MAX_ARC_FIELD_BYTES} bytes` };
}

function readInstance(text: string): number | null {
  if (!INSTANCE.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= ARC_MAX_INSTANCES ? n : null;
}

/** a=, b=, d=, s=, t= as both kinds of signature have them; a string says what is wrong. */
function readSignatureBasics(tags: TagList): SignatureBasics | string {
  const a = tags.get('a');
  if (a === undefined) return 'no a= tag';
  if (a !== 'rsa-sha256' && a !== 'rsa-sha1' && a !== 'ed25519-sha256') {
    return 'a= is not a known algorithm';
  }
  const b = tags.get('b');
  if (b === undefined) return 'no b= tag';
  const signature = decodeBase64Tag(b);
  if (signature === null || signature.length === 0) return 'b= is not base64';
  const d = tags.get('d');
  if (d === undefined) return 'no d= tag';
  if (!isDnsName(d)) return 'd= is not a domain name';
  const s = tags.get('s');
  if (s === undefined) return 'no s= tag';
  if (!isDnsName(s)) return 's= is not a selector';
  const basics: SignatureBasics = { algorithm: a, signature, domain: d.toLowerCase(), selector: s };
  const t = tags.get('t');
  if (t !== undefined) {
    const timestamp = readNumber(t, 12);
    if (timestamp === null) return 't= is not a number';
    basics.timestamp = timestamp;
  }
  return basics;
}

const WITHOUT_C: readonly CanonicalizationPair[] = Object.freeze([
  Object.freeze({ header: 'simple', body: 'simple' } as const),
  Object.freeze({ header: 'relaxed', body: 'relaxed' } as const),
]);

function readCanonicalization(value: string): CanonicalizationPair | null {
  // RFC 6376 section 3.5: one word is the header's, the body's then simple.
  const [header, body = 'simple', extra] = value.split('/');
  if (extra !== undefined || !isCanonicalization(header) || !isCanonicalization(body)) return null;
  return { header, body };
}

function isCanonicalization(text: string | undefined): text is Canonicalization {
  return text === 'simple' || text === 'relaxed';
}

function readNumber(text: string, maxDigits: number): number | null {
  if (!/^[0-9]+$/.test(text) || text.length > maxDigits) return null;
  return Number(text);
}

/**
 * A value unfolded, control characters (a stray CR or LF, NUL) made spaces, whitespace runs made
 * one space, trimmed: for reading and reporting, never for hashing.
 */
function unfold(value: string): string {
  return value
    .replace(/\r\n(?=[ \t])/g, '')
    .replace(/[\x00-\x1f\x7f]/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
}
