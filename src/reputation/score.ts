/**
 * The arithmetic of reputation, as pure functions: decaying counts, and the score, confidence
 * and good standing made of them. docs/reputation.md writes the formulas out with a worked
 * example; the tests check them with known numbers.
 */
import type { ReputationRow } from '../store/types.js';
import {
  type Evidence,
  isReputationEvent,
  REPUTATION_EVENTS,
  type ReputationEvent,
} from './events.js';

const DAY_MS = 86_400_000;

/** How reputation is computed; `DEFAULT_REPUTATION_SETTINGS` holds the defaults. */
export interface ReputationSettings {
  /** A count halves in this time (ms). Default 30 days. */
  halfLifeMs: number;
  /** Good standing needs a score of at least this, in [-1, 1]. Default 0.5. */
  minScore: number;
  /** Good standing needs a confidence of at least this, in [0, 1). Default 0.5. */
  minConfidence: number;
  /**
   * n0: with this many (decayed) observations the confidence is one half. Default 10, which
   * with the default `minConfidence` means ten recent observations before anything is trusted.
   */
  observationsForConfidence: number;
  /**
   * Evidence that counts as neither good nor bad, added below the score's fraction line: one
   * observation is not certainty (one pass scores 1/2, not 1). Default 1.
   */
  prior: number;
}

export const DEFAULT_REPUTATION_SETTINGS: Readonly<ReputationSettings> = Object.freeze({
  halfLifeMs: 30 * DAY_MS,
  minScore: 0.5,
  minConfidence: 0.5,
  observationsForConfidence: 10,
  prior: 1,
});

/**
 * Half-lives after which an amount counts as 0 (2^-64 of itself), as the store's upsert takes
 * it: reader, recorder and store agree to the last bit on what a counter is worth.
 */
const FORGET_HALF_LIVES = 64;

/**
 * Half-lives a counter is kept without an update before expiry removes it: it is then worth
 * less than a thousandth of what it was.
 */
export const REPUTATION_TTL_HALF_LIVES = 10;

/**
 * How long a counter may go without an update before expiry removes it, for a half-life: the
 * value for the store expiry's `reputationTtlMs`.
 *
 * @example
 * reputationTtlMs(30 * 86_400_000)  // 300 days
 */
export function reputationTtlMs(halfLifeMs: number): number {
  return REPUTATION_TTL_HALF_LIVES * halfLifeMs;
}

/**
 * What a count is worth `ageMs` after it was counted: halved every half-life, 0 from 64
 * half-lives on. A negative age (another host's clock ahead of ours) counts as 0: a count is
 * never worth more than was counted.
 *
 * @example
 * decay(30 * 86_400_000, 30 * 86_400_000)  // 0.5
 */
export function decay(ageMs: number, halfLifeMs: number): number {
  if (!(ageMs > 0)) return 1;
  if (ageMs >= halfLifeMs * FORGET_HALF_LIVES) return 0;
  return 2 ** (-ageMs / halfLifeMs);
}

/** An amount as of a time. */
export interface Decaying {
  amount: number;
  time: number;
}

/**
 * Two decaying amounts as one, by the store's rule: the older is decayed to the newer's time,
 * then they add. The order of the arguments does not matter.
 *
 * @example
 * addDecaying({ amount: 2, time: 0 }, { amount: 1, time: 1000 }, 1000)  // { amount: 2, time: 1000 }
 */
export function addDecaying(a: Decaying, b: Decaying, halfLifeMs: number): Decaying {
  const [older, newer] = a.time <= b.time ? [a, b] : [b, a];
  return {
    amount: newer.amount + older.amount * decay(newer.time - older.time, halfLifeMs),
    time: newer.time,
  };
}

/** Decayed evidence, the input of the score. */
export interface EvidenceSums {
  /** G: the weighted, decayed count of good events. */
  good: number;
  /** B: the weighted, decayed count of bad events. */
  bad: number;
  /** n: the decayed count of events that are evidence (good or bad, of any weight). */
  observations: number;
}

/** The verdict made of the evidence. */
export interface Standing {
  /** (G − B) / (G + B + prior), in [-1, 1]. */
  score: number;
  /** n / (n + n0), in [0, 1). */
  confidence: number;
  /** score ≥ minScore and confidence ≥ minConfidence. */
  goodStanding: boolean;
}

/**
 * The score, confidence and good standing of some evidence.
 *
 * @example
 * standingOf({ good: 14, bad: 2, observations: 17 }, DEFAULT_REPUTATION_SETTINGS)
 * // { score: 0.7058..., confidence: 0.6296..., goodStanding: true }
 */
export function standingOf(
  evidence: EvidenceSums,
  settings: Pick<
    ReputationSettings,
    'prior' | 'observationsForConfidence' | 'minScore' | 'minConfidence'
  >,
): Standing {
  const { good, bad, observations } = evidence;
  const below = good + bad + settings.prior;
  const score = below > 0 ? (good - bad) / below : 0;
  const confidence =
    observations > 0 ? observations / (observations + settings.observationsForConfidence) : 0;
  return {
    score,
    confidence,
    goodStanding: score >= settings.minScore && confidence >= settings.minConfidence,
  };
}

/** A subject's reputation, as known from the store. */
export interface ReputationStanding extends Standing {
  subject: string;
  /** Always true: the store answered (see `Reputation`). */
  known: true;
  /** n, as in `EvidenceSums`: neutral events are in `counts` but not here. */
  observations: number;
  /** Each event the subject has, with its decayed count. */
  counts: Partial<Record<ReputationEvent, number>>;
  /** When the newest event was counted (ms since epoch); null when none ever was. */
  lastSeen: number | null;
}

/**
 * A subject's reputation at `now` from its stored rows (rows of other subjects, and events this
 * code does not know, are left out).
 *
 * @example
 * const rows = await store.getReputation(['domain:example.org']);
 * reputationOf('domain:example.org', rows, DEFAULT_REPUTATION_SETTINGS, Date.now()).goodStanding
 */
export function reputationOf(
  subject: string,
  rows: readonly ReputationRow[],
  settings: ReputationSettings,
  now: number,
): ReputationStanding {
  const counts: Partial<Record<ReputationEvent, number>> = {};
  const sums: Record<Evidence, number> = { good: 0, bad: 0, neutral: 0 };
  let observations = 0;
  let lastSeen: number | null = null;
  for (const row of rows) {
    if (row.subject !== subject || !isReputationEvent(row.event)) continue;
    const count = row.amount * decay(now - row.updated, settings.halfLifeMs);
    const meaning = REPUTATION_EVENTS[row.event];
    counts[row.event] = (counts[row.event] ?? 0) + count;
    sums[meaning.evidence] += count * meaning.weight;
    if (meaning.evidence !== 'neutral') observations += count;
    if (lastSeen === null || row.updated > lastSeen) lastSeen = row.updated;
  }
  return {
    subject,
    known: true,
    ...standingOf({ good: sums.good, bad: sums.bad, observations }, settings),
    observations,
    counts,
    lastSeen,
  };
}
