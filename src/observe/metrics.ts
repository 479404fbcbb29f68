/**
 * The daemon's metrics: one prom-client registry, made once per process and kept across reloads
 * (counters never restart at a SIGHUP), with a small typed method per thing counted. The engine,
 * the resolver, the store and the doors get this object (or nothing, when metrics are off), never
 * the registry itself, so that every label set stays bounded: no addresses, domains or free text
 * ever become a label, only the words listed here or a word cut to a short token.
 *
 * The hot path adds to plain numbers: each label set's cell (a count, or a histogram's buckets,
 * sum and count) is found once and kept, and prom-client reads the cells only when scraped. Its
 * own counters hash and check their labels at every increment, which costs more than the
 * decision being counted.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

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

/** One label set's numbers: a counter's count, or a histogram's buckets, sum and count. */
export class MetricCell {
  count = 0;
  sum = 0;
  readonly buckets: Float64Array | undefined;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[] | undefined,
  ) {
    this.buckets = bounds ? new Float64Array(bounds.length) : undefined;
  }

  inc(): void {
    this.count++;
  }

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    const bounds = this.bounds!;
    for (let n = 0; n < bounds.length; n++) {
      if (seconds <= bounds[n]!) {
        this.buckets![n]!++;
        return;
      }
    }
  }
}

/** A value as a label: letters, digits, `_`, `-` and `.`, at most 32 characters; else `other`. */
function safeLabel(value: string): string {
  return /^[A-Za-z0-9_.-]{1,32}$/u.test(value) ? value : 'other';
}

/** Label values kept apart per level at most; more become `other` (a bound on the label sets). */
const MAX_VALUES_PER_LABEL = 100;

/** One level of a family's label values: a value's node holds the next label's values. */
interface LabelNode {
  label: string;
  parent?: LabelNode;
  children: Map<string, LabelNode | MetricCell>;
}

/** The label values on the way to a node, from the first label. */
function labelsOf(node: LabelNode): string[] {
  const labels: string[] = [];
  for (let at: LabelNode | undefined = node; at?.parent; at = at.parent) labels.unshift(at.label);
  return labels;
}

/**
 * A metric family of plain-number cells, in the shape prom-client's registry reads (its `get`):
 * counters as their counts, histograms as cumulative buckets, `_sum` and `_count`.
 */
class CellFamily {
  readonly #root: LabelNode = { label: '', children: new Map() };
  readonly #cells: MetricCell[] = [];
  #single: MetricCell | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    readonly labelNames: readonly string[],
    readonly bounds?: readonly number[],
  ) {}

  /**
   * The cell of these label values (made at the first call, then the same one). A value that
   * is no label word is counted as `other`, and so is every new value of a label that already
   * has MAX_VALUES_PER_LABEL: what a label can hold is bounded whatever the caller passes.
   */
  at(...values: string[]): MetricCell {
    const last = this.labelNames.length - 1;
    if (last < 0) {
      this.#single ??= this.#cell([]);
      return this.#single;
    }
    let node = this.#root;
    for (let n = 0; ; n++) {
      const value = values[n] ?? '';
      let next = node.children.get(value);
      if (next === undefined) {
        const label = node.children.size >= MAX_VALUES_PER_LABEL ? 'other' : safeLabel(value);
        next = node.children.get(label);
        if (next === undefined) {
          next =
            n === last
              ? this.#cell([...labelsOf(node), label])
              : { label, parent: node, children: new Map() };
          node.children.set(label, next);
        }
        // The value as given finds the same cell next time, without being checked again.
        if (node.children.size < 2 * MAX_VALUES_PER_LABEL) node.children.set(value, next);
      }
      if (n === last) return next as MetricCell;
      node = next as LabelNode;
    }
  }

  #cell(labelValues: string[]): MetricCell {
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, n) => {
      labels[name] = labelValues[n] ?? '';
    });
    const cell = new MetricCell(labels, this.bounds);
    this.#cells.push(cell);
    return cell;
  }

  get() {
    const values: Array<{
      labels: Record<string, string | number>;
      value: number;
      metricName?: string;
    }> = [];
    for (const cell of this.#cells) {
      if (this.type === 'counter') {
        values.push({ labels: { ...cell.labels }, value: cell.count });
        continue;
      }
      let cumulative = 0;
      this.bounds!.forEach((bound, n) => {
        cumulative += cell.buckets![n]!;
        values.push({
          labels: { ...cell.labels, le: bound },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push(
        {
          labels: { ...cell.labels, le: '+Inf' },
          value: cell.count,
          metricName: `${this.name}_bucket`,
        },
        { labels: { ...cell.labels }, value: cell.sum, metricName: `${this.name}_sum` },
        { labels: { ...cell.labels }, value: cell.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  /** prom-client's registry may ask a metric to reset; counters here only ever count up. */
  reset(): void {}
}

/** The cells a store operation counts into, found once per operation. */
export interface StoreOperationCells {
  ok: MetricCell;
  error: MetricCell;
  errors: MetricCell;
  seconds: MetricCell;
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
  readonly #decisions: CellFamily;
  readonly #stageSeconds: CellFamily;
  readonly #checks: CellFamily;
  readonly #checkSeconds: CellFamily;
  readonly #dnsQueries: CellFamily;
  readonly #dnsSeconds: MetricCell;
  readonly #dnsTimeouts: MetricCell;
  readonly #dnsHit: MetricCell;
  readonly #dnsMiss: MetricCell;
  readonly #storeOps: CellFamily;
  readonly #storeErrors: CellFamily;
  readonly #storeSeconds: CellFamily;
  readonly #cbv: CellFamily;
  readonly #cbvResults: CellFamily;
  readonly #reloads: CellFamily;
  readonly #listeners: ListenerGauge[] = [];

  constructor(options: { version?: string; processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'mailgate_info',
      help: 'Always 1; the version is the label',
      labelNames: ['version'],
      registers,
    }).set({ version: options.version ?? 'unknown' }, 1);
    const family = (
      name: string,
      help: string,
      type: 'counter' | 'histogram',
      labelNames: string[],
    ): CellFamily => {
      const made = new CellFamily(
        name,
        help,
        type,
        labelNames,
        type === 'histogram' ? SECONDS : undefined,
      );
      this.registry.registerMetric(made as unknown as Parameters<Registry['registerMetric']>[0]);
      return made;
    };
    this.#decisions = family(
      'mailgate_decisions_total',
      'Decisions by door, stage and verdict (continue, accept, reject, tempfail, ...)',
      'counter',
      ['door', 'stage', 'verdict'],
    );
    this.#stageSeconds = family(
      'mailgate_stage_duration_seconds',
      'Time from a stage being asked to its decision',
      'histogram',
      ['door', 'stage'],
    );
    this.#checks = family(
      'mailgate_check_results_total',
      'Results of the checks by check and result word',
      'counter',
      ['check', 'result'],
    );
    this.#checkSeconds = family(
      'mailgate_check_duration_seconds',
      'Time a check took, DNS work included',
      'histogram',
      ['check'],
    );
    this.#dnsQueries = family(
      'mailgate_dns_queries_total',
      'DNS queries sent (cache misses) by record type and outcome',
      'counter',
      ['type', 'outcome'],
    );
    this.#dnsSeconds = family(
      'mailgate_dns_query_duration_seconds',
      'Time from sending a DNS query to its outcome',
      'histogram',
      [],
    ).at();
    this.#dnsTimeouts = family(
      'mailgate_dns_timeouts_total',
      'DNS queries that no server answered in time',
      'counter',
      [],
    ).at();
    const cache = family(
      'mailgate_dns_cache_total',
      'DNS lookups answered from the cache (hit) or sent out (miss)',
      'counter',
      ['result'],
    );
    this.#dnsHit = cache.at('hit');
    this.#dnsMiss = cache.at('miss');
    this.#storeOps = family(
      'mailgate_store_operations_total',
      'Store operations by operation and outcome (ok, error)',
      'counter',
      ['operation', 'outcome'],
    );
    this.#storeErrors = family(
      'mailgate_store_errors_total',
      'Store operations that failed',
      'counter',
      ['operation'],
    );
    this.#storeSeconds = family(
      'mailgate_store_operation_duration_seconds',
      'Time a store operation took (appends to the decision log are batched, so not timed)',
      'histogram',
      ['operation'],
    );
    this.#cbv = family(
      'mailgate_cbv_total',
      'Call-back verification: verifications the cache could not answer, answers from the cache, calls refused by the rate limit',
      'counter',
      ['event'],
    );
    this.#cbvResults = family(
      'mailgate_cbv_results_total',
      'Call-back verification outcomes (accepted, rejected, tempfail)',
      'counter',
      ['result'],
    );
    this.#reloads = family(
      'mailgate_reloads_total',
      'Configuration reloads by outcome (ok, failed)',
      'counter',
      ['outcome'],
    );
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
    this.#decisions.at(door, stage, verdict).inc();
    this.#stageSeconds.at(door, stage).observe(seconds);
  }

  /** A check's result word, with the time it took when known. */
  check(check: MetricCheck, result: string, seconds?: number): void {
    this.#checks.at(check, result).inc();
    if (seconds !== undefined) this.#checkSeconds.at(check).observe(seconds);
  }

  /** A DNS query that went out, and how it ended. */
  dnsQuery(type: string, outcome: DnsQueryOutcome, seconds: number): void {
    this.#dnsQueries.at(DNS_TYPES.has(type) ? type : 'other', outcome).inc();
    this.#dnsSeconds.observe(seconds);
    if (outcome === 'timeout') this.#dnsTimeouts.inc();
  }

  /** A lookup answered from the cache (hit) or not (miss). */
  dnsCache(hit: boolean): void {
    (hit ? this.#dnsHit : this.#dnsMiss).inc();
  }

  /**
   * The cells of a store operation (a Store method name), for a caller that counts it at every
   * call: found once, they cost an addition each.
   */
  storeCells(operation: string): StoreOperationCells {
    const op = labelWord(operation.toLowerCase());
    return {
      ok: this.#storeOps.at(op, 'ok'),
      error: this.#storeOps.at(op, 'error'),
      errors: this.#storeErrors.at(op),
      seconds: this.#storeSeconds.at(op),
    };
  }

  /** A store operation (a Store method name) and whether it worked. */
  storeOperation(operation: string, ok: boolean, seconds: number): void {
    const cells = this.storeCells(operation);
    if (ok) cells.ok.inc();
    else {
      cells.error.inc();
      cells.errors.inc();
    }
    cells.seconds.observe(seconds);
  }

  /** A call-back verification event. */
  cbv(event: CbvEvent): void {
    this.#cbv.at(event).inc();
  }

  /** A call-back verification outcome. */
  cbvResult(result: string): void {
    this.#cbvResults.at(result).inc();
  }

  /** A reload, and whether the new configuration is in force. */
  reload(ok: boolean): void {
    this.#reloads.at(ok ? 'ok' : 'failed').inc();
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
}
