/**
 * What the HTTP door is told by the daemon that binds it. The door decides nothing and keeps
 * nothing: every request asks the source again, so a reload (a new store, new listeners) shows
 * at the next request.
 */
import type { Store } from '../store/types.js';
import type { HealthReport } from './health.js';

/** One listening door of the daemon: `policy`, `milter`, `http`, and where it listens. */
export interface StatusListener {
  door: string;
  /** The effective listen spec, e.g. `inet:10027@127.0.0.1`. */
  spec: string;
}

/** The facts about the daemon that change at most on reload. */
export interface StatusInfo {
  /** The package version; mailgate's own when absent. */
  version?: string;
  /** The configuration file in force; absent when the daemon runs on the defaults. */
  configFile?: string;
  hostname: string;
  listeners: StatusListener[];
  /** When the daemon started (ms since the epoch). */
  startedAt: number;
}

/**
 * The daemon as the HTTP door sees it.
 *
 * @example
 * const source: StatusSource = {
 *   info: () => ({ hostname: 'mx1.example.net', configFile: '/etc/mailgate/mailgate.toml',
 *     listeners: [{ door: 'policy', spec: 'inet:10027@127.0.0.1' }], startedAt }),
 *   store: () => world.store,
 *   whitelistAt: () => config.greylist.auto_whitelist_clients,
 *   chartHours: () => config.http.chart_hours,
 *   health: async () => {
 *     const store = await checkStore(world.store);
 *     return { ok: store.ok, checks: [store] };
 *   },
 * };
 */
export interface StatusSource {
  /** Static-ish facts: version, configuration file, host name, listeners, start time. */
  info(): StatusInfo;
  /** The store in force (it can change on reload). */
  store(): Store;
  /** `auto_whitelist_clients` from the configuration (0 = off). */
  whitelistAt(): number;
  /** Hours of decisions the chart covers (`[http] chart_hours`). */
  chartHours(): number;
  /** Whether the listeners and the store work. */
  health(): Promise<HealthReport>;
}
