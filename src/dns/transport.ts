/**
 * One query, one answer: a single UDP or TCP exchange with one server. Retries, fallbacks and
 * outcome mapping belong to the resolver; this module only guarantees that what it returns
 * answers the question it sent, from the server it sent it to, and that its sockets are closed.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
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
  /** Give up when this fires (the caller's deadline or cancellation). */
  signal?: AbortSignal;
}

export type ExchangeFailure = 'timeout' | 'network' | 'malformed' | 'aborted';

export type ExchangeResult =
  | { ok: true; message: DnsMessage; transport: 'udp' | 'tcp' }
  | { ok: false; reason: ExchangeFailure; detail: string };

/** A fresh, unpredictable query ID: with the random source port it is our defence against spoofing. */
function newQuestion(request: ExchangeRequest): Question {
  return { id: randomInt(0, 0x10000), name: request.name, type: request.type };
}

/** Addresses as rinfo reports them versus as configured: same text modulo case and zone suffix. */
function sameAddress(a: string, b: string): boolean {
  return a.split('%')[0]!.toLowerCase() === b.split('%')[0]!.toLowerCase();
}

/**
 * Settle-once plumbing shared by both transports: a timer, the abort signal and a cleanup
 * callback, so that every path out closes the socket exactly once.
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
    request.signal?.removeEventListener('abort', onAbort);
    try {
      cleanup();
    } catch {
      // The socket may already be gone; closing is all we wanted.
    }
    resolve(result);
  };
  const onAbort = () => finish({ ok: false, reason: 'aborted', detail: 'cancelled' });
  const timer = setTimeout(() => finish(onTimeout()), Math.max(0, request.timeoutMs));
  request.signal?.addEventListener('abort', onAbort, { once: true });
  if (request.signal?.aborted) onAbort();
  return { finish, done: () => settled };
}

/**
 * Send one query over UDP from a new socket (so the OS picks a fresh random source port) and
 * wait for the matching answer. Datagrams from another address or port, with another ID or
 * question, or that do not decode are ignored and the wait goes on, so a blind spoofer has to
 * guess both port and ID within the timeout. Never rejects.
 *
 * @example
 * const r = await udpExchange({ server, name: 'example.com', type: 'A', ednsPayload: 1232, timeoutMs: 2000 });
 * if (r.ok && r.message.truncated) { ... retry over TCP ... }
 */
export function udpExchange(request: ExchangeRequest): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const { server } = request;
    const question = newQuestion(request);
    const bytes = encodeQuery(question, request.ednsPayload);
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let sawMalformed = false;
    const { finish, done } = guard(
      request,
      resolve,
      () => socket.close(),
      () =>
        sawMalformed
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
    socket.on('error', (err) => finish({ ok: false, reason: 'network', detail: err.message }));
    socket.on('message', (reply, rinfo) => {
      if (rinfo.port !== server.port || !sameAddress(rinfo.address, server.host)) return;
      const message = decodeResponse(reply);
      if (!message) {
        sawMalformed = true;
        return;
      }
      if (!answersQuestion(message, question)) return;
      finish({ ok: true, message, transport: 'udp' });
    });
    if (done()) return;
    // A connected socket also lets the kernel report an unreachable port as an error at once.
    socket.connect(server.port, server.host, (err?: Error) => {
      if (done()) return;
      if (err) {
        finish({ ok: false, reason: 'network', detail: err.message });
        return;
      }
      socket.send(bytes, (sendErr) => {
        if (sendErr) finish({ ok: false, reason: 'network', detail: sendErr.message });
      });
    });
  });
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
