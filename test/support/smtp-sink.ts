/**
 * A loopback SMTP server that accepts every message and records it: the test's "rest of the
 * world", where a Postfix under test relays everything it accepts. A test awaits the next
 * delivery (optionally one matching a predicate) with a timeout.
 *
 * @example
 * const sink = await startSmtpSink();
 * // ... point relayhost = [127.0.0.1]:${sink.port} at it, send mail ...
 * const d = await sink.next({ match: (d) => d.queueId === 'ABC123', timeoutMs: 10_000 });
 * assert.equal(d.header('Subject'), 'hello');
 * await sink.close();
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One header field of a delivered message, unfolded. */
export interface MessageHeader {
  name: string;
  /** The value after the colon, unfolded (CRLF + whitespace → the whitespace), leading blanks cut. */
  value: string;
}

/** A message as the sink received it. */
export interface Delivery {
  /** Envelope sender ('' for the null sender `<>`). */
  from: string;
  /** Envelope recipients, in the order given. */
  to: string[];
  /** The DATA bytes as received (dot-unstuffed, without the final `.`). */
  raw: Buffer;
  headers: MessageHeader[];
  /** Everything after the blank line that ends the header, as received (CRLF line ends). */
  body: string;
  /**
   * The queue id of the Postfix that relayed it, from the topmost `Received:` header that has
   * one (`... with ESMTP id 4Xyz...`); undefined when there is none.
   */
  queueId: string | undefined;
  /** The first value of a header (case-insensitive name), or undefined. */
  header(name: string): string | undefined;
  /** Every value of a header, in order. */
  headerAll(name: string): string[];
}

export interface NextOptions {
  /** Only a delivery for which this returns true; others stay for later `next` calls. */
  match?: (delivery: Delivery) => boolean;
  /** Default 15 s. */
  timeoutMs?: number;
}

export interface SmtpSink {
  readonly port: number;
  /** Every delivery so far, in arrival order (taken ones included). */
  readonly deliveries: readonly Delivery[];
  /**
   * The oldest delivery not yet taken by `next` (that matches), waiting for one if needed.
   * Rejects with an error naming the timeout when none comes in time.
   */
  next(options?: NextOptions): Promise<Delivery>;
  close(): Promise<void>;
}

/** Splits a raw message into unfolded header fields and the body. */
export function parseMessage(raw: Buffer | string): { headers: MessageHeader[]; body: string } {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const match = /\r?\n\r?\n/.exec(text);
  const head = match ? text.slice(0, match.index) : text;
  const body = match ? text.slice(match.index + match[0].length) : '';
  const headers: MessageHeader[] = [];
  for (const line of head.split(/\r?\n/)) {
    const last = headers[headers.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({
      name: line.slice(0, colon),
      value: line.slice(colon + 1).replace(/^[ \t]+/, ''),
    });
  }
  return { headers, body };
}

function makeDelivery(from: string, to: string[], raw: Buffer): Delivery {
  const { headers, body } = parseMessage(raw);
  const all = (name: string) =>
    headers.filter((h) => h.name.toLowerCase() === name.toLowerCase()).map((h) => h.value);
  let queueId: string | undefined;
  for (const received of all('Received')) {
    const m = /\bwith\s+\S+\s+id\s+([0-9A-Za-z]+)/.exec(received);
    if (m) {
      queueId = m[1];
      break;
    }
  }
  return {
    from,
    to,
    raw,
    headers,
    body,
    queueId,
    header: (name) => all(name)[0],
    headerAll: all,
  };
}

interface Waiter {
  match: (delivery: Delivery) => boolean;
  resolve: (delivery: Delivery) => void;
}

/** Starts the sink on 127.0.0.1 and an ephemeral port. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const deliveries: Delivery[] = [];
  const taken = new Set<Delivery>();
  const waiters = new Set<Waiter>();

  const offer = (delivery: Delivery) => {
    for (const waiter of waiters) {
      if (waiter.match(delivery)) {
        waiters.delete(waiter);
        taken.add(delivery);
        waiter.resolve(delivery);
        return;
      }
    }
  };

  const server = new SMTPServer({
    banner: 'mailgate test sink',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    size: 50 * 1024 * 1024,
    closeTimeout: 2_000,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', callback);
      stream.on('end', () => {
        const envelope = session.envelope;
        const from = envelope.mailFrom ? envelope.mailFrom.address : '';
        const delivery = makeDelivery(
          from,
          envelope.rcptTo.map((r) => r.address),
          Buffer.concat(chunks),
        );
        deliveries.push(delivery);
        callback();
        offer(delivery);
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A broken client connection must not crash the test process.
  server.on('error', () => {});
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    deliveries,
    next({ match = () => true, timeoutMs = 15_000 }: NextOptions = {}) {
      const ready = deliveries.find((d) => !taken.has(d) && match(d));
      if (ready) {
        taken.add(ready);
        return Promise.resolve(ready);
      }
      return new Promise<Delivery>((resolve, reject) => {
        const waiter: Waiter = {
          match,
          resolve: (delivery) => {
            clearTimeout(timer);
            resolve(delivery);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`smtp sink: no matching delivery within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
