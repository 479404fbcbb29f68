/**
 * Greylisting's defaults: bley's timings and thresholds, postgrey's auto-whitelisting.
 */

import { VERSION } from '../version.js';
import type { GreylistSettings } from './types.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * The defaults. `hostname` is a neutral `localhost`: the daemon sets the machine's name.
 *
 * @example
 * const settings = { ...DEFAULT_GREYLIST_SETTINGS, hostname: os.hostname(), lists };
 */
export const DEFAULT_GREYLIST_SETTINGS: Readonly<GreylistSettings> = Object.freeze({
  periodMs: 29 * MINUTE,
  penaltyMs: 10 * MINUTE,
  maxMs: 12 * HOUR,
  lists: Object.freeze([]),
  dnsblThreshold: 1,
  dnswlThreshold: 1,
  rfcThreshold: 2,
  spf: true,
  keyByNetwork: false,
  keySpfPassByDomain: true,
  autoWhitelistAfter: 5,
  dnsBudgetMs: 10_000,
  cacheMs: MINUTE,
  cacheEntries: 100_000,
  passedTtlMs: 40 * DAY,
  greylistedTtlMs: 10 * DAY,
  decisionTtlMs: 30 * DAY,
  hostname: 'localhost',
  version: VERSION,
  header: true,
  decisionLog: true,
  storeFailure: 'open',
});

/**
 * Throws a TypeError naming the first setting that cannot work (a negative duration, a threshold
 * of 0). Configuration checking proper is the config loader's job;
 * this keeps a programming error from becoming a silent accept.
 *
 * @example
 * checkSettings({ ...DEFAULT_GREYLIST_SETTINGS, periodMs: -1 })  // throws: periodMs ...
 */
export function checkSettings(settings: GreylistSettings): void {
  const durations = [
    'periodMs',
    'penaltyMs',
    'maxMs',
    'cacheMs',
    'passedTtlMs',
    'greylistedTtlMs',
    'decisionTtlMs',
  ] as const;
  for (const name of durations) {
    const v = settings[name];
    if (!(Number.isFinite(v) && v >= 0)) {
      throw new TypeError(`greylist setting ${name}: a number of milliseconds, 0 or more`);
    }
  }
  if (!(Number.isInteger(settings.dnsBudgetMs) && settings.dnsBudgetMs > 0)) {
    throw new TypeError('greylist setting dnsBudgetMs: a whole number of milliseconds above 0');
  }
  for (const name of ['dnsblThreshold', 'dnswlThreshold', 'rfcThreshold'] as const) {
    const v = settings[name];
    if (!(Number.isFinite(v) && v > 0)) {
      throw new TypeError(`greylist setting ${name}: a number above 0`);
    }
  }
  for (const name of ['autoWhitelistAfter', 'cacheEntries'] as const) {
    const v = settings[name];
    if (!(Number.isInteger(v) && v >= 0)) {
      throw new TypeError(`greylist setting ${name}: a whole number, 0 or more`);
    }
  }
  if (settings.storeFailure !== 'open' && settings.storeFailure !== 'tempfail') {
    throw new TypeError('greylist setting storeFailure: "open" or "tempfail"');
  }
}
