/**
 * The wall clock, for the parts given no clock of their own. Everything that reads time takes a
 * `Clock`, so tests move time by hand; this is the one place that reads `Date.now()` for them.
 */
import type { Clock } from './types.js';

/**
 * @example
 * const deadline = (options.clock ?? systemClock).now() + 5000;
 */
export const systemClock: Clock = { now: () => Date.now() };
