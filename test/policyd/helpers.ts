/**
 * Test helpers for the policy server: a raw socket client that writes bytes as given (so tests
 * do not trust the codec they test) and reads replies, and a capturing logger.
 */
import { connect, type Socket } from 'node:net';
import type { BoundAddress } from '../../src/listen/index.js';
import type { PolicyLogger } from '../../src/policyd/index.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps its lines; `problems()` are the warnings and errors. */
export function captureLogger(): PolicyLogger & { lines: LogLine[]; problems(): LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    problems: () => lines.filter((l) => l.level === 'warn' || l.level === 'error'),
    debug: (fields, message) => lines.push({ level: 'debug', fields, message }),
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
  };
}

/** A request on the wire: `name=value` lines and the empty line. */
export function request(attributes: Record<string, string>, eol = '\n'): string {
  return (
    Object.entries(attributes)
      .map(([n, v]) => `${n}=${v}${eol}`)
      .join('') + eol
  );
}

/** A client speaking raw bytes; replies are parsed leniently so that junk shows in asserts. */
export class RawClient {
  private received = '';
  private waiters: Array<() => void> = [];
  /** The server ended its side (or the socket closed). */
  ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      this.received += text;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(bound: BoundAddress): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = bound.kind === 'unix' ? connect(bound.path) : connect(bound.port, bound.host);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  send(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Everything received and not yet taken as a reply. */
  get pending(): string {
    return this.received;
  }

  /**
   * The next reply's action (the text after `action=`); throws when the connection ends first or
   * a reply is not `action=...` followed by an empty line.
   */
  async reply(): Promise<string> {
    for (;;) {
      const end = this.received.indexOf('\n\n');
      if (end >= 0) {
        const text = this.received.slice(0, end);
        this.received = this.received.slice(end + 2);
        if (!text.startsWith('action=') || text.includes('\n')) {
          throw new Error(`not a reply: ${JSON.stringify(text)}`);
        }
        return text.slice('action='.length);
      }
      if (this.ended) {
        throw new Error(`connection ended; left over: ${JSON.stringify(this.received)}`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Send one request and read its reply. */
  async ask(attributes: Record<string, string>): Promise<string> {
    this.send(request(attributes));
    return this.reply();
  }

  /** Wait until the server has ended the connection; resolves with what arrived unread. */
  async serverEnded(): Promise<string> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.received;
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

export function deferred<T>(): {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
} {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll until `check` holds; for waiting on events the test cannot subscribe to. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 5000,
): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`gave up waiting: ${what}`);
    await sleep(5);
  }
}
