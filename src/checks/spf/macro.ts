/**
 * SPF macro strings (RFC 7208 section 7): parsed once per record, expanded per check.
 */
import type { IpAddress } from '../../dns/address.js';
import { formatIp, reverseLabels } from '../../dns/address.js';
import { SpfProblem } from './problem.js';

/** One `%{...}` expansion. */
export interface MacroExpand {
  /** Lower-case macro letter. */
  letter: string;
  /** Upper-case letter in the record: the value is URL-escaped. */
  escape: boolean;
  /** Right-hand parts to keep; 0 keeps all. */
  digits: number;
  reverse: boolean;
  /** Characters the value is split on; `.` when none were given. */
  delimiters: string;
}

/** A parsed macro string: literal text and expansions in order. */
export interface MacroString {
  parts: Array<string | MacroExpand>;
  /** The text when it has no `%{...}` expansions, so that expansion costs nothing. */
  literal: string | null;
  /** Whether `%{p}` occurs, which needs DNS work before expansion. */
  usesPtr: boolean;
  /** The source text, for messages. */
  source: string;
}

/** Where a macro string occurs decides what it may contain. */
export type MacroContextKind = 'domain' | 'modifier' | 'explanation';

const LETTERS = 'slodiphv';
const EXP_ONLY_LETTERS = 'crt';
const DELIMITERS = '.-+,/_=';

/**
 * Parse a macro string. Throws an `SpfProblem` (permerror) on a syntax error; in a domain-spec
 * the text must also end in a macro or a valid top label (RFC 7208 section 7.1).
 *
 * @example
 * parseMacroString('%{ir}.%{v}._spf.%{d2}', 'domain').parts.length  // 6
 */
export function parseMacroString(text: string, kind: MacroContextKind): MacroString {
  const parts: Array<string | MacroExpand> = [];
  let literal = '';
  let usesPtr = false;
  let endsInMacro = false;
  let tail = '';
  let i = 0;
  const flush = () => {
    if (literal) parts.push(literal);
    literal = '';
  };
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x25 /* % */) {
      const next = text[i + 1];
      if (next === '%' || next === '_' || next === '-') {
        literal += next === '%' ? '%' : next === '_' ? ' ' : '%20';
        endsInMacro = true;
        tail = '';
        i += 2;
        continue;
      }
      if (next !== '{') throw new SpfProblem('permerror', `invalid macro in '${text}'`);
      const close = text.indexOf('}', i + 2);
      if (close < 0) throw new SpfProblem('permerror', `unterminated macro in '${text}'`);
      const expand = parseExpand(text.slice(i + 2, close), kind, text);
      if (expand.letter === 'p') usesPtr = true;
      flush();
      parts.push(expand);
      endsInMacro = true;
      tail = '';
      i = close + 1;
      continue;
    }
    const allowed = (ch >= 0x21 && ch <= 0x7e) || (ch === 0x20 && kind === 'explanation');
    if (!allowed) throw new SpfProblem('permerror', `invalid character in '${text}'`);
    literal += text[i];
    tail += text[i];
    endsInMacro = false;
    i++;
  }
  flush();
  if (kind === 'domain' && !endsInMacro && !hasValidDomainEnd(tail)) {
    throw new SpfProblem('permerror', `invalid domain '${text}'`);
  }
  const onlyLiteral = parts.every((p) => typeof p === 'string');
  return {
    parts,
    literal: onlyLiteral ? (parts as string[]).join('') : null,
    usesPtr,
    source: text,
  };
}

function parseExpand(body: string, kind: MacroContextKind, text: string): MacroExpand {
  const raw = body[0] ?? '';
  const letter = raw.toLowerCase();
  const known =
    LETTERS.includes(letter) || (kind === 'explanation' && EXP_ONLY_LETTERS.includes(letter));
  if (!letter || !known) throw new SpfProblem('permerror', `invalid macro letter in '${text}'`);
  let j = 1;
  let digitText = '';
  while (j < body.length && body.charCodeAt(j) >= 0x30 && body.charCodeAt(j) <= 0x39) {
    digitText += body[j];
    j++;
  }
  const digits = digitText ? Number(digitText) : 0;
  if (digitText && digits === 0)
    throw new SpfProblem('permerror', `zero macro digits in '${text}'`);
  let reverse = false;
  if (body[j] === 'r' || body[j] === 'R') {
    reverse = true;
    j++;
  }
  const delimiters = body.slice(j);
  for (const d of delimiters) {
    if (!DELIMITERS.includes(d))
      throw new SpfProblem('permerror', `invalid macro delimiter in '${text}'`);
  }
  return { letter, escape: raw !== letter, digits, reverse, delimiters: delimiters || '.' };
}

const TOPLABEL = /^(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9])$/i;

/**
 * Whether literal text ends in `.` toplabel [`.`] (RFC 7208 section 7.1). Only the last label is
 * looked at, and only when it could be a label at all: a regular expression over the whole tail
 * of a hostile 60 KB record would take seconds.
 */
function hasValidDomainEnd(tail: string): boolean {
  const text = tail.endsWith('.') ? tail.slice(0, -1) : tail;
  const dot = text.lastIndexOf('.');
  if (dot < 0) return false;
  const label = text.slice(dot + 1);
  return label.length > 0 && label.length <= 63 && TOPLABEL.test(label);
}

/** The values macros expand to, for one check_host() call. */
export interface MacroValues {
  sender: string;
  local: string;
  senderDomain: string;
  /** The current domain (`%{d}`). */
  domain: string;
  ip: IpAddress;
  helo: string;
  receiver: string;
  /** Seconds since the epoch, for `%{t}`. */
  timestamp: number;
  /** The validated client name for `%{p}`, resolved beforehand when the string uses it. */
  ptr?: string;
}

/**
 * Expand a parsed macro string. `%{p}` must have been resolved into `values.ptr` first.
 *
 * @example
 * expandMacroString(parseMacroString('%{l}@%{o}', 'explanation'), values)  // 'jo@example.com'
 */
export function expandMacroString(ms: MacroString, values: MacroValues): string {
  if (ms.literal !== null) return ms.literal;
  let out = '';
  for (const part of ms.parts) {
    out += typeof part === 'string' ? part : expandOne(part, values);
  }
  return out;
}

function expandOne(m: MacroExpand, v: MacroValues): string {
  let value = letterValue(m.letter, v);
  if (m.digits || m.reverse || m.delimiters !== '.') {
    let pieces = splitOn(value, m.delimiters);
    if (m.reverse) pieces = pieces.reverse();
    if (m.digits && m.digits < pieces.length) pieces = pieces.slice(pieces.length - m.digits);
    value = pieces.join('.');
  }
  return m.escape ? urlEscape(value) : value;
}

function splitOn(value: string, delimiters: string): string[] {
  if (delimiters === '.') return value.split('.');
  const out: string[] = [];
  let current = '';
  for (const ch of value) {
    if (delimiters.includes(ch)) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  out.push(current);
  return out;
}

function letterValue(letter: string, v: MacroValues): string {
  switch (letter) {
    case 's':
      return v.sender;
    case 'l':
      return v.local;
    case 'o':
      return v.senderDomain;
    case 'd':
      return v.domain;
    case 'i':
      return ipMacro(v.ip);
    case 'p':
      return v.ptr ?? 'unknown';
    case 'v':
      return v.ip.family === 4 ? 'in-addr' : 'ip6';
    case 'h':
      return v.helo;
    case 'c':
      return formatIp(v.ip);
    case 'r':
      return v.receiver;
    case 't':
      return String(v.timestamp);
    default:
      return '';
  }
}

/** `%{i}`: dotted quad, or for IPv6 the 32 nibbles dot-separated (upper-case hex, as pyspf). */
function ipMacro(ip: IpAddress): string {
  if (ip.family === 4) return formatIp(ip);
  return reverseLabels(ip).reverse().join('.').toUpperCase();
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Percent-encode everything outside RFC 3986's unreserved set, byte by byte of UTF-8. */
function urlEscape(value: string): string {
  let out = '';
  for (const ch of value) {
    if (UNRESERVED.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) {
      out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}
