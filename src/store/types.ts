/**
 * The store's public vocabulary: what mailgate keeps between requests (greylist triplets,
 * auto-whitelisted clients, the decision log) and the one interface every backend implements.
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
}

/** A decision as read back, with its row id. */
export interface StoredDecision extends Decision {
  id: number;
}

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
}

/** Rows removed by `expire`. */
export interface ExpiryCounts {
  passed: number;
  greylisted: number;
  clients: number;
  decisions: number;
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

  /** Removes what is older than the cut-offs, returns how many rows of each went. */
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
