/**
 * The daemon's metrics bound to the world services that know nothing of them: the store (each
 * operation counted and timed, failures counted apart), the call-back verifier (calls, cache
 * hits, rate limits, outcomes) and the resolver's observer. Metrics off, none of this is built.
 */
import type { ResolverObserver } from '../dns/types.js';
import type { DaemonMetrics, DnsQueryOutcome } from '../observe/index.js';
import type { SenderVerifier, VerificationOutcome } from '../policy/index.js';
import type { Store } from '../store/types.js';

/**
 * The store with every method counted in `mailgate_store_operations_total` by its name.
 *
 * @example
 * const store = meteredStore(await openStore(url), metrics);
 * await store.ping();  // mailgate_store_operations_total{operation="ping",outcome="ok"} 1
 */
export function meteredStore(store: Store, metrics: DaemonMetrics): Store {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(property);
      if (!fn) {
        const operation = String(property);
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]): unknown => {
          const begun = performance.now();
          const seconds = () => (performance.now() - begun) / 1000;
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (err) {
            metrics.storeOperation(operation, false, seconds());
            throw err;
          }
          if (!(result instanceof Promise)) return result;
          return result.then(
            (value) => {
              metrics.storeOperation(operation, true, seconds());
              return value;
            },
            (err: unknown) => {
              metrics.storeOperation(operation, false, seconds());
              throw err;
            },
          );
        };
        wrapped.set(property, fn);
      }
      return fn;
    },
  });
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
