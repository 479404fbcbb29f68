/**
 * The `text` log format: pino's JSON line rewritten as one line for a person, in the manner of
 * the logs pymilter's bms.py wrote —
 *
 *     2026-12-07 12:15:30.118 info  [m1a] connect from [203.0.113.5] EXTERNAL stage=connect ...
 *
 * It works on the JSON text pino has just made, not on the call's arguments, so that the two
 * formats carry the same fields by construction (serializers, the `err` serializer above all,
 * have already run). Every field the head of the line does not show follows as key=value, and
 * written so that a reader gets the JSON back: which key a nested value sits under, where a list
 * element ends, a number from a string of digits, an error's stack.
 */
import { escapeForLog } from '../text/index.js';

/** pino's numeric levels, for a line whose level was not written as its label. */
const LEVEL_LABELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/**
 * What a decision line's stage is about, shown after its first tag as bms.py did
 * (`connect from [203.0.113.5]`, `mail from <jo@example.org>`).
 */
const STAGE_SUBJECTS: Record<string, { field: string; show: (value: string) => string }> = {
  connect: { field: 'ip', show: (value) => `from [${value}]` },
  helo: { field: 'helo', show: (value) => value },
  mail: { field: 'sender', show: (value) => `<${value}>` },
  rcpt: { field: 'recipient', show: (value) => `<${value}>` },
};

/** A first tag that is a verdict word (REJECT, TEMPFAIL, GREYLIST, CBV): bms.py's `REJECT: why`. */
const VERDICT_WORD = /^[A-Z][A-Z0-9_-]*$/;

/** Subjects a reader finds by their brackets wherever they stand in the head. */
const BRACKETED_SUBJECTS = new Set(['connect', 'mail', 'rcpt']);

/** What JSON.parse reads as a number, true, false or null: a string spelt so is quoted. */
const JSON_SCALAR = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)$/;

/**
 * A pino JSON line (as pino hands it to its stream, newline included) as a text line. A line
 * that is not JSON, which pino never writes, is kept, escaped, rather than dropped.
 *
 * @example
 * jsonLineToText('{"level":"warn","time":"2026-12-07T12:15:31.000Z","signal":"SIGTERM","msg":"stop-forced"}\n')
 * // '2026-12-07 12:15:31.000 warn  stop-forced signal=SIGTERM\n'
 */
export function jsonLineToText(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return `${escapeForLog(line.replace(/\n$/, ''))}\n`;
  }
  if (!isPlainObject(record)) return `${escapeForLog(line.replace(/\n$/, ''))}\n`;
  return `${formatTextRecord(record)}\n`;
}

/**
 * One log record as a text line, without the newline: time (UTC), level, `[conn]` when the line
 * belongs to a connection, the message, then every other field as key=value. A policy
 * decision's head reads as bms.py's did: its tags, with what its stage is about.
 *
 * @example
 * formatTextRecord({
 *   level: 'info', time: '2026-12-07T12:15:30.118Z', name: 'mailgate', conn: 'm1a',
 *   stage: 'connect', verdict: 'continue', reason: 'connect', tags: ['connect', 'EXTERNAL'],
 *   ip: '203.0.113.5', msg: 'connect',
 * })
 * // '2026-12-07 12:15:30.118 info  [m1a] connect from [203.0.113.5] EXTERNAL stage=connect verdict=continue reason=connect'
 */
export function formatTextRecord(record: Record<string, unknown>): string {
  const rest: Record<string, unknown> = { ...record };
  const level = levelLabel(record['level']);
  const parts = [timeText(record['time'], rest), level.padEnd(5)];
  delete rest['level'];
  delete rest['msg'];
  // Every line has it; a line from some other name is worth showing.
  if (rest['name'] === 'mailgate') delete rest['name'];
  const conn = record['conn'];
  if (typeof conn === 'string' && isHeadWord(conn)) {
    parts.push(`[${headText(conn)}]`);
    delete rest['conn'];
  }
  const head = decisionHead(record, rest) ?? messageText(record['msg']);
  if (head) parts.push(head);
  for (const [key, value] of Object.entries(rest)) pushField(parts, keyText(key), value);
  return parts.join(' ');
}

/**
 * The head of a policy decision line (conn, stage, verdict, tags, msg the first tag), removing
 * from `rest` what it shows; undefined for any other line. The tags stay as a field too when
 * the head alone would not say where each tag ends: a tag holds the separator, the first tag of
 * a comma-joined head holds a space with nothing bracketed after it, or the stage's subject is
 * not shown (then a last tag could pass for it).
 */
function decisionHead(
  record: Record<string, unknown>,
  rest: Record<string, unknown>,
): string | undefined {
  const { msg, stage, tags } = record;
  if (record['conn'] === undefined || typeof stage !== 'string' || typeof msg !== 'string') {
    return undefined;
  }
  if (typeof record['verdict'] !== 'string') return undefined;
  if (!Array.isArray(tags) || tags.length === 0 || tags[0] !== msg) return undefined;
  if (!tags.every((tag): tag is string => typeof tag === 'string')) return undefined;
  const [first, ...others] = tags as [string, ...string[]];
  let subject: string | undefined;
  const about = STAGE_SUBJECTS[stage];
  const value = about ? record[about.field] : undefined;
  if (about && typeof value === 'string' && (value !== '' || about.field !== 'helo')) {
    const escaped = headText(value);
    // A value with a space would blur where the head ends: it stays a quoted field instead.
    if (!escaped.includes(' ')) {
      subject = about.show(escaped);
      delete rest[about.field];
    }
  }
  const verdictStyle = VERDICT_WORD.test(first);
  const separator = verdictStyle ? ': ' : ', ';
  const splittable = !tags.some((tag) => tag === '' || tag.includes(separator.trim()));
  const subjectKnown = about === undefined || subject !== undefined;
  const firstEnds =
    verdictStyle ||
    !first.includes(' ') ||
    (subject !== undefined && BRACKETED_SUBJECTS.has(stage));
  if (splittable && subjectKnown && firstEnds) delete rest['tags'];
  const words = others.map(headText);
  if (verdictStyle) {
    // REJECT: numeric hello name: 198.51.100.7
    return [headText(first), ...words, ...(subject ? [subject] : [])].join(': ');
  }
  // connect from [203.0.113.5] EXTERNAL; mail from <jo@example.org> SPF pass, policy default
  const lead = subject ? `${headText(first)} ${subject}` : headText(first);
  return words.length ? `${lead} ${words.join(', ')}` : lead;
}

/**
 * One field, flattened: nested objects as `key.sub=`, errors as `Type: message` with their own
 * fields as `key.sub=` and their stack as `key.stack=` (a key with sub-keys of its own is an
 * error: a plain value has none).
 */
function pushField(parts: string[], key: string, value: unknown): void {
  if (isErrorShaped(value)) {
    const { type, message, stack, ...more } = value;
    const title = `${type}: ${message}`;
    parts.push(`${key}=${stringText(title)}`);
    for (const [sub, subValue] of Object.entries(more)) {
      pushField(parts, `${key}.${keyText(sub)}`, subValue);
    }
    parts.push(`${key}.stack=${stringText(stackText(stack, title))}`);
    return;
  }
  if (Array.isArray(value)) {
    parts.push(`${key}=${arrayText(value)}`);
    return;
  }
  if (isPlainObject(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) parts.push(`${key}={}`);
    for (const [sub, subValue] of entries) {
      pushField(parts, `${key}.${keyText(sub)}`, subValue);
    }
    return;
  }
  parts.push(`${key}=${typeof value === 'string' ? stringText(value) : quoted(String(value))}`);
}

/**
 * `[a,b]` for a list of plain values, read back by splitting at the commas; JSON when an
 * element holds a bracket or comma, is empty, or is a list or an object, and when `[a,b]`
 * would itself read as JSON of other values (`["x"]`, `[1]` for the string "1").
 */
function arrayText(values: unknown[]): string {
  const plain = values.every(
    (v) =>
      v === null ||
      typeof v === 'number' ||
      typeof v === 'boolean' ||
      (typeof v === 'string' && v !== '' && !/[[\],]/.test(v)),
  );
  const simple = `[${values.map(String).join(',')}]`;
  const text = plain && readsAsItself(simple, values) ? simple : JSON.stringify(values);
  return quoted(escapeForLog(text));
}

/** Whether `text` is no JSON, or JSON of exactly these values. */
function readsAsItself(text: string, values: unknown[]): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return true;
  }
  return (
    Array.isArray(parsed) &&
    parsed.length === values.length &&
    parsed.every((v, i) => v === values[i])
  );
}

/**
 * A stack on one line: its lines joined with ` | `, a `caused by:` line kept where it falls.
 * The lines before the first frame are left out when they only repeat the error's title,
 * which the line shows already.
 */
function stackText(stack: string, title: string): string {
  const lines = stack.split('\n');
  const firstFrame = lines.findIndex((line) => line.trimStart().startsWith('at '));
  const repeats = firstFrame > 0 && title.startsWith(lines.slice(0, firstFrame).join('\n'));
  return (repeats ? lines.slice(firstFrame) : lines)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' | ');
}

/**
 * A string value: escaped; quoted when it would read as a number, true, false or null, and a
 * leading `[` or `{` written `\x5b` or `\x7b`, so that it never reads as a list or an object.
 */
function stringText(text: string): string {
  const escaped = escapeForLog(text).replace(/^[[{]/, hexEscape);
  return JSON_SCALAR.test(text) ? `"${escaped}"` : quoted(escaped);
}

/** Escaped text quoted when it is empty or holds a space, a quote or `=`. */
function quoted(escaped: string): string {
  return escaped === '' || /[ "=]/.test(escaped) ? `"${escaped.replace(/"/g, '\\"')}"` : escaped;
}

/**
 * A key that cannot pass for a value, split the pair or the path: space, quote, `=` and `.`
 * as `\xNN` (the dots between a nested value's keys are the only ones left).
 */
function keyText(key: string): string {
  return escapeForLog(key).replace(/[ "=.]/g, hexEscape);
}

/** Text in the head: escaped, `=` too, so that no message or tag can pass for a field. */
function headText(text: string): string {
  return escapeForLog(text).replace(/=/g, hexEscape);
}

/** The message; a leading `[` escaped, so that it never reads as the `[conn]` before it. */
function messageText(msg: unknown): string {
  return msg === undefined ? '' : headText(String(msg)).replace(/^\[/, hexEscape);
}

/** A conn id that fits between brackets; another stays a field. */
function isHeadWord(text: string): boolean {
  return /^[\x21-\x5a\x5e-\x7e]+$/.test(text);
}

function hexEscape(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

function levelLabel(level: unknown): string {
  if (typeof level === 'number') return LEVEL_LABELS[level] ?? String(level);
  return typeof level === 'string' ? escapeForLog(level) : '-';
}

/** `2026-12-07 12:15:30.118` (UTC, as the JSON's time); a time that does not parse stays a field. */
function timeText(time: unknown, rest: Record<string, unknown>): string {
  const date = typeof time === 'string' || typeof time === 'number' ? new Date(time) : null;
  if (date === null || Number.isNaN(date.getTime())) return '-';
  delete rest['time'];
  return date.toISOString().replace('T', ' ').slice(0, 23);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * What pino's `err` serializer makes of an Error: `type`, `message`, `stack` and own fields. A
 * type that is empty or holds `: ` would blur where the title's message begins: such an object
 * is written as any other.
 */
function isErrorShaped(
  value: unknown,
): value is { type: string; message: string; stack: string } & Record<string, unknown> {
  return (
    isPlainObject(value) &&
    typeof value['type'] === 'string' &&
    value['type'] !== '' &&
    !value['type'].includes(': ') &&
    typeof value['message'] === 'string' &&
    typeof value['stack'] === 'string'
  );
}
