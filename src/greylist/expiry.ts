/**
 * Expiry: old triplets, client counters and decision-log lines leave the store on a timer, so
 * that the database stays the size of the recent past.
 */
import { systemClock } from '../checks/budget.js';
import type { Clock } from '../dns/types.js';
import type { ExpiryCounts, ExpiryCutoffs, Store } from '../store/types.js';
import { logValue } from '../text/index.js';
import type { GreylistLogger, GreylistSettings } from './types.js';

/** Once an hour by default. */
export const DEFAULT_EXPIRY_INTERVAL_MS = 60 * 60_000;
/** The first run comes this soon after start, when the daemon has settled. */
export const DEFAULT_EXPIRY_FIRST_DELAY_MS = 30_000;

export interface ExpiryOptions {
  clock?: Clock;
  /** Between runs, in milliseconds. Default one hour. */
  intervalMs?: number;
  /** Before the first run, in milliseconds. Default 30 s. */
  firstDelayMs?: number;
  /** Each run's counts (info) and failures (error). */
  logger?: GreylistLogger;
}

type ExpirySettings = Pick<
  GreylistSettings,
  'passedTtlMs' | 'greylistedTtlMs' | 'decisionTtlMs'
> & {
  /** Call-back outcomes kept in the same store expire after this (the call-back cache period). */
  callbackTtlMs?: number;
  /**
   * Reputation counters not updated for this long expire (see `reputationTtlMs` in
   * src/reputation); when absent they are kept.
   */
  reputationTtlMs?: number;
  /** DMARC evaluations kept for aggregate reports expire after this; when absent they are kept. */
  dmarcTtlMs?: number;
};

/** Rate-limit windows are at most a day long: a row unused for two days counts nothing. */
const RATE_TTL_MS = 2 * 86_400_000;

/**
 * The cut-offs at `now`: passed triplets and client counters after `passedTtlMs` unseen (a client
 * counter lives as long as the passes it counts), greylisted triplets after `greylistedTtlMs`,
 * decision-log lines after `decisionTtlMs`.
 *
 * @example
 * expiryCutoffs(DEFAULT_GREYLIST_SETTINGS, Date.now()).greylistedBefore  // ten days ago
 */
export function expiryCutoffs(settings: ExpirySettings, now: number): ExpiryCutoffs {
  return {
    passedBefore: now - settings.passedTtlMs,
    greylistedBefore: now - settings.greylistedTtlMs,
    clientsBefore: now - settings.passedTtlMs,
    decisionsBefore: now - settings.decisionTtlMs,
    ratesBefore: now - RATE_TTL_MS,
    ...(settings.callbackTtlMs !== undefined
      ? { callbacksBefore: now - settings.callbackTtlMs }
      : {}),
    ...(settings.reputationTtlMs !== undefined
      ? { reputationBefore: now - settings.reputationTtlMs }
      : {}),
    ...(settings.dmarcTtlMs !== undefined ? { dmarcBefore: now - settings.dmarcTtlMs } : {}),
  };
}

/**
 * One expiry run now; rejects with the store's error.
 *
 * @example
 * const counts = await expireOnce(store, settings);  // { passed: 3, greylisted: 10, ... }
 */
export function expireOnce(
  store: Store,
  settings: ExpirySettings,
  clock: Clock = systemClock,
): Promise<ExpiryCounts> {
  return store.expire(expiryCutoffs(settings, clock.now()));
}

/**
 * Run `store.expire` shortly after start and then every `intervalMs`, on unref'd timers (they
 * never keep the process alive), one run at a time. Errors are logged, never thrown. Returns
 * the function that stops it.
 *
 * @example
 * const stop = startExpiry(store, settings, { logger });
 * // ... at shutdown:
 * stop();
 */
export function startExpiry(
  store: Store,
  settings: ExpirySettings,
  options: ExpiryOptions = {},
): () => void {
  const clock = options.clock ?? systemClock;
  const interval = options.intervalMs ?? DEFAULT_EXPIRY_INTERVAL_MS;
  const firstDelay = options.firstDelayMs ?? DEFAULT_EXPIRY_FIRST_DELAY_MS;
  if (!(Number.isFinite(interval) && interval > 0)) {
    throw new TypeError('startExpiry: intervalMs must be a number of milliseconds above 0');
  }
  let stopped = false;
  let running = false;
  const run = async () => {
    if (stopped || running) return;
    running = true;
    try {
      const counts = await expireOnce(store, settings, clock);
      options.logger?.info({ ...counts, store: store.description }, 'greylist expiry');
    } catch (err) {
      options.logger?.error(
        {
          err,
          error: logValue(err instanceof Error ? err.message : String(err), 500),
          store: store.description,
        },
        'greylist expiry failed',
      );
    } finally {
      running = false;
    }
  };
  let repeat: NodeJS.Timeout | undefined;
  const first = setTimeout(
    () => {
      void run();
      if (stopped) return;
      repeat = setInterval(() => void run(), interval);
      repeat.unref();
    },
    Math.max(0, firstDelay),
  );
  first.unref();
  return () => {
    stopped = true;
    clearTimeout(first);
    if (repeat) clearInterval(repeat);
  };
}
