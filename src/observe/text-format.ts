/**
 * The `text` log format: pino's JSON line rewritten as one line for a person, in the manner of
 * the logs pymilter's bms.py wrote —
 *
 *     2026-12-07 12:15:30.118 info  [m1a] connect from [203.0.113.5] EXTERNAL stage=connect ...
 *
 * It works on the JSON text pino has just made, not on the call's arguments, so that the two
 * formats carry the same fields by construction (serializers, the `err` serializer above all,
 * have already run). Every field the head of the line does not show follows as key=value.
 */
import { escapeForLog } from '../text/index.js';

/** How a line is written. */
export interface TextFormatOptions {
  /**
   * Show the stack of every error, not only on `error` and `fatal` lines: the logger runs at
   * debug or trace, where the operator is hunting a problem and wants to see where it began.
   */
  allStacks?: boolean;
}

/** pino's numeric levels, for a line whose level was not written as its label. */
const LEVEL_LABELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** Lines where a stack is always worth its length. */
const STACK_LEVELS = new Set(['error', 'fatal']);

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

/**
 * A pino JSON line (as pino hands it to its stream, newline included) as a text line. A line
 * that is not JSON, which pino never writes, is kept, escaped, rather than dropped.
 *
 * @example
 * jsonLineToText('{"level":"warn","time":"2026-12-07T12:15:31.000Z","signal":"SIGTERM","msg":"stop-forced"}\n')
 * // '2026-12-07 12:15:31.000 warn  stop-forced signal=SIGTERM\n'
 */
export function jsonLineToText(line: string, options: TextFormatOptions = {}): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return `${escapeForLog(line.replace(/\n$/, ''))}\n`;
  }
  if (!isPlainObject(record)) return `${escapeForLog(line.replace(/\n$/, ''))}\n`;
  return `${formatTextRecord(record, options)}\n`;
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
export function formatTextRecord(
  record: Record<string, unknown>,
  options: TextFormatOptions = {},
): string {
  const rest: Record<string, unknown> = { ...record };
  const level = levelLabel(record['level']);
  const parts = [timeText(record['time'], rest), level.padEnd(5)];
  delete rest['level'];
  delete rest['msg'];
  // Every line has it; a line from some other name is worth showing.
  if (rest['name'] === 'mailgate') delete rest['name'];
  const conn = record['conn'];
  if ((typeof conn === 'string' || typeof conn === 'number') && isHeadWord(String(conn))) {
    parts.push(`[${headText(String(conn))}]`);
    delete rest['conn'];
  }
  const head = decisionHead(record, rest) ?? messageText(record['msg']);
  if (head) parts.push(head);
  const showStack = options.allStacks === true || STACK_LEVELS.has(level);
  for (const [key, value] of Object.entries(rest)) pushField(parts, keyText(key), value, showStack);
  return parts.join(' ');
}

/**
 * The head of a policy decision line (conn, stage, tags, msg the first tag), removing from
 * `rest` what it shows; undefined for any other line. The tags stay as a field too when one of
 * them holds the separator, so that where one tag ends is never lost.
 */
function decisionHead(
  record: Record<string, unknown>,
  rest: Record<string, unknown>,
): string | undefined {
  const { msg, stage, tags } = record;
  if (record['conn'] === undefined || typeof stage !== 'string' || typeof msg !== 'string') {
    return undefined;
  }
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
  if (!tags.some((tag) => tag === '' || tag.includes(separator.trim()))) delete rest['tags'];
  const words = others.map(headText);
  if (verdictStyle) {
    // REJECT: numeric hello name: 198.51.100.7
    return [headText(first), ...words, ...(subject ? [subject] : [])].join(': ');
  }
  // connect from [203.0.113.5] EXTERNAL; mail from <jo@example.org> SPF pass, policy default
  const lead = subject ? `${headText(first)} ${subject}` : headText(first);
  return words.length ? `${lead} ${words.join(', ')}` : lead;
}

/** One field, flattened: nested objects as `key.sub=`, errors as their message (and stack). */
function pushField(parts: string[], key: string, value: unknown, showStack: boolean): void {
  if (isErrorShaped(value)) {
    const { type, message, stack, ...more } = value;
    const title = typeof type === 'string' && type !== '' ? `${type}: ${message}` : message;
    parts.push(`${key}=${valueText(title)}`);
    for (const [sub, subValue] of Object.entries(more)) {
      pushField(parts, `${key}.${keyText(sub)}`, subValue, showStack);
    }
    if (showStack) {
      const frames = stackText(stack);
      if (frames) parts.push(`${key}.stack=${valueText(frames)}`);
    }
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
      pushField(parts, `${key}.${keyText(sub)}`, subValue, showStack);
    }
    return;
  }
  parts.push(`${key}=${valueText(String(value))}`);
}

/**
 * `[a,b]` for a list of plain values; JSON when an element holds a bracket or comma, is empty,
 * or is itself a list or object, so that the elements can always be told apart.
 */
function arrayText(values: unknown[]): string {
  const simple = values.every(
    (v) =>
      v === null ||
      typeof v === 'number' ||
      typeof v === 'boolean' ||
      (typeof v === 'string' && v !== '' && !/[[\],]/.test(v)),
  );
  const text = simple ? `[${values.map(String).join(',')}]` : JSON.stringify(values);
  return valueText(text);
}

/**
 * A stack on one line: its frames (the first lines repeat the message, already shown) joined
 * with ` | `, a `caused by:` line kept where it falls.
 */
function stackText(stack: string): string {
  const lines = stack
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const firstFrame = lines.findIndex((line) => line.startsWith('at '));
  return (firstFrame > 0 ? lines.slice(firstFrame) : lines).join(' | ');
}

/** Escaped, and quoted when it is empty or holds a space, a quote or `=`. */
function valueText(text: string): string {
  const escaped = escapeForLog(text);
  return escaped === '' || /[ "=]/.test(escaped) ? `"${escaped.replace(/"/g, '\\"')}"` : escaped;
}

/** A key that cannot pass for a value or split the pair: space, quote and `=` as `\xNN`. */
function keyText(key: string): string {
  return escapeForLog(key).replace(/[ "=]/g, hexEscape);
}

/** Text in the head: escaped, `=` too, so that no message or tag can pass for a field. */
function headText(text: string): string {
  return escapeForLog(text).replace(/=/g, hexEscape);
}

function messageText(msg: unknown): string {
  return msg === undefined ? '' : headText(String(msg));
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

/** What pino's `err` serializer makes of an Error: `type`, `message`, `stack` and own fields. */
function isErrorShaped(
  value: unknown,
): value is { type?: unknown; message: string; stack: string } & Record<string, unknown> {
  return (
    isPlainObject(value) &&
    typeof value['message'] === 'string' &&
    typeof value['stack'] === 'string'
  );
}
