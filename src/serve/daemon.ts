/**
 * The daemon: the composition root. It reads the configuration, builds the world (resolver,
 * store, greylister, whitelists), binds the policy server to it, and rebuilds what a reload
 * changes without dropping connections.
 */
import type { Logger as PinoLogger } from 'pino';
import { type Config, ConfigError, configWarnings, loadConfig } from '../config/index.js';
import { createResolver, type StubResolver } from '../dns/index.js';
import { startExpiry } from '../greylist/index.js';
import { checkStore, type HealthCheck, type StatusSource } from '../http/index.js';
import type { BoundAddress as ListenAddress } from '../listen/index.js';
import { createLogger, DaemonMetrics, setLogLevel } from '../observe/index.js';
import { AccessMapFile, PolicyEngine } from '../policy/index.js';
import { describeStoreUrl, openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { VERSION } from '../version.js';
import { DmarcReportWriter } from './dmarc-reports.js';
import { type Door, HttpDoor, MilterDoor, PolicydDoor } from './doors.js';
import { buildGreylisting, type Greylisting } from './greylisting.js';
import { loadSigningKeys } from './keys.js';
import { dnsObserver, meteredStore, meteredVerifier } from './metering.js';
import type { HeldEngine } from './milter-door.js';
import { buildReputation, type DaemonReputation } from './reputation.js';
import {
  greylistSettings,
  keepsDmarcResults,
  policySettings,
  resolverOptions,
  storeSettings,
} from './settings.js';
import { buildVerifier } from './verifier.js';

/** Where a door listens. */
export type BoundAddress = ListenAddress & { door: 'policyd' | 'milter' | 'http' };

export interface DaemonOptions {
  /** The configuration file; the defaults when absent. */
  configPath?: string;
  /** The logger; a pino logger on standard output at the configured level when absent. */
  logger?: PinoLogger;
}

/** The parts a configuration builds; a reload builds new ones and retires the old. */
export interface World {
  config: Config;
  resolver: StubResolver;
  store: Store;
  greylisting: Greylisting | null;
  accessMap: AccessMapFile | null;
  reputation: DaemonReputation | null;
  /** DMARC evaluations on their way to the store, when they are kept. */
  dmarcReports: DmarcReportWriter | null;
  /** Stops the store's expiry when greylisting (which runs it otherwise) is off. */
  stopExpiry: (() => void) | null;
  engine: PolicyEngine;
  /** Milter connections holding this world. */
  holders: number;
  /** Replaced, and its grace period for policy requests over: close it once nobody holds it. */
  retired: boolean;
}

/**
 * A running mailgate: the policy server bound to the configured world.
 *
 * @example
 * const daemon = await Daemon.start({ configPath: '/etc/mailgate/mailgate.toml' });
 * process.on('SIGHUP', () => void daemon.reload());
 * process.on('SIGTERM', () => void daemon.close());
 */
export class Daemon {
  readonly logger: PinoLogger;
  /** The metrics, when `[http]` serves them; the same object for the daemon's whole life. */
  readonly metrics: DaemonMetrics | null;
  readonly #configPath: string | undefined;
  #world: World;
  readonly #doors: Door[];
  #addresses: BoundAddress[];
  /** The reload in progress, and the one that will read the file again after it. */
  #reloadRunning: Promise<boolean> | null = null;
  #reloadQueued: Promise<boolean> | null = null;
  /** Worlds replaced by a reload, waiting until no request or connection can still use them. */
  #retiring = new Set<World>();
  #retireTimers = new Set<NodeJS.Timeout>();
  #closing: Promise<void> | null = null;

  private constructor(
    configPath: string | undefined,
    logger: PinoLogger,
    world: World,
    doors: Door[],
    addresses: BoundAddress[],
    metrics: DaemonMetrics | null,
  ) {
    this.metrics = metrics;
    this.#configPath = configPath;
    this.logger = logger;
    this.#world = world;
    this.#doors = doors;
    this.#addresses = addresses;
  }

  /**
   * Reads the configuration, opens the store (creating and migrating it), and starts listening.
   * Rejects with a `ConfigError` for a bad file, and with the cause when the store cannot be
   * opened or an address cannot be bound; nothing is left running then.
   */
  static async start(options: DaemonOptions = {}): Promise<Daemon> {
    const config = await loadConfig(options.configPath);
    const logger =
      options.logger ?? createLogger({ level: config.log.level, format: config.log.format });
    // Made once, outside what a reload rebuilds: counters run on across reloads.
    const metrics =
      config.http.metrics && config.http.listen.length > 0
        ? new DaemonMetrics({ version: VERSION })
        : null;
    const world = await buildWorld(config, logger, null, metrics);
    const doors: Door[] = [];
    const addresses: BoundAddress[] = [];
    // The daemon is made before the doors listen: the milter door asks it for the world in force.
    const daemon = new Daemon(options.configPath, logger, world, doors, addresses, metrics);
    try {
      if (config.policyd.enabled) doors.push(new PolicydDoor(world, logger));
      if (config.milter.enabled)
        doors.push(new MilterDoor(world, logger, () => daemon.holdEngine()));
      if (config.http.listen.length > 0) {
        doors.push(
          new HttpDoor(world, logger, daemon.#statusSource(Date.now()), metrics?.registry),
        );
      }
      for (const door of doors) addresses.push(...(await door.listen()));
      for (const door of doors) {
        for (const l of door.listeners()) {
          metrics?.addListener({ door: shownDoor(door.name), ...l });
        }
      }
    } catch (err) {
      await Promise.all(doors.map((door) => door.close(0)));
      await retireWorld(world, logger);
      throw err;
    }
    for (const warning of configWarnings(config)) logger.warn(warning, 'config-warning');
    logger.info(
      {
        version: VERSION,
        ...(config.http.listen.length
          ? { http: addresses.filter((a) => a.door === 'http').map((a) => a.spec) }
          : {}),
        config: options.configPath ?? '(defaults)',
        store: world.store.description,
        policy: addresses.filter((a) => a.door === 'policyd').map((a) => a.spec),
        milter: addresses.filter((a) => a.door === 'milter').map((a) => a.spec),
        mode: config.policyd.mode,
        greylist: world.greylisting !== null,
      },
      'started',
    );
    return daemon;
  }

  /**
   * The engine of the world in force, held until released: a milter connection keeps the world
   * it started with (its store, its resolver) however long it stays open.
   */
  holdEngine(): HeldEngine {
    const world = this.#world;
    world.holders += 1;
    let released = false;
    return {
      engine: world.engine,
      release: () => {
        if (released) return;
        released = true;
        world.holders -= 1;
        if (world.holders === 0 && world.retired && this.#retiring.delete(world)) {
          void retireWorld(world, this.logger, this.#world);
        }
      },
    };
  }

  /** What the HTTP door shows and checks: always the world in force. */
  #statusSource(startedAt: number): StatusSource {
    return {
      info: () => ({
        version: VERSION,
        ...(this.#configPath !== undefined ? { configFile: this.#configPath } : {}),
        hostname: this.#world.engine.settings.hostname,
        listeners: this.#addresses.map((a) => ({
          door: shownDoor(a.door),
          spec: a.spec,
        })),
        startedAt,
      }),
      store: () => this.#world.store,
      whitelistAt: () => this.#world.config.greylist.auto_whitelist_clients,
      chartHours: () => this.#world.config.http.chart_hours,
      health: async () => {
        const checks: HealthCheck[] = this.#doors
          .filter((door) => door.name !== 'http')
          .map((door) =>
            door.listening()
              ? { name: door.name, ok: true }
              : { name: door.name, ok: false, detail: 'not listening' },
          );
        if (this.#closing) checks.push({ name: 'daemon', ok: false, detail: 'stopping' });
        checks.push(await checkStore(this.#world.store));
        return { ok: checks.every((c) => c.ok), checks };
      },
    };
  }

  /** Where the doors listen (real ports and paths). */
  get addresses(): readonly BoundAddress[] {
    return this.#addresses;
  }

  /** The configuration in use. */
  get config(): Config {
    return this.#world.config;
  }

  /** The store in use (for tests and tools). */
  get store(): Store {
    return this.#world.store;
  }

  /**
   * Reads the configuration again and applies it to the next requests; connections stay open.
   * Resolves to false (and logs `config-reload-failed`) when the new file is bad or its store
   * cannot be opened: the old settings stay in force.
   */
  reload(): Promise<boolean> {
    if (this.#closing) return Promise.resolve(false);
    // SIGHUPs while a reload runs are served by one more reload after it, which reads the file
    // as it is by then: a burst of signals costs two reloads, not one per signal.
    if (this.#reloadQueued) return this.#reloadQueued;
    const start = (): Promise<boolean> => {
      const run: Promise<boolean> = this.#reload().finally(() => {
        if (this.#reloadRunning === run) this.#reloadRunning = null;
      });
      this.#reloadRunning = run;
      return run;
    };
    if (!this.#reloadRunning) return start();
    const queued = this.#reloadRunning
      .catch(() => false)
      .then(() => {
        this.#reloadQueued = null;
        return start();
      });
    this.#reloadQueued = queued;
    return queued;
  }

  /**
   * Retires a world replaced by a reload. Policy requests that started under it may still be
   * using its resolver and store for a while (the longer of the two request timeouts, and a
   * second to spare); milter connections hold it until they close. It is closed when both are
   * over, never under a live connection.
   */
  #retire(old: World, next: World): void {
    old.greylisting?.stop();
    this.#retiring.add(old);
    const graceMs =
      Math.max(old.config.policyd.request_timeout, next.config.policyd.request_timeout) + 1000;
    const timer = setTimeout(() => {
      this.#retireTimers.delete(timer);
      old.retired = true;
      if (old.holders === 0 && this.#retiring.delete(old)) {
        void retireWorld(old, this.logger, this.#world);
      }
    }, graceMs);
    timer.unref();
    this.#retireTimers.add(timer);
  }

  async #reload(): Promise<boolean> {
    const ok = await this.#reloadOnce();
    this.metrics?.reload(ok);
    return ok;
  }

  async #reloadOnce(): Promise<boolean> {
    let config: Config;
    try {
      config = await loadConfig(this.#configPath);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.message : String(err);
      this.logger.error({ problems }, 'config-reload-failed');
      return false;
    }
    const old = this.#world;
    let world: World;
    try {
      world = await buildWorld(config, this.logger, old, this.metrics);
    } catch (err) {
      this.logger.error({ err }, 'config-reload-failed');
      return false;
    }
    const restart = this.#doors.flatMap((door) => door.restartNeeded(old.config, config));
    if (config.policyd.enabled !== old.config.policyd.enabled) restart.push('policyd.enabled');
    if (config.milter.enabled !== old.config.milter.enabled) restart.push('milter.enabled');
    if (config.log.format !== old.config.log.format) restart.push('log.format');
    if (restart.length) this.logger.warn({ keys: restart }, 'config-restart-needed');
    for (const warning of configWarnings(config)) this.logger.warn(warning, 'config-warning');
    setLogLevel(this.logger, config.log.level);
    this.#world = world;
    for (const door of this.#doors) door.reconfigure(world);
    this.#retire(old, world);
    this.logger.info(
      { config: this.#configPath ?? '(defaults)', store: world.store.description },
      'config-reloaded',
    );
    return true;
  }

  /**
   * Stops listening, lets requests in progress finish (at most `deadlineMs`), closes
   * connections, and closes the store. Safe to call twice.
   */
  close(deadlineMs = 10_000): Promise<void> {
    this.#closing ??= (async () => {
      await (this.#reloadQueued ?? this.#reloadRunning)?.catch(() => false);
      await Promise.all(this.#doors.map((door) => door.close(deadlineMs)));
      // Worlds replaced by a reload shortly before are closed now rather than when their grace
      // period ends: nothing can use them any more.
      for (const timer of this.#retireTimers) clearTimeout(timer);
      this.#retireTimers.clear();
      const pending = [...this.#retiring];
      this.#retiring.clear();
      await Promise.all(pending.map((old) => retireWorld(old, this.logger, this.#world)));
      await retireWorld(this.#world, this.logger);
      this.logger.info({}, 'stopped');
      this.logger.flush?.();
    })();
    return this.#closing;
  }
}

/**
 * Builds the parts for a configuration, reusing those of `old` that the change does not touch
 * (the store when its URL and the options its backend uses are the same, the resolver and its
 * cache when `[dns]` is the same).
 */
async function buildWorld(
  config: Config,
  logger: PinoLogger,
  old: World | null,
  metrics: DaemonMetrics | null,
): Promise<World> {
  const sameDns = old !== null && JSON.stringify(old.config.dns) === JSON.stringify(config.dns);
  const resolver = sameDns
    ? old.resolver
    : createResolver({
        ...resolverOptions(config),
        ...(metrics ? { observer: dnsObserver(metrics) } : {}),
      });
  const storeWanted = storeSettings(config);
  const sameStore =
    old !== null && JSON.stringify(storeSettings(old.config)) === JSON.stringify(storeWanted);
  let store: Store;
  try {
    if (sameStore) store = old.store;
    else {
      const opened = await openStore(storeWanted.url, { ...storeWanted.options, logger });
      store = metrics ? meteredStore(opened, metrics) : opened;
    }
  } catch (err) {
    if (!sameDns) resolver.close();
    logger.error({ store: describeStoreUrl(config.store.url), err }, 'store-open-failed');
    throw err;
  }
  let greylisting: Greylisting | null = null;
  const reputation = buildReputation(config, store, logger);
  const dmarcReports = keepsDmarcResults(config) ? new DmarcReportWriter(store, logger) : null;
  try {
    greylisting = config.greylist.enabled
      ? await buildGreylisting(config, {
          store,
          resolver,
          logger,
          version: VERSION,
          reputation: reputation?.greylist ?? null,
          ...(metrics
            ? {
                checkObserver: (check: 'greylist' | 'dnsxl', result: string, seconds: number) =>
                  metrics.check(check, result, seconds),
              }
            : {}),
        })
      : null;
    // A fresh read at every reload: a file that became bad fails the reload, and the old map
    // stays in force with the old world.
    const accessMap = config.spf.access_file
      ? await AccessMapFile.load(config.spf.access_file, { logger })
      : null;
    const keys = await loadSigningKeys(config);
    const settings = policySettings(config, accessMap ?? undefined, keys);
    const built = config.cbv.enabled
      ? await buildVerifier(config, settings, { resolver, store, logger })
      : null;
    const verifier = built && metrics ? meteredVerifier(built, metrics) : built;
    const engine = new PolicyEngine(settings, {
      resolver,
      logger,
      store: config.greylist.decision_log ? store : null,
      greylist: greylisting
        ? {
            decide: (request) => greylisting!.greylister.decide(request),
            actions: { greylist: config.greylist.action, storeFailure: config.store.fail_action },
          }
        : null,
      verifier,
      reputation: reputation?.service ?? null,
      dmarcReports,
      metrics,
    });
    // Call-back results and reputation counters age out of the store with greylisting off too.
    const stopExpiry =
      greylisting === null && (reputation !== null || config.cbv.enabled || dmarcReports !== null)
        ? startExpiry(store, greylistSettings(config, VERSION), { logger })
        : null;
    return {
      config,
      resolver,
      store,
      greylisting,
      accessMap,
      reputation,
      dmarcReports,
      stopExpiry,
      engine,
      holders: 0,
      retired: false,
    };
  } catch (err) {
    greylisting?.stop();
    await reputation?.close();
    await dmarcReports?.close();
    if (!sameStore) await store.close();
    if (!sameDns) resolver.close();
    throw err;
  }
}

/** Stops and closes what `old` has that `next` (the world replacing it, if any) does not share. */
async function retireWorld(old: World, logger: PinoLogger, next?: World): Promise<void> {
  old.greylisting?.stop();
  old.stopExpiry?.();
  // What it counted goes to the store before the store may close.
  await old.reputation?.close();
  await old.dmarcReports?.close();
  if (next?.resolver !== old.resolver) old.resolver.close();
  if (next?.store !== old.store) {
    try {
      await old.store.close();
    } catch (err) {
      logger.warn({ err }, 'store-close-failed');
    }
  }
}

/** A door as metrics and the status page name it: the policy server is `policy` there. */
function shownDoor(door: BoundAddress['door']): 'policy' | 'milter' | 'http' {
  return door === 'policyd' ? 'policy' : door;
}
