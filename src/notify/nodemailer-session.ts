/**
 * The one place that drives nodemailer's SMTPConnection beyond connect() and send().
 *
 * Why this file exists: a call-back must stop after RCPT TO without DATA, and fraud detection
 * needs the server's banner; send() does MAIL, RCPT and DATA in one go, and nothing public
 * returns the banner. Both are reached through documented options rather than private fields:
 *
 * - single commands: a custom SASL mechanism (the `customAuth` option) is handed
 *   `sendCommand`, which writes one command and resolves with its reply. login() with that
 *   mechanism hands us that function; the mechanism itself sends nothing, authenticates nothing,
 *   and login() never completes.
 * - the banner and the EHLO reply: with `transactionLog`, every server reply and client command
 *   goes to the `logger`, which this session records (replies only; the message is never
 *   logged).
 *
 * nodemailer's version is pinned by the lockfile; test/notify/smtp-client.test.ts pins both
 * behaviours (no DATA after a probe, the banner read) so that an upgrade that breaks them fails.
 */
import type { Socket } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

/** The name of the mechanism that hands out sendCommand; never sent to a server. */
const COMMANDS = 'X-MAILGATE-COMMANDS';

/** Why a session step failed, in nodemailer's terms. */
export interface SessionFailure {
  /** nodemailer's error code: ETIMEDOUT, ESOCKET, ECONNECTION, EPROTOCOL, ETLS, EENVELOPE, ... */
  code?: string;
  /** The server reply that caused it, when one did. */
  response?: string;
  /** The command nodemailer was at: CONN, EHLO, HELO, STARTTLS, MAIL FROM, RCPT TO, DATA. */
  command?: string;
  message: string;
}

export interface SessionOptions {
  /** A connected socket; the session reads and writes it, its owner destroys it. */
  socket: Socket;
  address: string;
  port: number;
  /** The SNI name for STARTTLS, if any. */
  servername?: string;
  helo: string;
  starttls: boolean;
  timeoutMs: number;
}

type SendCommand = (command: string) => Promise<{ response: string }>;

/** One SMTP session on a connected socket, step by step. */
export class SmtpSession {
  /** The banner as received (lines joined by LF), once read. */
  banner: string | undefined;
  /** The last EHLO or HELO reply as received, once read. */
  greeting: string | undefined;
  /** The verb of the last command written (EHLO, STARTTLS, MAIL, ...). */
  lastVerb: string | undefined;
  /** True once the connection is closed, by either side. */
  ended = false;

  readonly #conn: SMTPConnection;
  readonly #failed: Promise<never>;
  #commands: Promise<SendCommand> | undefined;
  #handOut: ((send: SendCommand) => void) | undefined;
  #greetingNext = false;

  constructor(options: SessionOptions) {
    let fail: (failure: SessionFailure) => void = () => {};
    this.#failed = new Promise<never>((_, reject) => {
      fail = reject;
    });
    // Nobody may be waiting when the connection drops; that must not be an unhandled rejection.
    this.#failed.catch(() => {});
    const tls = {
      rejectUnauthorized: false,
      ...(options.servername ? { servername: options.servername } : {}),
    };
    this.#conn = new SMTPConnection({
      connection: options.socket,
      host: options.address,
      port: options.port,
      name: options.helo,
      ignoreTLS: !options.starttls,
      opportunisticTLS: true,
      tls,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      socketTimeout: options.timeoutMs,
      logger: this.#transcript(),
      transactionLog: true,
      customAuth: {
        [COMMANDS]: (context) => {
          this.#handOut?.(context.sendCommand as SendCommand);
        },
      },
    });
    // Kept for the session's whole life: an 'error' without a listener would throw.
    this.#conn.on('error', (err) => fail(failureOf(err)));
    this.#conn.on('end', () => {
      this.ended = true;
      fail({ code: 'ECONNECTION', message: 'connection closed' });
    });
  }

  /** Read the banner, EHLO (HELO fallback), STARTTLS when asked and offered. */
  open(): Promise<void> {
    const opened = new Promise<void>((resolve, reject) => {
      this.#conn.connect((err) => (err ? reject(failureOf(err)) : resolve()));
    });
    return Promise.race([opened, this.#failed]);
  }

  /** Write one command and resolve with the server's reply, as received. */
  async command(line: string): Promise<string> {
    const send = await Promise.race([this.#commandChannel(), this.#failed]);
    const reply = await Promise.race([send(line), this.#failed]);
    return reply.response;
  }

  /** MAIL, RCPT, DATA and the message through nodemailer's send(); resolves with the last reply. */
  send(from: string, to: string, message: Buffer): Promise<string> {
    const sent = new Promise<string>((resolve, reject) => {
      const envelope = { from, to: [to], size: message.length, use8BitMime: has8bit(message) };
      this.#conn.send(envelope, message, (err, info) =>
        err ? reject(failureOf(err)) : resolve(info.response),
      );
    });
    return Promise.race([sent, this.#failed]);
  }

  /** Say QUIT and wait, at most `graceMs`, for the server to answer and the connection to end. */
  async quit(graceMs: number): Promise<void> {
    if (this.ended) return;
    let timer: NodeJS.Timeout | undefined;
    const ended = new Promise<void>((resolve) => {
      this.#conn.once('end', resolve);
      timer = setTimeout(resolve, graceMs);
    });
    this.#conn.quit();
    await ended;
    clearTimeout(timer);
  }

  /** Stop at once; idempotent. The owner still destroys the socket. */
  close(): void {
    this.#conn.close();
  }

  #commandChannel(): Promise<SendCommand> {
    this.#commands ??= new Promise<SendCommand>((resolve, reject) => {
      this.#handOut = resolve;
      const mechanism: SMTPConnection.Credentials & { method: string } = {
        method: COMMANDS,
        user: 'mailgate',
        pass: 'mailgate',
      };
      // The callback runs only if login() refuses outright (a closed connection).
      this.#conn.login(mechanism, (err) => {
        if (err) reject(failureOf(err));
      });
    });
    return this.#commands;
  }

  /** A bunyan-shaped logger that keeps the banner, the EHLO reply and the last verb. */
  #transcript() {
    const ignore = () => {};
    return {
      level: ignore,
      trace: ignore,
      info: ignore,
      warn: ignore,
      error: ignore,
      fatal: ignore,
      debug: (entry: { tnx?: string } | undefined, message: unknown) => {
        if (typeof message !== 'string') return;
        if (entry?.tnx === 'server') {
          if (this.banner === undefined) this.banner = message;
          else if (this.#greetingNext) this.greeting = message;
          this.#greetingNext = false;
        } else if (entry?.tnx === 'client') {
          this.lastVerb = (message.split(' ', 1)[0] ?? '').toUpperCase();
          this.#greetingNext = this.lastVerb === 'EHLO' || this.lastVerb === 'HELO';
        }
      },
    };
  }
}

function failureOf(err: unknown): SessionFailure {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as SMTPConnection.SMTPError;
  const failure: SessionFailure = { message: e.message };
  if (typeof e.code === 'string') failure.code = e.code;
  if (typeof e.response === 'string') failure.response = e.response;
  if (typeof e.command === 'string') failure.command = e.command;
  return failure;
}

function has8bit(message: Buffer): boolean {
  for (const byte of message) if (byte > 0x7f) return true;
  return false;
}
