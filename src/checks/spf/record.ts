/**
 * SPF record syntax (RFC 7208 sections 4.5, 4.6, 5, 6 and 12): record selection and parsing into
 * directives and modifiers. Parsing is pure and cached per record text, because the same
 * records are evaluated again and again on a busy server.
 */
import { type IpAddress, parseIp } from '../../dns/address.js';
import { type MacroString, parseMacroString } from './macro.js';
import { excerpt, SpfProblem } from './problem.js';

export type Qualifier = '+' | '-' | '~' | '?';

export type MechanismKind = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

/** One directive: qualifier and mechanism, with what the mechanism needs pre-parsed. */
export interface Directive {
  qualifier: Qualifier;
  kind: MechanismKind;
  /** The term as written in the record, for logs and the Received-SPF `mechanism=` key. */
  text: string;
  /** Whether evaluating it queries DNS (and so counts against the term limit). */
  queriesDns: boolean;
  /** Target domain-spec (include, exists; optional for a, mx, ptr). */
  domain?: MacroString;
  /** Prefix lengths for a and mx (dual-cidr-length), defaulting to a whole address. */
  cidr4: number;
  cidr6: number;
  /** Network for ip4 and ip6. */
  network?: IpAddress;
}

export interface ParsedRecord {
  /** The record text as published. */
  text: string;
  directives: Directive[];
  redirect?: { spec: MacroString; text: string };
  exp?: MacroString;
  /** Lax mode only: the result of the obsolete `default=` modifier when nothing matches. */
  defaultQualifier?: Qualifier;
  /** Problems lax parsing forgave; empty in strict mode. */
  forgiven: string[];
}

/** Whether a TXT string is an SPF version 1 record: `v=spf1` then a space or the end. */
export function isSpfRecord(text: string): boolean {
  if (text.length < 6) return false;
  if (text.slice(0, 6).toLowerCase() !== 'v=spf1') return false;
  return text.length === 6 || text[6] === ' ';
}

const MODIFIER = /^([A-Za-z][A-Za-z0-9\-_.]*)=(.*)$/s;
const MECHANISM = /^([+\-~?]?)([A-Za-z][A-Za-z0-9\-_.]*)(.*)$/s;
const CIDR4_ONLY = /\/(0|[1-9]\d{0,1})$/;
const CIDR6_DUAL = /\/\/(0|[1-9]\d{0,2})$/;

// Parsed records are a pure function of their text, so they are memoised process-wide. Only
// records of ordinary size are kept: the bound is on memory, not just on entries.
const strictCache = new Map<string, ParsedRecord | SpfProblem>();
const laxCache = new Map<string, ParsedRecord | SpfProblem>();
const CACHE_LIMIT = 2000;
const CACHEABLE_LENGTH = 1024;

/**
 * Parse a record (already selected with `isSpfRecord`). Throws `SpfProblem` (permerror) on a
 * syntax error. In lax mode the common mistakes are forgiven and listed in `forgiven`; what
 * cannot be made sense of still throws.
 *
 * @example
 * parseRecord('v=spf1 ip4:192.0.2.0/24 -all').directives.map((d) => d.text)
 * // ['ip4:192.0.2.0/24', '-all']
 */
export function parseRecord(text: string, lax = false): ParsedRecord {
  const cache = lax ? laxCache : strictCache;
  let hit = cache.get(text);
  if (hit === undefined) {
    try {
      hit = freezeRecord(parseUncached(text, lax));
    } catch (err) {
      if (!(err instanceof SpfProblem)) throw err;
      hit = err;
    }
    if (text.length <= CACHEABLE_LENGTH) {
      if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
      cache.set(text, hit);
    }
  }
  if (hit instanceof SpfProblem) throw new SpfProblem(hit.result, hit.message, hit.mechanism);
  return hit;
}

/** Parsed records are shared by every check that meets the record: nobody may change one. */
function freezeRecord(record: ParsedRecord): ParsedRecord {
  const freezeSpec = (spec: MacroString | undefined) => {
    if (!spec) return;
    for (const part of spec.parts) Object.freeze(part);
    Object.freeze(spec.parts);
    Object.freeze(spec);
  };
  for (const directive of record.directives) {
    freezeSpec(directive.domain);
    Object.freeze(directive);
  }
  Object.freeze(record.directives);
  if (record.redirect) {
    freezeSpec(record.redirect.spec);
    Object.freeze(record.redirect);
  }
  freezeSpec(record.exp);
  Object.freeze(record.forgiven);
  return Object.freeze(record);
}

function parseUncached(text: string, lax: boolean): ParsedRecord {
  const record: ParsedRecord = { text, directives: [], forgiven: [] };
  // What lax mode forgives is what pyspf's users have come to rely on; everything else stays fatal.
  const forgive = (problem: SpfProblem) => {
    if (!lax) throw problem;
    record.forgiven.push(problem.message);
  };
  for (let term of text.split(' ').slice(1)) {
    if (term === '') continue;
    if (!isPrintableAscii(term)) {
      throw new SpfProblem(
        'permerror',
        `non-ASCII or control character in '${excerpt(term, 80)}'`,
        term,
      );
    }
    if (lax && term.length > 1 && term.endsWith(',')) {
      record.forgiven.push(`comma after '${excerpt(term, 80)}'`);
      term = term.slice(0, -1);
    }
    const modifier = MODIFIER.exec(term);
    if (modifier) {
      parseModifier(record, modifier[1]!.toLowerCase(), modifier[2]!, term, forgive, lax);
      continue;
    }
    const directive = parseDirective(lax ? laxRewrite(term, record) : term);
    if (directive === null) {
      forgive(new SpfProblem('permerror', `unknown mechanism '${term}'`, term));
      continue;
    }
    record.directives.push(directive);
  }
  return record;
}

const MISSPELLED: Record<string, string> = {
  prt: 'ptr',
  ip: 'ip4',
  ipv4: 'ip4',
  ipv6: 'ip6',
  'all.': 'all',
};
const BARE_IPV4 = /^([+\-~?]?)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:\/\d+)?)$/;

/** Lax mode: turn the usual misspellings into the mechanism that was meant. */
function laxRewrite(term: string, record: ParsedRecord): string {
  const bare = BARE_IPV4.exec(term);
  if (bare) {
    record.forgiven.push(`missing ip4: in '${excerpt(term, 80)}'`);
    return `${bare[1]}ip4:${bare[2]}`;
  }
  const m = MECHANISM.exec(term);
  if (!m) return term;
  const [, qualifier, rawName, rest] = m as unknown as [string, string, string, string];
  const name = rawName.toLowerCase();
  const meant = MISSPELLED[name];
  if (meant) {
    record.forgiven.push(`misspelled mechanism '${excerpt(term, 80)}'`);
    return `${qualifier}${meant}${rest}`;
  }
  if (name === 'all' && rest !== '') {
    record.forgiven.push(`argument to all in '${excerpt(term, 80)}'`);
    return `${qualifier}all`;
  }
  if (name === 'a' && BARE_IPV4.test(rest.slice(1)) && rest.startsWith(':')) {
    record.forgiven.push(`address in a mechanism '${excerpt(term, 80)}'`);
    return `${qualifier}ip4${rest}`;
  }
  return term;
}

function parseModifier(
  record: ParsedRecord,
  name: string,
  value: string,
  term: string,
  forgive: (problem: SpfProblem) => void,
  lax: boolean,
): void {
  if (name === 'redirect' || name === 'exp') {
    const spec = parseMacroString(value, 'domain');
    if (name === 'redirect') {
      if (record.redirect) throw new SpfProblem('permerror', 'duplicate redirect modifier', term);
      record.redirect = { spec, text: term };
      return;
    }
    // In lax mode a repeated exp= is forgiven and the last one wins.
    if (record.exp) forgive(new SpfProblem('permerror', 'duplicate exp modifier', term));
    record.exp = spec;
    return;
  }
  // Unknown modifiers are ignored, but their macro syntax must still be valid (RFC 7208 A).
  parseMacroString(value, 'modifier');
  if (lax && name === 'default') {
    const qualifier = DEFAULT_WORDS[value.toLowerCase()];
    if (qualifier) {
      record.forgiven.push(`obsolete modifier '${excerpt(term, 80)}'`);
      record.defaultQualifier = qualifier;
    }
  }
}

const DEFAULT_WORDS: Record<string, Qualifier> = {
  '-': '-',
  fail: '-',
  deny: '-',
  '~': '~',
  softfail: '~',
  '?': '?',
  neutral: '?',
  '+': '+',
  pass: '+',
};

/** Parse a directive; null when the mechanism is unknown. Other syntax errors throw. */
function parseDirective(term: string): Directive | null {
  const m = MECHANISM.exec(term);
  if (!m) return null;
  const qualifier = (m[1] || '+') as Qualifier;
  const name = m[2]!.toLowerCase();
  const rest = m[3]!;
  const base = { qualifier, text: term, cidr4: 32, cidr6: 128, queriesDns: false };
  const dns = { ...base, queriesDns: true };
  try {
    switch (name) {
      case 'all':
        if (rest !== '') throw new SpfProblem('permerror', `invalid all mechanism '${term}'`);
        return { ...base, kind: 'all' };
      case 'include':
      case 'exists':
        if (!rest.startsWith(':'))
          throw new SpfProblem('permerror', `${name} needs a domain in '${term}'`);
        return { ...dns, kind: name, domain: parseMacroString(rest.slice(1), 'domain') };
      case 'a':
      case 'mx':
        return { ...dns, kind: name, ...parseDomainAndCidr(rest, term, true) };
      case 'ptr':
        return { ...dns, kind: 'ptr', ...parseDomainAndCidr(rest, term, false) };
      case 'ip4':
      case 'ip6':
        if (!rest.startsWith(':'))
          throw new SpfProblem('permerror', `${name} needs a network in '${term}'`);
        return { ...base, kind: name, ...parseNetwork(rest.slice(1), name, term) };
      default:
        return null;
    }
  } catch (err) {
    if (err instanceof SpfProblem) throw new SpfProblem(err.result, err.message, term);
    throw err;
  }
}

function parseDomainAndCidr(
  rest: string,
  term: string,
  cidrAllowed: boolean,
): { domain?: MacroString; cidr4: number; cidr6: number } {
  let cidr4 = 32;
  let cidr6 = 128;
  let spec = rest;
  if (cidrAllowed) {
    const dual = CIDR6_DUAL.exec(spec);
    if (dual) {
      cidr6 = Number(dual[1]);
      spec = spec.slice(0, dual.index);
    }
    const single = CIDR4_ONLY.exec(spec);
    if (single) {
      cidr4 = Number(single[1]);
      spec = spec.slice(0, single.index);
    }
    if (cidr4 > 32 || cidr6 > 128)
      throw new SpfProblem('permerror', `invalid prefix length in '${term}'`);
  }
  if (spec === '') return { cidr4, cidr6 };
  if (!spec.startsWith(':')) throw new SpfProblem('permerror', `invalid mechanism '${term}'`);
  return { domain: parseMacroString(spec.slice(1), 'domain'), cidr4, cidr6 };
}

function parseNetwork(
  value: string,
  kind: 'ip4' | 'ip6',
  term: string,
): { network: IpAddress; cidr4: number; cidr6: number } {
  let address = value;
  let prefix = kind === 'ip4' ? 32 : 128;
  const slash = value.indexOf('/');
  if (slash >= 0) {
    address = value.slice(0, slash);
    const len = value.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(len))
      throw new SpfProblem('permerror', `invalid prefix length in '${term}'`);
    prefix = Number(len);
  }
  const network = parseIp(address);
  const family = kind === 'ip4' ? 4 : 6;
  if (!network || network.family !== family || prefix > (family === 4 ? 32 : 128)) {
    throw new SpfProblem('permerror', `invalid ${kind} network in '${term}'`);
  }
  return { network, cidr4: prefix, cidr6: prefix };
}

function isPrintableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
