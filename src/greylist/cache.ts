/**
 * The short-term verdict cache: per client address, whether its last scoring (or a pass from
 * the store) found it good or bad, held for a minute or so. It saves the DNS scoring of a client
 * that sends many new triplets in a burst (one message to many recipients); it never overrides
 * the store or a whitelist.
 */
import type { SpfResult } from '../checks/spf/types.js';
import type { Clock } from '../dns/types.js';

/** A client's cached verdict. */
export type CachedVerdict = 'good' | 'bad';

interface Entry {
  verdict: CachedVerdict;
  /** When the verdict was stored (the cache clock). */
  at: number;
}

/**
 * Good and bad verdicts per client, each side bounded to `maxEntries` (least recently used go
 * first) and expiring `ttlMs` after they were stored. A client is never both: storing one
 * verdict drops the other. A `ttlMs` of 0 turns the cache off.
 *
 * @example
 * const cache = new VerdictCache(60_000, 100_000, clock);
 * cache.set('192.0.2.1', 'bad');
 * cache.get('192.0.2.1')  // 'bad' for the next minute, then undefined
 */
export class VerdictCache {
  private readonly sides: Record<CachedVerdict, Map<string, Entry>> = {
    good: new Map(),
    bad: new Map(),
  };

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {
    if (!(Number.isFinite(ttlMs) && ttlMs >= 0)) {
      throw new TypeError('VerdictCache: ttlMs must be a number of milliseconds, 0 or more');
    }
    if (!(Number.isInteger(maxEntries) && maxEntries >= 0)) {
      throw new TypeError('VerdictCache: maxEntries must be a whole number, 0 or more');
    }
  }

  /** Whether the cache holds anything at all (a `ttlMs` or `maxEntries` of 0 turns it off). */
  get enabled(): boolean {
    return this.ttlMs > 0 && this.maxEntries > 0;
  }

  /** Entries held on each side, expired ones included until they are looked at or pushed out. */
  get sizes(): { good: number; bad: number } {
    return { good: this.sides.good.size, bad: this.sides.bad.size };
  }

  /** The client's verdict while it is fresh, else undefined (and a stale one is dropped). */
  get(client: string): CachedVerdict | undefined {
    if (!this.enabled) return undefined;
    const now = this.clock.now();
    for (const verdict of ['bad', 'good'] as const) {
      const side = this.sides[verdict];
      const entry = side.get(client);
      if (!entry) continue;
      // `now < at` means the clock went back: the entry's age is unknown, so it is not trusted.
      if (now - entry.at >= this.ttlMs || now < entry.at) {
        side.delete(client);
        continue;
      }
      // Most recently used goes last, so that eviction takes the first.
      side.delete(client);
      side.set(client, entry);
      return entry.verdict;
    }
    return undefined;
  }

  /** Store a verdict for the client, from now; drops the opposite one. */
  set(client: string, verdict: CachedVerdict): void {
    if (!this.enabled) return;
    const other = this.sides[verdict === 'good' ? 'bad' : 'good'];
    other.delete(client);
    const side = this.sides[verdict];
    side.delete(client);
    side.set(client, { verdict, at: this.clock.now() });
    while (side.size > this.maxEntries) {
      const oldest = side.keys().next().value as string;
      side.delete(oldest);
    }
  }

  /** Forget the client. */
  delete(client: string): void {
    this.sides.good.delete(client);
    this.sides.bad.delete(client);
  }

  /** Forget everything. */
  clear(): void {
    this.sides.good.clear();
    this.sides.bad.clear();
  }
}

/**
 * SPF results of recent requests, per client, sender and HELO, for as long as verdicts are
 * cached: Postfix asks once per recipient, and a sender whose SPF passes is keyed by its domain,
 * so every request of a message would evaluate the same record again. Temporary errors are not
 * kept. Bounded like the verdict cache (least recently used go first).
 *
 * @example
 * const memo = new SpfMemo(60_000, 100_000, clock);
 * const spf = memo.get(key) ?? memo.set(key, await checkSpf(input, options));
 */
export class SpfMemo {
  private readonly entries = new Map<string, { result: SpfResult; at: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {}

  /** The result while it is fresh, else undefined. */
  get(key: string): SpfResult | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = this.clock.now();
    this.entries.delete(key);
    if (now - entry.at >= this.ttlMs || now < entry.at) return undefined;
    this.entries.set(key, entry);
    return entry.result;
  }

  /** Keeps a result (unless it is a temperror, or the memo is off) and returns it. */
  set(key: string, result: SpfResult): SpfResult {
    if (this.ttlMs <= 0 || this.maxEntries <= 0 || result.result === 'temperror') return result;
    this.entries.set(key, { result, at: this.clock.now() });
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    return result;
  }
}
