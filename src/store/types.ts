/**
 * The store's public vocabulary: what mailgate keeps between requests (greylist triplets,
 * auto-whitelisted clients, the decision log, call-back verification results, rate-limit
 * windows, reputation counters, DMARC results for aggregate reports) and the one interface
 * every backend implements.
 * Times are milliseconds since the Unix epoch, always passed in by the caller (the store never
 * reads a clock), so that tests and several MX hosts agree on what "now" was.
 */

/**
 * A greylist key: who is sending what to whom. `client` is the canonical client address, or the
 * client's network (`192.0.2.0/24`, `2001:db8:1:2::/64`) when keying by network. `sender` and
 * `recipient` are already normalised (lower case, no `+ext`, no BATV tag, at most 254 chars);
 * the null sender is the empty string.
 */
export interface TripletKey {
  client: string;
  sender: string;
  recipient: string;
}

/**
 * - `greylisted`: seen, told to come back later, has not yet waited long enough;
 * - `passed`: let through (at once, by a DNSWL, or after waiting); later attempts pass.
 */
export type TripletState = 'greylisted' | 'passed';

/** One greylist entry. */
export interface Triplet extends TripletKey {
  state: TripletState;
  /** When the triplet was first seen (the greylist clock starts here). */
  firstSeen: number;
  /**
   * When the triplet was last seen (expiry counts from here). For a passed triplet it is written
   * at most once an hour: expiry is measured in days, and a write per message would cost more
   * than the decision.
   */
  lastSeen: number;
  /** Retries that came too early (each adds `penalty` to the wait). */
  failCount: number;
  /** Times the triplet was let through, counted at most once an hour once it has passed. */
  passCount: number;
}

/** What `firstAttempt` did: `created` is false when another request (or MX host) was first. */
export interface FirstAttempt {
  triplet: Triplet;
  created: boolean;
}

/** A client's auto-whitelist counter (postgrey's --auto-whitelist-clients). */
export interface ClientCounter {
  /** The client key (address or network), as for triplets. */
  client: string;
  /** Counted successful deliveries. */
  count: number;
  firstSeen: number;
  /** When the counter last went up. */
  lastCounted: number;
  lastSeen: number;
}

/**
 * A triplet and its client's auto-whitelist counter, read together: what `Store.lookup` returns,
 * the same as `getTriplet(key)` and `getClient(key.client)` would.
 *
 * @example
 * const { triplet, counter } = await store.lookup(key);
 * if (counter && counter.count >= 5) return 'auto-whitelisted';
 * if (triplet?.state === 'passed') return 'known';
 */
export interface TripletLookup {
  triplet: Triplet | null;
  /** The counter of `key.client` (the same client key the triplet uses). */
  counter: ClientCounter | null;
}

/** One line of the decision log: what was decided about a request, and why. */
export interface Decision {
  time: number;
  /** The instance (host name) that decided; several MX hosts share one store. */
  host: string;
  client: string;
  clientName?: string;
  helo?: string;
  sender: string;
  recipient: string;
  /** The action word: `pass`, `greylist`, `tempfail`, `skip`. */
  action: string;
  /** Stable reason word, e.g. `new-clean`, `dnsbl`, `score`, `waited`, `early-retry`, `whitelist`. */
  reason: string;
  /** Seconds the triplet was delayed, for a pass after waiting. */
  delay?: number;
  /** The scores behind the decision (`dnsbl`, `dnswl`, `helo`, `dyn`, `spf`, `s_eq_r`, ...). */
  scores?: Record<string, number>;
  /**
   * The SMTP stage the milter decided at: `connect`, `helo`, `mail`, `rcpt`, `eom`; absent for
   * greylisting's own lines (and for lines written before schema version 2).
   */
  stage?: string;
  /**
   * Labels behind the decision, e.g. `["REJECT", "numeric hello name"]`. Stored bounded: the
   * first 16 tags, each cut to 200 characters, control characters (CR, LF, NUL, ...) as U+FFFD.
   */
  tags?: string[];
}

/** A decision as read back, with its row id. */
export interface StoredDecision extends Decision {
  id: number;
}

/** Code points of a `findDecisions` search at most: the longest address is 254. */
export const MAX_DECISION_SEARCH = 254;

/**
 * Which decision-log lines `findDecisions` returns. Every condition given must hold; lines come
 * newest first (by time, then id).
 */
export interface DecisionQuery {
  /** Lines at or after this time (ms). */
  from?: number;
  /** Lines before this time (ms). */
  to?: number;
  /**
   * Text that the client address, client name, HELO, sender or recipient contains (compared
   * without regard to ASCII case only: `É` does not find `é`; `%` and `_` are plain
   * characters). At most 254 characters; empty matches every line.
   */
  search?: string;
  /** Only this action word (`reject`, `tempfail`, `greylist`, ...). */
  action?: string;
  /** Lines older than the line with this id, for paging on from the last line of a page (none when that line is gone). */
  beforeId?: number;
  /** At most this many lines (a whole number, at most 10000). */
  limit: number;
}

/** How many decision-log lines of one action fell in one time bucket. */
export interface DecisionCount {
  /** The bucket's start (ms): `from + n * bucketMs`. */
  bucket: number;
  action: string;
  count: number;
}

/** What greylisting holds now, for the status page. */
export interface GreylistSummary {
  /** Triplets greylisted and not yet passed. */
  waiting: number;
  /** Triplets that passed. */
  passed: number;
  /** Client counters at or above the auto-whitelist threshold. */
  whitelisted: number;
}

/**
 * How calling back a sender's MX went: `accepted` (the MX took RCPT TO), `rejected` (5xx: the
 * address does not exist), `dsn-accepted`, `dsn-rejected` (a DSN was sent instead of a plain
 * call-back).
 */
export type CallbackResult = 'accepted' | 'rejected' | 'dsn-accepted' | 'dsn-rejected';

/** The outcome of calling back a sender's MX, kept so that one sender is asked at most once per cache period. */
export interface CallbackRecord {
  /** The sender address as verified, lower-cased (the key). */
  sender: string;
  /** `accepted` (the MX took RCPT TO), `rejected` (5xx: the address does not exist), `dsn-accepted`, `dsn-rejected` (a DSN was sent instead of a plain call-back). */
  result: CallbackResult;
  /** The SMTP reply that decided, one line of printable ASCII (e.g. `550 5.1.1 <x@example.com>: User unknown`). */
  reply: string;
  /** When it was verified (ms since epoch). */
  time: number;
  /** The instance (host name) that verified. */
  host: string;
}

/** What `takeRate` counted: this call's place in the key's window, and whether it is within the limit. */
export interface RateTaken {
  /** `count <= limit`. */
  allowed: boolean;
  /**
   * Calls counted in the current window, this one included; never more than `limit + 1` (once
   * over the limit it stops growing), unless it was already higher under a lower limit.
   */
  count: number;
}

/**
 * One addition to a decaying counter: `amount` more of `event` for `subject`, at `time`. What the
 * subject and event mean is the caller's business (reputation keys them `domain:example.org` and
 * `spf:pass`); the store only adds. Both are kept printable and bounded (see `addReputation`).
 */
export interface ReputationDelta {
  subject: string;
  event: string;
  /** How much to add: a finite number from 0.000001 to 1e9 (usually 1, one observation). */
  amount: number;
  /** When it happened (ms since epoch). */
  time: number;
}

/** Code points of a reputation subject kept at most (a domain is 253, plus its `domain:`). */
export const MAX_REPUTATION_SUBJECT = 300;
/** Code points of a reputation event name kept at most. */
export const MAX_REPUTATION_EVENT = 64;
/** Subjects one `getReputation` call may ask for. */
export const MAX_REPUTATION_SUBJECTS = 1000;

/**
 * What a reputation subject or event must not contain: what a decision-log tag must not (control
 * characters, U+2028, U+2029), and lone surrogates, which no UTF-8 database can store as given.
 */
const REPUTATION_UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A reputation subject or event as stored. These are keys, but ones built from what SMTP
 * clients send (a sender domain), and printed by the CLI and the logs: rather than refused,
 * their unsafe characters become U+FFFD (NUL too, which PostgreSQL could not store) and they are
 * cut to `max` code points, the same way for writing and for reading, so a hostile subject is
 * stored, found and shown bounded.
 *
 * @example
 * storedReputationText('spf:pass\r\n', MAX_REPUTATION_EVENT)  // 'spf:pass\uFFFD\uFFFD'
 */
export function storedReputationText(value: string, max: number): string {
  let text = value.replace(REPUTATION_UNSAFE, '\uFFFD');
  // Cheap test first: more code points than UTF-16 units is impossible.
  if (text.length > max) {
    const points = Array.from(text);
    if (points.length > max) text = points.slice(0, max).join('');
  }
  return text;
}

/**
 * The form in which a subject is stored and comes back from `getReputation`, so that a caller
 * can match rows to the subjects it asked for, however hostile they were.
 *
 * @example
 * storedReputationSubject('domain:a\r\nb')  // 'domain:a\uFFFD\uFFFDb'
 */
export function storedReputationSubject(subject: string): string {
  return storedReputationText(subject, MAX_REPUTATION_SUBJECT);
}

/**
 * A decaying counter as stored: its amount as it was at `updated`. Later, at time t, it is worth
 * `amount * 2 ** (-(t - updated) / halfLifeMs)`; the reader decays it with the half-life it uses.
 */
export interface ReputationRow {
  subject: string;
  event: string;
  amount: number;
  /** The newest time added to it (ms since epoch); expiry goes by this. */
  updated: number;
}

/** A DMARC policy word (`p=`, `sp=`, `np=`, and the disposition applied). */
export type DmarcPolicyWord = 'none' | 'quarantine' | 'reject';

/** The DMARC result words (RFC 9989 section 9.2). */
export type DmarcResultWord = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';

/** The record a DMARC result was evaluated under, as RFC 9990's policy_published reports it. */
export interface DmarcPublishedPolicy {
  p: DmarcPolicyWord;
  sp?: DmarcPolicyWord;
  np?: DmarcPolicyWord;
  adkim: 'r' | 's';
  aspf: 'r' | 's';
  /** `t=y`. */
  testing: boolean;
  psd?: 'y' | 'n' | 'u';
}

/** One DKIM signature's result, as an aggregate report lists it. */
export interface DmarcDkimResult {
  /** The signature's `d=`. */
  domain: string;
  /** The signature's `s=`, when known. */
  selector?: string;
  result: string;
}

/** The SPF result, as an aggregate report lists it. */
export interface DmarcSpfResult {
  domain: string;
  scope: 'mfrom' | 'helo';
  result: string;
}

/**
 * One message's DMARC evaluation, for aggregate reports (RFC 9990): one row per message, which
 * the report builder groups by source IP and outcome. Strings are kept as given (bounded, see
 * `addDmarcResults`); the words are checked.
 */
export interface DmarcResultRow {
  /** When the message was evaluated (ms since epoch). */
  time: number;
  /** The SMTP client's address. */
  sourceIp: string;
  /** The RFC5322.From domain. */
  headerFrom: string;
  /** The RFC5321.MailFrom domain (the HELO name for a null MAIL FROM), when known. */
  envelopeFrom?: string;
  /** Where the record was found; absent when none was. */
  policyDomain?: string;
  /** The record's policy; absent when no record applied. */
  published?: DmarcPublishedPolicy;
  /** What was applied to the message. */
  disposition: DmarcPolicyWord;
  /** Why the applied disposition is not the policy's (RFC 9990's PolicyOverrideType), if so. */
  override?: string;
  result: DmarcResultWord;
  spfAligned: boolean;
  dkimAligned: boolean;
  /** Every DKIM signature's result (at most MAX_DMARC_DKIM_RESULTS kept). */
  dkim: readonly DmarcDkimResult[];
  spf?: DmarcSpfResult;
}

/** A DMARC result as read back, with its row id. */
export interface StoredDmarcResultRow extends DmarcResultRow {
  id: number;
  dkim: DmarcDkimResult[];
}

/** Code points of each string of a DMARC result row kept at most. */
export const MAX_DMARC_TEXT = 1024;
/** DKIM results kept per row at most. */
export const MAX_DMARC_DKIM_RESULTS = 32;

/** Cut-off times for `expire`: rows last seen before these go. */
export interface ExpiryCutoffs {
  /** Passed triplets last seen before this. */
  passedBefore: number;
  /** Greylisted triplets last seen before this. */
  greylistedBefore: number;
  /** Client counters last seen before this. */
  clientsBefore: number;
  /** Decision-log lines older than this. */
  decisionsBefore: number;
  /** Call-back results verified before this; when absent none go. */
  callbacksBefore?: number;
  /** Rate-limit windows that started before this; when absent none go. */
  ratesBefore?: number;
  /** Reputation counters last updated before this; when absent none go. */
  reputationBefore?: number;
  /** DMARC results evaluated before this; when absent none go. */
  dmarcBefore?: number;
}

/** Rows removed by `expire`. */
export interface ExpiryCounts {
  passed: number;
  greylisted: number;
  clients: number;
  decisions: number;
  /** 0 when `callbacksBefore` was not given. */
  callbacks: number;
  /** 0 when `ratesBefore` was not given. */
  rates: number;
  /** 0 when `reputationBefore` was not given. */
  reputation: number;
  /**
   * DMARC results removed; present only when `dmarcBefore` was given, so that callers written
   * before schema version 4 see the counts they knew.
   */
  dmarc?: number;
}

/**
 * The store every backend implements (SQLite, PostgreSQL). Every method is atomic on its own:
 * several processes and MX hosts may call them at once on one database. Methods reject with a
 * `StoreError` when the database cannot be reached or fails; callers decide what that means
 * (fail open or tempfail).
 *
 * @example
 * const store = await openStore('sqlite:./var/mailgate.db');
 * const { triplet, created } = await store.firstAttempt(key, 'greylisted', Date.now());
 */
export interface Store {
  /** `sqlite` or `postgres`. */
  readonly kind: 'sqlite' | 'postgres';
  /** Where it is, for logs, with no password: `sqlite:./var/mailgate.db`, `postgres://u@h:5432/db`. */
  readonly description: string;

  /** The triplet, or null when it is not known. */
  getTriplet(key: TripletKey): Promise<Triplet | null>;
  /**
   * Records a first attempt: inserts the triplet in `state` with first/last seen `now`, counts 0
   * (passCount 1 when `state` is `passed`), unless it exists; either way returns the stored row.
   * Concurrent first attempts create one row (unique key + upsert).
   */
  firstAttempt(key: TripletKey, state: TripletState, now: number): Promise<FirstAttempt>;
  /**
   * An early retry of a greylisted triplet: failCount + 1, lastSeen = now; unless it was last
   * seen after `sameAttemptAfter` (default: never), when it is one attempt with the last and
   * nothing changes. The condition is checked in the same statement, so two MX hosts seeing one
   * retry at once count it once. Returns the row as stored; null when unknown.
   */
  recordEarlyRetry(
    key: TripletKey,
    now: number,
    sameAttemptAfter?: number,
  ): Promise<Triplet | null>;
  /** A pass: state = passed, passCount + 1, lastSeen = now. Null when unknown. */
  recordPass(key: TripletKey, now: number): Promise<Triplet | null>;

  /** The client's auto-whitelist counter, or null. */
  getClient(client: string): Promise<ClientCounter | null>;
  /**
   * The triplet and its client's counter in one read (one statement, one round trip): exactly
   * what `getTriplet(key)` and `getClient(key.client)` would return. Keys are checked as for
   * `getTriplet`.
   */
  lookup(key: TripletKey): Promise<TripletLookup>;
  /**
   * Counts a successful delivery for the client: count + 1 and lastCounted = now when the counter
   * last went up before `countAfter` (or is new), lastSeen = now always. Returns the counter.
   */
  countClient(client: string, now: number, countAfter: number): Promise<ClientCounter>;
  /** Marks the client seen (lastSeen = now) without counting; no-op when unknown. */
  touchClient(client: string, now: number): Promise<void>;

  /** Appends a line to the decision log. */
  logDecision(decision: Decision): Promise<void>;
  /** The newest decision-log lines, newest first, at most `limit`. */
  recentDecisions(limit: number): Promise<StoredDecision[]>;
  /**
   * The decision-log lines a query matches, newest first, at most `query.limit`.
   *
   * @example
   * const page = await store.findDecisions({ search: '192.0.2.', from: Date.now() - 3600_000, limit: 50 });
   * const next = await store.findDecisions({ search: '192.0.2.', beforeId: page.at(-1)!.id, limit: 50 });
   */
  findDecisions(query: DecisionQuery): Promise<StoredDecision[]>;
  /**
   * Decision-log lines in [from, to) counted by action and by bucket of `bucketMs`, in bucket
   * then action order; empty buckets are absent.
   *
   * @example
   * const perMinute = await store.countDecisions(now - 3 * 3600_000, now, 60_000);
   */
  countDecisions(from: number, to: number, bucketMs: number): Promise<DecisionCount[]>;
  /**
   * Triplets waiting and passed, and clients counted at least `whitelistAt` times (0, the
   * setting that turns auto-whitelisting off, counts none).
   *
   * @example
   * const { waiting, passed, whitelisted } = await store.greylistSummary(5);
   */
  greylistSummary(whitelistAt: number): Promise<GreylistSummary>;

  /**
   * The cached call-back result for `sender` (compared exactly: the caller lower-cases), or null
   * when there is none or it was verified before `notBefore` (stale results count as absent, so
   * the caller need not wait for expiry to ask again).
   *
   * @example
   * const cached = await store.getCallback('alice@example.org', now - 24 * 3600_000);
   * if (cached?.result === 'rejected') return reject(cached.reply);
   */
  getCallback(sender: string, notBefore: number): Promise<CallbackRecord | null>;
  /**
   * Stores a call-back result, replacing the sender's earlier one. The newest wins: a record
   * older (by `time`) than the one stored, from a slow verification on another MX host, is
   * dropped; at an equal time the later write wins. `reply` is kept as printable ASCII (other
   * characters become `?`), cut to 512 characters; `host` has NUL replaced.
   *
   * @example
   * await store.putCallback({ sender: 'alice@example.org', result: 'accepted',
   *   reply: '250 2.1.5 Ok', time: Date.now(), host: 'mx1.example.net' });
   */
  putCallback(record: CallbackRecord): Promise<void>;

  /**
   * Counts one event against `key`'s fixed window and says whether it is within `limit`, in one
   * atomic statement, so that several MX hosts on one database all count. The window restarts
   * at `now` with count 1 when the key is new or its window started at or before
   * `now - windowMs`; otherwise count + 1, except that a count already over `limit` stays where
   * it is (so a flood leaves it at `limit + 1` rather than growing without bound).
   *
   * @example
   * const { allowed } = await store.takeRate(`cbv:${domain}`, Date.now(), 60_000, 10);
   * if (!allowed) return 'tempfail';
   */
  takeRate(key: string, now: number, windowMs: number, limit: number): Promise<RateTaken>;

  /**
   * Adds each delta to its (subject, event) counter, all in one transaction (in PostgreSQL one
   * statement when no key repeats). A counter decays with `halfLifeMs`: the older of the stored amount and the
   * delta is first decayed to the time of the newer (halved every `halfLifeMs`, and taken as 0
   * once it is 64 half-lives old), then the two are added, and `updated` becomes the newer time.
   * So the result does not depend on the order additions arrive in, several MX hosts adding to
   * one counter at once each count (the addition happens inside the upsert, with no read before
   * it), and a stored amount never grows beyond what was added. Subjects (at most
   * MAX_REPUTATION_SUBJECT code points) and events (MAX_REPUTATION_EVENT) are cut to length, and
   * their control characters (NUL, CR, LF, ...) become U+FFFD; an amount or time out of range
   * refuses the whole batch.
   *
   * @example
   * await store.addReputation(
   *   [{ subject: 'domain:example.org', event: 'spf:pass', amount: 1, time: Date.now() }],
   *   30 * 86_400_000,
   * );
   */
  addReputation(deltas: readonly ReputationDelta[], halfLifeMs: number): Promise<void>;
  /**
   * The counters of the given subjects (made safe as `addReputation` makes them), in one query:
   * every event of each subject that has one, nothing of any other subject, ordered by subject
   * and event (by UTF-16 code unit, whatever the database's collation). At most
   * MAX_REPUTATION_SUBJECTS subjects per call.
   *
   * @example
   * const rows = await store.getReputation(['domain:example.org', 'net:192.0.2.0/24']);
   * // [{ subject: 'domain:example.org', event: 'spf:pass', amount: 3.5, updated: 1767225600000 }, ...]
   */
  getReputation(subjects: readonly string[]): Promise<ReputationRow[]>;

  /**
   * Appends DMARC results, all in one transaction (the whole batch or nothing). The words (policy,
   * result, disposition, alignment modes, psd, scope) are checked and a bad one refuses the
   * batch; strings are stored as given, except that NUL and lone surrogates (which not every
   * backend can store) become U+FFFD and each is cut to MAX_DMARC_TEXT code points; at most
   * MAX_DMARC_DKIM_RESULTS DKIM results are kept per row.
   *
   * @example
   * await store.addDmarcResults([{ time: Date.now(), sourceIp: '192.0.2.1',
   *   headerFrom: 'example.com', policyDomain: 'example.com',
   *   published: { p: 'reject', adkim: 'r', aspf: 'r', testing: false },
   *   disposition: 'none', result: 'pass', spfAligned: true, dkimAligned: false,
   *   dkim: [], spf: { domain: 'example.com', scope: 'mfrom', result: 'pass' } }]);
   */
  addDmarcResults(rows: readonly DmarcResultRow[]): Promise<void>;
  /**
   * The DMARC results evaluated from `from` (inclusive) to `to` (exclusive) for one policy
   * domain (compared as stored; null for every row, with a policy domain or without), oldest
   * first, at most `limit`: what an aggregate report for the period is built from.
   *
   * @example
   * const rows = await store.dmarcResults('example.com', dayStart, dayStart + 86_400_000, 10_000);
   */
  dmarcResults(
    policyDomain: string | null,
    from: number,
    to: number,
    limit: number,
  ): Promise<StoredDmarcResultRow[]>;

  /**
   * Removes what is older than the cut-offs, in one transaction, and returns how many rows of
   * each went. Call-backs, rate windows, reputation counters and DMARC results go only when
   * their cut-off is given.
   */
  expire(cutoffs: ExpiryCutoffs): Promise<ExpiryCounts>;
  /** The schema version the database is at (after migrations ran at open). */
  schemaVersion(): Promise<number>;
  /** Checks the database answers (one trivial query). */
  ping(): Promise<void>;
  /** Closes connections; further calls reject. Idempotent. */
  close(): Promise<void>;
}

/** A store operation failed: the database is unreachable, locked too long, or broken. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    message: string,
    /** The driver's error, when there is one. */
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}
