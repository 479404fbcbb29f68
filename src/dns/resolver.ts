/**
 * The stub resolver: asks recursive servers, retries and falls back, follows what CNAME chains
 * the server left unfinished, caches by TTL and folds concurrent identical queries into one.
 * Every way a query can go wrong comes back as a DnsResult; `query` never rejects.
 */
import { performance } from 'node:perf_hooks';
import { answerTtl, type CacheOptions, DnsCache, freezeResult } from './cache.js';
import { systemClock } from './clock.js';
import { type DnsMessage, isRecordType, queryName, Rcode, rcodeName } from './codec.js';
import { interpret, MAX_CNAME_HOPS, type Outcome } from './outcome.js';
import {
  formatServer,
  parseServerSpec,
  readResolvConf,
  type ServerAddress,
} from './resolv-conf.js';
import {
  Cancellation,
  type ExchangeRequest,
  type ExchangeResult,
  tcpExchange,
  UdpPool,
  type UdpPoolOptions,
} from './transport.js';
import type {
  Clock,
  CnameRecord,
  DnsResult,
  QueryMeter,
  QueryOptions,
  RecordType,
  Resolver,
  ResolverObserver,
  TemporaryReason,
} from './types.js';

export interface ResolverOptions {
  /** Servers as `host`, `host:port` or `[v6]:port` (IP literals). Default: /etc/resolv.conf. */
  servers?: string[];
  /** resolv.conf to read when `servers` is not given. Default `/etc/resolv.conf`. */
  resolvConf?: string;
  /** Milliseconds to wait for one exchange with one server. Default 2000. */
  timeout?: number;
  /** Exchanges tried in total, cycling through the servers. Default 2 per server. */
  attempts?: number;
  /** Cache sizing, or `false` for no cache. */
  cache?: CacheOptions | false;
  /** Time source for TTLs and deadlines. Default `Date.now`. */
  clock?: Clock;
  /** EDNS0 UDP payload size to advertise; 0 sends plain queries. Default 1232 (DNS flag day 2020). */
  ednsPayload?: number;
  /** UDP sockets per server and how long each lives. */
  udp?: UdpPoolOptions;
  /** Told of cache hits and of every resolution sent out (metrics). */
  observer?: ResolverObserver;
}

/** Counters for tests, benchmarks and metrics. */
export interface ResolverStats {
  /** Exchanges sent (UDP and TCP each count). */
  sent: number;
  /** Queries answered from the cache, including cached links of a CNAME chain. */
  cacheHits: number;
  /** Queries that joined an identical query already in flight. */
  coalesced: number;
}

type Failure = { reason: TemporaryReason; detail: string };
type Reply = { ok: true; message: DnsMessage } | { ok: false; failure: Failure };

/** One network resolution shared by every caller that asked the same thing meanwhile. */
interface Flight {
  key: string;
  /** performance.now() by which the flight has ended, whatever happens. */
  budgetEnd: number;
  promise: Promise<DnsResult>;
  cancel: Cancellation;
  waiters: number;
  settled: boolean;
}

export const DEFAULT_TIMEOUT_MS = 2000;
export const DEFAULT_EDNS_PAYLOAD = 1232;
/** How long a server that refused EDNS is asked without it before we try EDNS again. */
const PLAIN_DNS_MEMORY_MS = 10 * 60_000;
/** setTimeout cannot wait longer than this; a later deadline needs no timer of its own. */
const MAX_TIMER_MS = 0x7fffffff;

/**
 * Build a resolver. Throws on invalid options (a bad server spec, a non-positive timeout), so
 * configuration errors surface at start-up.
 *
 * @example
 * const resolver = createResolver({ servers: ['127.0.0.1:5353'], timeout: 1000 });
 * const r = await resolver.query('example.com', 'MX');
 * if (r.kind === 'answer') for (const mx of r.records) console.log(mx.preference, mx.exchange);
 */
export function createResolver(options: ResolverOptions = {}): StubResolver {
  return new StubResolver(options);
}

export class StubResolver implements Resolver {
  readonly stats: ResolverStats = { sent: 0, cacheHits: 0, coalesced: 0 };
  readonly servers: readonly ServerAddress[];
  readonly #timeout: number;
  readonly #observer: ResolverObserver | undefined;
  readonly #attempts: number;
  readonly #ednsPayload: number;
  readonly #clock: Clock;
  readonly #cache: DnsCache | null;
  readonly #flights = new Map<string, Flight>();
  /** Servers that rejected EDNS and then answered a plain query, until when we believe it. */
  readonly #plainUntil = new Map<ServerAddress, number>();
  /** The UDP sockets of each server. */
  readonly #pools = new Map<ServerAddress, UdpPool>();

  constructor(options: ResolverOptions = {}) {
    this.servers = options.servers
      ? options.servers.map((spec) => parseServerSpec(spec))
      : readResolvConf(options.resolvConf);
    if (this.servers.length === 0) throw new Error('DNS resolver: no servers configured');
    this.#timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
    this.#observer = options.observer;
    if (!(this.#timeout > 0 && this.#timeout < MAX_TIMER_MS)) {
      throw new Error('DNS resolver: timeout must be a positive number of milliseconds');
    }
    this.#attempts = options.attempts ?? 2 * this.servers.length;
    if (!(Number.isInteger(this.#attempts) && this.#attempts >= 1)) {
      throw new Error('DNS resolver: attempts must be a whole number of at least 1');
    }
    this.#ednsPayload = options.ednsPayload ?? DEFAULT_EDNS_PAYLOAD;
    if (
      !(Number.isInteger(this.#ednsPayload) && this.#ednsPayload >= 0 && this.#ednsPayload < 65536)
    ) {
      throw new Error('DNS resolver: ednsPayload must be 0 (off) or a payload size up to 65535');
    }
    this.#clock = options.clock ?? systemClock;
    this.#cache = options.cache === false ? null : new DnsCache(this.#clock, options.cache);
    // Pools are made now, so that bad socket options fail at start-up; sockets open on first use.
    for (const server of this.servers) this.#pools.set(server, new UdpPool(server, options.udp));
  }

  /**
   * Resolve `name` for one record type. Never rejects: every failure is a `temporary` result.
   *
   * @example
   * const r = await resolver.query('_spf.example.com', 'TXT', { deadline: clock.now() + 5000 });
   * switch (r.kind) { case 'answer': ...; case 'nxdomain': case 'nodata': ...; case 'temporary': ... }
   */
  async query<T extends RecordType>(
    name: string,
    type: T,
    options: QueryOptions = {},
  ): Promise<DnsResult<T>> {
    try {
      return (await this.#query(name, type, options)) as DnsResult<T>;
    } catch (err) {
      return { kind: 'temporary', reason: 'network', detail: `resolver error: ${describe(err)}` };
    }
  }

  /**
   * Forget every cached answer.
   *
   * @example
   * resolver.clearCache();
   */
  clearCache(): void {
    this.#cache?.clear();
  }

  /**
   * Close the resolver's sockets once their queries are done. Idle sockets never keep the process
   * alive, so this is for tidy shutdowns and tests.
   *
   * @example
   * resolver.close();
   */
  close(): void {
    for (const pool of this.#pools.values()) pool.close();
  }

  async #query(name: string, type: RecordType, options: QueryOptions): Promise<DnsResult> {
    if (options.meter && !charge(options.meter, name, type)) {
      return {
        kind: 'temporary',
        reason: 'budget',
        detail: `DNS query budget spent (${type} ${name})`,
      };
    }
    if (!isRecordType(type)) {
      return { kind: 'temporary', reason: 'formerr', detail: `unsupported record type ${type}` };
    }
    // The cache first: names that cannot be encoded are never stored, so a hit needs no check,
    // and hits are most of a busy server's queries.
    const hit = this.#cache?.get(
      name.length > 1 && name.endsWith('.') ? name.slice(0, -1) : name,
      type,
    );
    if (hit) {
      this.stats.cacheHits++;
      this.#observer?.cache(true);
      return hit;
    }
    const qname = queryName(name);
    // Such a name cannot exist in the DNS, so asking would only leak garbage onto the wire.
    if (qname === null) return { kind: 'nxdomain', cached: false };
    let waitMs: number | undefined;
    if (options.deadline !== undefined) waitMs = options.deadline - this.#clock.now();
    if (options.timeout !== undefined)
      waitMs = Math.min(waitMs ?? options.timeout, options.timeout);
    if (waitMs !== undefined) {
      if (!(waitMs > 0)) {
        return { kind: 'temporary', reason: 'deadline', detail: 'deadline passed before asking' };
      }
      if (waitMs >= MAX_TIMER_MS) waitMs = undefined;
    }
    const key = `${type} ${qname.toLowerCase()}`;
    let flight = this.#flights.get(key);
    if (flight) this.stats.coalesced++;
    else flight = this.#launch(key, qname, type);
    // A flight ends by itself within its own bound; a later deadline needs no timer.
    if (waitMs !== undefined && performance.now() + waitMs >= flight.budgetEnd) waitMs = undefined;
    return this.#wait(flight, waitMs);
  }

  #launch(key: string, name: string, type: RecordType): Flight {
    const cancel = new Cancellation();
    // The flight's own bound: however callers' deadlines fall, it ends within timeout × attempts.
    const begun = performance.now();
    const budgetEnd = begun + this.#timeout * this.#attempts;
    const observer = this.#observer;
    observer?.cache(false);
    const flight: Flight = {
      key,
      budgetEnd,
      cancel,
      waiters: 0,
      settled: false,
      promise: this.#resolve(name, type, cancel, budgetEnd)
        .catch(
          (err): DnsResult => ({
            kind: 'temporary',
            reason: 'network',
            detail: `resolver error: ${describe(err)}`,
          }),
        )
        .then((result) => {
          // Every waiter gets this same object: frozen, nobody can change it for the others.
          freezeResult(result);
          flight.settled = true;
          observer?.resolved(
            type,
            result.kind === 'temporary' ? result.reason : result.kind,
            (performance.now() - begun) / 1000,
          );
          if (this.#flights.get(key) === flight) this.#flights.delete(key);
          return result;
        }),
    };
    this.#flights.set(key, flight);
    return flight;
  }

  /** Wait for a flight, but no longer than this caller's own deadline. */
  #wait(flight: Flight, waitMs: number | undefined): Promise<DnsResult> {
    flight.waiters++;
    return new Promise((resolve) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const leave = (result: DnsResult, gaveUp: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        flight.waiters--;
        // Nobody is left to care: stop the exchanges rather than let sockets linger.
        if (gaveUp && flight.waiters === 0 && !flight.settled) {
          flight.cancel.cancel();
          if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
        }
        resolve(result);
      };
      if (waitMs !== undefined) {
        timer = setTimeout(
          () =>
            leave(
              {
                kind: 'temporary',
                reason: 'deadline',
                detail: `deadline reached after ${waitMs} ms`,
              },
              true,
            ),
          waitMs,
        );
      }
      void flight.promise.then((result) => leave(result, false));
    });
  }

  /** Ask, then follow the chain as far as the servers left it unfinished. */
  async #resolve(
    name: string,
    type: RecordType,
    cancel: Cancellation,
    budgetEnd: number,
  ): Promise<DnsResult> {
    const chain: CnameRecord[] = [];
    const seen = new Set([name.toLowerCase()]);
    let current = name;
    for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
      let outcome: Outcome | undefined = hop > 0 ? this.#fromCache(current, type) : undefined;
      if (!outcome) {
        outcome = await this.#fetch(current, type, cancel, budgetEnd);
        // Links after the first are cached under their own names as well.
        if (hop > 0 && outcome.kind === 'final' && outcome.ttl !== undefined) {
          this.#cache?.set(current, type, outcome.result, outcome.ttl);
        }
      }
      if (outcome.kind === 'final') return this.#settle(name, type, chain, outcome);
      for (const cname of outcome.cnames) {
        chain.push(cname);
        const target = cname.target.toLowerCase();
        if (seen.has(target) || chain.length > MAX_CNAME_HOPS) {
          return { kind: 'nodata', cached: false };
        }
        seen.add(target);
      }
      // A name from a CNAME answer is checked like one a caller gave: it may be garbage.
      const next = queryName(outcome.next);
      if (next === null) return { kind: 'nodata', cached: false };
      current = next;
    }
    return { kind: 'nodata', cached: false };
  }

  /** Prefix the chain walked so far, cache the whole under the name asked, and hand it out. */
  #settle(
    name: string,
    type: RecordType,
    chain: CnameRecord[],
    outcome: Extract<Outcome, { kind: 'final' }>,
  ): DnsResult {
    let { result, ttl } = outcome;
    if (chain.length > 0) {
      if (result.kind === 'answer') {
        result = { ...result, cnames: [...chain, ...result.cnames], cached: false };
      } else if (result.kind !== 'temporary') {
        result = { kind: result.kind, cached: false };
      }
      if (ttl !== undefined) ttl = Math.min(ttl, answerTtl([], chain));
    }
    if (ttl !== undefined) this.#cache?.set(name, type, result, ttl);
    return result;
  }

  #fromCache(name: string, type: RecordType): Outcome | undefined {
    const hit = this.#cache?.lookup(name, type);
    if (!hit) return undefined;
    this.stats.cacheHits++;
    return { kind: 'final', result: hit.result, ttl: hit.ttl };
  }

  async #fetch(
    name: string,
    type: RecordType,
    cancel: Cancellation,
    budgetEnd: number,
  ): Promise<Outcome> {
    const reply = await this.#ask(name, type, cancel, budgetEnd);
    if (!reply.ok) {
      return { kind: 'final', result: { kind: 'temporary', ...reply.failure }, ttl: undefined };
    }
    return interpret(name, type, reply.message);
  }

  /** Try the servers in turn until one gives a usable answer (NOERROR or NXDOMAIN). */
  async #ask(
    name: string,
    type: RecordType,
    cancel: Cancellation,
    budgetEnd: number,
  ): Promise<Reply> {
    let failure: Failure = { reason: 'timeout', detail: 'time budget spent before asking' };
    for (let i = 0; i < this.#attempts; i++) {
      if (cancel.cancelled || budgetEnd - performance.now() <= 0) break;
      const server = this.servers[i % this.servers.length]!;
      const reply = await this.#attempt(server, name, type, cancel, budgetEnd);
      if (reply.ok) return reply;
      failure = reply.failure;
    }
    return { ok: false, failure };
  }

  /** One attempt at one server, including the EDNS and TCP fallbacks that server asks for. */
  async #attempt(
    server: ServerAddress,
    name: string,
    type: RecordType,
    cancel: Cancellation,
    budgetEnd: number,
  ): Promise<Reply> {
    const edns = (this.#plainUntil.get(server) ?? 0) > performance.now() ? 0 : this.#ednsPayload;
    let reply = await this.#exchange(server, name, type, edns, cancel, budgetEnd);
    // RFC 6891 section 7: a server that does not know EDNS answers FORMERR (or NOTIMP, or
    // BADVERS for a version it lacks); ask again the way RFC 1035 would.
    if (reply.ok && edns > 0 && rejectsEdns(reply.message.rcode)) {
      reply = await this.#exchange(server, name, type, 0, cancel, budgetEnd);
      // Remembered for a while, not for ever: a server gets upgraded, and one bad reply must not
      // turn EDNS off for the life of the process.
      if (reply.ok && usable(reply.message.rcode)) {
        this.#plainUntil.set(server, performance.now() + PLAIN_DNS_MEMORY_MS);
      }
    }
    if (!reply.ok) {
      const reason = reply.reason === 'aborted' ? 'timeout' : reply.reason;
      return { ok: false, failure: { reason, detail: `${formatServer(server)}: ${reply.detail}` } };
    }
    const { rcode } = reply.message;
    if (usable(rcode)) return { ok: true, message: reply.message };
    return {
      ok: false,
      failure: {
        reason: rcodeReason(rcode),
        detail: `${formatServer(server)}: ${rcodeName(rcode)}`,
      },
    };
  }

  /** UDP first; a truncated reply sends the same question to the same server over TCP. */
  async #exchange(
    server: ServerAddress,
    name: string,
    type: RecordType,
    ednsPayload: number,
    cancel: Cancellation,
    budgetEnd: number,
  ): Promise<ExchangeResult> {
    const request = (): ExchangeRequest | null => {
      const left = budgetEnd - performance.now();
      if (left <= 0) return null;
      return { server, name, type, ednsPayload, timeoutMs: Math.min(this.#timeout, left), cancel };
    };
    const spent: ExchangeResult = { ok: false, reason: 'timeout', detail: 'time budget spent' };
    const udp = request();
    if (!udp) return spent;
    this.stats.sent++;
    const reply = await this.#pools.get(server)!.exchange(udp);
    if (!reply.ok || !reply.message.truncated) return reply;
    const tcp = request();
    if (!tcp) return spent;
    this.stats.sent++;
    return tcpExchange(tcp);
  }
}

function usable(rcode: number): boolean {
  return rcode === Rcode.NOERROR || rcode === Rcode.NXDOMAIN;
}

function rejectsEdns(rcode: number): boolean {
  return rcode === Rcode.FORMERR || rcode === Rcode.NOTIMP || rcode === Rcode.BADVERS;
}

function rcodeReason(rcode: number): TemporaryReason {
  switch (rcode) {
    case Rcode.FORMERR:
    case Rcode.BADVERS:
      return 'formerr';
    case Rcode.REFUSED:
    case Rcode.NOTIMP:
      return 'refused';
    default:
      return 'servfail';
  }
}

/** A meter that throws has not granted the query. */
function charge(meter: QueryMeter, name: string, type: RecordType): boolean {
  try {
    return meter.charge(name, type) !== false;
  } catch {
    return false;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
