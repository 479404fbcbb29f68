/**
 * The request path's reader: a subject's standing, from the store, through a small cache (the
 * same sender domain is asked about for every recipient). A store that fails or is slow makes
 * the answer "unknown", never an exception and never a long wait: reputation only ever lets a
 * request skip work, so not knowing costs that and nothing more.
 */
import { systemClock } from '../dns/clock.js';
import type { Clock } from '../dns/types.js';
import {
  MAX_REPUTATION_SUBJECTS,
  type ReputationRow,
  type Store,
  storedReputationSubject,
} from '../store/types.js';
import { logValue } from '../text/index.js';
import type { ReputationLogger } from './recorder.js';
import { type ReputationSettings, type ReputationStanding, reputationOf } from './score.js';

/** The store could not say: treat as not in good standing. */
export interface UnknownReputation {
  subject: string;
  known: false;
  goodStanding: false;
  /** Why, for logs: the store's error, or the time-out. */
  error: string;
}

/** What a lookup says about one subject: check `goodStanding`, which is false when unknown. */
export type Reputation = ReputationStanding | UnknownReputation;

type ReputationStore = Pick<Store, 'getReputation'>;

/**
 * The reputation of each subject at `now`, in the order asked, read in one query. Rejects with
 * the store's error: for the CLI, which should say what failed. The request path uses
 * `lookupReputation` or a `ReputationReader`.
 *
 * @example
 * const [domain] = await readReputation(store, ['domain:example.org'], settings, Date.now());
 * console.log(domain.score, domain.confidence);
 */
export async function readReputation(
  store: ReputationStore,
  subjects: readonly string[],
  settings: ReputationSettings,
  now: number,
): Promise<ReputationStanding[]> {
  const stored = subjects.map(storedReputationSubject);
  const rows = stored.length > 0 ? await store.getReputation(stored) : [];
  return stored.map((subject) => reputationOf(subject, rows, settings, now));
}

function unknown(subject: string, error: unknown): UnknownReputation {
  const text = error instanceof Error ? error.message : String(error);
  return { subject, known: false, goodStanding: false, error: logValue(text, 300) };
}

/**
 * As `readReputation`, but a store failure gives every subject `known: false` (and
 * `goodStanding: false`) instead of rejecting.
 *
 * @example
 * const [domain, net] = await lookupReputation(store, subjects, settings, Date.now());
 * if (domain?.goodStanding) skipCallback();
 */
export async function lookupReputation(
  store: ReputationStore,
  subjects: readonly string[],
  settings: ReputationSettings,
  now: number,
): Promise<Reputation[]> {
  try {
    return await readReputation(store, subjects, settings, now);
  } catch (error) {
    return subjects.map((subject) => unknown(storedReputationSubject(subject), error));
  }
}

/** How a reader caches and how long it waits; every number has a default. */
export interface ReputationReaderOptions {
  /** Default the system clock. */
  clock?: Clock;
  /** How long a subject's rows are reused, in ms. Default 60 000; 0 turns the cache off. */
  cacheTtlMs?: number;
  /** Subjects cached at most; the oldest go first. Default 10 000. */
  cacheEntries?: number;
  /** A store slower than this (ms) gives "unknown" (the query runs on and fills the cache). Default 1000. */
  timeoutMs?: number;
  /** After a failure, "unknown" without asking the store again for this long (ms). Default 5000. */
  retryAfterMs?: number;
  /** Where a failure is reported (`reputation-lookup-failed`, once per outage). */
  logger?: ReputationLogger;
}

export const DEFAULT_CACHE_TTL_MS = 60_000;
export const DEFAULT_CACHE_ENTRIES = 10_000;
export const DEFAULT_LOOKUP_TIMEOUT_MS = 1_000;
export const DEFAULT_RETRY_AFTER_MS = 5_000;

interface Cached {
  rows: ReputationRow[];
  until: number;
}

/**
 * Reputation for the request path: `lookup` never rejects and never waits longer than
 * `timeoutMs`. Rows (not verdicts) are cached, so a cached subject is still decayed to the
 * moment it is asked about; subjects asked about while their query is under way share it.
 *
 * @example
 * const reader = new ReputationReader(store, settings, { logger });
 * const [domain] = await reader.lookup(reputationSubjects({ senderDomain }));
 * if (domain?.goodStanding) skipGreylisting();
 */
export class ReputationReader {
  private readonly clock: Clock;
  private readonly cacheTtlMs: number;
  private readonly cacheEntries: number;
  private readonly timeoutMs: number;
  private readonly retryAfterMs: number;
  private readonly logger: ReputationLogger | undefined;
  private readonly cache = new Map<string, Cached>();
  private readonly asking = new Map<string, Promise<ReputationRow[]>>();
  /** Until when a failed store is not asked again. */
  private failedUntil = 0;
  private outage = false;

  constructor(
    private readonly store: ReputationStore,
    private readonly settings: ReputationSettings,
    options: ReputationReaderOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.cacheEntries = options.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    this.retryAfterMs = options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    this.logger = options.logger;
    for (const [name, value] of [
      ['cacheTtlMs', this.cacheTtlMs],
      ['cacheEntries', this.cacheEntries],
      ['timeoutMs', this.timeoutMs],
      ['retryAfterMs', this.retryAfterMs],
    ] as const) {
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new TypeError(`ReputationReader: ${name} must be a number of at least 0`);
      }
    }
  }

  /**
   * The reputation of each subject, in the order asked, at `now` (default the clock's time).
   * Never rejects: a failed or slow store gives `known: false` for the subjects it was asked
   * about (cached ones are still answered).
   *
   * @example
   * const [domain, net] = await reader.lookup(['domain:example.org', 'net:192.0.2.0/24']);
   */
  async lookup(subjects: readonly string[], now?: number): Promise<Reputation[]> {
    // The cache ages by the clock; `now` is the moment the standing is wanted for.
    const clockNow = this.clock.now();
    const at = now ?? clockNow;
    const stored = subjects.map(storedReputationSubject);
    const rows = new Map<string, ReputationRow[]>();
    const missing: string[] = [];
    for (const subject of new Set(stored)) {
      const cached = this.cache.get(subject);
      if (cached && cached.until > clockNow) rows.set(subject, cached.rows);
      else if (!this.asking.has(subject)) missing.push(subject);
    }
    let failure: unknown;
    if (missing.length > 0 && clockNow < this.failedUntil) {
      failure = new Error(`the store failed less than ${this.retryAfterMs} ms ago; not asked`);
    } else {
      // The store answers at most MAX_REPUTATION_SUBJECTS per query.
      for (let i = 0; i < missing.length; i += MAX_REPUTATION_SUBJECTS) {
        this.ask(missing.slice(i, i + MAX_REPUTATION_SUBJECTS), clockNow);
      }
    }
    const waits = stored.filter((subject) => !rows.has(subject) && this.asking.has(subject));
    if (failure === undefined && waits.length > 0) {
      failure = await this.waitFor(waits, rows);
    }
    return stored.map((subject) => {
      const found = rows.get(subject);
      return found
        ? reputationOf(subject, found, this.settings, at)
        : unknown(subject, failure ?? 'not read');
    });
  }

  /** One query for `subjects`; each shares it through `asking` until it settles. */
  private ask(subjects: string[], asked: number): void {
    const query = Promise.resolve()
      .then(() => this.store.getReputation(subjects))
      .then(
        (found) => {
          this.outage = false;
          const bySubject = new Map<string, ReputationRow[]>(subjects.map((s) => [s, []]));
          for (const row of found) bySubject.get(row.subject)?.push(row);
          for (const [subject, rows] of bySubject) this.remember(subject, rows, asked);
          return bySubject;
        },
        (error: unknown) => {
          this.failedUntil = this.clock.now() + this.retryAfterMs;
          if (!this.outage) {
            this.outage = true;
            this.logger?.warn(
              {
                err: error,
                error: logValue(error instanceof Error ? error.message : String(error), 500),
              },
              'reputation-lookup-failed',
            );
          }
          throw error;
        },
      )
      .finally(() => {
        for (const subject of subjects) this.asking.delete(subject);
      });
    for (const subject of subjects) {
      const answer = query.then((bySubject) => bySubject.get(subject) ?? []);
      // Whoever waits sees the failure; a lookup that stopped waiting (timed out) must not
      // leave it unhandled.
      answer.catch(() => {});
      this.asking.set(subject, answer);
    }
  }

  /**
   * Waits for the queries `subjects` are in, at most timeoutMs, filling `rows`; returns the
   * failure, if any.
   */
  private async waitFor(subjects: string[], rows: Map<string, ReputationRow[]>): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer from the store within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      timer.unref();
    });
    try {
      const answers = subjects.map(async (subject) => {
        const found = await this.asking.get(subject);
        if (found) rows.set(subject, found);
      });
      await Promise.race([Promise.all(answers), timeout]);
      return undefined;
    } catch (error) {
      return error;
    } finally {
      clearTimeout(timer);
    }
  }

  private remember(subject: string, rows: ReputationRow[], asked: number): void {
    if (this.cacheTtlMs === 0 || this.cacheEntries === 0) return;
    this.cache.delete(subject);
    while (this.cache.size >= this.cacheEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
    this.cache.set(subject, { rows, until: asked + this.cacheTtlMs });
  }

  /** Forgets every cached subject (after a reload that changed the store, say). */
  clear(): void {
    this.cache.clear();
  }
}
