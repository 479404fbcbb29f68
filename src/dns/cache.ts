/**
 * A bounded TTL cache of final query outcomes, least recently used out first. Only answers and
 * authoritative negatives are kept: a temporary failure must be retried, never remembered.
 */
import type { Clock, CnameRecord, DnsRecord, DnsResult, RecordType, SoaRecord } from './types.js';

export interface CacheOptions {
  /** Entries kept before the least recently used is dropped. Default 10000; 0 disables. */
  maxEntries?: number;
  /** Longest life of a positive entry, in seconds, whatever the TTL says. Default 1 day. */
  maxTtl?: number;
  /** Longest life of an NXDOMAIN/NODATA entry, in seconds (RFC 2308 suggests 1–3 h). Default 3 h. */
  maxNegativeTtl?: number;
  /**
   * Answers larger than this (roughly, in bytes of record data) are not kept: the cache is
   * bounded by memory, not only by entries, and hostile zones can serve 64 KB answers. Default 8192.
   */
  maxEntryBytes?: number;
}

/** A result the cache may hold. */
export type CacheableResult = Exclude<DnsResult, { kind: 'temporary' }>;

interface Entry {
  result: CacheableResult;
  /** Clock time the entry was stored, for ageing record TTLs. */
  stored: number;
  /** Clock time after which the entry is dead. */
  expires: number;
  /** The frozen, aged copy handed out during the second `viewAge` of the entry's life. */
  view: CacheableResult | undefined;
  viewAge: number;
  /** Read since it last came up for eviction: it gets a second chance (CLOCK replacement). */
  used: boolean;
}

export const DEFAULT_CACHE_ENTRIES = 10_000;
export const DEFAULT_MAX_TTL = 86_400;
export const DEFAULT_MAX_NEGATIVE_TTL = 10_800;
export const DEFAULT_MAX_ENTRY_BYTES = 8192;

function atLeastZero(value: number, name: string): number {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new Error(`DNS cache: ${name} must be a number of at least 0`);
  }
  return value;
}

/** A rough size of an answer's record data, enough to keep huge answers out of the cache. */
function answerBytes(result: DnsResult): number {
  if (result.kind !== 'answer') return 0;
  let bytes = 0;
  for (const list of [result.records, result.cnames, result.additional] as DnsRecord[][]) {
    for (const record of list) {
      bytes += 16 + record.name.length;
      if (record.type === 'TXT' || record.type === 'SPF') {
        for (const text of record.strings) bytes += 1 + text.length;
      } else {
        bytes += 32;
      }
    }
  }
  return bytes;
}

/**
 * The lifetime of an answer: the smallest TTL among its records and the CNAMEs that led there,
 * since the answer is only as fresh as its stalest link.
 *
 * @example
 * answerTtl([{ type: 'A', name: 'a', ttl: 300, address: '192.0.2.1' }], [])  // 300
 */
export function answerTtl(records: readonly DnsRecord[], cnames: readonly CnameRecord[]): number {
  let ttl = Number.POSITIVE_INFINITY;
  for (const record of records) ttl = Math.min(ttl, record.ttl);
  for (const cname of cnames) ttl = Math.min(ttl, cname.ttl);
  return Number.isFinite(ttl) ? ttl : 0;
}

/**
 * The lifetime of a negative answer per RFC 2308 section 5: min(SOA TTL, SOA minimum) from the
 * authority section; `undefined` (do not cache) when the server sent no SOA.
 *
 * @example
 * negativeTtl([{ type: 'SOA', name: 'example.com', ttl: 3600, mname: 'ns', rname: 'h', serial: 1, minimum: 60 }])  // 60
 */
export function negativeTtl(authority: readonly DnsRecord[]): number | undefined {
  const soa = authority.find((r): r is SoaRecord => r.type === 'SOA');
  return soa ? Math.min(soa.ttl, soa.minimum) : undefined;
}

function cacheKey(name: string, type: RecordType): string {
  return `${type} ${name.toLowerCase()}`;
}

/**
 * Cache of query outcomes keyed by lower-cased name and type. Reads hand out frozen results whose
 * TTLs count down with the clock, so a caller can pass them on without lying about freshness.
 * One aged copy is made per entry per second of its life and shared by every reader in that
 * second: a busy server reads the same few entries thousands of times a second.
 *
 * @example
 * const cache = new DnsCache({ now: () => Date.now() });
 * cache.set('example.com', 'A', result, 300);
 * cache.get('EXAMPLE.com', 'A')?.kind  // 'answer', with cached: true
 */
export class DnsCache {
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #maxTtl: number;
  readonly #maxNegativeTtl: number;
  readonly #maxEntryBytes: number;
  // Map iteration order is insertion order. Reads only mark an entry used; eviction walks from
  // the oldest insertion and moves used entries to the back once (second chance), which
  // approximates LRU without reordering the map on every hit.
  readonly #entries = new Map<string, Entry>();

  constructor(clock: Clock, options: CacheOptions = {}) {
    this.#clock = clock;
    this.#maxEntries = atLeastZero(options.maxEntries ?? DEFAULT_CACHE_ENTRIES, 'maxEntries');
    this.#maxTtl = atLeastZero(options.maxTtl ?? DEFAULT_MAX_TTL, 'maxTtl');
    this.#maxNegativeTtl = atLeastZero(
      options.maxNegativeTtl ?? DEFAULT_MAX_NEGATIVE_TTL,
      'maxNegativeTtl',
    );
    this.#maxEntryBytes = atLeastZero(
      options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES,
      'maxEntryBytes',
    );
  }

  /** Number of entries held, live or not yet noticed to be dead. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Store a result for `ttl` seconds, capped by the configured maxima. A TTL of 0 or less, or a
   * temporary failure, stores nothing.
   */
  set(name: string, type: RecordType, result: DnsResult, ttl: number): void {
    if (result.kind === 'temporary' || this.#maxEntries === 0) return;
    if (answerBytes(result) > this.#maxEntryBytes) return;
    const cap = result.kind === 'answer' ? this.#maxTtl : this.#maxNegativeTtl;
    const seconds = Math.min(ttl, cap);
    if (!(seconds > 0)) return;
    const key = cacheKey(name, type);
    const now = this.#clock.now();
    this.#entries.delete(key);
    this.#entries.set(key, {
      result: freezeResult(copyResult(result)),
      stored: now,
      expires: now + seconds * 1000,
      view: undefined,
      viewAge: -1,
      used: false,
    });
    this.#evict(now);
  }

  #evict(now: number): void {
    let spared = 0;
    while (this.#entries.size > this.#maxEntries) {
      const [key, entry] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(key);
      // A used, live entry goes to the back once; after a full lap everything is fair game.
      if (entry.used && now < entry.expires && spared < this.#maxEntries) {
        entry.used = false;
        spared++;
        this.#entries.set(key, entry);
      }
    }
  }

  /** The live result for a name and type, marked `cached`, with aged TTLs; else `undefined`. */
  get(name: string, type: RecordType): CacheableResult | undefined {
    return this.lookup(name, type)?.result;
  }

  /** Like `get`, also giving the seconds the entry has left (to bound results built on it). */
  lookup(name: string, type: RecordType): { result: CacheableResult; ttl: number } | undefined {
    const key = cacheKey(name, type);
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    const now = this.#clock.now();
    if (now >= entry.expires) {
      this.#entries.delete(key);
      return undefined;
    }
    entry.used = true;
    const left = Math.ceil((entry.expires - now) / 1000);
    const age = Math.floor((now - entry.stored) / 1000);
    if (entry.view === undefined || entry.viewAge !== age) {
      entry.view = freezeResult(aged(entry.result, age, left));
      entry.viewAge = age;
    }
    return { result: entry.view, ttl: left };
  }

  /** Forget everything. */
  clear(): void {
    this.#entries.clear();
  }
}

function aged(result: CacheableResult, age: number, left: number): CacheableResult {
  return copyResult(result, true, (record) => Math.max(0, Math.min(record.ttl - age, left)));
}

/**
 * A copy of a result that shares no arrays with the original, optionally marked cached and with
 * record TTLs rewritten. Results go to several callers (cache, coalesced queries); none of them
 * may see another's edits.
 *
 * @example
 * const mine = copyResult(shared);
 */
export function copyResult<R extends DnsResult>(
  result: R,
  cached?: boolean,
  ttl: (record: DnsRecord) => number = (record) => record.ttl,
): R {
  if (result.kind === 'temporary') return { ...result };
  if (result.kind !== 'answer') return { ...result, cached: cached ?? result.cached };
  return {
    ...result,
    records: result.records.map((r) => copyRecord(r, ttl(r))),
    cnames: result.cnames.map((r) => copyRecord(r, ttl(r))),
    additional: result.additional.map((r) => copyRecord(r, ttl(r))),
    cached: cached ?? result.cached,
  };
}

/**
 * Freeze a result and everything in it, so that it can be shared by every caller that asked:
 * nobody can edit what another caller, or the cache, holds.
 *
 * @example
 * const shared = freezeResult(result);
 */
export function freezeResult<R extends DnsResult>(result: R): R {
  if (result.kind === 'answer') {
    for (const list of [result.records, result.cnames, result.additional] as DnsRecord[][]) {
      for (const record of list) {
        if (record.type === 'TXT' || record.type === 'SPF') Object.freeze(record.strings);
        Object.freeze(record);
      }
      Object.freeze(list);
    }
  }
  return Object.freeze(result);
}

/** A record copy with its own arrays, so callers cannot edit what the cache holds. */
export function copyRecord<R extends DnsRecord>(record: R, ttl = record.ttl): R {
  const copy = { ...record, ttl };
  if (copy.type === 'TXT' || copy.type === 'SPF') copy.strings = [...copy.strings];
  return copy;
}
