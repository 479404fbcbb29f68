/**
 * The daemon: the composition root. It reads the configuration, builds the world (resolver,
 * store, greylister, whitelists), binds the policy server to it, and rebuilds what a reload
 * changes without dropping connections.
 */
import type { Logger as PinoLogger } from 'pino';
import { type Config, ConfigError, configWarnings, loadConfig } from '../config/index.js';
import { createResolver, type StubResolver } from '../dns/index.js';
import type { BoundAddress } from '../listen/index.js';
import { createLogger, setLogLevel } from '../observe/index.js';
import { createPolicyServer, type PolicyServer } from '../policyd/index.js';
import { describeStoreUrl, openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { VERSION } from '../version.js';
import { buildGreylisting, type Greylisting } from './greylisting.js';
import { policyHandler } from './policy-handler.js';
import { resolverOptions, storeSettings } from './settings.js';

export interface DaemonOptions {
  /** The configuration file; the defaults when absent. */
  configPath?: string;
  /** The logger; a pino logger on standard output at the configured level when absent. */
  logger?: PinoLogger;
}

/** The parts a configuration builds; a reload builds new ones and retires the old. */
interface World {
  config: Config;
  resolver: StubResolver;
  store: Store;
  greylisting: Greylisting | null;
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
  readonly #configPath: string | undefined;
  #world: World;
  #policy: PolicyServer | null;
  #addresses: BoundAddress[];
  /** The reload in progress, and the one that will read the file again after it. */
  #reloadRunning: Promise<boolean> | null = null;
  #reloadQueued: Promise<boolean> | null = null;
  /** Worlds replaced by a reload, waiting until no request can still be using them. */
  #retiring = new Map<NodeJS.Timeout, () => Promise<void>>();
  #closing: Promise<void> | null = null;

  private constructor(
    configPath: string | undefined,
    logger: PinoLogger,
    world: World,
    policy: PolicyServer | null,
    addresses: BoundAddress[],
  ) {
    this.#configPath = configPath;
    this.logger = logger;
    this.#world = world;
    this.#policy = policy;
    this.#addresses = addresses;
  }

  /**
   * Reads the configuration, opens the store (creating and migrating it), and starts listening.
   * Rejects with a `ConfigError` for a bad file, and with the cause when the store cannot be
   * opened or an address cannot be bound; nothing is left running then.
   */
  static async start(options: DaemonOptions = {}): Promise<Daemon> {
    const config = await loadConfig(options.configPath);
    const logger = options.logger ?? createLogger({ level: config.log.level });
    const world = await buildWorld(config, logger, null);
    let policy: PolicyServer | null = null;
    const addresses: BoundAddress[] = [];
    try {
      if (config.policy.enabled) {
        policy = createPolicyServer({
          handler: handlerFor(world, logger),
          mode: config.policy.mode,
          logger,
          idleTimeoutMs: config.policy.idle_timeout,
          handlerTimeoutMs: config.policy.request_timeout,
          errorAction: config.policy.error_action,
          ...(config.policy.socket_mode !== undefined
            ? { socketMode: config.policy.socket_mode }
            : {}),
        });
        for (const spec of config.policy.listen) addresses.push(await policy.listen(spec));
      }
    } catch (err) {
      await policy?.close(0);
      await retireWorld(world, logger);
      throw err;
    }
    for (const warning of configWarnings(config)) logger.warn(warning, 'config-warning');
    logger.info(
      {
        version: VERSION,
        config: options.configPath ?? '(defaults)',
        store: world.store.description,
        policy: addresses.map((a) => a.spec),
        mode: config.policy.mode,
        greylist: world.greylisting !== null,
      },
      'started',
    );
    return new Daemon(options.configPath, logger, world, policy, addresses);
  }

  /** Where the policy server listens (real ports and paths). */
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
   * Retires a world replaced by a reload. Requests that started under it may still be using its
   * resolver and store: those close once no such request can be running (the longer of the two
   * request timeouts, and a second to spare).
   */
  #retire(old: World, next: World): void {
    old.greylisting?.stop();
    const graceMs =
      Math.max(old.config.policy.request_timeout, next.config.policy.request_timeout) + 1000;
    const retire = () => retireWorld(old, this.logger, next);
    const timer = setTimeout(() => {
      this.#retiring.delete(timer);
      void retire();
    }, graceMs);
    timer.unref();
    this.#retiring.set(timer, async () => {
      clearTimeout(timer);
      await retire();
    });
  }

  async #reload(): Promise<boolean> {
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
      world = await buildWorld(config, this.logger, old);
    } catch (err) {
      this.logger.error({ err }, 'config-reload-failed');
      return false;
    }
    const restart: string[] = [];
    if (JSON.stringify(config.policy.listen) !== JSON.stringify(old.config.policy.listen)) {
      restart.push('policy.listen');
    }
    if (config.policy.mode !== old.config.policy.mode) restart.push('policy.mode');
    if (config.policy.enabled !== old.config.policy.enabled) restart.push('policy.enabled');
    if (config.policy.socket_mode !== old.config.policy.socket_mode)
      restart.push('policy.socket_mode');
    if (restart.length) this.logger.warn({ keys: restart }, 'config-restart-needed');
    for (const warning of configWarnings(config)) this.logger.warn(warning, 'config-warning');
    setLogLevel(this.logger, config.log.level);
    this.#world = world;
    this.#policy?.reconfigure({
      idleTimeoutMs: config.policy.idle_timeout,
      handlerTimeoutMs: config.policy.request_timeout,
      errorAction: config.policy.error_action,
    });
    this.#policy?.setHandler(handlerFor(world, this.logger));
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
      await this.#policy?.close(deadlineMs);
      // Worlds replaced by a reload shortly before are closed now rather than when their grace
      // period ends: nothing can use them any more.
      const pending = [...this.#retiring.values()];
      this.#retiring.clear();
      await Promise.all(pending.map((retire) => retire()));
      await retireWorld(this.#world, this.logger);
      this.logger.info({}, 'stopped');
      this.logger.flush?.();
    })();
    return this.#closing;
  }
}

function handlerFor(world: World, logger: PinoLogger) {
  return policyHandler({
    greylister: world.greylisting?.greylister ?? null,
    skipAuthenticated: world.config.policy.skip_authenticated,
    errorAction: world.config.policy.error_action,
    logger,
  });
}

/**
 * Builds the parts for a configuration, reusing those of `old` that the change does not touch
 * (the store when its URL and the options its backend uses are the same, the resolver and its
 * cache when `[dns]` is the same).
 */
async function buildWorld(config: Config, logger: PinoLogger, old: World | null): Promise<World> {
  const sameDns = old !== null && JSON.stringify(old.config.dns) === JSON.stringify(config.dns);
  const resolver = sameDns ? old.resolver : createResolver(resolverOptions(config));
  const storeWanted = storeSettings(config);
  const sameStore =
    old !== null && JSON.stringify(storeSettings(old.config)) === JSON.stringify(storeWanted);
  let store: Store;
  try {
    store = sameStore
      ? old.store
      : await openStore(storeWanted.url, { ...storeWanted.options, logger });
  } catch (err) {
    if (!sameDns) resolver.close();
    logger.error({ store: describeStoreUrl(config.store.url), err }, 'store-open-failed');
    throw err;
  }
  try {
    const greylisting = config.greylist.enabled
      ? await buildGreylisting(config, { store, resolver, logger, version: VERSION })
      : null;
    return { config, resolver, store, greylisting };
  } catch (err) {
    if (!sameStore) await store.close();
    if (!sameDns) resolver.close();
    throw err;
  }
}

/** Stops and closes what `old` has that `next` (the world replacing it, if any) does not share. */
async function retireWorld(old: World, logger: PinoLogger, next?: World): Promise<void> {
  old.greylisting?.stop();
  if (next?.resolver !== old.resolver) old.resolver.close();
  if (next?.store !== old.store) {
    try {
      await old.store.close();
    } catch (err) {
      logger.warn({ err }, 'store-close-failed');
    }
  }
}
