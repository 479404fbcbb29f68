/**
 * Authentication-Results (RFC 8601): composing our header from the checks' results, folding it
 * for the milter, and reading the authserv-id of the ones that arrive, so that forged claims to be
 * us are removed (section 5). The `spf` clause comes from src/checks/spf/header.ts, which also
 * records SPF in Received-SPF; this module adds the other clauses and the parsing.
 *
 * Every value that came from the client or from DNS is a token, an address or domain form that
 * RFC 8601 allows bare, or a quoted-string with `\` and `"` escaped; comments escape their
 * parentheses; CR, LF, NUL and 8-bit characters become `?`; everything is bounded.
 */
import type { AuthResultsClause } from '../checks/auth-results.js';
import type { PtrResult, PtrResultWord } from '../checks/ptr/types.js';
import { authResultsClause } from '../checks/spf/header.js';
import { headerComment, isDotAtom, mimeValue } from '../text/index.js';

export type { AuthResultsClause, AuthResultsProperty } from '../checks/auth-results.js';
export { authenticationResults } from '../checks/spf/header.js';

/** Bound of one property value or reason after escaping, as the spf clause uses. */
const VALUE_MAX = 110;
/** Bound of one comment after escaping. */
const COMMENT_MAX = 100;

/** What the spf clause is built from: an SpfResult, or the fields of one that it reads. */
export type SpfClauseFacts = Parameters<typeof authResultsClause>[0];

/**
 * The `spf` clause for one SPF check: `smtp.mailfrom=` for the MAIL FROM identity, `smtp.helo=`
 * for the HELO identity (RFC 8601 section 2.7.2). A session that checked both gives two clauses.
 *
 * @example
 * spfClause(mailFromResult)  // 'spf=pass smtp.mailfrom=jo@example.com'
 * spfClause(heloResult)      // 'spf=none smtp.helo=mail.example.com'
 */
export function spfClause(result: SpfClauseFacts): string {
  return authResultsClause(result);
}

// RFC 8601 keyword (RFC 5321 Ldh-str): letters, digits and inner hyphens.
const KEYWORD = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
// RFC 8601 property: a keyword, or a special-smtp-verb such as `mailfrom` (which a keyword covers).
const DOMAIN =
  /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*$/;

function keyword(what: string, text: string): string {
  // Keywords come from our own code, never from the client: a bad one is a programming error.
  if (!KEYWORD.test(text))
    throw new TypeError(`Authentication-Results ${what} is not a keyword: ${JSON.stringify(text)}`);
  return text;
}

/**
 * A property value (RFC 8601 pvalue): a token as it is, an address or `@domain` bare (as DKIM's
 * `header.i=@example.com`), anything else as a quoted-string; at most `max + 2` characters.
 *
 * @example
 * propertyValue('192.0.2.1')          // '192.0.2.1'
 * propertyValue('jo@example.com')     // 'jo@example.com'
 * propertyValue('2001:db8::1')        // '"2001:db8::1"'  (a colon is a tspecial)
 * propertyValue('a b@example.com')    // '"a b@example.com"'
 */
export function propertyValue(text: string, max = VALUE_MAX): string {
  const at = text.lastIndexOf('@');
  if (at >= 0 && text.length <= max) {
    const local = text.slice(0, at);
    if ((local === '' || isDotAtom(local)) && DOMAIN.test(text.slice(at + 1))) return text;
  }
  return mimeValue(text, max);
}

/**
 * One clause (resinfo) of an Authentication-Results value, for any method.
 *
 * @example
 * resultClause({ method: 'dkim', result: 'pass', comment: 'good signature',
 *   properties: [{ ptype: 'header', property: 'd', value: 'example.com' }] })
 * // 'dkim=pass (good signature) header.d=example.com'
 */
export function resultClause(clause: AuthResultsClause): string {
  let out = keyword('method', clause.method);
  if (clause.version !== undefined) {
    if (!Number.isInteger(clause.version) || clause.version < 0) {
      throw new TypeError(
        `Authentication-Results method version must be a whole number: ${clause.version}`,
      );
    }
    out += `/${clause.version}`;
  }
  out += `=${keyword('result', clause.result)}`;
  if (clause.comment) out += ` (${headerComment(clause.comment, COMMENT_MAX)})`;
  if (clause.reason) out += ` reason=${mimeValue(clause.reason, VALUE_MAX)}`;
  for (const p of clause.properties ?? []) {
    out += ` ${keyword('ptype', p.ptype)}.${keyword('property', p.property)}=${propertyValue(p.value)}`;
    if (p.comment) out += ` (${headerComment(p.comment, COMMENT_MAX)})`;
  }
  return out;
}

/** The results of the iprev method (RFC 8601 section 2.7.3). */
export type IprevResult = 'pass' | 'fail' | 'temperror' | 'permerror';

/** What an iprev clause says: the client's address, and the name its PTR record gave. */
export interface IprevFacts {
  result: IprevResult;
  ip: string;
  /** The verified name for pass; for fail, the name that did not confirm. */
  name?: string;
}

const IPREV_OF_PTR: Record<PtrResultWord, IprevResult> = {
  // Forward-confirmed: the reverse and forward lookups agree.
  verified: 'pass',
  // Names exist, but none resolves back to the client.
  unverified: 'fail',
  // RFC 8601 3: no PTR data published for the address is a permanent error.
  none: 'permerror',
  tempfail: 'temperror',
};

/**
 * The iprev facts of a PTR check.
 *
 * @example
 * iprevFromPtr({ result: 'verified', ip: '192.0.2.1', name: 'mx.example.com', names: ['mx.example.com'] })
 * // { result: 'pass', ip: '192.0.2.1', name: 'mx.example.com' }
 */
export function iprevFromPtr(ptr: Pick<PtrResult, 'result' | 'ip' | 'name' | 'names'>): IprevFacts {
  const result = IPREV_OF_PTR[ptr.result];
  const name = ptr.name ?? (result === 'fail' ? ptr.names[0] : undefined);
  return name === undefined ? { result, ip: ptr.ip } : { result, ip: ptr.ip, name };
}

/**
 * The `iprev` clause: the address as `policy.iprev`, the name as a comment (RFC 8601 section 3).
 * An IPv6 address is quoted: its colons are not allowed in a token.
 *
 * @example
 * iprevClause({ result: 'pass', ip: '192.0.2.1', name: 'mx.example.com' })
 * // 'iprev=pass policy.iprev=192.0.2.1 (mx.example.com)'
 */
export function iprevClause(facts: IprevFacts): string {
  return resultClause({
    method: 'iprev',
    result: facts.result,
    properties: [{ ptype: 'policy', property: 'iprev', value: facts.ip, comment: facts.name }],
  });
}

/** How a header is folded. */
export interface FoldOptions {
  /** Longest line wanted, field name included. Default 78 (RFC 5322 2.1.1). */
  width?: number;
  /**
   * The line end before each continuation (always followed by a tab). Default `\n`, as the milter
   * protocol wants it (the MTA writes the CR); `\r\n` for a message written by hand.
   */
  newline?: '\n' | '\r\n';
}

/**
 * Words of an unfolded value: cut at spaces outside quoted-strings, a run of spaces staying with
 * the word before it so that no line can be blank.
 */
function words(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\') {
      i++;
    } else if (quoted) {
      if (c === '"') quoted = false;
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      if (depth > 0) depth--;
    } else if (c === '"' && depth === 0) {
      quoted = true;
    } else if (c === ' ' && value[i + 1] !== ' ' && i + 1 < value.length && i > start) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

/**
 * Fold a header value so that no line exceeds `width` characters where that is possible: at
 * clause ends (`;`) first, so a clause stays on one line when it fits, else between its words;
 * never inside a quoted-string. A word longer than a line stays whole. The value is returned
 * without the field name; CR, LF and NUL in it become `?` (after unfolding any folds it had), so
 * the result is always one header.
 *
 * The Postfix policy protocol cannot carry a folded header (`PREPEND` is one line); use the
 * unfolded value there, and this for the milter.
 *
 * @example
 * foldHeader('Authentication-Results', 'mx.example.org; spf=pass smtp.mailfrom=jo@example.com; iprev=pass policy.iprev=192.0.2.1 (mx.example.com)')
 * // 'mx.example.org; spf=pass smtp.mailfrom=jo@example.com;\n\tiprev=pass policy.iprev=192.0.2.1 (mx.example.com)'
 */
export function foldHeader(name: string, value: string, options: FoldOptions = {}): string {
  const width = options.width ?? 78;
  const newline = options.newline ?? '\n';
  const clean = value.replace(/\r?\n(?=[ \t])/g, '').replace(/[\r\n\0]/g, '?');
  if (name.length + 2 + clean.length <= width) return clean;
  // Clauses: runs of words, each ending with a word that ends with `;`.
  const groups: string[][] = [[]];
  for (const word of words(clean)) {
    groups[groups.length - 1]!.push(word);
    if (word.trimEnd().endsWith(';')) groups.push([]);
  }
  const lines: string[] = [];
  let line = '';
  let used = name.length + 2;
  const fits = (text: string) => used + text.length <= width;
  const next = () => {
    lines.push(line);
    line = '';
    used = 1; // the tab
  };
  for (const group of groups) {
    if (group.length === 0) continue;
    const clause = group.join(' ');
    if (fits(line === '' ? clause : `${line} ${clause}`)) {
      line = line === '' ? clause : `${line} ${clause}`;
      continue;
    }
    if (line !== '') next();
    if (fits(clause)) {
      line = clause;
      continue;
    }
    for (const word of group) {
      if (line === '') line = word;
      else if (fits(`${line} ${word}`)) line = `${line} ${word}`;
      else {
        next();
        line = word;
      }
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines.join(`${newline}\t`);
}

/** How far into a header value the authserv-id is looked for: comments before it included. */
const MAX_SCAN = 4096;
/** Longest authserv-id taken: a domain name is at most 253 characters. */
const MAX_ID = 255;

/** After whitespace and (nested) comments from `i`, or -1 when a comment does not end. */
function skipCfws(value: string, i: number, end: number): number {
  while (i < end) {
    const c = value[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '(') {
      let depth = 1;
      i++;
      while (i < end && depth > 0) {
        const d = value[i];
        if (d === '\\') i += 2;
        else {
          if (d === '(') depth++;
          else if (d === ')') depth--;
          i++;
        }
      }
      if (depth > 0) return -1;
    } else {
      break;
    }
  }
  return Math.min(i, end);
}

/**
 * Whether a character may be in an RFC 2045 token: printable ASCII but tspecials, and (for
 * internationalised mail, RFC 8616) anything beyond ASCII.
 */
function isTokenChar(code: number): boolean {
  if (code >= 0x80) return true;
  if (code <= 0x20 || code === 0x7f) return false;
  return !'()<>@,;:\\"/[]?='.includes(String.fromCharCode(code));
}

/**
 * The authserv-id of an Authentication-Results value (RFC 8601 section 2.2): the first token or
 * quoted-string after any comments; null when there is none, a comment or quoted-string does not
 * end, or it is unreasonably long. What follows the id (a version, the clauses) is not checked:
 * a header that claims our id is ours to remove even when the rest of it is broken.
 *
 * @example
 * authservIdOf('foo.example.net (foobar) 1 (baz); dkim=fail ...')  // 'foo.example.net'
 * authservIdOf(' (c) "example.com"; none')                        // 'example.com'
 * authservIdOf('; spf=pass')                                      // null
 */
export function authservIdOf(value: string): string | null {
  const end = Math.min(value.length, MAX_SCAN);
  let i = skipCfws(value, 0, end);
  if (i < 0 || i >= end) return null;
  let id = '';
  if (value[i] === '"') {
    i++;
    for (;;) {
      if (i >= end || id.length > MAX_ID) return null;
      const c = value[i]!;
      if (c === '"') break;
      if (c === '\\') {
        if (i + 1 >= end) return null;
        id += value[i + 1];
        i += 2;
      } else if (c === '\r' || c === '\n') {
        // A fold inside the quoted-string: unfolding removes the line end only.
        i++;
      } else if (c === '\0') {
        return null;
      } else {
        id += c;
        i++;
      }
    }
    i++;
  } else {
    const start = i;
    while (i < end && isTokenChar(value.charCodeAt(i))) i++;
    id = value.slice(start, i);
    // Cut by the scan limit, the id might go on: no id then, rather than a wrong one.
    if (i === end && end < value.length) return null;
  }
  if (id === '' || id.length > MAX_ID) return null;
  // The id must end where the grammar lets it: at a blank, a comment, the `;` or the end.
  if (i < end && !' \t\r\n(;'.includes(value[i]!)) return null;
  return id;
}

/**
 * Whether an incoming Authentication-Results value claims one of our authserv-ids (compared
 * without case), which RFC 8601 section 5 says to remove: only we may speak for us.
 *
 * @example
 * isForgedAuthResults('MX.Example.ORG; spf=pass smtp.mailfrom=x@y', ['mx.example.org'])  // true
 * isForgedAuthResults('gmail.com; dkim=pass', ['mx.example.org'])                       // false
 */
export function isForgedAuthResults(value: string, ourIds: readonly string[]): boolean {
  const id = authservIdOf(value);
  if (id === null) return false;
  const lower = id.toLowerCase();
  return ourIds.some((ours) => ours.toLowerCase() === lower);
}
