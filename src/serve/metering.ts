/**
 * The daemon's metrics bound to the world services that know nothing of them: the store (each
 * operation counted and timed, failures counted apart), the call-back verifier (calls, cache
 * hits, rate limits, outcomes) and the resolver's observer. Metrics off, none of this is built.
 */
import type { ResolverObserver } from '../dns/types.js';
import type { DaemonMetrics, DnsQueryOutcome, StoreOperationCells } from '../observe/index.js';
import type { SenderVerifier, VerificationOutcome } from '../policy/index.js';
import type { Store } from '../store/types.js';

/** Appends the store batches: their time says nothing of the database, so they are counted only. */
const COUNTED_ONLY = new Set(['logDecision']);

/**
 * The store with every method counted in `mailgate_store_operations_total` by its name, and
 * timed. Each method's cells are found once, here: a call costs two clock reads and additions.
 *
 * @example
 * const store = meteredStore(await openStore(url), metrics);
 * await store.ping();  // mailgate_store_operations_total{operation="ping",outcome="ok"} 1
 */
export function meteredStore(store: Store, metrics: DaemonMetrics): Store {
  const metered: Record<string, unknown> = {};
  for (const name of methodNames(store)) {
    const method = (store as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!;
    // Found at the first call: a method never called makes no series.
    let found: StoreOperationCells | undefined;
    const cellsOf = () => {
      found ??= metrics.storeCells(name);
      return found;
    };
    const timed = !COUNTED_ONLY.has(name);
    const failed = (begun: number) => {
      const cells = cellsOf();
      cells.error.inc();
      cells.errors.inc();
      if (timed) cells.seconds.observe((performance.now() - begun) / 1000);
    };
    metered[name] = (...args: unknown[]): unknown => {
      const begun = timed ? performance.now() : 0;
      let result: unknown;
      try {
        result = method.apply(store, args);
      } catch (err) {
        failed(begun);
        throw err;
      }
      if (!(result instanceof Promise)) return result;
      // Counted on a branch of its own: the caller awaits the store's promise as it is, with no
      // step added between the store and the caller.
      result.then(
        () => {
          const cells = cellsOf();
          cells.ok.inc();
          if (timed) cells.seconds.observe((performance.now() - begun) / 1000);
        },
        () => failed(begun),
      );
      return result;
    };
  }
  // What is not a method is read from the store itself.
  for (const name of ['kind', 'description'] as const) {
    Object.defineProperty(metered, name, { get: () => store[name], enumerable: true });
  }
  return metered as unknown as Store;
}

/** The methods of an object and of the classes it comes from. */
function methodNames(object: object): string[] {
  const names = new Set<string>();
  for (
    let at: object | null = object;
    at !== null && at !== Object.prototype;
    at = Object.getPrototypeOf(at)
  ) {
    for (const name of Object.getOwnPropertyNames(at)) {
      if (name === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(at, name);
      if (descriptor && typeof descriptor.value === 'function') names.add(name);
    }
  }
  return [...names];
}

/**
 * The call-back verifier with its calls counted: `call` when the MX was asked, `cache-hit` when
 * the store answered, `rate-limited` when the per-domain rate refused the call.
 *
 * @example
 * const verifier = meteredVerifier(await buildVerifier(config, settings, services), metrics);
 */
export function meteredVerifier(verifier: SenderVerifier, metrics: DaemonMetrics): SenderVerifier {
  const count = (outcome: VerificationOutcome): VerificationOutcome => {
    if (outcome.cached) metrics.cbv('cache-hit');
    else if (outcome.detail === 'rate-limited') metrics.cbv('rate-limited');
    else metrics.cbv('call');
    metrics.cbvResult(outcome.result);
    return outcome;
  };
  return {
    callback: (sender) => verifier.callback(sender).then(count),
    dsn: (sender, facts) => verifier.dsn(sender, facts).then(count),
  };
}

/**
 * The resolver's observer feeding the DNS metrics.
 *
 * @example
 * createResolver({ ...resolverOptions(config), observer: dnsObserver(metrics) });
 */
export function dnsObserver(metrics: DaemonMetrics): ResolverObserver {
  return {
    cache: (hit) => metrics.dnsCache(hit),
    resolved: (type, outcome, seconds) => metrics.dnsQuery(type, dnsOutcome(outcome), seconds),
  };
}

function dnsOutcome(outcome: string): DnsQueryOutcome {
  switch (outcome) {
    case 'answer':
    case 'nxdomain':
    case 'nodata':
    case 'timeout':
    case 'servfail':
      return outcome;
    // A spent budget or deadline is our own bound, met before an answer: a timeout to the site.
    case 'budget':
    case 'deadline':
      return 'timeout';
    default:
      return 'error';
  }
}
