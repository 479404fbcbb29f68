/**
 * The milter server: accepts MTA connections on a listen spec and gives each one a session.
 * Per connection it does the socket work the session leaves out: cutting the byte stream into
 * packets, flow control (bounded memory per connection), idle timeout, and closing after QUIT or
 * a protocol error. Built for thousands of connections: no per-connection timers except the
 * socket's own idle timeout, and a callback timer only while an async callback runs.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type BoundAddress, listenOn, parseListenSpec } from '../listen/index.js';
import { stderrLogger } from '../observe/stderr.js';
import { escapeForLog } from '../text/index.js';
import { MILTER_CHUNK_SIZE } from './constants.js';
import { DEFAULT_MAX_PACKET_BYTES, FrameDecoder, MilterProtocolError } from './frame.js';
import { type PreparedMilter, prepareMilter } from './negotiate.js';
import { DEFAULT_CALLBACK_TIMEOUT_MS, MilterSession } from './session.js';
import type { MilterDefinition, MilterLogger, MilterServerOptions } from './types.js';

/**
 * How long a connection may stay silent. The MTA says nothing to the milter while the SMTP client
 * sends the message, so this must outlast a slow DATA phase: libmilter waits 7210 s.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 7210_000;
/** How long `close()` lets sessions finish by default. */
export const DEFAULT_CLOSE_DEADLINE_MS = 10_000;
/**
 * Input buffered while a callback runs before we stop reading. Only then: an idle session must
 * be able to receive a whole packet of up to maxPacketBytes.
 */
const INPUT_HIGH_WATER = 256 * 1024;
/** After QUIT the MTA closes its side; if it does not, the socket goes after this long. */
const LINGER_AFTER_QUIT_MS = 10_000;

/** A running milter server. */
export interface MilterServer {
  /** Start listening; resolves with the effective spec (e.g. `inet:41234@127.0.0.1`). */
  listen(): Promise<{ address: string } & BoundAddress>;
  /**
   * Stop accepting, let connections finish for up to `deadlineMs` (default 10 s), then destroy
   * what is left. A handler's close callback may still be running when this resolves if it
   * outlasts a second deadline.
   */
  close(deadlineMs?: number): Promise<void>;
  /** Open MTA connections. */
  readonly connections: number;
  /** The effective listen spec once listening. */
  readonly address: string | undefined;
  /** Whether it accepts connections now (listening, and not closed). */
  readonly listening: boolean;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`milter server: ${name} must be a positive number, not ${value}`);
  }
  return value;
}

function describeRemote(socket: Socket): string {
  const address = socket.remoteAddress;
  if (address === undefined) return 'unix';
  return address.includes(':')
    ? `[${address}]:${socket.remotePort}`
    : `${address}:${socket.remotePort}`;
}

function delay(ms: number): { promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

class Connection {
  private readonly decoder: FrameDecoder;
  private readonly session: MilterSession;
  private paused = false;
  private feeding = false;

  constructor(
    private readonly socket: Socket,
    milter: PreparedMilter,
    private readonly settings: {
      logger: MilterLogger;
      idleTimeoutMs: number;
      callbackTimeoutMs: number;
      maxPacketBytes: number;
    },
  ) {
    const remote = describeRemote(socket);
    const socketClosed = new Promise<void>((resolve) => {
      this.markClosed = resolve;
    });
    this.decoder = new FrameDecoder({ maxPacketBytes: settings.maxPacketBytes });
    this.session = new MilterSession(
      milter,
      {
        write: (data) => {
          if (this.socket.destroyed) return;
          // Replies written in one turn (end-of-message modifications and the verdict, answers
          // to pipelined commands) leave in one segment: one system call instead of one each.
          if (!this.corked) {
            this.corked = true;
            this.socket.cork();
            process.nextTick(() => {
              this.corked = false;
              if (!this.socket.destroyed) this.socket.uncork();
            });
          }
          if (!this.socket.write(data)) this.flow();
        },
        close: (error) => {
          if (error) {
            this.protocolError(remote, error);
          } else {
            this.socket.setTimeout(Math.min(settings.idleTimeoutMs, LINGER_AFTER_QUIT_MS));
            this.socket.end();
          }
        },
      },
      {
        logger: settings.logger,
        callbackTimeoutMs: settings.callbackTimeoutMs,
        remote,
        onDrain: () => {
          if (!this.feeding) this.feed();
        },
      },
    );
    this.finished = Promise.all([socketClosed, this.session.finished]).then(() => {});
    socket.setNoDelay(true);
    socket.setTimeout(settings.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      this.feed();
    });
    socket.on('drain', () => {
      if (!this.feeding) this.feed();
    });
    socket.on('timeout', () => {
      // A callback at work is not idleness; it has its own timeout.
      if (this.session.busy) return;
      settings.logger.info({ remote }, 'milter connection idle; closing it');
      socket.destroy();
    });
    socket.on('error', (err) => {
      settings.logger.debug?.({ remote, err }, 'milter connection error');
    });
  }

  /** Resolves when the socket has closed and the session has closed its last handler. */
  readonly finished: Promise<void>;
  private markClosed!: () => void;
  /** Writes of this turn are being gathered (socket corked until the next tick). */
  private corked = false;

  /** The socket closed: the session aborts and closes what is open. */
  closed(): void {
    this.session.terminate();
    this.markClosed();
  }

  /**
   * Hand packets to the session while it is idle. Packets stay in the decoder while a callback
   * runs, so the session's queue stays short and reading stops when input piles up.
   */
  private feed(): void {
    this.feeding = true;
    try {
      // Stop when the MTA stops reading our replies, not only between reads: a burst of
      // pipelined packets must not pile up unbounded output.
      while (
        !this.session.busy &&
        !this.session.closed &&
        !this.socket.destroyed &&
        !this.socket.writableNeedDrain
      ) {
        let frame: ReturnType<FrameDecoder['next']>;
        try {
          frame = this.decoder.next();
        } catch (err) {
          this.protocolError(describeRemote(this.socket), err as Error);
          return;
        }
        if (frame === undefined) break;
        this.session.receive(frame);
      }
    } finally {
      this.feeding = false;
    }
    this.flow();
  }

  /** Read while there is room: not while a busy session has a backlog or the MTA does not read. */
  private flow(): void {
    if (this.socket.destroyed) return;
    const hold =
      (this.session.busy && this.decoder.buffered >= INPUT_HIGH_WATER) ||
      this.socket.writableNeedDrain;
    if (hold && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!hold && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private protocolError(remote: string, error: Error): void {
    if (this.socket.destroyed) return;
    if (error instanceof MilterProtocolError) {
      this.settings.logger.warn(
        { remote, reason: escapeForLog(error.message) },
        'milter protocol error; connection closed',
      );
    } else {
      this.settings.logger.error(
        { remote, err: error },
        'milter session failed; connection closed',
      );
    }
    this.socket.destroy();
  }
}

/**
 * Create a milter server for a definition. The definition is checked and its negotiation
 * planned here (one handler is made for that and serves the first connection), and the listen
 * spec is parsed here, so that mistakes show at start-up.
 *
 * @example
 * const server = createMilterServer(
 *   { name: 'hello', handler: () => ({ helo: (_ctx, name) => (name ? 'continue' : 'reject') }) },
 *   { listen: 'inet:8891@127.0.0.1', logger },
 * );
 * const { address } = await server.listen();  // 'inet:8891@127.0.0.1'
 * // ... on shutdown:
 * await server.close(5000);
 */
export function createMilterServer(
  definition: MilterDefinition,
  options: MilterServerOptions,
): MilterServer {
  const milter = prepareMilter(definition);
  const spec = parseListenSpec(options.listen);
  const logger = options.logger ?? stderrLogger('milter');
  const settings = {
    logger,
    idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    callbackTimeoutMs: positive(
      'callbackTimeoutMs',
      options.callbackTimeoutMs,
      DEFAULT_CALLBACK_TIMEOUT_MS,
    ),
    maxPacketBytes: positive('maxPacketBytes', options.maxPacketBytes, DEFAULT_MAX_PACKET_BYTES),
  };
  // A full body chunk (65535 bytes) plus the length and command bytes must fit.
  if (settings.maxPacketBytes < MILTER_CHUNK_SIZE + 5) {
    throw new Error(
      `maxPacketBytes must be at least ${MILTER_CHUNK_SIZE + 5}: MTAs send 64 KiB body chunks`,
    );
  }
  const connections = new Map<Socket, Connection>();
  let closing: Promise<void> | undefined;
  let address: string | undefined;

  const server: Server = createServer({ noDelay: true }, (socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const connection = new Connection(socket, milter, settings);
    connections.set(socket, connection);
    socket.on('close', () => {
      connections.delete(socket);
      connection.closed();
    });
  });
  server.on('error', (err) => {
    // After listen() resolved, errors are accept failures (EMFILE...): log, keep serving.
    if (address !== undefined) logger.error({ err, listen: address }, 'milter server error');
  });

  return {
    get connections() {
      return connections.size;
    },
    get address() {
      return address;
    },
    get listening() {
      return !closing && server.listening;
    },
    async listen() {
      if (closing) throw new Error('milter server: listen() after close()');
      if (address !== undefined) throw new Error(`milter server: already listening on ${address}`);
      const bound = await listenOn(server, spec, { socketMode: options.socketMode });
      address = bound.spec;
      logger.info({ milter: definition.name, listen: address }, 'milter server listening');
      return { address: bound.spec, ...bound };
    },
    close(deadlineMs = DEFAULT_CLOSE_DEADLINE_MS) {
      if (closing) return closing;
      closing = (async () => {
        const stopped = new Promise<void>((resolve) => {
          if (!server.listening) resolve();
          else server.close(() => resolve());
        });
        const deadline = delay(deadlineMs);
        const drained = Promise.all([...connections.values()].map((c) => c.finished));
        await Promise.race([Promise.all([stopped, drained]), deadline.promise]);
        deadline.cancel();
        const remaining = [...connections.entries()];
        for (const [socket] of remaining) socket.destroy();
        // Destroyed sockets close at once; a handler's close callback gets a second deadline.
        const second = delay(deadlineMs);
        await Promise.race([
          Promise.all([stopped, ...remaining.map(([, c]) => c.finished)]),
          second.promise,
        ]);
        second.cancel();
      })();
      return closing;
    },
  };
}
