/**
 * What both backends share: the open options, the logger they report to, the checks every
 * argument passes before it reaches a driver, error wrapping that never leaks a password, and
 * the mapping from database rows to the public types.
 */
import type {
  CallbackRecord,
  CallbackResult,
  ClientCounter,
  Decision,
  DecisionCount,
  DecisionQuery,
  ExpiryCutoffs,
  GreylistSummary,
  ReputationDelta,
  ReputationRow,
  StoredDecision,
  Triplet,
  TripletKey,
  TripletLookup,
} from './types.js';
import {
  MAX_DECISION_SEARCH,
  MAX_REPUTATION_EVENT,
  MAX_REPUTATION_SUBJECT,
  MAX_REPUTATION_SUBJECTS,
  StoreError,
  storedReputationText,
} from './types.js';

/** Where the store reports trouble that belongs to no call (a pooled connection dropped). pino fits. */
export interface StoreLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Settings for `openStore`; each applies to one backend and is ignored by the other. */
export interface OpenStoreOptions {
  /** SQLite: how long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * SQLite: how often a thread of its own moves the write-ahead log into the database file
   * (files only). Default 500 ms.
   */
  checkpointEveryMs?: number;
  /** PostgreSQL: connections in the pool at most. Default 10. */
  poolSize?: number;
  /** PostgreSQL: how long opening one connection may take. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL: how long one query may take before the call rejects, so that a database that
   * stops answering cannot hold an SMTP session. Default 10000 ms.
   */
  queryTimeoutMs?: number;
  /** Default: warnings and errors as single lines on stderr. */
  logger?: StoreLogger;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
export const DEFAULT_POOL_SIZE = 10;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

function stderrLine(level: string, fields: Record<string, unknown>, message: string): string {
  const parts = [`store ${level}: ${message}`];
  for (const [key, value] of Object.entries(fields)) {
    const text = value instanceof Error ? `${value.name}: ${value.message}` : String(value);
    parts.push(`${key}=${JSON.stringify(text)}`);
  }
  return `${parts.join(' ')}\n`;
}

/** The logger when none is given: one line per event on stderr. */
export const stderrStoreLogger: StoreLogger = {
  warn(fields, message) {
    process.stderr.write(stderrLine('warn', fields, message));
  },
  error(fields, message) {
    process.stderr.write(stderrLine('error', fields, message));
  },
};

/**
 * Replaces every secret (a password from the URL) in a driver's message: drivers may quote
 * their connection settings, and a store error ends up in logs.
 *
 * @example
 * redact('login as mx:hunter2 failed', ['hunter2'])  // 'login as mx:*** failed'
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}

/**
 * A `StoreError` naming the operation, with the driver's message (and code, when it has one)
 * and no password. A `StoreError` passes through unchanged.
 *
 * @example
 * try { db.exec(sql); } catch (error) { throw storeError('expire', error, []); }
 */
export function storeError(op: string, error: unknown, secrets: readonly string[]): StoreError {
  if (error instanceof StoreError) return error;
  let detail = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0 && !detail.includes(code)) {
    detail = `${detail} (${code})`;
  }
  if (detail.length === 0 && error instanceof AggregateError) {
    detail = error.errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
  }
  return new StoreError(
    redact(`store ${op} failed: ${detail}`, secrets),
    redactedCause(error, secrets),
  );
}

/**
 * The driver's error as a cause that can be logged: loggers print a cause's message and stack
 * too, so with secrets about, both are copied with the secrets replaced.
 */
function redactedCause(error: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0 || !(error instanceof Error)) return error;
  const copy = new Error(redact(error.message, secrets));
  copy.name = error.name;
  copy.stack = error.stack === undefined ? undefined : redact(error.stack, secrets);
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return copy;
}

/**
 * Refuses a key that contains NUL. PostgreSQL text cannot hold NUL, and replacing it would make
 * two different keys one; callers normalise keys before, so a NUL here is refused the same way
 * by every backend rather than stored by one and rejected by the other.
 */
export function checkKeyText(op: string, field: string, value: unknown): string {
  if (typeof value !== 'string') throw new StoreError(`store ${op}: ${field} is not a string`);
  if (value.includes('\0')) {
    throw new StoreError(`store ${op}: ${field} contains NUL, which no backend can store`);
  }
  return value;
}

/** Checks the three parts of a triplet key (see `checkKeyText`). */
export function checkTripletKey(op: string, key: TripletKey): void {
  checkKeyText(op, 'client', key?.client);
  checkKeyText(op, 'sender', key?.sender);
  checkKeyText(op, 'recipient', key?.recipient);
}

/** Times are integral milliseconds; anything else is a caller's bug, refused alike everywhere. */
export function checkTime(op: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new StoreError(
      `store ${op}: ${name} must be integral milliseconds, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Free text in the decision log (HELO names, client names) is kept, not refused: NUL becomes
 * U+FFFD, so the line that records a hostile request is never the one that gets lost.
 */
function logText(value: string | undefined): string | null {
  if (value === undefined || value === null) return null;
  return String(value).replaceAll('\0', '\uFFFD');
}

/** Tags kept per decision at most; the rest are dropped. */
export const MAX_TAGS = 16;
/** Characters (code points) kept per tag at most. */
export const MAX_TAG_LENGTH = 200;

/**
 * Control characters, and the Unicode line and paragraph separators: what could end or split a
 * line wherever a tag is shown.
 */
const TAG_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * One tag as stored. Stricter than `logText`: a tag is a label, shown joined with others on
 * one line, so no control character of it is worth keeping; each becomes U+FFFD, which keeps
 * the label's length and shows that something was there.
 */
function tagText(value: string): string {
  let text = value.replace(TAG_UNSAFE, '\uFFFD');
  // Cheap test first: more code points than UTF-16 units is impossible.
  if (text.length > MAX_TAG_LENGTH) {
    const points = Array.from(text);
    if (points.length > MAX_TAG_LENGTH) text = points.slice(0, MAX_TAG_LENGTH).join('');
  }
  return text;
}

/**
 * A decision's tags as the `tags` column: a JSON array of at most MAX_TAGS strings (see
 * `tagText`), or null when the decision has no tags (an empty array is kept as one). Anything but an array of strings is a
 * caller's bug and refused, as non-finite scores are.
 */
function tagsColumn(op: string, tags: unknown): string | null {
  if (tags === undefined || tags === null) return null;
  if (!Array.isArray(tags)) throw new StoreError(`store ${op}: tags must be an array of strings`);
  const kept: string[] = [];
  for (const tag of tags) {
    if (typeof tag !== 'string') {
      throw new StoreError(`store ${op}: tags must be an array of strings, got ${typeof tag}`);
    }
    if (kept.length < MAX_TAGS) kept.push(tagText(tag));
  }
  return JSON.stringify(kept);
}

/** A decision's columns, in table order, checked and ready to bind. */
export interface DecisionColumns {
  time: number;
  host: string;
  client: string;
  clientName: string | null;
  helo: string | null;
  sender: string;
  recipient: string;
  action: string;
  reason: string;
  delay: number | null;
  scores: string | null;
  stage: string | null;
  /** JSON array of strings. */
  tags: string | null;
}

/** Checks a decision and turns it into columns; scores must be finite numbers (JSON has no NaN). */
export function decisionColumns(decision: Decision): DecisionColumns {
  const op = 'logDecision';
  if (decision === null || typeof decision !== 'object') {
    throw new StoreError(`store ${op}: the decision is not an object`);
  }
  const time = checkTime(op, 'time', decision.time);
  if (decision.delay !== undefined && !Number.isFinite(decision.delay)) {
    throw new StoreError(`store ${op}: delay must be a finite number`);
  }
  let scores: string | null = null;
  if (decision.scores !== undefined) {
    for (const [name, value] of Object.entries(decision.scores)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new StoreError(
          `store ${op}: score ${JSON.stringify(name)} must be a finite number, got ${String(value)}`,
        );
      }
    }
    scores = JSON.stringify(decision.scores);
  }
  return {
    time,
    host: logText(String(decision.host ?? '')) ?? '',
    client: logText(String(decision.client ?? '')) ?? '',
    clientName: logText(decision.clientName),
    helo: logText(decision.helo),
    sender: logText(String(decision.sender ?? '')) ?? '',
    recipient: logText(String(decision.recipient ?? '')) ?? '',
    action: logText(String(decision.action ?? '')) ?? '',
    reason: logText(String(decision.reason ?? '')) ?? '',
    delay: decision.delay ?? null,
    scores,
    stage: logText(decision.stage),
    tags: tagsColumn(op, decision.tags),
  };
}

/** A decision's columns as the parameters of an INSERT in table order (both backends). */
export function decisionParams(c: DecisionColumns): (string | number | null)[] {
  return [
    c.time,
    c.host,
    c.client,
    c.clientName,
    c.helo,
    c.sender,
    c.recipient,
    c.action,
    c.reason,
    c.delay,
    c.scores,
    c.stage,
    c.tags,
  ];
}

/** The columns `logDecision` inserts, in the order of `decisionParams`. */
export const DECISION_INSERT_COLUMNS =
  'time, host, client, client_name, helo, sender, recipient, action, reason, delay, scores, stage, tags';

/**
 * A limit on the lines a read returns: a whole number of at least 0, and at most `max` when
 * given; `op` names the method in the error.
 *
 * @example
 * checkLimit(50, 'findDecisions', MAX_FIND_DECISIONS)  // 50
 */
export function checkLimit(limit: unknown, op = 'recentDecisions', max?: number): number {
  if (
    typeof limit !== 'number' ||
    !Number.isSafeInteger(limit) ||
    limit < 0 ||
    (max !== undefined && limit > max)
  ) {
    const range = max === undefined ? '>= 0' : `from 0 to ${max}`;
    throw new StoreError(
      `store ${op}: limit must be a whole number ${range}, got ${String(limit)}`,
    );
  }
  return limit;
}

/** Lines one `findDecisions` call returns at most: a page, never the whole log at once. */
export const MAX_FIND_DECISIONS = 10_000;
/** The smallest `countDecisions` bucket. */
export const MIN_DECISION_BUCKET_MS = 1_000;
/** Buckets one `countDecisions` range may span at most, so that one answer stays small. */
export const MAX_DECISION_BUCKETS = 10_000;

/** The decision-log columns a `findDecisions` search looks in. */
export const DECISION_SEARCH_COLUMNS = [
  'client',
  'client_name',
  'helo',
  'sender',
  'recipient',
] as const;

/** A `DecisionQuery`, checked: null for each condition not given. */
export interface DecisionFilter {
  from: number | null;
  to: number | null;
  /** The search as a LIKE pattern (see `containsPattern`); null for none. */
  pattern: string | null;
  action: string | null;
  beforeId: number | null;
  limit: number;
}

/**
 * A LIKE pattern (escape character `\`) that matches text containing `text`: `%`, `_` and `\`
 * stand for themselves, and ASCII letters are lower-cased, so that a backend comparing with
 * ASCII-lower-cased columns ignores ASCII case and nothing more, as SQLite's LIKE does.
 *
 * @example
 * containsPattern('100%_Sure')  // '%100\\%\\_sure%'
 */
export function containsPattern(text: string): string {
  const escaped = text.replace(/[\\%_]/g, '\\$&').replace(/[A-Z]/g, (c) => c.toLowerCase());
  return `%${escaped}%`;
}

/**
 * `findDecisions`'s query, checked. A search is refused rather than cut when it is too long or
 * holds NUL: cutting it would answer a different question, and no stored line holds NUL (it is
 * stored as U+FFFD). An empty search is no condition, as every line contains it.
 *
 * @example
 * checkDecisionQuery({ search: '192.0.2.', limit: 50 })
 * // { from: null, to: null, pattern: '%192.0.2.%', action: null, beforeId: null, limit: 50 }
 */
export function checkDecisionQuery(query: DecisionQuery): DecisionFilter {
  const op = 'findDecisions';
  if (query === null || typeof query !== 'object') {
    throw new StoreError(`store ${op}: the query is not an object`);
  }
  const limit = checkLimit(query.limit, op, MAX_FIND_DECISIONS);
  const from = query.from === undefined ? null : checkTime(op, 'from', query.from);
  const to = query.to === undefined ? null : checkTime(op, 'to', query.to);
  const action = query.action === undefined ? null : checkKeyText(op, 'action', query.action);
  let beforeId: number | null = null;
  if (query.beforeId !== undefined) {
    const id: unknown = query.beforeId;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
      throw new StoreError(
        `store ${op}: beforeId must be a row id (a whole number >= 1), got ${String(id)}`,
      );
    }
    beforeId = id;
  }
  let pattern: string | null = null;
  if (query.search !== undefined) {
    const search = checkKeyText(op, 'search', query.search);
    // Cheap test first: more code points than UTF-16 units is impossible.
    if (search.length > MAX_DECISION_SEARCH && Array.from(search).length > MAX_DECISION_SEARCH) {
      throw new StoreError(`store ${op}: search must be at most ${MAX_DECISION_SEARCH} characters`);
    }
    if (search.length > 0) pattern = containsPattern(search);
  }
  return { from, to, pattern, action, beforeId, limit };
}

/** `countDecisions`'s range, checked. */
export interface DecisionBuckets {
  from: number;
  to: number;
  bucketMs: number;
}

/**
 * `countDecisions`'s arguments, checked: whole milliseconds, `to` not before `from`, buckets of
 * at least MIN_DECISION_BUCKET_MS and at most MAX_DECISION_BUCKETS of them (a last, partial
 * bucket counts). Counted in integers: floating-point division could round a bucket away.
 *
 * @example
 * checkDecisionBuckets(0, 3_600_000, 60_000)  // { from: 0, to: 3_600_000, bucketMs: 60_000 }
 */
export function checkDecisionBuckets(from: number, to: number, bucketMs: number): DecisionBuckets {
  const op = 'countDecisions';
  checkTime(op, 'from', from);
  checkTime(op, 'to', to);
  if (
    typeof bucketMs !== 'number' ||
    !Number.isSafeInteger(bucketMs) ||
    bucketMs < MIN_DECISION_BUCKET_MS
  ) {
    throw new StoreError(
      `store ${op}: bucketMs must be whole milliseconds of at least ${MIN_DECISION_BUCKET_MS}, got ${String(bucketMs)}`,
    );
  }
  if (to < from) throw new StoreError(`store ${op}: to (${to}) is before from (${from})`);
  const span = checkTime(op, 'to - from', to - from);
  const rest = span % bucketMs;
  const buckets = (span - rest) / bucketMs + (rest > 0 ? 1 : 0);
  if (buckets > MAX_DECISION_BUCKETS) {
    throw new StoreError(
      `store ${op}: at most ${MAX_DECISION_BUCKETS} buckets per call, got ${buckets}`,
    );
  }
  return { from, to, bucketMs };
}

/**
 * A `countDecisions` row (`n`, the bucket's number from `from` on; `action`; `count`) as a
 * `DecisionCount`; PostgreSQL gives bigints as strings.
 */
export function rowToDecisionCount(row: Row, range: DecisionBuckets): DecisionCount {
  return {
    bucket: range.from + num(row['n']) * range.bucketMs,
    action: String(row['action']),
    count: num(row['count']),
  };
}

/**
 * `greylistSummary`'s threshold: a whole number of at least 0, where 0 means auto-whitelisting
 * is off (as in the configuration) and so no client counts as whitelisted.
 */
export function checkWhitelistAt(whitelistAt: unknown): number {
  if (typeof whitelistAt !== 'number' || !Number.isSafeInteger(whitelistAt) || whitelistAt < 0) {
    throw new StoreError(
      `store greylistSummary: whitelistAt must be a whole number >= 0, got ${String(whitelistAt)}`,
    );
  }
  return whitelistAt;
}

/**
 * What both backends select for `greylistSummary`, in one statement so the three counts are of
 * one moment; `threshold` is the dialect's placeholder for whitelistAt, and the `> 0` test is
 * what makes 0 count nobody.
 */
export function greylistSummarySql(threshold: string): string {
  return `SELECT count(*) FILTER (WHERE state = 'greylisted') AS waiting,
      count(*) FILTER (WHERE state = 'passed') AS passed,
      (SELECT count(*) FROM client_counters WHERE ${threshold} > 0 AND count >= ${threshold})
        AS whitelisted
    FROM triplets`;
}

/** A `greylistSummary` row as a `GreylistSummary`; PostgreSQL gives counts as strings. */
export function rowToGreylistSummary(row: Row | undefined): GreylistSummary {
  return {
    waiting: num(row?.['waiting'] ?? 0),
    passed: num(row?.['passed'] ?? 0),
    whitelisted: num(row?.['whitelisted'] ?? 0),
  };
}

/** One row as a driver returns it; PostgreSQL gives bigint columns as strings. */
export type Row = Record<string, unknown>;

const num = (value: unknown): number => Number(value);

/** A `triplets` row as a `Triplet`. */
export function rowToTriplet(row: Row): Triplet {
  return {
    client: String(row['client']),
    sender: String(row['sender']),
    recipient: String(row['recipient']),
    state: row['state'] === 'passed' ? 'passed' : 'greylisted',
    firstSeen: num(row['first_seen']),
    lastSeen: num(row['last_seen']),
    failCount: num(row['fail_count']),
    passCount: num(row['pass_count']),
  };
}

/** A `client_counters` row as a `ClientCounter`. */
export function rowToClient(row: Row): ClientCounter {
  return {
    client: String(row['client']),
    count: num(row['count']),
    firstSeen: num(row['first_seen']),
    lastCounted: num(row['last_counted']),
    lastSeen: num(row['last_seen']),
  };
}

/** The columns of the two tables `lookup` reads, in the order it selects them. */
const TRIPLET_COLUMNS = [
  'client',
  'sender',
  'recipient',
  'state',
  'first_seen',
  'last_seen',
  'fail_count',
  'pass_count',
] as const;
const CLIENT_COLUMNS = ['client', 'count', 'first_seen', 'last_counted', 'last_seen'] as const;

/**
 * What `lookup` selects from `triplets t` LEFT JOIN `client_counters c`, read back by position
 * (`columnsToLookup`): the triplet's columns, then the counter's (all NULL for a row that is not
 * there).
 */
export const LOOKUP_COLUMNS = [
  ...TRIPLET_COLUMNS.map((name) => `t.${name}`),
  ...CLIENT_COLUMNS.map((name) => `c.${name}`),
].join(', ');

/** `names.length` values from `values[offset]` on, as a row keyed by column name. */
function rowAt(names: readonly string[], values: readonly unknown[], offset: number): Row {
  const row: Row = {};
  for (let i = 0; i < names.length; i++) row[names[i]!] = values[offset + i];
  return row;
}

/**
 * A `lookup` row, as an array of `LOOKUP_COLUMNS` in order, as a `TripletLookup` (through
 * `rowToTriplet` and `rowToClient`). A triplet is there when its state (NOT NULL) is; a counter
 * when its client (the primary key) is.
 *
 * @example
 * columnsToLookup(db.prepare(`SELECT ${LOOKUP_COLUMNS} FROM ...`).raw(true).get(...) as unknown[])
 */
export function columnsToLookup(values: readonly unknown[]): TripletLookup {
  const state = values[TRIPLET_COLUMNS.indexOf('state')];
  const client = values[TRIPLET_COLUMNS.length];
  return {
    triplet:
      state === null || state === undefined
        ? null
        : rowToTriplet(rowAt(TRIPLET_COLUMNS, values, 0)),
    counter:
      client === null || client === undefined
        ? null
        : rowToClient(rowAt(CLIENT_COLUMNS, values, TRIPLET_COLUMNS.length)),
  };
}

/** Scores as stored; entries that are not finite numbers (a hand-edited row) are left out. */
function parseScores(text: string): Record<string, number> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const scores: Record<string, number> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'number' && Number.isFinite(value)) scores[name] = value;
  }
  return scores;
}

/** Tags as stored; anything but an array of strings (a hand-edited row) is left out. */
function parseTags(text: string): string[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  return parsed.filter((tag): tag is string => typeof tag === 'string');
}

/** A `decision_log` row as a `StoredDecision`; NULL columns become absent properties. */
export function rowToDecision(row: Row): StoredDecision {
  const decision: StoredDecision = {
    id: num(row['id']),
    time: num(row['time']),
    host: String(row['host']),
    client: String(row['client']),
    sender: String(row['sender']),
    recipient: String(row['recipient']),
    action: String(row['action']),
    reason: String(row['reason']),
  };
  if (row['client_name'] !== null && row['client_name'] !== undefined) {
    decision.clientName = String(row['client_name']);
  }
  if (row['helo'] !== null && row['helo'] !== undefined) decision.helo = String(row['helo']);
  if (row['delay'] !== null && row['delay'] !== undefined) decision.delay = num(row['delay']);
  if (typeof row['scores'] === 'string') {
    const scores = parseScores(row['scores']);
    if (scores) decision.scores = scores;
  }
  if (row['stage'] !== null && row['stage'] !== undefined) decision.stage = String(row['stage']);
  if (typeof row['tags'] === 'string') {
    const tags = parseTags(row['tags']);
    if (tags) decision.tags = tags;
  }
  return decision;
}

const CALLBACK_RESULTS: readonly CallbackResult[] = [
  'accepted',
  'rejected',
  'dsn-accepted',
  'dsn-rejected',
];

/** The longest reply kept: an SMTP reply line is at most 512 octets (RFC 5321 4.5.3.1.5). */
export const MAX_CALLBACK_REPLY = 512;

/**
 * A call-back record, checked, as the parameters of the upsert: sender, result, reply, time,
 * host. The reply came from a remote MX and is hostile: it is kept as printable ASCII (as its
 * type promises, whatever the caller did), so that whoever quotes it in a reply or log line
 * cannot be given a line break.
 *
 * @example
 * callbackParams({ sender: 'a@example.org', result: 'rejected', reply: '550 5.1.1 no\r\n',
 *   time: 1, host: 'mx1' })  // ['a@example.org', 'rejected', '550 5.1.1 no??', 1, 'mx1']
 */
export function callbackParams(record: CallbackRecord): (string | number)[] {
  const op = 'putCallback';
  if (record === null || typeof record !== 'object') {
    throw new StoreError(`store ${op}: the record is not an object`);
  }
  const sender = checkKeyText(op, 'sender', record.sender);
  if (!CALLBACK_RESULTS.includes(record.result)) {
    throw new StoreError(`store ${op}: unknown result ${JSON.stringify(record.result)}`);
  }
  const time = checkTime(op, 'time', record.time);
  const reply = String(record.reply ?? '')
    .replace(/[^\x20-\x7e]/gu, '?')
    .slice(0, MAX_CALLBACK_REPLY);
  const host = logText(String(record.host ?? '')) ?? '';
  return [sender, record.result, reply, time, host];
}

/** A `callback_cache` row as a `CallbackRecord`. */
export function rowToCallback(row: Row): CallbackRecord {
  return {
    sender: String(row['sender']),
    result: String(row['result']) as CallbackResult,
    reply: String(row['reply']),
    time: num(row['time']),
    host: String(row['host']),
  };
}

/**
 * `takeRate`'s arguments, checked, with the time at or before which a window has run out
 * (`now - windowMs`): computed here, so both backends compare with the same number. A window
 * of 0 or less, or a fractional limit, is a caller's bug, refused alike everywhere.
 *
 * @example
 * checkRate('cbv:example.org', 10_000, 1_000, 5)
 * // { key: 'cbv:example.org', now: 10_000, restartAtOrBefore: 9_000, limit: 5 }
 */
export function checkRate(
  key: string,
  now: number,
  windowMs: number,
  limit: number,
): { key: string; now: number; restartAtOrBefore: number; limit: number } {
  const op = 'takeRate';
  checkKeyText(op, 'key', key);
  checkTime(op, 'now', now);
  if (typeof windowMs !== 'number' || !Number.isSafeInteger(windowMs) || windowMs <= 0) {
    throw new StoreError(
      `store ${op}: windowMs must be whole milliseconds above 0, got ${windowMs}`,
    );
  }
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    throw new StoreError(`store ${op}: limit must be a whole number >= 0, got ${limit}`);
  }
  return { key, now, restartAtOrBefore: checkTime(op, 'now - windowMs', now - windowMs), limit };
}

/** The optional cut-offs of `expire` (the ones added in schema versions 2 to 4). */
export const OPTIONAL_CUTOFFS = [
  'callbacksBefore',
  'ratesBefore',
  'reputationBefore',
  'dmarcBefore',
] as const;

/**
 * Checks every cut-off: the four of version 1 must be there, the optional ones only when given.
 *
 * @example
 * checkCutoffs({ passedBefore: 1, greylistedBefore: 1, clientsBefore: 1, decisionsBefore: 1 });
 */
export function checkCutoffs(cutoffs: ExpiryCutoffs): void {
  for (const name of [
    'passedBefore',
    'greylistedBefore',
    'clientsBefore',
    'decisionsBefore',
  ] as const) {
    checkTime('expire', name, cutoffs?.[name]);
  }
  for (const name of OPTIONAL_CUTOFFS) {
    if (cutoffs[name] !== undefined) checkTime('expire', name, cutoffs[name]);
  }
}

/** The error for any call after `close()`. */
export function closedError(op: string, description: string): StoreError {
  return new StoreError(`store ${op}: ${description} is closed`);
}

/** The smallest and largest amount one reputation delta may add. */
export const MIN_REPUTATION_AMOUNT = 1e-6;
export const MAX_REPUTATION_AMOUNT = 1e9;

/**
 * Half-lives after which a decaying amount is taken as 0. It is then 2^-64 of itself, far below
 * anything a reader shows; and PostgreSQL, which raises an error where a float8 underflows
 * rather than giving 0, is never asked for a smaller power of two.
 */
export const REPUTATION_FORGET_HALF_LIVES = 64;

/** A reputation subject or event as stored (see `storedReputationText`); refused if no string. */
function reputationText(op: string, field: string, value: unknown, max: number): string {
  if (typeof value !== 'string') throw new StoreError(`store ${op}: ${field} is not a string`);
  return storedReputationText(value, max);
}

/** A reputation subject as stored (see `storedReputationText`). */
export function reputationSubject(op: string, subject: unknown): string {
  return reputationText(op, 'subject', subject, MAX_REPUTATION_SUBJECT);
}

/**
 * The half-life of `addReputation`: whole milliseconds above 0, as a `REAL` for SQL (so that
 * SQLite divides by it without rounding to an integer).
 */
export function checkHalfLife(op: string, halfLifeMs: unknown): number {
  if (typeof halfLifeMs !== 'number' || !Number.isSafeInteger(halfLifeMs) || halfLifeMs <= 0) {
    throw new StoreError(
      `store ${op}: halfLifeMs must be whole milliseconds above 0, got ${String(halfLifeMs)}`,
    );
  }
  return halfLifeMs;
}

/**
 * `addReputation`'s deltas, checked and made safe, in rounds in which no (subject, event) key
 * repeats: one multi-row upsert may touch a row once only (PostgreSQL refuses more), so a key
 * that comes twice goes in the next round, in the same transaction. Each round is sorted by key
 * (`byReputationKey`), so that every MX host locks a batch's rows in one order and two batches
 * cannot deadlock on each other.
 *
 * @example
 * reputationRounds([{ subject: 's', event: 'e', amount: 1, time: 1 },
 *   { subject: 's', event: 'e', amount: 1, time: 2 }])  // two rounds of one delta each
 */
export function reputationRounds(deltas: readonly ReputationDelta[]): ReputationDelta[][] {
  const op = 'addReputation';
  if (!Array.isArray(deltas)) throw new StoreError(`store ${op}: deltas must be an array`);
  const rounds: ReputationDelta[][] = [];
  const seen = new Map<string, number>();
  for (const delta of deltas as readonly unknown[]) {
    if (delta === null || typeof delta !== 'object') {
      throw new StoreError(`store ${op}: a delta is not an object`);
    }
    const d = delta as Partial<ReputationDelta>;
    const subject = reputationSubject(op, d.subject);
    const event = reputationText(op, 'event', d.event, MAX_REPUTATION_EVENT);
    const amount = d.amount;
    if (
      typeof amount !== 'number' ||
      !(amount >= MIN_REPUTATION_AMOUNT && amount <= MAX_REPUTATION_AMOUNT)
    ) {
      throw new StoreError(
        `store ${op}: amount must be a number from ${MIN_REPUTATION_AMOUNT} to ${MAX_REPUTATION_AMOUNT}, got ${String(amount)}`,
      );
    }
    const time = checkTime(op, 'time', d.time);
    const key = `${subject}\u0000${event}`;
    const round = seen.get(key) ?? 0;
    seen.set(key, round + 1);
    const into = rounds[round] ?? [];
    if (round === rounds.length) rounds.push(into);
    into.push({ subject, event, amount, time });
  }
  for (const round of rounds) round.sort(byReputationKey);
  return rounds;
}

/** By subject, then event, by UTF-16 code unit: one order whatever the database's collation. */
function byReputationKey(
  a: { subject: string; event: string },
  b: { subject: string; event: string },
): number {
  if (a.subject !== b.subject) return a.subject < b.subject ? -1 : 1;
  if (a.event !== b.event) return a.event < b.event ? -1 : 1;
  return 0;
}

/**
 * `getReputation`'s subjects, made safe as they were when stored, without repeats.
 *
 * @example
 * reputationLookupSubjects(['domain:a.example', 'domain:a.example'])  // ['domain:a.example']
 */
export function reputationLookupSubjects(subjects: readonly string[]): string[] {
  const op = 'getReputation';
  if (!Array.isArray(subjects)) throw new StoreError(`store ${op}: subjects must be an array`);
  if (subjects.length > MAX_REPUTATION_SUBJECTS) {
    throw new StoreError(
      `store ${op}: at most ${MAX_REPUTATION_SUBJECTS} subjects per call, got ${subjects.length}`,
    );
  }
  return [...new Set(subjects.map((subject) => reputationSubject(op, subject)))];
}

/**
 * The SQL factor that decays an amount `age` milliseconds old with half-life `halfLife` (both SQL
 * expressions): 2^(-age/halfLife), and 0 from REPUTATION_FORGET_HALF_LIVES on. `pow` is the
 * dialect's name for the power function.
 *
 * @example
 * decaySql('excluded.updated - reputation.updated', '@halfLife', 'pow')
 */
export function decaySql(age: string, halfLife: string, pow: 'pow' | 'power'): string {
  return `(CASE WHEN (${age}) >= ${halfLife} * ${REPUTATION_FORGET_HALF_LIVES} THEN 0.0
    ELSE ${pow}(2.0, -CAST((${age}) AS DOUBLE PRECISION) / ${halfLife}) END)`;
}

/**
 * The amount and time columns of the reputation upsert, for `table` (the stored row) and the
 * dialect's `excluded` row: the older of the two decays to the newer one's time, then they add.
 */
export function reputationUpsertSet(table: string, halfLife: string, pow: 'pow' | 'power'): string {
  const newer = `excluded.updated - ${table}.updated`;
  const older = `${table}.updated - excluded.updated`;
  const greatest = pow === 'pow' ? 'max' : 'greatest';
  return `amount = CASE WHEN excluded.updated >= ${table}.updated
      THEN ${table}.amount * ${decaySql(newer, halfLife, pow)} + excluded.amount
      ELSE ${table}.amount + excluded.amount * ${decaySql(older, halfLife, pow)} END,
    updated = ${greatest}(${table}.updated, excluded.updated)`;
}

/** A `reputation` row as a `ReputationRow`; PostgreSQL gives `updated` as a string. */
export function rowToReputation(row: Row): ReputationRow {
  return {
    subject: String(row['subject']),
    event: String(row['event']),
    amount: num(row['amount']),
    updated: num(row['updated']),
  };
}

/** Rows ordered by subject, then event, by code unit: the same order from both backends. */
export function sortReputationRows(rows: ReputationRow[]): ReputationRow[] {
  return rows.sort(byReputationKey);
}
