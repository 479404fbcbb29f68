/**
 * The SPF access map: a site's policy per SPF result, and per sender domain, written in the text
 * format of Postfix and Sendmail access files (the source of Sendmail's access.db), so that one
 * file can serve the MTA and mailgate. Only keys tagged `SPF-<Result>:` are ours; every other key
 * (`Connect:`, `From:`, plain domains, ...) is skipped without a word.
 *
 *     SPF-Neutral:aol.com   ERROR:"550 5.7.1 AOL mail must get SPF PASS"
 *     SPF-Softfail:         CBV
 *     SPF-PermError:        DSN
 *
 * Parsing never throws unless asked to (`strict`): each bad SPF line becomes a problem naming its
 * source and line, so that the daemon can refuse a bad file at start and keep its old map on a
 * reload, saying why.
 */
import type { SpfResultWord } from '../checks/spf/types.js';
import { escapeForLog, logValue, printableAscii, truncate } from '../text/index.js';

/** The results a site may set a policy for: every RFC 7208 result but `temperror`. */
export type SpfPolicyResult = Exclude<SpfResultWord, 'temperror'>;

/**
 * What to do with mail of a given SPF result:
 * - `OK`: accept (as far as SPF is concerned);
 * - `CBV`: call the sender's MX back: accept when it takes the sender address, refuse when not;
 * - `DSN`: like CBV, but the call-back delivers a notice (a DSN) telling the sender what is wrong,
 *   instead of hanging up before DATA;
 * - `REJECT`: reject with the engine's usual reply for the result;
 * - `ERROR`: reject (5xx) or defer (4xx) with this reply.
 */
export type SpfPolicyAction =
  | { kind: 'OK' }
  | { kind: 'CBV' }
  | { kind: 'DSN' }
  | { kind: 'REJECT' }
  | { kind: 'ERROR'; code: number; xcode: string; text: string };

/** One SPF line of the file. */
export interface AccessMapEntry {
  result: SpfPolicyResult;
  /** Lower case without a trailing dot; null for the bare tag (the site's default for the result). */
  domain: string | null;
  action: SpfPolicyAction;
  /** Where the entry was written, for logs: the file (or `inline`) and its line. */
  source: string;
  line: number;
}

/** An SPF line that was refused, and why. */
export interface AccessMapProblem {
  /** The file (or `inline`) the line came from. */
  source: string;
  /** The line number (the first line of a continued line); 0 when the file itself is the problem. */
  line: number;
  /** The line as written, cut, with anything unprintable as `?`. */
  text: string;
  problem: string;
}

/** A bad access map, in strict parsing or when a file is first loaded. */
export class AccessMapError extends Error {
  override name = 'AccessMapError';
  constructor(readonly problems: readonly AccessMapProblem[]) {
    const first = problems[0];
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super(first ? `${formatAccessMapProblem(first)}${more}` : 'bad access map');
  }
}

/**
 * A problem as one log line: `source:line: problem: text`.
 *
 * @example
 * formatAccessMapProblem({ source: '/etc/mail/access', line: 3, text: 'SPF-Fail: MAYBE', problem: 'unknown value "MAYBE"' })
 * // '/etc/mail/access:3: unknown value "MAYBE": SPF-Fail: MAYBE'
 */
export function formatAccessMapProblem(p: AccessMapProblem): string {
  const where = p.line > 0 ? `${escapeForLog(p.source)}:${p.line}` : escapeForLog(p.source);
  return p.text ? `${where}: ${p.problem}: ${p.text}` : `${where}: ${p.problem}`;
}

const RESULT_OF_TAG: Record<string, SpfPolicyResult> = {
  pass: 'pass',
  fail: 'fail',
  softfail: 'softfail',
  neutral: 'neutral',
  none: 'none',
  permerror: 'permerror',
};

/** The tag as the documentation spells it, for messages. */
export const SPF_TAGS: Readonly<Record<SpfPolicyResult, string>> = Object.freeze({
  pass: 'SPF-Pass:',
  fail: 'SPF-Fail:',
  softfail: 'SPF-Softfail:',
  neutral: 'SPF-Neutral:',
  none: 'SPF-None:',
  permerror: 'SPF-PermError:',
});

/** Longest ERROR reply text kept, in characters: with `550 5.7.1 ` well inside 512. */
export const MAX_REPLY_TEXT = 400;
/** Longest logical line (continuations joined) of an SPF entry. */
const MAX_LINE = 4096;
/** Problems kept from one parse; a garbage file must not fill memory with them. */
const MAX_PROBLEMS = 100;
/** Longest domain name (RFC 1035), without the trailing dot. */
const MAX_DOMAIN = 253;

// A key is ours when it starts with the tag. `spf-relay.example.com` (no colon) is a plain domain
// key of someone else's, which is why the colon is part of the test.
const SPF_KEY = /^spf-([^:]*):(.*)$/is;
// Labels as written: letters, digits, `-`, `_`, or anything beyond ASCII (a U-label left as given).
const LABEL = /^(?:[a-z0-9_-]|[^\x00-\x7f])+$/u;
// RFC 5321 4.2: the second digit is 0-5; only 4xx and 5xx refuse mail.
const REPLY_CODE = /^[45][0-5][0-9]$/;
const KEYWORDS = ['OK', 'CBV', 'DSN', 'REJECT'] as const;
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/;
const LOOKS_ENHANCED = /^\d+\.\d+\.\d+$/;
// The file's blanks are spaces and tabs; a stray CR or NUL is text, shown in problems, not trimmed.
const BLANKS = /^[ \t]+|[ \t]+$/g;

/** One logical line: where it started and its text, continuations joined. */
interface Logical {
  line: number;
  text: string;
  overlong: boolean;
}

/**
 * Postfix's reading of a table file: blank lines and lines whose first non-blank character is `#`
 * are skipped (they do not end a logical line), and a line starting with a space or tab continues
 * the one before. `#` later on a line is text, as in Postfix and Sendmail: an ERROR reply may hold
 * one.
 */
function logicalLines(text: string, orphan: (line: number, text: string) => void): Logical[] {
  const out: Logical[] = [];
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = body.split(/\r?\n/);
  let current: Logical | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.replace(/^[ \t]+/, '');
    if (trimmed.replace(/[ \t]+$/, '') === '' || trimmed.startsWith('#')) continue;
    if (trimmed.length !== raw.length) {
      if (!current) {
        orphan(i + 1, trimmed);
        continue;
      }
      if (current.text.length + raw.length > MAX_LINE) current.overlong = true;
      else current.text += raw;
      continue;
    }
    current = {
      line: i + 1,
      text: raw.length > MAX_LINE ? raw.slice(0, MAX_LINE) : raw,
      overlong: raw.length > MAX_LINE,
    };
    out.push(current);
  }
  return out;
}

/** A domain as compared: lower case, no trailing dot. */
function comparable(domain: string): string {
  const lower = domain.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Why the domain of a key is no domain name, or null when it is one. */
function domainProblem(domain: string): string | null {
  if (domain.includes('@')) return 'an SPF key names a domain, not an address';
  if (domain.length > MAX_DOMAIN) return 'domain name too long';
  for (const label of domain.split('.')) {
    if (label === '') return `not a domain name: ${logValue(domain, 80)}`;
    if (label.length > 63 || !LABEL.test(label))
      return `not a domain name: ${logValue(domain, 80)}`;
  }
  return null;
}

/** Whitespace runs as one space, printable ASCII only, bounded: text for an SMTP reply. */
function replyText(text: string): string {
  return truncate(printableAscii(text.replace(/[ \t]+/g, ' ')).trim(), MAX_REPLY_TEXT);
}

/**
 * The ERROR value's reply. Sendmail writes `ERROR:"550 text"`, `ERROR:550 text` and
 * `ERROR:5.7.1:550 text` (access(5)); `ERROR: text` has no code and gets 550 5.7.1.
 */
function parseError(rest: string): SpfPolicyAction | string {
  let inner = rest.replace(BLANKS, '');
  if (inner.startsWith('"')) {
    if (inner.length < 2 || !inner.endsWith('"')) {
      return 'unterminated quoted text, or text after the closing quote';
    }
    inner = inner.slice(1, -1).replace(BLANKS, '');
  }
  let xcode: string | undefined;
  const prefix = /^(\d+\.\d+\.\d+):/.exec(inner);
  if (prefix) {
    if (!ENHANCED.test(prefix[1]!)) {
      return `bad enhanced status code ${logValue(prefix[1]!, 20)}`;
    }
    xcode = prefix[1]!;
    inner = inner.slice(prefix[0].length).replace(BLANKS, '');
  }
  let code: number | undefined;
  const first = /^[^ \t]+/.exec(inner)?.[0] ?? '';
  if (/^\d{3}$/.test(first)) {
    if (!REPLY_CODE.test(first))
      return `an ERROR reply needs a 4xx or 5xx reply code, not ${first}`;
    code = Number(first);
    inner = inner.slice(3).replace(BLANKS, '');
  } else if (xcode) {
    return `a reply code must follow ${xcode}: (as in ERROR:${xcode}:550 text)`;
  }
  const second = /^[^ \t]+/.exec(inner)?.[0] ?? '';
  if (LOOKS_ENHANCED.test(second)) {
    if (!ENHANCED.test(second)) return `bad enhanced status code ${logValue(second, 20)}`;
    if (code === undefined) {
      return `an enhanced status code needs a reply code before it (as in 550 ${second} text)`;
    }
    if (xcode && xcode !== second)
      return `two different enhanced status codes, ${xcode} and ${second}`;
    xcode = second;
    inner = inner.slice(second.length).replace(BLANKS, '');
  }
  code ??= 550;
  const cls = String(code)[0]!;
  if (xcode && xcode[0] !== cls) {
    return `enhanced status code ${xcode} does not match reply code ${code}`;
  }
  xcode ??= `${cls}.7.1`;
  const text =
    replyText(inner) ||
    (code >= 500 ? 'rejected by local SPF policy' : 'deferred by local SPF policy');
  return { kind: 'ERROR', code, xcode, text };
}

/**
 * An access-map value as an action, or a problem saying why it is none. Keywords are matched
 * without case.
 *
 * @example
 * parseSpfAction('CBV')                        // { kind: 'CBV' }
 * parseSpfAction('ERROR:5.7.1:550 Go away')    // { kind: 'ERROR', code: 550, xcode: '5.7.1', text: 'Go away' }
 * parseSpfAction('MAYBE')                      // 'unknown value "MAYBE" (expected OK, CBV, DSN, REJECT or ERROR:...)'
 */
export function parseSpfAction(value: string): SpfPolicyAction | string {
  const trimmed = value.replace(BLANKS, '');
  if (trimmed === '') return 'no value (expected OK, CBV, DSN, REJECT or ERROR:...)';
  if (/^error:/i.test(trimmed)) return parseError(trimmed.slice(6));
  const word = /^[^ \t]+/.exec(trimmed)![0];
  const upper = word.toUpperCase();
  const keyword = KEYWORDS.find((k) => k === upper);
  if (keyword) {
    if (word.length !== trimmed.length) {
      return (
        `unexpected text after ${keyword}: ${logValue(trimmed.slice(word.length).replace(BLANKS, ''), 60)} ` +
        '(a # starts a comment only at the start of a line; for a reply text use ERROR:"550 text")'
      );
    }
    return { kind: keyword };
  }
  return `unknown value "${logValue(trimmed, 60)}" (expected OK, CBV, DSN, REJECT or ERROR:...)`;
}

/** How a parse should treat a bad line. */
export interface AccessMapParseOptions {
  /** Throw an AccessMapError on the first problem instead of collecting it. */
  strict?: boolean;
}

/**
 * The SPF entries of an access file, looked up by result and sender domain.
 *
 * @example
 * const { map, problems } = SpfAccessMap.parse('SPF-Neutral:aol.com REJECT\nSPF-Neutral: OK\n', 'access');
 * map.lookup('neutral', 'mx.aol.com')?.action   // { kind: 'REJECT' }
 * map.lookup('neutral', 'example.com')?.action  // { kind: 'OK' }
 * map.lookup('fail', 'aol.com')                 // undefined: the engine's default applies
 */
export class SpfAccessMap {
  private readonly entries = new Map<string, AccessMapEntry>();

  private constructor() {}

  /** A map with no entries: every lookup is undefined, so the engine's defaults apply. */
  static empty(): SpfAccessMap {
    return new SpfAccessMap();
  }

  /**
   * Parse an access file's text. `source` names it in problems and entries (a path, or `inline`).
   * Bad SPF lines are skipped and reported; other keys are ignored. With `strict`, the first bad
   * line throws an AccessMapError instead.
   *
   * @example
   * const { map, problems } = SpfAccessMap.parse(await readFile(path, 'utf8'), path);
   * for (const p of problems) log.warn(formatAccessMapProblem(p));
   */
  static parse(
    text: string,
    source = 'inline',
    options: AccessMapParseOptions = {},
  ): { map: SpfAccessMap; problems: AccessMapProblem[] } {
    const map = new SpfAccessMap();
    const problems: AccessMapProblem[] = [];
    let dropped = 0;
    let lastDropped = 0;
    const report = (line: number, lineText: string, problem: string) => {
      const p: AccessMapProblem = {
        source,
        line,
        text: printableAscii(truncate(lineText.replace(/[ \t]+/g, ' '), 200)),
        problem,
      };
      if (options.strict) throw new AccessMapError([p]);
      if (problems.length < MAX_PROBLEMS) problems.push(p);
      else {
        dropped++;
        lastDropped = line;
      }
    };
    const orphan = (line: number, lineText: string) => {
      // Someone else's key may be broken too; only a line that looks like ours is our problem.
      if (/^spf-/i.test(lineText)) {
        report(
          line,
          lineText,
          'a continuation line (starting with a blank) with no line before it',
        );
      }
    };
    for (const logical of logicalLines(text, orphan)) {
      const split = /^([^ \t]+)[ \t]*(.*)$/s.exec(logical.text);
      if (!split) continue;
      const key = split[1]!;
      const tagged = SPF_KEY.exec(key);
      if (!tagged) continue;
      if (logical.overlong) {
        report(logical.line, logical.text, `line longer than ${MAX_LINE} characters`);
        continue;
      }
      const problem = map.add(tagged[1]!, tagged[2]!, split[2]!, source, logical.line);
      if (problem) report(logical.line, logical.text, problem);
    }
    if (dropped > 0) {
      problems.push({
        source,
        line: lastDropped,
        text: '',
        problem: `${dropped} more problem${dropped === 1 ? '' : 's'} not listed`,
      });
    }
    return { map, problems };
  }

  /** Add one SPF line; returns its problem, or null when it was taken. */
  private add(
    tag: string,
    domainText: string,
    value: string,
    source: string,
    line: number,
  ): string | null {
    const word = tag.toLowerCase();
    if (word === 'temperror') {
      return 'SPF-TempError: cannot be set: a TempError always tempfails';
    }
    const result = RESULT_OF_TAG[word];
    if (!result) {
      return (
        `unknown SPF result "${logValue(tag, 30)}" ` +
        '(expected Pass, Fail, Softfail, Neutral, PermError or None)'
      );
    }
    // `SPF-Fail:REJECT` is another slip: the value glued to the tag reads as a domain.
    if (domainText !== '') {
      const glued = value === '' ? domainText : `${domainText} ${value}`;
      if (
        (value === '' || domainProblem(comparable(domainText)) !== null) &&
        typeof parseSpfAction(glued) !== 'string'
      ) {
        return (
          'no value; a blank goes between the key and the value ' +
          `(as in ${SPF_TAGS[result]} ${logValue(glued, 60)})`
        );
      }
    }
    let domain: string | null = null;
    if (domainText !== '') {
      domain = comparable(domainText);
      const bad = domainProblem(domain);
      if (bad) return bad;
    }
    const action = parseSpfAction(value);
    if (typeof action === 'string') {
      // `SPF-Neutral: aol.com OK` is a common slip: say where the domain goes.
      const split = /^([^ \t]+)[ \t]+(.+)$/s.exec(value);
      if (
        domain === null &&
        split &&
        domainProblem(comparable(split[1]!)) === null &&
        typeof parseSpfAction(split[2]!) !== 'string'
      ) {
        return (
          `${action}; a domain goes right after the tag, without a blank ` +
          `(as in ${SPF_TAGS[result]}aol.com)`
        );
      }
      return action;
    }
    const key = `${result} ${domain ?? ''}`;
    const earlier = this.entries.get(key);
    if (earlier) return `duplicate key (first at line ${earlier.line}, which is used)`;
    this.entries.set(key, { result, domain, action, source, line });
    return null;
  }

  /**
   * The entry for a result and sender domain: the domain itself, then each parent domain (an
   * entry for `aol.com` covers `mx.aol.com`, as Sendmail's access map does), then the bare tag;
   * undefined when none applies (and always for `temperror`). Domains are compared without case
   * and trailing dot; an internationalised name is compared as written. An address is looked up
   * by its domain.
   *
   * @example
   * map.lookup('neutral', 'MX.AOL.COM.')  // the SPF-Neutral:aol.com entry
   */
  lookup(result: SpfResultWord, domain: string | null | undefined): AccessMapEntry | undefined {
    if (result === 'temperror' || this.entries.size === 0) return undefined;
    if (domain) {
      // An address is looked up by its domain, so that `jo@mx.aol.com` cannot slip past `aol.com`.
      const at = domain.lastIndexOf('@');
      if (at >= 0) domain = domain.slice(at + 1);
      // A name longer than any domain can only be garbage from the client: no domain entry
      // can match it, and walking its labels would be work for nothing.
      if (domain.length <= MAX_DOMAIN + 1) {
        let name = comparable(domain);
        for (;;) {
          if (name !== '') {
            const entry = this.entries.get(`${result} ${name}`);
            if (entry) return entry;
          }
          const dot = name.indexOf('.');
          if (dot < 0) break;
          name = name.slice(dot + 1);
        }
      }
    }
    return this.entries.get(`${result} `);
  }

  /** How many SPF entries the map holds. */
  get size(): number {
    return this.entries.size;
  }

  /** The entries in file order, for listing a map. */
  list(): AccessMapEntry[] {
    // A Map keeps insertion order, which is file order.
    return [...this.entries.values()];
  }
}
