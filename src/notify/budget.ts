/**
 * One time budget for a whole task (DNS and every host tried), read from an injected clock.
 * Only the time left is handed on, to the resolver and the SMTP client, so no two clocks are
 * ever compared.
 */
import type { Clock } from '../dns/types.js';

export { systemClock } from '../dns/clock.js';

/**
 * A deadline on a clock.
 *
 * @example
 * const budget = new TimeBudget(systemClock, 20_000);
 * budget.left()  // 20000, then less
 */
export class TimeBudget {
  readonly #clock: Clock;
  readonly #deadline: number;

  constructor(clock: Clock, budgetMs: number) {
    this.#clock = clock;
    this.#deadline = clock.now() + budgetMs;
  }

  /** Milliseconds left; zero or less once spent. */
  left(): number {
    return this.#deadline - this.#clock.now();
  }
}
