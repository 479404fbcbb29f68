// The text log format carries what the JSON line carries: representative records are written
// both ways through the real logger, and each text line, read back by the rules of
// docs/log-tags.md ("JSON and text"), gives the JSON line's record — nested objects, lists,
// numbers apart from strings of digits, errors with their stacks, decision heads — field for field.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  createLogger,
  formatTextRecord,
  jsonLineToText,
  type LogFormat,
} from '../../src/observe/index.js';
import { escapeForLog } from '../../src/text/index.js';

// ---- a reader of text lines, written from the page's rules -----------------------------------

const VERDICT_WORD = /^[A-Z][A-Z0-9_-]*$/;
const SUBJECT_FIELDS: Record<string, string> = {
  connect: 'ip',
  helo: 'helo',
  mail: 'sender',
  rcpt: 'recipient',
};
const JSON_SCALAR = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)$/;

/** escapeForLog undone, with the `\"` of a quoted value. */
function unescapeText(text: string): string {
  return text.replace(/\\(\\|"|x([0-9a-f]{2})|u\{([0-9a-f]+)\})/g, (_all, c, hex, code) =>
    c === '\\' || c === '"' ? c : String.fromCodePoint(Number.parseInt(hex ?? code, 16)),
  );
}

/** How the head writes a tag or subject. */
function headText(text: string): string {
  return escapeForLog(text).replace(/=/g, '\\x3d');
}

/** A field's value: a list, `{}`, a number, true, false or null when unquoted, else a string. */
function readValue(raw: string): unknown {
  const isQuoted = raw.startsWith('"');
  const inner = isQuoted ? raw.slice(1, -1) : raw;
  if (inner.startsWith('[')) {
    const text = unescapeText(inner);
    try {
      return JSON.parse(text);
    } catch {
      return text.slice(1, -1).split(',');
    }
  }
  if (!isQuoted && inner === '{}') return {};
  if (!isQuoted && JSON_SCALAR.test(inner)) return JSON.parse(inner);
  return unescapeText(inner);
}

/** The key=value pairs after the head, in order. */
function readFields(text: string): Array<[string[], unknown]> {
  const fields: Array<[string[], unknown]> = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    assert.ok(eq > i, `no key at ${i}: ${text}`);
    const path = text
      .slice(i, eq)
      .split('.')
      .map((part) => unescapeText(part));
    let end = eq + 1;
    if (text[end] === '"') {
      end++;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      end++;
    } else {
      while (end < text.length && text[end] !== ' ') end++;
    }
    fields.push([path, readValue(text.slice(eq + 1, end))]);
    i = end + 1;
  }
  return fields;
}

interface Node {
  leaf?: { value: unknown };
  children: Map<string, Node>;
}

/** Dotted paths back into objects; a key with a value and sub-keys is an error's title. */
function buildRecord(fields: Array<[string[], unknown]>): Record<string, unknown> {
  const root: Node = { children: new Map() };
  for (const [path, value] of fields) {
    let node = root;
    for (const part of path) {
      let next = node.children.get(part);
      if (!next) {
        next = { children: new Map() };
        node.children.set(part, next);
      }
      node = next;
    }
    assert.equal(node.leaf, undefined, `${path.join('.')} written twice`);
    node.leaf = { value };
  }
  const toValue = (node: Node): unknown => {
    if (node.children.size === 0) return node.leaf?.value;
    const object: Record<string, unknown> = {};
    if (node.leaf) {
      const title = String(node.leaf.value);
      const colon = title.indexOf(': ');
      object['type'] = title.slice(0, colon);
      object['message'] = title.slice(colon + 2);
    }
    for (const [key, child] of node.children) object[key] = toValue(child);
    return object;
  };
  return toValue(root) as Record<string, unknown>;
}

/** A decision head read with the tags known (they were kept as a field). */
function headWithTags(head: string, tags: string[]): { subject?: string } | undefined {
  const [first, ...others] = tags.map(headText);
  if (VERDICT_WORD.test(tags[0] ?? '')) {
    const base = [first, ...others].join(': ');
    if (head === base) return {};
    if (head.startsWith(`${base}: `)) return { subject: head.slice(base.length + 2) };
    return undefined;
  }
  const tail = others.length ? ` ${others.join(', ')}` : '';
  if (head === `${first}${tail}`) return {};
  if (head.startsWith(`${first} `) && head.endsWith(tail) && head.length > first!.length + 1) {
    return { subject: head.slice(first!.length + 1, head.length - tail.length) };
  }
  return undefined;
}

/** A decision head read without the tags: they, and the subject, come from the head alone. */
function headAlone(head: string, stage: string): { tags: string[]; subject?: string } | undefined {
  const field = SUBJECT_FIELDS[stage];
  if (/^[A-Z][A-Z0-9_-]*(: |$)/.test(head)) {
    const pieces = head.split(': ');
    if (!field) return { tags: pieces };
    if (pieces.length < 2) return undefined;
    const subject = pieces.pop()!;
    return { tags: pieces, subject };
  }
  const split = (lead: string, rest: string | undefined) => [
    lead,
    ...(rest === undefined ? [] : rest.split(', ')),
  ];
  if (stage === 'connect' || stage === 'mail' || stage === 'rcpt') {
    const m =
      stage === 'connect'
        ? /^(.*?) (from \[[^\] ]*\])(?: (.*))?$/.exec(head)
        : /^(.*?) (<[^ ]*>)(?: (.*))?$/.exec(head);
    return m ? { tags: split(m[1]!, m[3]), subject: m[2]! } : undefined;
  }
  const space = head.indexOf(' ');
  if (stage === 'helo') {
    if (space < 0) return undefined;
    const after = head.slice(space + 1);
    const next = after.indexOf(' ');
    return next < 0
      ? { tags: [head.slice(0, space)], subject: after }
      : { tags: split(head.slice(0, space), after.slice(next + 1)), subject: after.slice(0, next) };
  }
  return space < 0
    ? { tags: [head] }
    : { tags: split(head.slice(0, space), head.slice(space + 1)) };
}

/** The value a subject stands for: `from [IP]`, `<ADDRESS>`, or the HELO name itself. */
function subjectValue(stage: string, subject: string): string | undefined {
  const m =
    stage === 'connect'
      ? /^from \[(.*)\]$/.exec(subject)
      : stage === 'mail' || stage === 'rcpt'
        ? /^<(.*)>$/.exec(subject)
        : [subject, subject];
  return m ? unescapeText(m[1]!) : undefined;
}

/** A text line read back into the record it was written from. */
function readTextLine(line: string): Record<string, unknown> {
  let rest = line;
  let time: string | undefined;
  if (rest.startsWith('- ')) rest = rest.slice(2);
  else {
    time = `${rest.slice(0, 23).replace(' ', 'T')}Z`;
    rest = rest.slice(24);
  }
  const level = rest.slice(0, 5).trim();
  rest = rest.slice(6);
  let conn: string | undefined;
  const bracket = /^\[([^\] ]+)\](?: |$)/.exec(rest);
  if (bracket) {
    conn = unescapeText(bracket[1]!);
    rest = rest.slice(bracket[0].length);
  }
  // The head holds no `=`: the first one belongs to the first field's key.
  const eq = rest.indexOf('=');
  const headEnd = eq < 0 ? rest.length : rest.lastIndexOf(' ', eq);
  const head = rest.slice(0, Math.max(headEnd, 0));
  const fields = buildRecord(readFields(rest.slice(headEnd < 0 ? 0 : headEnd + 1)));
  const record: Record<string, unknown> = { level, ...(time ? { time } : {}), ...fields };
  record['name'] ??= 'mailgate';
  if (conn !== undefined) record['conn'] = conn;
  const stage = record['stage'];
  let decided = false;
  if (
    record['conn'] !== undefined &&
    typeof stage === 'string' &&
    typeof record['verdict'] === 'string'
  ) {
    const field = SUBJECT_FIELDS[stage];
    const tags = record['tags'];
    const read = Array.isArray(tags)
      ? headWithTags(head, tags as string[])
      : (() => {
          const alone = headAlone(head, stage);
          return alone && (field === undefined || alone.subject !== undefined) ? alone : undefined;
        })();
    const subject = read?.subject === undefined ? undefined : subjectValue(stage, read.subject);
    if (read && (read.subject === undefined || (field && subject !== undefined))) {
      decided = true;
      if (!Array.isArray(tags))
        record['tags'] = (read as { tags: string[] }).tags.map(unescapeText);
      record['msg'] = (record['tags'] as string[])[0];
      if (field && subject !== undefined) record[field] = subject;
    }
  }
  if (!decided && head !== '') record['msg'] = unescapeText(head);
  return record;
}

// ---- the JSON side, as the text line promises to carry it ------------------------------------

/** An error's stack as the text line writes it: its lines, less those that repeat its title. */
function oneLineStack(stack: string, title: string): string {
  const lines = stack.split('\n');
  const firstFrame = lines.findIndex((l) => l.trim().startsWith('at '));
  const repeats = firstFrame > 0 && title.startsWith(lines.slice(0, firstFrame).join('\n'));
  return (repeats ? lines.slice(firstFrame) : lines)
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' | ');
}

/** The JSON record with each error's stack as one line. */
function expected(value: unknown): unknown {
  if (Array.isArray(value)) return value;
  if (typeof value !== 'object' || value === null) return value;
  const object = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(object)) out[key] = expected(sub);
  const { type, message, stack } = object;
  if (typeof type === 'string' && typeof message === 'string' && typeof stack === 'string') {
    if (type !== '' && !type.includes(': '))
      out['stack'] = oneLineStack(stack, `${type}: ${message}`);
  }
  return out;
}

function capture(format: LogFormat) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', format, destination }), lines };
}

// ---- the records --------------------------------------------------------------------------

const hostile = 'evil\r\nX-Injected: yes\u0000 \u00e9\u{1f600} "quoted" a=b \\x0d, [x]: y';
const failure = Object.assign(new TypeError('bad\r\nthing', { cause: new Error('inner') }), {
  code: 'EBAD',
  errno: -22,
  detail: { path: '/var/lib/mailgate', tried: [1, 2] },
});
const aggregate = new AggregateError([new Error('one'), new RangeError('two')], 'both failed');

/** Calls as the daemon makes them: [level, fields, message]. */
const CALLS: Array<['debug' | 'info' | 'warn' | 'error', Record<string, unknown>, string]> = [
  [
    'info',
    {
      version: '1.4.0',
      config: '/etc/mailgate/mailgate.toml',
      store: 'sqlite:/var/lib/mailgate/mailgate.db',
      policy: ['inet:10027@127.0.0.1'],
      milter: [],
      mode: 'postfix',
      greylist: true,
    },
    'started',
  ],
  [
    'info',
    {
      verdict: 'greylist',
      reason: 'score',
      client: '192.0.2.0/24',
      ip: '192.0.2.10',
      sender: '',
      recipient: 'bob@example.net',
      scores: { helo: 2, dyn: 0, s_eq_r: -1.5, nested: { deep: null, empty: {} } },
      delay: 300,
      match: 'line 3: 192.0.2.0/24 = friend',
      problems: ['a, b', '', 'c'],
    },
    'greylist',
  ],
  // Strings spelt as numbers, words JSON knows, lists and objects stay strings.
  [
    'info',
    {
      queue_id: '12345',
      count: 12345,
      flag: 'true',
      on: false,
      none: 'null',
      nothing: null,
      list: '[a,b]',
      object: '{}',
      big: 1e21,
      quoted: ['"x"'],
      digits: ['1', 1],
      spaced: [' 1'],
      words: ['a b', 'c'],
      nestedLists: [[1, 2], [3]],
      rows: [{ line: 3 }],
    },
    'types',
  ],
  // Keys with dots, spaces, quotes and `=`, next to a nested key spelt the same.
  ['warn', { 'a.b': 1, a: { b: 2, 'c.d': { e: 'f' } }, 'k ey"=': hostile }, 'keys'],
  ['warn', { helo: hostile, nested: { inner: hostile }, list: [hostile] }, `hostile ${hostile}`],
  ['info', { signal: 'SIGHUP' }, '[not a conn]'],
  // Errors at every level: the stack is written at info and warn too.
  ['warn', { err: failure, sender: 'jo@example.org' }, 'cbv-cache-write-failed'],
  ['error', { err: failure, store: 'sqlite:/x' }, 'store-open-failed'],
  ['info', { err: aggregate }, 'aggregate'],
  ['warn', { err: { message: 'plain object', stack: 'not a stack' } }, 'not an error'],
  // Policy decisions, in the shapes the engine writes.
  [
    'info',
    {
      conn: 'm1a',
      stage: 'connect',
      verdict: 'continue',
      reason: 'connect',
      tags: ['connect', 'EXTERNAL'],
      ip: '2001:db8::5',
    },
    'connect',
  ],
  [
    'info',
    {
      conn: 'm1a',
      stage: 'helo',
      verdict: 'reject',
      reason: 'numeric-helo',
      tags: ['REJECT', 'numeric hello name'],
      ip: '203.0.113.5',
      helo: '198.51.100.7',
      reply: '550 5.7.1 numeric hello name: 198.51.100.7',
    },
    'REJECT',
  ],
  [
    'info',
    {
      conn: 'm1a',
      stage: 'helo',
      verdict: 'continue',
      reason: 'helo',
      tags: ['hello'],
      ip: '203.0.113.5',
      helo: 'mx.example.org',
    },
    'hello',
  ],
  [
    'info',
    {
      conn: 'm1a',
      stage: 'mail',
      verdict: 'continue',
      reason: 'spf-pass',
      tags: ['mail from', 'SPF pass', 'policy default'],
      ip: '203.0.113.5',
      helo: 'mx.example.org',
      sender: 'a>b@example.org',
    },
    'mail from',
  ],
  // No sender to show: a last tag could pass for it, so the tags stay a field.
  [
    'info',
    {
      conn: 'p7',
      stage: 'mail',
      verdict: 'reject',
      reason: 'no-helo',
      tags: ['REJECT', 'no HELO'],
      ip: '203.0.113.5',
    },
    'REJECT',
  ],
  [
    'info',
    {
      conn: 'p7',
      stage: 'rcpt',
      verdict: 'tempfail',
      reason: 'greylisted',
      tags: ['GREYLIST', 'score'],
      ip: '203.0.113.5',
      sender: '',
      recipient: 'bob@example.net',
      reply: '450 4.7.1 greylisted, try again later',
      headers: ['Received-SPF', 'X-Greylist'],
    },
    'GREYLIST',
  ],
  [
    'info',
    {
      conn: 'm2',
      stage: 'eom',
      verdict: 'continue',
      reason: 'eom',
      tags: ['eom', 'DKIM pass:example.com,fail:other.example', 'ARC none'],
      ip: '203.0.113.5',
      headers: ['Authentication-Results'],
    },
    'eom',
  ],
  [
    'info',
    { conn: 'm2', stage: 'eom', verdict: 'continue', reason: 'eom', tags: ['eom', 'ARC none'] },
    'eom',
  ],
  // A first tag with a space and nothing bracketed after it.
  [
    'info',
    {
      conn: 'm3',
      stage: 'mail',
      verdict: 'continue',
      reason: 'x',
      tags: ['mail from'],
      sender: 'two words',
    },
    'mail from',
  ],
  [
    'info',
    { conn: 'm3', stage: 'helo', verdict: 'continue', reason: 'helo', tags: ['hello'], helo: '' },
    'hello',
  ],
  // Lines with a conn and a stage that are no decisions.
  [
    'info',
    { conn: 'm3', stage: 'mail', value: 'Pass (mx: ...) client-ip=192.0.2.1' },
    'Received-SPF',
  ],
  ['info', { conn: 'm3', stage: 'abort' }, 'abort'],
  [
    'info',
    { conn: 'p9', stage: 'connect', verdict: 'accept', reason: 'local-submission', client: 'unix' },
    'connect',
  ],
  ['error', { err: failure, conn: 'm4', stage: 'mail', ip: '192.0.2.1' }, 'policy-stage-failed'],
];

describe('text log format: the same fields as JSON', () => {
  const json = capture('json');
  const text = capture('text');
  for (const [level, fields, message] of CALLS) {
    json.logger[level](fields, message);
    text.logger[level](fields, message);
  }

  it('writes one text line per JSON line, the text logger as jsonLineToText', () => {
    assert.equal(json.lines.length, CALLS.length);
    assert.equal(text.lines.length, CALLS.length);
    for (const [n, line] of text.lines.entries()) {
      // Time aside: the two loggers wrote a moment apart.
      assert.equal(line.slice(23), jsonLineToText(`${json.lines[n]}\n`).slice(23, -1));
      assert.doesNotMatch(line, /[^\x20-\x7e]/);
    }
  });

  for (const [n, [, , message]] of CALLS.entries()) {
    it(`reads back as its JSON record: ${escapeForLog(message).slice(0, 40)}`, () => {
      const record = JSON.parse(json.lines[n]!) as Record<string, unknown>;
      const line = jsonLineToText(`${json.lines[n]}\n`).replace(/\n$/, '');
      assert.deepEqual(readTextLine(line), expected(record), line);
    });
  }

  it('carries every frame of a stack, and its causes', () => {
    const record = JSON.parse(json.lines.find((l) => l.includes('cbv-cache-write-failed'))!) as {
      err: { stack: string };
    };
    const frames = record.err.stack.split('\n').filter((l) => l.trim().startsWith('at '));
    assert.ok(frames.length > 3);
    const line = text.lines.find((l) => l.includes('cbv-cache-write-failed'))!;
    const stack = (readTextLine(line)['err'] as { stack: string }).stack.split(' | ');
    for (const frame of frames) assert.ok(stack.includes(frame.trim()), frame);
    assert.ok(stack.includes('caused by: Error: inner'), stack.join('\n'));
  });

  it('keeps the tags as a field exactly where the head would not give them back', () => {
    const shown = (n: number) => / tags=/.test(text.lines[n]!);
    const index = (msg: string, extra: (f: Record<string, unknown>) => boolean) =>
      CALLS.findIndex(([, f, m]) => m === msg && extra(f));
    assert.equal(shown(index('connect', (f) => f['ip'] !== undefined)), false);
    assert.equal(shown(index('mail from', (f) => f['sender'] === 'a>b@example.org')), false);
    assert.equal(
      shown(index('REJECT', (f) => f['sender'] === undefined && f['stage'] === 'mail')),
      true,
    );
    assert.equal(shown(index('eom', (f) => (f['tags'] as string[]).length === 3)), true);
    assert.equal(shown(index('eom', (f) => (f['tags'] as string[]).length === 2)), false);
    assert.equal(shown(index('mail from', (f) => f['sender'] === 'two words')), true);
  });

  it('reads records no logger call makes: a numeric conn, an unparsable time', () => {
    for (const record of [
      { level: 'info', time: 'soon', name: 'other', conn: 17, stage: 'mail', msg: 'x' },
      { level: 'warn', time: '2026-12-07T12:15:30.118Z', name: 'mailgate', conn: 'a=b', msg: 'y' },
    ]) {
      assert.deepEqual(readTextLine(formatTextRecord(record)), record);
    }
  });
});
