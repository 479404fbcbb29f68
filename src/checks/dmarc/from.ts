/**
 * The Author Domain (RFC 9989 section 5.3.1): the domains of the RFC5322.From field, read as an
 * RFC 5322 address list well enough for real mail — display names, quoted strings with commas,
 * comments, angle addresses, groups, the obsolete forms (routes, empty list elements, CFWS
 * around dots) — and encoded words left as they are, since they are only display names. A From
 * field is the sender's own text: it is bounded in size and in addresses, read in one pass with
 * no recursion, and whatever cannot be read is counted, never thrown.
 */
import type { HeaderField } from '../message/index.js';
import { dmarcDomain } from './domain.js';

/** Longest From field read, in octets; a longer one is not evaluated at all. */
export const MAX_FROM_OCTETS = 16_384;
/** Addresses read in all the From fields; past this the field is not a real message's. */
export const MAX_FROM_ADDRESSES = 100;
/** From fields read; past one the message is irregular anyway (RFC 5322 section 3.6). */
export const MAX_FROM_FIELDS = 4;

/** What the From fields give the check. */
export type AuthorDomains =
  /** One field whose addresses all have one usable domain: the ordinary case. */
  | { kind: 'one'; domain: string }
  /**
   * Anything else (RFC 9989 sections 5.3.1 and 11.5): why, and the usable domains found, in order
   * of appearance, without repeats (possibly none).
   */
  | { kind: 'irregular'; reason: string; domains: string[] };

/** The domains of one field's addresses, and what could not be used. */
export interface FromAddresses {
  /** Usable domains, lowercase A-labels, in order, without repeats. */
  domains: string[];
  /** Addresses (mailboxes) met, usable or not. */
  addresses: number;
  /** Addresses that could not be read, or whose domain is no domain name (e.g. `[192.0.2.1]`). */
  unusable: number;
  /** More than MAX_FROM_ADDRESSES addresses: reading stopped there. */
  tooMany: boolean;
}

/**
 * The Author Domain of a message from its From fields, or why there is not exactly one.
 *
 * @example
 * authorDomains([fieldFromText('From: "Doe, Jo" <jo@Example.COM>')])
 * // { kind: 'one', domain: 'example.com' }
 * authorDomains([fieldFromText('From: a@example.com, b@example.net')])
 * // { kind: 'irregular', reason: 'several From addresses with different domains (example.com, example.net)',
 * //   domains: ['example.com', 'example.net'] }
 */
export function authorDomains(fields: readonly HeaderField[]): AuthorDomains {
  if (fields.length === 0) return { kind: 'irregular', reason: 'no From field', domains: [] };
  const domains: string[] = [];
  const problems: string[] = [];
  let addresses = 0;
  let unusable = 0;
  for (const field of fields.slice(0, MAX_FROM_FIELDS)) {
    const valueOctets = field.raw.length - field.name.length - 1;
    if (valueOctets > MAX_FROM_OCTETS) {
      problems.push(`a From field of ${valueOctets} octets, more than ${MAX_FROM_OCTETS}`);
      continue;
    }
    const read = fromAddresses(fieldText(field), MAX_FROM_ADDRESSES - addresses);
    addresses += read.addresses;
    unusable += read.unusable;
    for (const domain of read.domains) if (!domains.includes(domain)) domains.push(domain);
    if (read.tooMany) {
      problems.push(`more than ${MAX_FROM_ADDRESSES} From addresses`);
      break;
    }
  }
  if (fields.length > 1) problems.unshift(`${fields.length} From fields`);
  if (domains.length > 1) {
    const shown = domains.slice(0, 4).join(', ') + (domains.length > 4 ? ', ...' : '');
    problems.push(`several From addresses with different domains (${shown})`);
  }
  if (unusable > 0) {
    problems.push(
      unusable === 1
        ? 'a From address without a usable domain'
        : `${unusable} From addresses without a usable domain`,
    );
  }
  if (addresses === 0 && problems.length === 0) problems.push('no address in the From field');
  const [only] = domains;
  if (problems.length === 0 && only !== undefined) return { kind: 'one', domain: only };
  return { kind: 'irregular', reason: problems.join('; '), domains };
}

/**
 * The field's value as text: UTF-8 when it is valid UTF-8 (RFC 6532 allows it in addresses),
 * else byte for byte, with the mark that 8-bit characters in it mean nothing.
 */
function fieldText(field: HeaderField): { text: string; utf8: boolean } {
  const value = field.raw.subarray(field.name.length + 1);
  try {
    return { text: UTF8.decode(value), utf8: true };
  } catch {
    return { text: value.toString('latin1'), utf8: false };
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Read the addresses of one From field value (RFC 5322 section 3.4 address-list, with the
 * obsolete forms of section 4.4), at most `maxAddresses` of them.
 *
 * @example
 * fromAddresses({ text: ' Team: a@x.example, "b, c" <b@y.example>;', utf8: true })
 * // { domains: ['x.example', 'y.example'], addresses: 2, unusable: 0, tooMany: false }
 */
export function fromAddresses(
  value: { text: string; utf8: boolean },
  maxAddresses = MAX_FROM_ADDRESSES,
): FromAddresses {
  const out: FromAddresses = { domains: [], addresses: 0, unusable: 0, tooMany: false };
  const tokens = tokenize(value.text);
  let element: Token[] = [];
  let inAngle = false;
  let inGroup = false;
  const finish = (): boolean => {
    const read = readElement(element, value.utf8);
    element = [];
    if (read === SKIP) return true;
    if (out.addresses >= maxAddresses) {
      out.tooMany = true;
      return false;
    }
    out.addresses++;
    if (read === null) out.unusable++;
    else if (!out.domains.includes(read)) out.domains.push(read);
    return true;
  };
  for (const token of tokens) {
    if (token.kind === 'special' && !inAngle) {
      if (token.text === ',' || (token.text === ';' && inGroup)) {
        if (token.text === ';') inGroup = false;
        if (!finish()) return out;
        continue;
      }
      // A colon before any address starts a group: what came before it is the group's name.
      if (token.text === ':' && !inGroup && !element.some(isAddressMark)) {
        element = [];
        inGroup = true;
        continue;
      }
    }
    if (token.kind === 'special' && token.text === '<') inAngle = true;
    if (token.kind === 'special' && token.text === '>') inAngle = false;
    element.push(token);
  }
  finish();
  return out;
}

type Token =
  | { kind: 'atom' | 'quoted' | 'literal'; text: string }
  | { kind: 'special'; text: string }
  /** A character no address may hold (a control, NUL), or an unterminated quote or literal. */
  | { kind: 'bad'; text: string };

const SPECIALS = '<>@,:;.';
// atext (RFC 5322 section 3.2.3), and anything beyond ASCII (RFC 6532 UTF8-non-ascii).
const ATEXT = /[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]/u;

/** The value as tokens; whitespace, folding and comments go (they are CFWS). */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const c = text[at]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      at++;
    } else if (c === '(') {
      at = skipComment(text, at);
    } else if (c === '"') {
      const end = closing(text, at + 1, '"');
      tokens.push(end < 0 ? BAD : { kind: 'quoted', text: text.slice(at, end + 1) });
      at = end < 0 ? text.length : end + 1;
    } else if (c === '[') {
      const end = closing(text, at + 1, ']');
      tokens.push(end < 0 ? BAD : { kind: 'literal', text: text.slice(at, end + 1) });
      at = end < 0 ? text.length : end + 1;
    } else if (SPECIALS.includes(c)) {
      tokens.push({ kind: 'special', text: c });
      at++;
    } else if (ATEXT.test(c)) {
      let end = at + 1;
      while (end < text.length && ATEXT.test(text[end]!)) end++;
      tokens.push({ kind: 'atom', text: text.slice(at, end) });
      at = end;
    } else {
      tokens.push(BAD);
      at++;
    }
  }
  return tokens;
}

const BAD: Token = Object.freeze({ kind: 'bad', text: '' });

/** Where a comment starting at `at` ends (nested comments and quoted pairs included). */
function skipComment(text: string, at: number): number {
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  // An unterminated comment swallows the rest, as it would in any reader.
  return text.length;
}

/** The index of the unescaped `close` from `from` on, or -1. */
function closing(text: string, from: number, close: string): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === close) return i;
  }
  return -1;
}

function isAddressMark(token: Token): boolean {
  return token.kind === 'special' && (token.text === '@' || token.text === '<');
}

/** An element that is no address (empty, or a stray display-name fragment). */
const SKIP = Symbol('skip');

/**
 * One list element: its domain, null for an address whose domain cannot be used (or that
 * cannot be read), SKIP for no address at all. An element without `@` or `<` is a piece of a
 * display name cut off by an unquoted comma (`Doe, Jo <jo@example.com>`), as real mail has.
 */
function readElement(tokens: readonly Token[], utf8: boolean): string | null | typeof SKIP {
  if (!tokens.some(isAddressMark)) return SKIP;
  if (tokens.some((t) => t.kind === 'bad')) return null;
  const open = tokens.findIndex((t) => t.kind === 'special' && t.text === '<');
  if (open < 0) return addrSpecDomain(tokens, utf8);
  const close = tokens.findIndex((t, i) => i > open && t.kind === 'special' && t.text === '>');
  // Nothing may follow the angle address; nor may a second one open inside it.
  if (close < 0 || close !== tokens.length - 1) return null;
  let inner = tokens.slice(open + 1, close);
  if (inner.some((t) => t.kind === 'special' && t.text === '<')) return null;
  // The obsolete route (`<@relay.example:jo@example.com>`) is dropped (section 4.4).
  const colon = inner.findLastIndex((t) => t.kind === 'special' && t.text === ':');
  if (colon >= 0) inner = inner.slice(colon + 1);
  return addrSpecDomain(inner, utf8);
}

/** The domain of an addr-spec (local-part "@" domain), null when it is not one. */
function addrSpecDomain(tokens: readonly Token[], utf8: boolean): string | null {
  const at = tokens.findLastIndex((t) => t.kind === 'special' && t.text === '@');
  if (at <= 0) return null;
  for (let i = 0; i < at; i++) {
    const t = tokens[i]!;
    if (!(t.kind === 'atom' || t.kind === 'quoted' || (t.kind === 'special' && t.text === '.'))) {
      return null;
    }
  }
  const domain = tokens.slice(at + 1);
  // A domain literal is an address, but no domain a policy can be published for.
  if (domain.length === 0 || domain.some((t) => t.kind !== 'atom' && t.text !== '.')) return null;
  const name = domain.map((t) => t.text).join('');
  if (name.startsWith('.') || name.endsWith('.') || name.includes('..')) return null;
  // Bytes that were not UTF-8 cannot be a U-label: no guessing at what they meant.
  if (!utf8 && /[^\x00-\x7f]/u.test(name)) return null;
  return dmarcDomain(name);
}
