/**
 * The daemon's metrics: one prom-client registry, made once per process and kept across reloads
 * (counters never restart at a SIGHUP), with a small typed method per thing counted. The engine,
 * the resolver, the store and the doors get this object (or nothing, when metrics are off), never
 * the registry itself, so that every label set stays bounded: no addresses, domains or free text
 * ever become a label, only the words listed here or a word cut to a short token.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The door a decision came through. */
export type MetricsDoor = 'milter' | 'policy';

/** The checks counted by result word. */
export const METRIC_CHECKS = [
  'spf',
  'csa',
  'helo',
  'ptr',
  'dnsxl',
  'registry',
  'dkim',
  'dmarc',
  'arc',
  'greylist',
] as const;
export type MetricCheck = (typeof METRIC_CHECKS)[number];

/** How a DNS query ended, as the resolver's outcomes say it. */
export type DnsQueryOutcome = 'answer' | 'nxdomain' | 'nodata' | 'timeout' | 'servfail' | 'error';

/** What happened at a call-back verification. */
export type CbvEvent = 'call' | 'cache-hit' | 'rate-limited';

/** Latency buckets (seconds): a DNS round trip on a LAN to a slow remote MX at end of message. */
const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Record types counted by name; anything else is `other`. */
const DNS_TYPES = new Set(['A', 'AAAA', 'MX', 'TXT', 'PTR', 'SRV', 'CNAME', 'NS', 'SOA', 'SPF']);

/**
 * A result word as a label: lower case letters, digits, `-` and `_`, at most 32 characters;
 * anything else becomes `other`, so that a check returning text it should not cannot make a
 * label per message.
 */
export function labelWord(word: string): string {
  return /^[a-z0-9_-]{1,32}$/u.test(word) ? word : 'other';
}

/** What the doors report about their listeners at scrape time. */
export interface ListenerGauge {
  door: 'milter' | 'policy' | 'http';
  listener: string;
  connections(): number;
}

/**
 * The metrics of one daemon.
 *
 * @example
 * const metrics = new DaemonMetrics();
 * metrics.decision('milter', 'mail', 'reject', 0.004);
 * const text = await metrics.registry.metrics();  // Prometheus text format
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #decisions: Counter<'door' | 'stage' | 'verdict'>;
  readonly #stageSeconds: Histogram<'door' | 'stage'>;
  readonly #checks: Counter<'check' | 'result'>;
  readonly #checkSeconds: Histogram<'check'>;
  readonly #dnsQueries: Counter<'type' | 'outcome'>;
  readonly #dnsSeconds: Histogram<never>;
  readonly #dnsTimeouts: Counter<never>;
  readonly #dnsCache: Counter<'result'>;
  readonly #storeOps: Counter<'operation' | 'outcome'>;
  readonly #storeErrors: Counter<'operation'>;
  readonly #storeSeconds: Histogram<'operation'>;
  readonly #cbv: Counter<'event'>;
  readonly #cbvResults: Counter<'result'>;
  readonly #reloads: Counter<'outcome'>;
  readonly #listeners: ListenerGauge[] = [];
  /** Label values already seen, so that each child is looked up once, not per call. */
  readonly #children = new Map<string, { inc(n?: number): void; observe?(v: number): void }>();

  constructor(options: { version?: string; processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'mailgate_info',
      help: 'Always 1; the version is the label',
      labelNames: ['version'],
      registers,
    }).set({ version: options.version ?? 'unknown' }, 1);
    this.#decisions = new Counter({
      name: 'mailgate_decisions_total',
      help: 'Decisions by door, stage and verdict (continue, accept, reject, tempfail, ...)',
      labelNames: ['door', 'stage', 'verdict'],
      registers,
    });
    this.#stageSeconds = new Histogram({
      name: 'mailgate_stage_duration_seconds',
      help: 'Time from a stage being asked to its decision',
      labelNames: ['door', 'stage'],
      buckets: SECONDS,
      registers,
    });
    this.#checks = new Counter({
      name: 'mailgate_check_results_total',
      help: 'Results of the checks by check and result word',
      labelNames: ['check', 'result'],
      registers,
    });
    this.#checkSeconds = new Histogram({
      name: 'mailgate_check_duration_seconds',
      help: 'Time a check took, DNS work included',
      labelNames: ['check'],
      buckets: SECONDS,
      registers,
    });
    this.#dnsQueries = new Counter({
      name: 'mailgate_dns_queries_total',
      help: 'DNS queries sent (cache misses) by record type and outcome',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.#dnsSeconds = new Histogram({
      name: 'mailgate_dns_query_duration_seconds',
      help: 'Time from sending a DNS query to its outcome',
      buckets: SECONDS,
      registers,
    });
    this.#dnsTimeouts = new Counter({
      name: 'mailgate_dns_timeouts_total',
      help: 'DNS queries that no server answered in time',
      registers,
    });
    this.#dnsCache = new Counter({
      name: 'mailgate_dns_cache_total',
      help: 'DNS lookups answered from the cache (hit) or sent out (miss)',
      labelNames: ['result'],
      registers,
    });
    this.#storeOps = new Counter({
      name: 'mailgate_store_operations_total',
      help: 'Store operations by operation and outcome (ok, error)',
      labelNames: ['operation', 'outcome'],
      registers,
    });
    this.#storeErrors = new Counter({
      name: 'mailgate_store_errors_total',
      help: 'Store operations that failed',
      labelNames: ['operation'],
      registers,
    });
    this.#storeSeconds = new Histogram({
      name: 'mailgate_store_operation_duration_seconds',
      help: 'Time a store operation took',
      labelNames: ['operation'],
      buckets: SECONDS,
      registers,
    });
    this.#cbv = new Counter({
      name: 'mailgate_cbv_total',
      help: 'Call-back verification: calls made, answers from the cache, calls refused by the rate limit',
      labelNames: ['event'],
      registers,
    });
    this.#cbvResults = new Counter({
      name: 'mailgate_cbv_results_total',
      help: 'Call-back verification outcomes (accepted, rejected, tempfail)',
      labelNames: ['result'],
      registers,
    });
    this.#reloads = new Counter({
      name: 'mailgate_reloads_total',
      help: 'Configuration reloads by outcome (ok, failed)',
      labelNames: ['outcome'],
      registers,
    });
    const listeners = this.#listeners;
    new Gauge({
      name: 'mailgate_open_connections',
      help: 'Connections open now, per door and listener',
      labelNames: ['door', 'listener'],
      registers,
      collect() {
        this.reset();
        for (const l of listeners)
          this.set({ door: l.door, listener: l.listener }, l.connections());
      },
    });
  }

  /** A decision of the engine, with the time the stage took. */
  decision(door: MetricsDoor, stage: string, verdict: string, seconds: number): void {
    this.#child(this.#decisions, 'd', door, stage, labelWord(verdict)).inc();
    this.#child(this.#stageSeconds, 's', door, stage).observe?.(seconds);
  }

  /** A check's result word, with the time it took when known. */
  check(check: MetricCheck, result: string, seconds?: number): void {
    this.#child(this.#checks, 'c', check, labelWord(result)).inc();
    if (seconds !== undefined) this.#child(this.#checkSeconds, 't', check).observe?.(seconds);
  }

  /** A DNS query that went out, and how it ended. */
  dnsQuery(type: string, outcome: DnsQueryOutcome, seconds: number): void {
    const t = DNS_TYPES.has(type) ? type : 'other';
    this.#child(this.#dnsQueries, 'q', t, outcome).inc();
    this.#dnsSeconds.observe(seconds);
    if (outcome === 'timeout') this.#dnsTimeouts.inc();
  }

  /** A lookup answered from the cache (hit) or not (miss). */
  dnsCache(hit: boolean): void {
    this.#child(this.#dnsCache, 'h', hit ? 'hit' : 'miss').inc();
  }

  /** A store operation (a Store method name) and whether it worked. */
  storeOperation(operation: string, ok: boolean, seconds: number): void {
    const op = labelWord(operation.toLowerCase());
    this.#child(this.#storeOps, 'o', op, ok ? 'ok' : 'error').inc();
    if (!ok) this.#child(this.#storeErrors, 'e', op).inc();
    this.#child(this.#storeSeconds, 'p', op).observe?.(seconds);
  }

  /** A call-back verification event. */
  cbv(event: CbvEvent): void {
    this.#child(this.#cbv, 'b', event).inc();
  }

  /** A call-back verification outcome. */
  cbvResult(result: string): void {
    this.#child(this.#cbvResults, 'r', labelWord(result)).inc();
  }

  /** A reload, and whether the new configuration is in force. */
  reload(ok: boolean): void {
    this.#reloads.inc({ outcome: ok ? 'ok' : 'failed' });
  }

  /** Counts a listener's open connections at each scrape. */
  addListener(listener: ListenerGauge): void {
    this.#listeners.push(listener);
  }

  /** Forgets the listeners of a door that closed. */
  removeListeners(door: ListenerGauge['door']): void {
    for (let n = this.#listeners.length - 1; n >= 0; n--) {
      if (this.#listeners[n]!.door === door) this.#listeners.splice(n, 1);
    }
  }

  /**
   * The metric's child for these label values, made once: prom-client hashes the label object
   * at every call otherwise, which is most of a counter's cost on the hot path.
   */
  #child(
    metric: Counter<string> | Histogram<string>,
    tag: string,
    ...values: string[]
  ): { inc(n?: number): void; observe?(v: number): void } {
    const key = `${tag}\0${values.join('\0')}`;
    let child = this.#children.get(key);
    if (!child) {
      child = (metric as Counter<string>).labels(...values) as {
        inc(n?: number): void;
        observe?(v: number): void;
      };
      this.#children.set(key, child);
    }
    return child;
  }
}
