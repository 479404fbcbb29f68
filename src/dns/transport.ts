/**
 * One query, one answer: a single UDP or TCP exchange with one server. Retries, fallbacks and
 * outcome mapping belong to the resolver; this module only guarantees that what it returns
 * answers the question it sent, from the server it sent it to, and that its sockets are closed.
 */
import { randomFillSync } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import {
  answersQuestion,
  type DnsMessage,
  decodeResponse,
  encodeQuery,
  type Question,
} from './codec.js';
import type { ServerAddress } from './resolv-conf.js';
import type { RecordType } from './types.js';

/** What to ask, whom, and for how long. */
export interface ExchangeRequest {
  server: ServerAddress;
  /** Query name as accepted by `queryName` (no trailing dot). */
  name: string;
  type: RecordType;
  /** EDNS0 UDP payload size to advertise; 0 sends no OPT record. */
  ednsPayload: number;
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Give up when this is cancelled (every caller stopped waiting). */
  cancel?: Cancellation;
}

/**
 * A cancellation for the one exchange in progress at a time on behalf of a query: lighter than
 * an AbortController and its event machinery, which showed on a busy server's profile.
 *
 * @example
 * const cancel = new Cancellation();
 * const pending = pool.exchange({ ...request, cancel });
 * cancel.cancel();  // the exchange ends with reason 'aborted'
 */
export class Cancellation {
  cancelled = false;
  /** What ends the exchange now in progress, if any. */
  current: (() => void) | null = null;

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const current = this.current;
    this.current = null;
    current?.();
  }
}

export type ExchangeFailure = 'timeout' | 'network' | 'malformed' | 'aborted';

export type ExchangeResult =
  | { ok: true; message: DnsMessage; transport: 'udp' | 'tcp' }
  | { ok: false; reason: ExchangeFailure; detail: string };

// Query IDs come from the CSPRNG in batches: one call per 512 queries instead of one per query.
const ids = new Uint16Array(512);
let idsLeft = 0;

/** An unpredictable query ID: with the random source port it is our defence against spoofing. */
function randomId(): number {
  if (idsLeft === 0) {
    randomFillSync(ids);
    idsLeft = ids.length;
  }
  return ids[--idsLeft]!;
}

function newQuestion(request: ExchangeRequest): Question {
  return { id: randomId(), name: request.name, type: request.type };
}

/** Addresses as rinfo reports them versus as configured: same text modulo case and zone suffix. */
function sameAddress(a: string, b: string): boolean {
  return a.split('%')[0]!.toLowerCase() === b.split('%')[0]!.toLowerCase();
}

/**
 * Settle-once plumbing for the TCP transport: a timer, the cancellation and a cleanup callback,
 * so that every path out closes the socket exactly once.
 */
function guard(
  request: ExchangeRequest,
  resolve: (result: ExchangeResult) => void,
  cleanup: () => void,
  onTimeout: () => ExchangeResult,
): { finish: (result: ExchangeResult) => void; done: () => boolean } {
  let settled = false;
  const finish = (result: ExchangeResult) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (request.cancel?.current === onAbort) request.cancel.current = null;
    try {
      cleanup();
    } catch {
      // The socket may already be gone; closing is all we wanted.
    }
    resolve(result);
  };
  const onAbort = () => finish({ ok: false, reason: 'aborted', detail: 'cancelled' });
  const timer = setTimeout(() => finish(onTimeout()), Math.max(0, request.timeoutMs));
  if (request.cancel) {
    if (request.cancel.cancelled) onAbort();
    else request.cancel.current = onAbort;
  }
  return { finish, done: () => settled };
}

/** Sizing of the UDP sockets one server gets. */
export interface UdpPoolOptions {
  /** Sockets in use at once (1-64). Default 4. */
  sockets?: number;
  /** Queries a socket sends before it is retired for a new one on a new random port (1-4096). Default 64. */
  queriesPerSocket?: number;
}

interface PendingQuery {
  question: Question;
  sawMalformed: boolean;
  finish: (result: ExchangeResult) => void;
}

/**
 * One connected UDP socket and the queries waiting on it, keyed by query ID.
 */
class UdpChannel {
  readonly pending = new Map<number, PendingQuery>();
  sent = 0;
  retired = false;
  #socket: Socket;
  #connected = false;
  #closed = false;
  #queue: Buffer[] = [];

  constructor(private readonly server: ServerAddress) {
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    this.#socket = socket;
    socket.on('message', (reply, rinfo) => this.#receive(reply, rinfo.address, rinfo.port));
    socket.on('error', (err) => this.#fail(err.message));
    // A connected socket only hears from the server, and learns of an unreachable port at once.
    socket.connect(server.port, server.host, (err?: Error) => {
      if (err) {
        this.#fail(err.message);
        return;
      }
      this.#connected = true;
      for (const bytes of this.#queue) this.#send(bytes);
      this.#queue = [];
    });
    // Idle sockets must not keep a command-line run alive; waiting queries hold their timers.
    socket.unref();
  }

  /** A query ID not in use on this socket, chosen at random. */
  freeId(): number {
    for (;;) {
      const id = randomId();
      if (!this.pending.has(id)) return id;
    }
  }

  send(question: Question, bytes: Buffer, query: PendingQuery): void {
    this.sent++;
    this.pending.set(question.id, query);
    if (this.#connected) this.#send(bytes);
    else this.#queue.push(bytes);
  }

  /** Forget a query that ended without an answer (timeout, cancellation). */
  forget(id: number, query: PendingQuery): void {
    if (this.pending.get(id) === query) this.pending.delete(id);
    this.#closeIfDone();
  }

  #send(bytes: Buffer): void {
    if (this.#closed) return;
    try {
      // Errors of the send itself arrive as 'error' events and fail every query on the socket.
      this.#socket.send(bytes);
    } catch (err) {
      this.#fail((err as Error).message);
    }
  }

  #receive(reply: Buffer, address: string, port: number): void {
    if (port !== this.server.port || !sameAddress(address, this.server.host)) return;
    if (reply.length < 12) return;
    const query = this.pending.get(reply.readUInt16BE(0));
    if (!query) return;
    const message = decodeResponse(reply);
    if (!message) {
      query.sawMalformed = true;
      return;
    }
    // Same ID but another question: a guess or a stale reply. Keep waiting for ours.
    if (!answersQuestion(message, query.question)) return;
    this.pending.delete(query.question.id);
    query.finish({ ok: true, message, transport: 'udp' });
    this.#closeIfDone();
  }

  #fail(detail: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    this.retired = true;
    for (const query of waiting) query.finish({ ok: false, reason: 'network', detail });
    this.#closeIfDone();
  }

  #closeIfDone(): void {
    if (!this.retired || this.pending.size > 0 || this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch {
      // Already closed by an error path.
    }
  }

  retire(): void {
    this.retired = true;
    this.#closeIfDone();
  }
}

/**
 * The UDP side of talking to one server: a few connected sockets, each on a random source port
 * the OS chose, each retired after a number of queries so that ports keep changing. Replies are
 * matched by ID and question on the socket that asked; datagrams from another address or port,
 * with an unknown ID or another question, or that do not decode are ignored and the wait goes
 * on, so a blind spoofer has to guess port and ID within the timeout. Sharing sockets between
 * queries is what makes a busy server cheap: a socket per query costs a bind and a close each.
 */
export class UdpPool {
  readonly #server: ServerAddress;
  readonly #size: number;
  readonly #perSocket: number;
  #channels: Array<UdpChannel | undefined> = [];
  #next = 0;
  #closed = false;

  constructor(server: ServerAddress, options: UdpPoolOptions = {}) {
    this.#server = server;
    this.#size = wholeNumber(options.sockets ?? 4, 1, 64, 'udp.sockets');
    // Well under 65536, so that a socket always has a free query ID.
    this.#perSocket = wholeNumber(options.queriesPerSocket ?? 64, 1, 4096, 'udp.queriesPerSocket');
  }

  /**
   * Send one query and wait for the matching answer. Never rejects.
   *
   * @example
   * const r = await pool.exchange({ server, name: 'example.com', type: 'A', ednsPayload: 1232, timeoutMs: 2000 });
   * if (r.ok && r.message.truncated) { ... retry over TCP ... }
   */
  exchange(request: ExchangeRequest): Promise<ExchangeResult> {
    return new Promise((resolve) => {
      const cancel = request.cancel;
      if (cancel?.cancelled) {
        resolve({ ok: false, reason: 'aborted', detail: 'cancelled' });
        return;
      }
      // A query after close (a lookup still running when a reload retired its resolver) would
      // open a socket nobody closes.
      if (this.#closed) {
        resolve({ ok: false, reason: 'aborted', detail: 'the resolver is closed' });
        return;
      }
      const channel = this.#channel();
      const question: Question = { id: channel.freeId(), name: request.name, type: request.type };
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        channel.forget(question.id, query);
        finish({ ok: false, reason: 'aborted', detail: 'cancelled' });
      };
      const finish = (result: ExchangeResult) => {
        clearTimeout(timer);
        if (cancel?.current === onAbort) cancel.current = null;
        resolve(result);
      };
      const query: PendingQuery = { question, sawMalformed: false, finish };
      timer = setTimeout(
        () => {
          channel.forget(question.id, query);
          finish(
            query.sawMalformed
              ? {
                  ok: false,
                  reason: 'malformed',
                  detail: 'only undecodable replies within the timeout',
                }
              : {
                  ok: false,
                  reason: 'timeout',
                  detail: `no reply within ${Math.round(request.timeoutMs)} ms`,
                },
          );
        },
        Math.max(0, request.timeoutMs),
      );
      if (cancel) cancel.current = onAbort;
      channel.send(question, encodeQuery(question, request.ednsPayload), query);
    });
  }

  /** Close every socket once its queries are done; later queries fail at once. */
  close(): void {
    this.#closed = true;
    for (const channel of this.#channels) channel?.retire();
    this.#channels = [];
  }

  #channel(): UdpChannel {
    const slot = this.#next;
    this.#next = (slot + 1) % this.#size;
    let channel = this.#channels[slot];
    if (!channel || channel.retired || channel.sent >= this.#perSocket) {
      channel?.retire();
      channel = new UdpChannel(this.#server);
      this.#channels[slot] = channel;
    }
    return channel;
  }
}

/**
 * Send one query over TCP (RFC 1035 4.2.2 two-byte length framing) and wait for the matching
 * answer, reading across partial segments. Replies with another ID or question are skipped;
 * a reply that does not decode ends the exchange as `malformed`, since on a stream nobody
 * but the server can have written it. Never rejects.
 *
 * @example
 * const r = await tcpExchange({ server, name: 'example.com', type: 'TXT', ednsPayload: 1232, timeoutMs: 2000 });
 */
export function tcpExchange(request: ExchangeRequest): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const { server } = request;
    const question = newQuestion(request);
    const query = encodeQuery(question, request.ednsPayload);
    const frame = Buffer.alloc(2 + query.length);
    frame.writeUInt16BE(query.length, 0);
    query.copy(frame, 2);
    const socket = connect({ host: server.host, port: server.port });
    const { finish, done } = guard(
      request,
      resolve,
      () => socket.destroy(),
      () => ({
        ok: false,
        reason: 'timeout',
        detail: `no TCP reply within ${Math.round(request.timeoutMs)} ms`,
      }),
    );
    if (done()) return;
    let pending: Buffer = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(frame));
    socket.on('error', (err) => finish({ ok: false, reason: 'network', detail: err.message }));
    socket.on('close', () =>
      finish({ ok: false, reason: 'network', detail: 'connection closed before a reply' }),
    );
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) return;
        const message = decodeResponse(pending.subarray(2, 2 + length));
        pending = pending.subarray(2 + length);
        if (!message) {
          finish({ ok: false, reason: 'malformed', detail: 'undecodable TCP reply' });
          return;
        }
        if (answersQuestion(message, question)) {
          finish({ ok: true, message, transport: 'tcp' });
          return;
        }
      }
    });
  });
}

function wholeNumber(value: number, min: number, max: number, name: string): number {
  if (!(Number.isInteger(value) && value >= min && value <= max)) {
    throw new Error(`DNS resolver: ${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}
