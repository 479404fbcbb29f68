/**
 * /healthz: whether the daemon works, for load balancers and service managers. A probe that
 * hangs is worse than one that fails (the prober's own timeout then decides, and says nothing),
 * so every wait here is bounded.
 */
import type { Store } from '../store/types.js';
import { printableAscii, truncate } from '../text/index.js';

/** One thing that works or does not: `store`, `listen:policy`, ... */
export interface HealthCheck {
  name: string;
  ok: boolean;
  /** Why it failed (or a note when it works), one line. */
  detail?: string;
}

/** Whether the daemon works, and each check behind that. */
export interface HealthReport {
  ok: boolean;
  checks: HealthCheck[];
}

/** How long a store ping may take before the store counts as failed. */
export const DEFAULT_STORE_PING_TIMEOUT_MS = 2000;

/** A promise outran by its deadline. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * `promise`, or a rejection with a TimeoutError once `ms` have passed. The promise itself goes on
 * (nothing here can cancel a query); only the wait for it ends.
 *
 * @example
 * await withTimeout(store.ping(), 2000, 'the store ping');
 * // rejects with TimeoutError('the store ping did not answer within 2000 ms') when it hangs
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The `store` check: the store answers a ping within `timeoutMs`. Never rejects.
 *
 * @example
 * const check = await checkStore(store);  // { name: 'store', ok: true, detail: 'sqlite:./var/mailgate.db' }
 */
export async function checkStore(
  store: Pick<Store, 'ping'> & Partial<Pick<Store, 'description'>>,
  timeoutMs = DEFAULT_STORE_PING_TIMEOUT_MS,
): Promise<HealthCheck> {
  try {
    await withTimeout(store.ping(), timeoutMs, 'the store ping');
    return store.description === undefined
      ? { name: 'store', ok: true }
      : { name: 'store', ok: true, detail: store.description };
  } catch (err) {
    return { name: 'store', ok: false, detail: errorText(err) };
  }
}

/**
 * The report a source gave, or one failed check when it rejected or took longer than
 * `timeoutMs`. Never rejects.
 *
 * @example
 * const report = await boundedHealth(() => source.health(), 2500);
 */
export async function boundedHealth(
  health: () => Promise<HealthReport>,
  timeoutMs: number,
): Promise<HealthReport> {
  try {
    const report = await withTimeout(Promise.resolve().then(health), timeoutMs, 'the health check');
    const checks = Array.isArray(report?.checks) ? report.checks : [];
    return { ok: report?.ok === true && checks.every((c) => c.ok === true), checks };
  } catch (err) {
    return { ok: false, checks: [{ name: 'health', ok: false, detail: errorText(err) }] };
  }
}

/**
 * The body of a /healthz answer: `ok` or `failed`, then one line per check (every check when
 * all is well, the failing ones otherwise), each `NAME ok` or `NAME failed: DETAIL`. Names and
 * details are kept to one printable line, since a check may quote a driver's error.
 *
 * @example
 * healthText({ ok: true, checks: [{ name: 'store', ok: true }] })  // 'ok\nstore ok\n'
 */
export function healthText(report: HealthReport): string {
  const shown = report.ok ? report.checks : report.checks.filter((c) => !c.ok);
  let text = report.ok ? 'ok\n' : 'failed\n';
  for (const check of shown) {
    const name = line(String(check.name), 64);
    const detail = check.detail === undefined ? '' : `: ${line(String(check.detail), 300)}`;
    text += `${name} ${check.ok ? 'ok' : 'failed'}${detail}\n`;
  }
  return text;
}

function line(text: string, max: number): string {
  return truncate(printableAscii(text), max);
}

/**
 * An error's message, for a health line or an error box: never its stack.
 *
 * @example
 * errorText(new Error('database is locked'))  // 'database is locked'
 */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
