/**
 * The policy server: accepts connections on one or several listen specs, decodes requests, asks
 * the handler and writes its replies, strictly in order. Per connection it does the socket work:
 * one request at a time (a pipelining client waits in the decoder, and reading stops when that
 * backlog or unread replies pile up), a handler timeout, an idle timeout, and closing after a
 * protocol error, after each reply in Exim mode, or on shutdown.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  type BoundAddress,
  type ListenOptions,
  type ListenSpec,
  listenOn,
} from '../listen/index.js';
import { stderrLogger } from '../observe/stderr.js';
import { escapeForLog, logValue } from '../text/index.js';
import { actionProblem, encodeReply, PolicyDecoder, PolicyProtocolError } from './codec.js';
import type {
  PolicyAction,
  PolicyHandler,
  PolicyLogger,
  PolicyMode,
  PolicyRequest,
  PolicyRequestInfo,
  PolicyServerOptions,
} from './types.js';

/** How long a connection may stay silent by default (Postfix's policy client idles up to 300 s). */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/**
 * How long a handler may take by default: well below Postfix's smtpd_policy_service_timeout
 * (100 s), so that the MTA hears our tempfail rather than giving up on us.
 */
export const DEFAULT_HANDLER_TIMEOUT_MS = 20_000;
/** The answer when the handler fails: a tempfail that still lets a later reject win. */
export const DEFAULT_ERROR_ACTION: PolicyAction = 'DEFER_IF_PERMIT 4.3.0 temporary policy failure';
/** How long `close()` lets in-flight requests finish by default. */
export const DEFAULT_CLOSE_DEADLINE_MS = 10_000;
/**
 * After we end our side, the peer gets this long to read the reply and close its side; reading
 * goes on meanwhile, because closing a socket with unread input resets it and can lose the
 * reply.
 */
const LINGER_MS = 5_000;

/** Counters since the server was created. */
export interface PolicyServerStats {
  /** Connections accepted. */
  accepted: number;
  /** Requests handed to the handler. */
  requests: number;
  /** Requests answered with the error action: the handler threw, timed out or returned junk. */
  handlerFailures: number;
  /** Connections closed for breaking the protocol (oversize, garbage, bad lines). */
  protocolErrors: number;
}

/** A policy server; see `createPolicyServer`. */
export interface PolicyServer {
  /**
   * Listen on a spec (`inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path`) and resolve with the
   * bound address, or on several and resolve with one address each (all or none: if one fails,
   * those bound in the same call are closed again). May be called more than once.
   */
  listen(spec: string | ListenSpec, options?: ListenOptions): Promise<BoundAddress>;
  listen(specs: readonly (string | ListenSpec)[], options?: ListenOptions): Promise<BoundAddress[]>;
  /**
   * Stop listening, let in-flight requests be answered for up to `deadlineMs` (default 10 s),
   * ending each connection after its reply, then destroy what is left.
   */
  close(deadlineMs?: number): Promise<void>;
  /** Answer the next requests with another handler; requests in flight finish with the old one. */
  setHandler(handler: PolicyHandler): void;
  /**
   * Change the timeouts and the error action for what comes next (a configuration reload): the
   * handler timeout and error action apply to the next requests, the idle timeout to new
   * connections. Throws a RangeError, changing nothing, for a bad value.
   */
  reconfigure(
    options: Pick<PolicyServerOptions, 'idleTimeoutMs' | 'handlerTimeoutMs' | 'errorAction'>,
  ): void;
  /** Open connections. */
  readonly connections: number;
  /** The effective listen specs (real ports, real paths). */
  readonly addresses: readonly string[];
  /** Whether every listener accepts connections now (listening, and not closed). */
  readonly listening: boolean;
  readonly mode: PolicyMode;
  readonly stats: Readonly<PolicyServerStats>;
}

interface Shared {
  handler: PolicyHandler;
  readonly mode: PolicyMode;
  readonly logger: PolicyLogger;
  readonly maxLineBytes: number | undefined;
  readonly maxRequestBytes: number | undefined;
  idleTimeoutMs: number;
  handlerTimeoutMs: number;
  errorAction: PolicyAction;
  readonly inputHighWater: number;
  readonly stats: PolicyServerStats;
  closing: boolean;
}

const MAX_TIMER_MS = 2_147_483_647;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  // Node runs longer timers at once (after 1 ms): refuse them rather than time out everything.
  if (!(Number.isFinite(value) && value > 0 && value <= MAX_TIMER_MS)) {
    throw new RangeError(
      `policy server: ${name} must be a positive number of at most ${MAX_TIMER_MS} ms, not ${value}`,
    );
  }
  return value;
}

function describePeer(socket: Socket): string {
  const address = socket.remoteAddress;
  if (address === undefined) return 'unix';
  return address.includes(':')
    ? `[${address}]:${socket.remotePort}`
    : `${address}:${socket.remotePort}`;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(`non-error thrown: ${String(value)}`);
}

class Connection {
  private readonly decoder: PolicyDecoder;
  private readonly info: PolicyRequestInfo;
  /** A handler is at work; the next request waits in the decoder. */
  private busy = false;
  /** Our side is ended (or ending): no more requests are read. */
  private ending = false;
  private peerEnded = false;
  private paused = false;
  private pumping = false;
  private handlerTimer: NodeJS.Timeout | undefined;
  readonly finished: Promise<void>;

  constructor(
    private readonly socket: Socket,
    id: number,
    private readonly shared: Shared,
  ) {
    this.info = Object.freeze({ connectionId: id, peer: describePeer(socket) });
    this.decoder = new PolicyDecoder({
      maxLineBytes: shared.maxLineBytes,
      maxRequestBytes: shared.maxRequestBytes,
    });
    this.finished = new Promise((resolve) =>
      socket.once('close', () => {
        // A handler still at work answers nobody; its timer must not keep the process up.
        clearTimeout(this.handlerTimer);
        resolve();
      }),
    );
    socket.setNoDelay(true);
    socket.setTimeout(shared.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      if (this.ending) return;
      this.decoder.push(chunk);
      this.pump();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('timeout', () => {
      if (this.ending) {
        socket.destroy();
        return;
      }
      // A handler at work is not idleness; it has its own timeout.
      if (this.busy) return;
      shared.logger.info(this.fields(), 'policy connection idle; closing it');
      socket.destroy();
    });
    socket.on('error', (err) => {
      shared.logger.debug?.({ ...this.fields(), err }, 'policy connection error');
    });
  }

  /** Graceful shutdown: end now if idle, else after the reply in flight. */
  shutdown(): void {
    if (!this.busy) this.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private fields(): Record<string, unknown> {
    return { connection: this.info.connectionId, peer: this.info.peer };
  }

  /** Hand requests to the handler one at a time while the peer reads our replies. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    // Replies to pipelined requests leave in one write.
    this.socket.cork();
    try {
      while (
        !this.busy &&
        !this.ending &&
        !this.socket.destroyed &&
        !this.socket.writableNeedDrain
      ) {
        let request: PolicyRequest | undefined;
        try {
          request = this.decoder.next();
          if (request === undefined && this.peerEnded && this.shared.mode === 'exim') {
            request = this.decoder.finish();
          }
        } catch (err) {
          this.protocolError(err as Error);
          return;
        }
        if (request === undefined) {
          if (this.peerEnded) this.end();
          break;
        }
        this.dispatch(request);
      }
    } finally {
      this.pumping = false;
      this.socket.uncork();
    }
    this.flow();
  }

  /** Read while there is room: not while a busy handler has a backlog or the peer does not read. */
  private flow(): void {
    if (this.socket.destroyed) return;
    const hold =
      !this.ending &&
      (this.socket.writableNeedDrain ||
        (this.busy && this.decoder.buffered >= this.shared.inputHighWater));
    if (hold && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!hold && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private dispatch(request: PolicyRequest): void {
    const shared = this.shared;
    shared.stats.requests++;
    let result: PolicyAction | PromiseLike<PolicyAction>;
    try {
      result = shared.handler(request, this.info);
    } catch (err) {
      this.reply(this.failed(asError(err), 'policy handler failed'));
      return;
    }
    if (!isThenable(result)) {
      this.reply(result);
      return;
    }
    this.busy = true;
    let settled = false;
    const settle = (action: PolicyAction) => {
      if (settled) return;
      settled = true;
      clearTimeout(this.handlerTimer);
      this.busy = false;
      this.reply(action);
      this.pump();
    };
    this.handlerTimer = setTimeout(() => {
      const err = new Error(`policy handler did not answer within ${shared.handlerTimeoutMs} ms`);
      settle(this.failed(err, 'policy handler timed out'));
    }, shared.handlerTimeoutMs);
    result.then(settle, (err: unknown) => {
      if (settled) return;
      settle(this.failed(asError(err), 'policy handler failed'));
    });
  }

  /**
   * One log line with the stack, and the action that answers instead. The message is a stable
   * tag; what was answered is a field, so that a changed error action does not change the tag.
   */
  private failed(err: Error, message: string): PolicyAction {
    this.shared.stats.handlerFailures++;
    this.shared.logger.error({ ...this.fields(), err, answered: this.shared.errorAction }, message);
    return this.shared.errorAction;
  }

  private reply(action: PolicyAction): void {
    if (this.socket.destroyed) return;
    const problem = actionProblem(action);
    let bytes: Buffer;
    if (problem === undefined) {
      bytes = encodeReply(action);
    } else {
      this.shared.stats.handlerFailures++;
      this.shared.logger.error(
        {
          ...this.fields(),
          problem,
          action: logValue(String(action), 200),
          answered: this.shared.errorAction,
        },
        'policy handler returned an invalid action',
      );
      bytes = encodeReply(this.shared.errorAction);
    }
    this.socket.write(bytes);
    if (this.shared.mode === 'exim' || this.shared.closing) this.end();
  }

  private protocolError(err: Error): void {
    this.shared.stats.protocolErrors++;
    const code = err instanceof PolicyProtocolError ? err.code : 'internal';
    this.shared.logger.warn(
      { ...this.fields(), code, reason: escapeForLog(err.message) },
      'policy protocol error',
    );
    this.end();
  }

  /**
   * End our side once written replies are out, keep reading (and dropping) what still comes, and
   * give the peer LINGER_MS to close its side. With allowHalfOpen the socket closes when both
   * sides have ended.
   */
  private end(): void {
    if (this.ending || this.socket.destroyed) return;
    this.ending = true;
    this.socket.setTimeout(Math.min(this.shared.idleTimeoutMs, LINGER_MS));
    this.socket.end();
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }
}

/**
 * Create a policy server. Options are checked here, so that mistakes show at start-up; nothing
 * listens until `listen()`.
 *
 * @example
 * const server = createPolicyServer({
 *   handler: (request) => (request.sender === '' ? 'DUNNO' : 'DEFER_IF_PERMIT 4.7.1 try later'),
 *   logger,
 * });
 * await server.listen('inet:10027@127.0.0.1');
 * // on SIGHUP:
 * server.setHandler(newHandler);
 * // on shutdown:
 * await server.close(5000);
 */
export function createPolicyServer(options: PolicyServerOptions): PolicyServer {
  const mode = options.mode ?? 'postfix';
  if (mode !== 'postfix' && mode !== 'exim') {
    throw new RangeError(`policy server: mode must be "postfix" or "exim", not ${String(mode)}`);
  }
  const errorAction = options.errorAction ?? DEFAULT_ERROR_ACTION;
  const problem = actionProblem(errorAction);
  if (problem !== undefined) throw new RangeError(`policy server: errorAction ${problem}`);
  checkHandler(options.handler);
  // The decoder checks its own limits; making one now shows a bad limit at start-up.
  new PolicyDecoder({
    maxLineBytes: options.maxLineBytes,
    maxRequestBytes: options.maxRequestBytes,
  });
  const logger = options.logger ?? stderrLogger('policyd');
  const stats: PolicyServerStats = {
    accepted: 0,
    requests: 0,
    handlerFailures: 0,
    protocolErrors: 0,
  };
  const shared: Shared = {
    handler: options.handler,
    mode,
    logger,
    maxLineBytes: options.maxLineBytes,
    maxRequestBytes: options.maxRequestBytes,
    idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    handlerTimeoutMs: positive(
      'handlerTimeoutMs',
      options.handlerTimeoutMs,
      DEFAULT_HANDLER_TIMEOUT_MS,
    ),
    errorAction,
    // Several pipelined requests may wait while a handler works; beyond that, stop reading.
    inputHighWater: Math.max(options.maxRequestBytes ?? 0, 64 * 1024) * 2,
    stats,
    closing: false,
  };
  const connections = new Set<Connection>();
  const listeners: { server: Server; address: string }[] = [];
  let nextId = 1;
  let closing: Promise<void> | undefined;

  const accept = (socket: Socket) => {
    if (shared.closing) {
      socket.destroy();
      return;
    }
    stats.accepted++;
    const connection = new Connection(socket, nextId++, shared);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  };

  const listenOne = async (spec: string | ListenSpec, listenOptions?: ListenOptions) => {
    // allowHalfOpen: a peer that shuts down its writing side (Exim's readsocket) still gets
    // its reply.
    const server = createServer({ allowHalfOpen: true, noDelay: true }, accept);
    const bound = await listenOn(server, spec, {
      socketMode: listenOptions?.socketMode ?? options.socketMode,
    });
    const entry = { server, address: bound.spec };
    listeners.push(entry);
    server.on('error', (err) => {
      // After listening, errors are accept failures (EMFILE...): log, keep serving.
      logger.error({ err, listen: entry.address }, 'policy server error');
    });
    logger.info({ listen: bound.spec, mode }, 'policy server listening');
    return { bound, server };
  };

  async function listen(
    spec: string | ListenSpec | readonly (string | ListenSpec)[],
    listenOptions?: ListenOptions,
  ): Promise<BoundAddress | BoundAddress[]> {
    if (shared.closing) throw new Error('policy server: listen() after close()');
    if (!Array.isArray(spec)) {
      return (await listenOne(spec as string | ListenSpec, listenOptions)).bound;
    }
    const done: Awaited<ReturnType<typeof listenOne>>[] = [];
    try {
      for (const one of spec as readonly (string | ListenSpec)[]) {
        done.push(await listenOne(one, listenOptions));
      }
    } catch (err) {
      for (const { server } of done) {
        const at = listeners.findIndex((l) => l.server === server);
        if (at >= 0) listeners.splice(at, 1);
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      throw err;
    }
    return done.map((d) => d.bound);
  }

  return {
    mode,
    stats,
    get connections() {
      return connections.size;
    },
    get addresses() {
      return listeners.map((l) => l.address);
    },
    get listening() {
      return !shared.closing && listeners.length > 0 && listeners.every((l) => l.server.listening);
    },
    listen: listen as PolicyServer['listen'],
    setHandler(handler) {
      checkHandler(handler);
      shared.handler = handler;
    },
    reconfigure(next) {
      const errorAction = next.errorAction ?? shared.errorAction;
      const problem = actionProblem(errorAction);
      if (problem !== undefined) throw new RangeError(`policy server: errorAction ${problem}`);
      const idle = positive('idleTimeoutMs', next.idleTimeoutMs, shared.idleTimeoutMs);
      const handlerTimeout = positive(
        'handlerTimeoutMs',
        next.handlerTimeoutMs,
        shared.handlerTimeoutMs,
      );
      shared.errorAction = errorAction;
      shared.idleTimeoutMs = idle;
      shared.handlerTimeoutMs = handlerTimeout;
    },
    close(deadlineMs = DEFAULT_CLOSE_DEADLINE_MS) {
      if (closing) return closing;
      shared.closing = true;
      closing = (async () => {
        const stopped = Promise.all(
          listeners.map(
            ({ server }) =>
              new Promise<void>((resolve) => {
                if (!server.listening) resolve();
                else server.close(() => resolve());
              }),
          ),
        );
        for (const connection of connections) connection.shutdown();
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, deadlineMs);
        });
        const drained = Promise.all([...connections].map((c) => c.finished));
        await Promise.race([drained, deadline]);
        clearTimeout(timer);
        const remaining = [...connections];
        for (const connection of remaining) connection.destroy();
        await Promise.all([stopped, ...remaining.map((c) => c.finished)]);
      })();
      return closing;
    },
  };
}

function checkHandler(handler: unknown): asserts handler is PolicyHandler {
  if (typeof handler !== 'function') {
    throw new TypeError('policy server: the handler must be a function');
  }
}
