/**
 * The DNS work of one check: every query within one time budget, counted, optionally metered.
 * Checks keep their own clock; the resolver gets only the time left, so no two clocks are ever
 * compared.
 */
import type { Clock, DnsResult, QueryMeter, RecordType, Resolver } from '../dns/types.js';

export { systemClock } from '../dns/clock.js';

/**
 * A check's DNS queries under one time budget.
 *
 * @example
 * const dns = new BudgetedQueries(resolver, clock, 10_000);
 * const answer = await dns.query('example.com', 'MX');
 * dns.queries  // 1
 */
export class BudgetedQueries {
  /** Queries asked so far. */
  queries = 0;
  private readonly deadline: number;

  constructor(
    private readonly resolver: Resolver,
    private readonly clock: Clock,
    budgetMs: number,
    private readonly meter?: QueryMeter,
  ) {
    this.deadline = clock.now() + budgetMs;
  }

  /** Milliseconds left of the budget (zero or less once it is spent). */
  timeLeft(): number {
    return this.deadline - this.clock.now();
  }

  query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
    this.queries++;
    const options = this.meter
      ? { timeout: this.timeLeft(), meter: this.meter }
      : { timeout: this.timeLeft() };
    return this.resolver.query(name, type, options);
  }
}
