/**
 * End-to-end milter cases as small text files: what an SMTP client sends, what it must be told at
 * each step, and what must come out of Postfix. Adding a case is adding a file under
 * test/milter/cases/; test/milter/postfix-interop.test.ts plays each one through swaks → Postfix →
 * milter → sink. The format, one directive per line:
 *
 *   # Comments before the first directive say what the case is about (shown in the test name).
 *   # Other comment lines and blank lines are ignored, except inside blocks.
 *
 * What the client sends:
 *
 *   HELO client.example.org      the EHLO name (default client.mailgate.test); first transaction
 *   MAIL <alice@example.com>     envelope sender (<> for the null sender)
 *   RCPT <bob@example.net>       one line per recipient
 *   HEADER                       the message header, up to a line holding a single "."
 *   Subject: hello               (without HEADER: From, To and a Subject naming the case)
 *   .
 *   BODY                         the body, up to a single "."; ".." stands for a "." line
 *   Hello.
 *   .
 *
 * What the client is told: one REPLY per reply line, in order; `*` matches any text. Stages:
 * BANNER EHLO MAIL RCPT DATA DOT (the reply to the "." that ends DATA). A stage without REPLY is
 * not checked.
 *
 *   REPLY MAIL 550-5.7.1 rejected by sample
 *   REPLY MAIL 550 5.7.1 see docs
 *   REPLY RCPT <later@example.net> 451 4.7.1 try later    (the <recipient> may go when only one)
 *
 * What becomes of the message (required):
 *
 *   OUTCOME delivered | held | refused
 *     delivered: queued, and relayed to the sink; held: queued and put on hold (quarantine), never
 *     relayed; refused: never queued.
 *
 * What the delivered message (or, when held, the message on hold) must be like:
 *
 *   ENVELOPE-FROM <alice@example.com>       default: the MAIL address (delivered only)
 *   ENVELOPE-TO <bob@example.net>           default: every RCPT that got a 2xx (delivered only)
 *   HEADER-HAS Subject: [sample] hello      a header with that name and value (a glob)
 *   HEADER-HAS Subject[2]: second           the name's 2nd occurrence, counted from the top
 *   HEADER-LACKS X-Spam                     no header of that name (or `Name: glob`, `Name[n]...`)
 *   HEADER-LAST X-Sample-Milter: 127.0.0.1  the last header field is this one
 *   BODY-IS                                 the body exactly (CRLF line ends), up to "."
 *   replaced
 *   .
 *   BODY-HAS Hello.                         a substring of the body; BODY-LACKS: not one
 *
 * What was logged since the case began (a line contains the glob; waited for up to 10 s):
 *
 *   LOG milter-hold: END-OF-MESSAGE         Postfix's maillog
 *   MILTER-LOG step="eom"                   what the milter printed
 *
 * Several messages on one connection:
 *
 *   TRANSACTION second message              starts the next transaction; the directives after
 *                                           it are about that one
 *
 * A case of one transaction is sent with swaks; a case of several with our own small client
 * (test/support/smtp-transcript.ts), because swaks sends one message per connection. (The
 * milter-policy runner, test/serve/postfix-milter-policy.test.ts, sends each transaction with
 * swaks on a connection of its own instead, HELO and XCLIENT again each time: its cases say who
 * the client is with XCLIENT, which is per connection.) Anything the parser does not understand
 * is an error naming the file and line.
 *
 * Extensions, for runners that play them (parseCase's `extensions` option; without it each is
 * refused like any unknown directive, so that a runner never silently skips what a case asks):
 *
 *   XCLIENT ADDR=192.0.2.10 NAME=mail.example.org   ('xclient') who the MTA is told the client
 *                                is (Postfix XCLIENT: ADDR NAME PORT PROTO HELO LOGIN
 *                                REVERSE_NAME DESTADDR DESTPORT); first transaction only, like
 *                                HELO. The runner's REPLY BANNER is then XCLIENT's 220 and REPLY
 *                                EHLO the EHLO after it: what the client it names is told.
 *   CONFIG                       ('config') settings of the program under test for this case,
 *   [spf]                        in its own syntax (TOML for mailgate), up to a single ".";
 *   reject_noptr = true          the runner merges them over its own. Once per case.
 *   .
 *   HEADER-FIRST Received-SPF: Pass *   ('header-first') the first header field is this one
 *
 * What the remote mail host the program under test calls out to (the runner's fixture MX: a
 * call-back's target) saw during the transaction ('mx'):
 *
 *   MX-CONNECTIONS 1             the connections it accepted (0: nobody called)
 *   MX-COMMAND MAIL FROM:<>      one per command line, in order: every command it received, as
 *   MX-COMMAND RCPT TO:<jo@x>    globs (waited for up to 10 s). None: not checked, unless
 *                                MX-CONNECTIONS is given: then it received no command at all
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export type ReplyStage = 'banner' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'dot';
export type Outcome = 'delivered' | 'held' | 'refused';

/** Directives beyond the base format, played only by runners that ask for them. */
export type CaseExtension = 'xclient' | 'config' | 'header-first' | 'mx';

export interface ParseOptions {
  /** The extensions the runner plays; others are refused as unknown directives. Default none. */
  extensions?: readonly CaseExtension[];
}

/** The attributes XCLIENT takes (www.postfix.org/XCLIENT_README.html). */
export const XCLIENT_ATTRIBUTES: readonly string[] = [
  'ADDR',
  'NAME',
  'PORT',
  'PROTO',
  'HELO',
  'LOGIN',
  'REVERSE_NAME',
  'DESTADDR',
  'DESTPORT',
];

/** One XCLIENT attribute, e.g. `{ name: 'ADDR', value: '192.0.2.10' }`. */
export interface XclientAttribute {
  name: string;
  value: string;
}

/** The expected reply at one stage (for RCPT, to one recipient): its lines, as globs. */
export interface ExpectedReply {
  stage: ReplyStage;
  address?: string;
  lines: string[];
}

/** `Name: value-glob`, optionally `Name[n]: ...` (the n-th occurrence, from 1). */
export interface HeaderExpectation {
  name: string;
  occurrence?: number;
  /** A glob; undefined for `HEADER-LACKS Name` (no such header at all). */
  value?: string;
}

export interface CaseTransaction {
  name: string;
  /** Line of the TRANSACTION directive (or 1), for messages. */
  line: number;
  from: string;
  to: string[];
  /** Header lines as written (folded lines allowed), or undefined for the default header. */
  header: string[] | undefined;
  body: string[];
  replies: ExpectedReply[];
  outcome: Outcome | undefined;
  envelopeFrom: string | undefined;
  envelopeTo: string[] | undefined;
  headerHas: HeaderExpectation[];
  headerLacks: HeaderExpectation[];
  /** HEADER-FIRST (extension 'header-first'). */
  headerFirst: HeaderExpectation | undefined;
  headerLast: HeaderExpectation | undefined;
  bodyIs: string | undefined;
  bodyHas: string[];
  bodyLacks: string[];
  log: string[];
  milterLog: string[];
  /** MX-COMMAND globs, in order (extension 'mx'). */
  mxCommands: string[];
  /** MX-CONNECTIONS (extension 'mx'), or undefined. */
  mxConnections: number | undefined;
}

export interface MilterCase {
  /** The file name without `.case`. */
  name: string;
  file: string;
  /** The comment lines before the first directive, joined: what the case is about. */
  description: string;
  helo: string;
  /** XCLIENT's attributes in order (extension 'xclient'); empty when the case sends none. */
  xclient: XclientAttribute[];
  /** The CONFIG block's lines joined with newlines (extension 'config'), or undefined. */
  config: string | undefined;
  transactions: CaseTransaction[];
}

const STAGES: Record<string, ReplyStage> = {
  BANNER: 'banner',
  EHLO: 'ehlo',
  MAIL: 'mail',
  RCPT: 'rcpt',
  DATA: 'data',
  DOT: 'dot',
};

const OUTCOMES: readonly Outcome[] = ['delivered', 'held', 'refused'];

export class CaseSyntaxError extends Error {
  constructor(file: string, line: number, problem: string) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'CaseSyntaxError';
  }
}

function newTransaction(name: string, line: number): CaseTransaction {
  return {
    name,
    line,
    from: '',
    to: [],
    header: undefined,
    body: [],
    replies: [],
    outcome: undefined,
    envelopeFrom: undefined,
    envelopeTo: undefined,
    headerHas: [],
    headerLacks: [],
    headerFirst: undefined,
    headerLast: undefined,
    bodyIs: undefined,
    bodyHas: [],
    bodyLacks: [],
    log: [],
    milterLog: [],
    mxCommands: [],
    mxConnections: undefined,
  };
}

/** `<addr>` → `addr` (`<>` → ''); undefined when the text is not in angle brackets. */
function angle(text: string): string | undefined {
  return /^<([^<>\s]*)>$/.exec(text)?.[1];
}

function parseHeaderExpectation(text: string, lacks: boolean): HeaderExpectation | undefined {
  const m = /^([!-9;-~]+?)(?:\[(\d+)\])?(?::[ \t]?(.*))?$/.exec(text);
  if (!m) return undefined;
  const [, name, occurrence, value] = m;
  if (!name || (!lacks && value === undefined)) return undefined;
  return {
    name,
    ...(occurrence ? { occurrence: Number(occurrence) } : {}),
    ...(value !== undefined ? { value } : {}),
  };
}

/**
 * Parses a case file's text. Throws a CaseSyntaxError naming the file and line for anything it
 * does not understand, so that a typo never turns into a silently weaker test.
 *
 * @example
 * const c = parseCase('MAIL <a@example.com>\nRCPT <b@example.net>\nOUTCOME delivered\n', 'x.case');
 * const d = parseCase(text, 'y.case', { extensions: ['xclient', 'config', 'header-first'] });
 */
export function parseCase(text: string, file: string, options: ParseOptions = {}): MilterCase {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const description: string[] = [];
  const extensions = new Set(options.extensions ?? []);
  let seenDirective = false;
  let helo = 'client.mailgate.test';
  const xclient: XclientAttribute[] = [];
  let config: string | undefined;
  const transactions: CaseTransaction[] = [newTransaction('', 1)];
  let tx = transactions[0]!;
  let touched = false;
  const withMail = new Set<CaseTransaction>();

  const fail = (index: number, problem: string): never => {
    throw new CaseSyntaxError(file, index + 1, problem);
  };
  /** Reads a block up to a lone ".", un-stuffing "..". */
  const block = (start: number): [string[], number] => {
    const out: string[] = [];
    for (let i = start + 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '.') return [out, i];
      out.push(line.startsWith('..') ? line.slice(1) : line);
    }
    return fail(start, 'block not ended by a line holding a single "."');
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      if (!seenDirective) description.push(line.replace(/^#\s?/, ''));
      continue;
    }
    seenDirective = true;
    const m = /^([A-Z][A-Z-]*)(?:[ \t]+(.*?))?[ \t]*$/.exec(line);
    if (!m) fail(i, `not a directive: ${JSON.stringify(line)}`);
    const keyword = m![1]!;
    const rest = m![2] ?? '';
    const needRest = () => {
      if (!rest) fail(i, `${keyword} needs an argument`);
    };
    const extension = EXTENSION_OF[keyword];
    if (extension && !extensions.has(extension)) fail(i, `unknown directive ${keyword}`);
    switch (keyword) {
      case 'TRANSACTION':
        // Before anything of the first transaction (HELO aside), it just names the first one.
        if (touched) {
          tx = newTransaction(rest, i + 1);
          transactions.push(tx);
          touched = false;
        } else {
          tx.name = rest;
          tx.line = i + 1;
        }
        continue;
      case 'HELO':
        needRest();
        if (transactions.length > 1) fail(i, 'HELO is only for the first transaction');
        helo = rest;
        continue;
      case 'XCLIENT':
        needRest();
        if (transactions.length > 1) fail(i, 'XCLIENT is only for the first transaction');
        if (xclient.length) fail(i, 'a second XCLIENT; give every attribute on one line');
        for (const word of rest.split(/[ \t]+/)) {
          const a = /^([A-Z_]+)=(\S+)$/.exec(word);
          if (!a || !XCLIENT_ATTRIBUTES.includes(a[1]!)) {
            fail(i, `XCLIENT wants NAME=value words, NAME one of ${XCLIENT_ATTRIBUTES.join(' ')}`);
          }
          if (xclient.some((x) => x.name === a![1])) fail(i, `XCLIENT ${a![1]} given twice`);
          xclient.push({ name: a![1]!, value: a![2]! });
        }
        continue;
      case 'CONFIG': {
        if (rest) fail(i, 'CONFIG takes no argument; its lines follow, ended by "."');
        if (config !== undefined) fail(i, 'a second CONFIG; a case has one');
        const [content, end] = block(i);
        config = content.join('\n');
        i = end;
        continue;
      }
      case 'MAIL': {
        const address = angle(rest);
        if (address === undefined) fail(i, 'MAIL wants <address> (or <>)');
        if (withMail.has(tx)) fail(i, 'a second MAIL in one transaction; use TRANSACTION');
        withMail.add(tx);
        tx.from = address!;
        break;
      }
      case 'RCPT': {
        const address = angle(rest);
        if (!address) fail(i, 'RCPT wants <address>');
        tx.to.push(address!);
        break;
      }
      case 'HEADER':
      case 'BODY':
      case 'BODY-IS': {
        if (rest) fail(i, `${keyword} takes no argument; its lines follow, ended by "."`);
        const [content, end] = block(i);
        if (keyword === 'HEADER') tx.header = content;
        else if (keyword === 'BODY') tx.body = content;
        else tx.bodyIs = content.map((l) => `${l}\r\n`).join('');
        i = end;
        break;
      }
      case 'REPLY': {
        const r = /^([A-Z]+)[ \t]+(?:(<[^<>\s]*>)[ \t]+)?(\d{3}(?:[ -].*)?)$/.exec(rest);
        const stage = r ? STAGES[r[1]!] : undefined;
        if (!r || !stage) {
          fail(i, `REPLY wants a stage (${Object.keys(STAGES).join(' ')}) and a reply line`);
        }
        const address = r![2] === undefined ? undefined : angle(r![2]);
        if (address !== undefined && stage !== 'rcpt' && stage !== 'mail') {
          fail(i, 'only MAIL and RCPT replies take an <address>');
        }
        if (stage === 'rcpt' && address === undefined && tx.to.length !== 1) {
          fail(i, 'REPLY RCPT needs the <recipient> when there is not exactly one RCPT before it');
        }
        const who = stage === 'rcpt' ? (address ?? tx.to[0]) : undefined;
        const same = tx.replies.find((x) => x.stage === stage && x.address === who);
        if (same) same.lines.push(r![3]!);
        else
          tx.replies.push({
            stage: stage!,
            ...(who !== undefined ? { address: who } : {}),
            lines: [r![3]!],
          });
        break;
      }
      case 'OUTCOME':
        if (!OUTCOMES.includes(rest as Outcome))
          fail(i, `OUTCOME is one of ${OUTCOMES.join(', ')}`);
        if (tx.outcome) fail(i, 'a second OUTCOME in one transaction');
        tx.outcome = rest as Outcome;
        break;
      case 'ENVELOPE-FROM': {
        const address = angle(rest);
        if (address === undefined) fail(i, 'ENVELOPE-FROM wants <address> (or <>)');
        tx.envelopeFrom = address;
        break;
      }
      case 'ENVELOPE-TO': {
        const addresses = rest.split(/[ \t]+/).map(angle);
        if (!rest || addresses.some((a) => !a)) fail(i, 'ENVELOPE-TO wants <address> ...');
        tx.envelopeTo = addresses as string[];
        break;
      }
      case 'HEADER-HAS':
      case 'HEADER-LACKS':
      case 'HEADER-FIRST':
      case 'HEADER-LAST': {
        const lacks = keyword === 'HEADER-LACKS';
        const expectation = parseHeaderExpectation(rest, lacks);
        if (!expectation) fail(i, `${keyword} wants Name${lacks ? '[: value]' : ': value'}`);
        if (keyword === 'HEADER-LAST' || keyword === 'HEADER-FIRST') {
          const slot = keyword === 'HEADER-LAST' ? 'headerLast' : 'headerFirst';
          if (expectation!.occurrence) fail(i, `${keyword} takes no [n]`);
          if (tx[slot]) fail(i, `a second ${keyword} in one transaction`);
          tx[slot] = expectation;
        } else (lacks ? tx.headerLacks : tx.headerHas).push(expectation!);
        break;
      }
      case 'MX-CONNECTIONS':
        if (!/^\d{1,6}$/.test(rest)) fail(i, 'MX-CONNECTIONS wants a number');
        if (tx.mxConnections !== undefined) fail(i, 'a second MX-CONNECTIONS in one transaction');
        tx.mxConnections = Number(rest);
        break;
      case 'BODY-HAS':
      case 'BODY-LACKS':
      case 'LOG':
      case 'MILTER-LOG':
      case 'MX-COMMAND':
        needRest();
        {
          const list = {
            'BODY-HAS': tx.bodyHas,
            'BODY-LACKS': tx.bodyLacks,
            LOG: tx.log,
            'MILTER-LOG': tx.milterLog,
            'MX-COMMAND': tx.mxCommands,
          }[keyword];
          list.push(rest);
        }
        break;
      default:
        fail(i, `unknown directive ${keyword}`);
    }
    touched = true;
  }

  transactions.forEach((t, n) => {
    const where = (problem: string) =>
      new CaseSyntaxError(
        file,
        t.line,
        `transaction ${n + 1}${t.name ? ` (${t.name})` : ''}: ${problem}`,
      );
    if (!withMail.has(t)) throw where('no MAIL');
    if (!t.outcome) throw where('no OUTCOME');
    if (t.to.length === 0) throw where('no RCPT');
    const expectsMessage =
      t.envelopeFrom !== undefined ||
      t.envelopeTo !== undefined ||
      t.headerFirst !== undefined ||
      t.headerLast !== undefined ||
      t.headerHas.length + t.headerLacks.length + t.bodyHas.length + t.bodyLacks.length > 0 ||
      t.bodyIs !== undefined;
    if (t.outcome === 'refused' && expectsMessage) {
      throw where('message expectations for a refused message');
    }
    if (t.outcome === 'held' && (t.envelopeFrom !== undefined || t.envelopeTo !== undefined)) {
      throw where(
        'ENVELOPE-* expectations are about the delivered envelope; a held message has none',
      );
    }
  });

  return {
    name: basename(file).replace(/\.case$/, ''),
    file,
    description: description.join(' ').trim(),
    helo,
    xclient,
    config,
    transactions,
  };
}

/** The directives each extension brings. */
const EXTENSION_OF: Record<string, CaseExtension> = {
  XCLIENT: 'xclient',
  CONFIG: 'config',
  'HEADER-FIRST': 'header-first',
  'MX-CONNECTIONS': 'mx',
  'MX-COMMAND': 'mx',
};

/** Reads and parses a case file. */
export function readCase(path: string, options: ParseOptions = {}): MilterCase {
  return parseCase(readFileSync(path, 'utf8'), path, options);
}

/**
 * The message a transaction sends: its header (or a default one naming the case), a blank line,
 * its body; CRLF line ends, not dot-stuffed.
 */
export function messageText(c: MilterCase, tx: CaseTransaction): string {
  const header = tx.header ?? [
    `From: <${tx.from}>`,
    `To: ${tx.to.map((a) => `<${a}>`).join(', ')}`,
    `Subject: mailgate case ${c.name}${tx.name ? ` (${tx.name})` : ''}`,
  ];
  return [...header, '', ...tx.body].map((l) => `${l}\r\n`).join('');
}

/** A glob (`*` = any text, everything else literal) as an anchored RegExp. */
export function globToRegExp(glob: string, { anywhere = false } = {}): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(anywhere ? body : `^${body}$`);
}
