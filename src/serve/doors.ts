/**
 * The doors the daemon opens — the policy server and the milter — behind one interface, so that
 * each is started, reconfigured on reload and closed in one place. A door binds a protocol
 * library to the world in force; it decides nothing itself.
 */
import type { Logger as PinoLogger } from 'pino';
import type { Config } from '../config/index.js';
import {
  createHttpServer,
  DEFAULT_HTTP_CLOSE_DEADLINE_MS,
  type HttpServer,
  type MetricsRegistry,
  type StatusSource,
} from '../http/index.js';
import { createMilterServer, type MilterServer } from '../milter/index.js';
import { createPolicyServer, type PolicyServer } from '../policyd/index.js';
import type { BoundAddress, World } from './daemon.js';
import { type HeldEngine, policyMilter } from './milter-door.js';
import { policyHandler } from './policy-handler.js';

/** One protocol door of the daemon. */
export interface Door {
  readonly name: 'policyd' | 'milter' | 'http';
  /** Start listening on the configured addresses (all or none). */
  listen(): Promise<BoundAddress[]>;
  /** Serve what comes next with this world. */
  reconfigure(world: World): void;
  /** The keys of a new configuration that only a restart applies to this door. */
  restartNeeded(old: Config, next: Config): string[];
  /** Stop listening and let what is in progress finish, for `deadlineMs` at most. */
  close(deadlineMs: number): Promise<void>;
  /** Its listeners, each with a reader of its open connections (for the metrics). */
  listeners(): Array<{ listener: string; connections: () => number }>;
  /** Whether every listener accepts connections now (for /healthz). */
  listening(): boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The Postfix policy-delegation server (also Exim's `${readsocket}`). */
export class PolicydDoor implements Door {
  readonly name = 'policyd' as const;
  readonly #server: PolicyServer;
  readonly #logger: PinoLogger;
  readonly #config: Config;

  constructor(world: World, logger: PinoLogger) {
    const p = world.config.policyd;
    this.#logger = logger;
    this.#config = world.config;
    this.#server = createPolicyServer({
      handler: handlerFor(world, logger),
      mode: p.mode,
      logger,
      idleTimeoutMs: p.idle_timeout,
      handlerTimeoutMs: p.request_timeout,
      errorAction: p.error_action,
      ...(p.socket_mode !== undefined ? { socketMode: p.socket_mode } : {}),
    });
  }

  async listen(): Promise<BoundAddress[]> {
    const bound = await this.#server.listen(this.#config.policyd.listen);
    return bound.map((address) => ({ ...address, door: this.name }));
  }

  reconfigure(world: World): void {
    const p = world.config.policyd;
    this.#server.reconfigure({
      idleTimeoutMs: p.idle_timeout,
      handlerTimeoutMs: p.request_timeout,
      errorAction: p.error_action,
    });
    this.#server.setHandler(handlerFor(world, this.#logger));
  }

  restartNeeded(old: Config, next: Config): string[] {
    const keys: string[] = [];
    if (!same(old.policyd.listen, next.policyd.listen)) keys.push('policyd.listen');
    if (old.policyd.mode !== next.policyd.mode) keys.push('policyd.mode');
    if (old.policyd.socket_mode !== next.policyd.socket_mode) keys.push('policyd.socket_mode');
    return keys;
  }

  close(deadlineMs: number): Promise<void> {
    return this.#server.close(deadlineMs);
  }

  listening(): boolean {
    return this.#server.listening;
  }

  listeners(): Array<{ listener: string; connections: () => number }> {
    // One server serves every policyd address: its connections are counted together.
    const server = this.#server;
    return [
      { listener: this.#config.policyd.listen.join(','), connections: () => server.connections },
    ];
  }
}

/**
 * The milter: one server per listen address, each connection holding the world it started
 * with (see `Daemon.holdEngine`), so a reload reaches new connections.
 */
export class MilterDoor implements Door {
  readonly name = 'milter' as const;
  readonly #servers: MilterServer[];
  readonly #listen: readonly string[];

  constructor(world: World, logger: PinoLogger, hold: () => HeldEngine) {
    const m = world.config.milter;
    this.#listen = m.listen;
    const definition = policyMilter(hold);
    this.#servers = m.listen.map((listen) =>
      createMilterServer(definition, {
        listen,
        logger,
        idleTimeoutMs: m.idle_timeout,
        callbackTimeoutMs: m.callback_timeout,
        ...(m.socket_mode !== undefined ? { socketMode: m.socket_mode } : {}),
      }),
    );
  }

  async listen(): Promise<BoundAddress[]> {
    const bound: BoundAddress[] = [];
    try {
      for (const server of this.#servers)
        bound.push({ ...(await server.listen()), door: this.name });
    } catch (err) {
      await Promise.all(this.#servers.map((server) => server.close(0)));
      throw err;
    }
    return bound;
  }

  reconfigure(): void {
    // Connections ask the daemon for the world in force as they start: nothing to hand over.
  }

  restartNeeded(old: Config, next: Config): string[] {
    const keys: string[] = [];
    for (const key of ['listen', 'socket_mode', 'idle_timeout', 'callback_timeout'] as const) {
      if (!same(old.milter[key], next.milter[key])) keys.push(`milter.${key}`);
    }
    return keys;
  }

  async close(deadlineMs: number): Promise<void> {
    await Promise.all(this.#servers.map((server) => server.close(deadlineMs)));
  }

  listening(): boolean {
    return this.#servers.every((server) => server.listening);
  }

  listeners(): Array<{ listener: string; connections: () => number }> {
    return this.#servers.map((server, n) => ({
      listener: this.#listen[n] ?? '',
      connections: () => server.connections,
    }));
  }
}

function handlerFor(world: World, logger: PinoLogger) {
  return policyHandler({
    greylister: world.greylisting?.greylister ?? null,
    actions: {
      greylist: world.config.greylist.action,
      storeFailure: world.config.store.fail_action,
    },
    engine: world.config.policyd.policy ? world.engine : null,
    skipAuthenticated: world.config.policyd.skip_authenticated,
    errorAction: world.config.policyd.error_action,
    logger,
  });
}

/**
 * The HTTP door: /metrics, /healthz and the status page (src/http), over what the daemon knows.
 * The token follows reloads; where it listens and whether metrics are kept take a restart.
 */
export class HttpDoor implements Door {
  readonly name = 'http' as const;
  readonly #server: HttpServer;
  readonly #config: Config;

  constructor(world: World, logger: PinoLogger, source: StatusSource, registry?: MetricsRegistry) {
    this.#config = world.config;
    this.#server = createHttpServer({
      source,
      logger,
      ...(registry ? { registry } : {}),
      ...(world.config.http.token !== undefined ? { token: world.config.http.token } : {}),
    });
  }

  async listen(): Promise<BoundAddress[]> {
    const bound = await this.#server.listen(this.#config.http.listen);
    return bound.map((address) => ({ ...address, door: this.name }));
  }

  reconfigure(world: World): void {
    this.#server.setToken(world.config.http.token);
  }

  restartNeeded(old: Config, next: Config): string[] {
    const keys: string[] = [];
    if (!same(old.http.listen, next.http.listen)) keys.push('http.listen');
    if (old.http.metrics !== next.http.metrics) keys.push('http.metrics');
    return keys;
  }

  close(deadlineMs: number): Promise<void> {
    return this.#server.close(Math.min(deadlineMs, DEFAULT_HTTP_CLOSE_DEADLINE_MS));
  }

  listening(): boolean {
    return this.#server.addresses.length === this.#config.http.listen.length;
  }

  listeners(): Array<{ listener: string; connections: () => number }> {
    const server = this.#server;
    return server.addresses.map((spec) => ({
      listener: spec,
      connections: () => server.connections(spec),
    }));
  }
}
