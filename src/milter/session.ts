/**
 * The protocol state machine of one MTA connection, without sockets: packets in, handler
 * callbacks called in order, reply packets out. libmilter's behaviour is the model; where this
 * differs or chooses, the comment at the place says so.
 *
 * Lifecycle. The MTA opens with SMFIC_OPTNEG; then come one or more SMTP connections (each
 * started by SMFIC_CONNECT, or by any later command when CONNECT is not sent, and each ended by
 * SMFIC_QUIT_NC, SMFIC_QUIT or the socket closing), each with one handler; in a connection, any
 * number of messages. Every handler that was made gets `close` exactly once.
 *
 * Messages. A message starts with MAIL (or with the first message command when MAIL is not
 * sent) and ends with end-of-message, SMFIC_ABORT, or a final verdict. `abort` is called when a
 * message that is still open is aborted: by SMFIC_ABORT, by a new MAIL or HELO in the middle of
 * it, or by the end of the connection. As in libmilter it is not called after end of message or
 * after a final verdict ended the message, so the second ABORT Postfix sends is a no-op.
 *
 * Verdicts. As Postfix and Sendmail act on them: `accept`, `reject`, `tempfail` (or a custom
 * reply) at connect or helo end the handler's part in the connection; at envfrom, data, header, eoh, body
 * or eom they end the message; at envrcpt only `accept` ends the message (a rejected recipient
 * is just that recipient); at unknown they change nothing, except that `accept` ends an open
 * message. When the MTA sends commands for a connection or message that was already decided
 * (MTAs do not), the handler is not called and the deciding reply is repeated. `discard` at
 * connect or helo means nothing to an MTA (Postfix logs a warning and goes on), so it is sent
 * once, logged, and does not end the connection's handling.
 *
 * Errors. A callback that throws, rejects, outlasts callbackTimeoutMs or returns something that
 * is not a verdict or a valid SmtpReply is logged (logger.error with `err` and `step`) and
 * answered as definition.onError says; a failed eom sends no modifications. A protocol error
 * (bad packet, command out of place) goes to `io.close(error)`: the connection is dropped.
 */

import { commandName, type MilterCommand, parseCommand } from './command-codec.js';
import { Protocol } from './constants.js';
import { HandlerContext } from './context.js';
import { type Frame, MilterProtocolError } from './frame.js';
import { MacroStore, STAGE, stageOfCommand } from './macros.js';
import {
  type Negotiated,
  negotiate,
  type PreparedMilter,
  prepareMilter,
  STEP_FLAGS,
} from './negotiate.js';
import { encodeReplaceBody, encodeReply, simpleReplyFrame } from './reply-codec.js';
import { formatReply, isSmtpReply, MilterReplyError } from './smtp-reply.js';
import type {
  ConnectInfo,
  MaybePromise,
  MilterDefinition,
  MilterHandler,
  MilterLogger,
  RawHeaderField,
  Step,
  StepResult,
  Verdict,
} from './types.js';

/**
 * How long a callback may take before the session answers as `onError` says. It must stay below
 * the MTA's own wait (Postfix's milter_command_timeout is 30 s by default, Sendmail's T=R 10 s):
 * an MTA that gives up first drops the connection, and `onError` would never be heard.
 */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 8_000;

/** Where a session's packets go. */
export interface SessionIO {
  /** Send bytes to the MTA. */
  write(data: Buffer): void;
  /**
   * Close the connection: after SMFIC_QUIT without an error (end it gracefully), or with the
   * protocol error that makes it untrustworthy (report it and drop it).
   */
  close(error?: Error): void;
}

export interface SessionOptions {
  logger?: MilterLogger;
  /** A callback taking longer answers as the definition's onError says. */
  callbackTimeoutMs?: number;
  /** Who is at the other end, for log lines. */
  remote?: string;
  /** Called whenever the session has worked through every command it was given. */
  onDrain?: () => void;
}

/** A callback did not settle within callbackTimeoutMs. */
export class MilterCallbackTimeout extends Error {
  override name = 'MilterCallbackTimeout';
}

/** A callback threw or rejected; kept apart from results so any value can be a result. */
class CallbackFailure {
  constructor(readonly error: unknown) {}
}

type Scope = 'connection' | 'message' | 'recipient' | 'unknown';
type Outcome = { packet: Buffer; verdict: Verdict; failed: boolean };
type Later = void | Promise<void>;

const CONTINUE = simpleReplyFrame('continue');
const SKIP = simpleReplyFrame('skip');
const PROGRESS = simpleReplyFrame('progress');
const VERDICT_PACKETS: Record<Exclude<Verdict, 'skip'>, Buffer> = {
  continue: CONTINUE,
  accept: simpleReplyFrame('accept'),
  reject: simpleReplyFrame('reject'),
  tempfail: simpleReplyFrame('tempfail'),
  discard: simpleReplyFrame('discard'),
};

function isPromise(value: unknown): value is Promise<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Run `next` after `first`, synchronously when `first` was synchronous. */
function after(first: Later, next: () => Later): Later {
  return isPromise(first) ? first.then(next) : next();
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined (did it forget to return a verdict?)';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'object' && value !== null) return 'an object that is not an SmtpReply';
  return typeof value;
}

/** One MTA connection's protocol state. Feed it packets with `receive`. */
export class MilterSession {
  /** Resolves when the session is over and the last handler has been closed. */
  readonly finished: Promise<void>;

  private readonly milter: PreparedMilter;
  private readonly logger: MilterLogger | undefined;
  private readonly callbackTimeoutMs: number;
  private readonly remote: string | undefined;
  private readonly onDrain: (() => void) | undefined;
  private resolveFinished!: () => void;

  // The queue of packets received while a callback was pending.
  private queue: Array<Frame | undefined> = [];
  private head = 0;
  private queuedBytesCount = 0;
  /** Working through the queue, waiting for a callback, or cleaning up. */
  private running = false;
  /** No more commands will be processed (QUIT, protocol error, connection gone). */
  private stopped = false;
  /** Nothing more may be written (protocol error, connection gone). */
  private silent = false;
  private quitting = false;
  private cleanupStarted = false;

  private negotiated: Negotiated | undefined;
  private handler: MilterHandler | undefined;
  private context: HandlerContext | undefined;
  private connectInfo: ConnectInfo | undefined;
  private heloName: string | undefined;
  /** The reply that decided the connection; repeated if the MTA goes on anyway. */
  private connectionFinal: Buffer | undefined;
  private message: 'none' | 'open' | 'done' = 'none';
  /** The reply that decided the message. */
  private messageFinal: Buffer | undefined;
  private skipHeaders = false;
  private skipBody = false;
  private readonly macros = new MacroStore();
  /** The context whose eom callback is running: the only one allowed to modify. */
  private eomContext: HandlerContext | undefined;
  /** The connection's own context during an eom: handlers that kept it may use it too. */
  private eomBase: HandlerContext | undefined;
  private modifications: Buffer[] = [];
  private bodyParts: Buffer[] = [];

  /**
   * @example
   * const session = new MilterSession(definition, {
   *   write: (bytes) => socket.write(bytes),
   *   close: (error) => (error ? socket.destroy() : socket.end()),
   * });
   * session.receive({ code: 0x4f, payload });  // SMFIC_OPTNEG
   */
  constructor(
    milter: PreparedMilter | MilterDefinition,
    private readonly io: SessionIO,
    options: SessionOptions = {},
  ) {
    this.milter = 'plan' in milter ? milter : prepareMilter(milter);
    this.logger = options.logger;
    this.callbackTimeoutMs = options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
    this.remote = options.remote;
    this.onDrain = options.onDrain;
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  /** True while a callback is pending or commands are waiting: not idle, do not time out. */
  get busy(): boolean {
    return this.running;
  }

  /** Bytes of packets received and not yet processed. */
  get queuedBytes(): number {
    return this.queuedBytesCount;
  }

  /** What was agreed with the MTA, once SMFIC_OPTNEG was answered. */
  get options(): Readonly<Negotiated> | undefined {
    return this.negotiated;
  }

  /** Whether the session has stopped taking commands. */
  get closed(): boolean {
    return this.stopped;
  }

  /**
   * Take one packet from the MTA. Packets are processed strictly in order; while a callback is
   * pending they wait in a queue (the server stops reading when it grows).
   */
  receive(frame: Frame): void {
    if (this.stopped) return;
    this.queue.push(frame);
    this.queuedBytesCount += frame.payload.length + 5;
    if (!this.running) {
      this.running = true;
      this.pump();
    }
  }

  /**
   * The connection is gone (closed by the MTA, idle, server shutdown): no more writes; the open
   * message is aborted and the handler closed, after the callback that may be running.
   */
  terminate(): Promise<void> {
    if (this.running && !this.stopped && !this.silent) {
      this.logger?.warn(
        { callbackTimeoutMs: this.callbackTimeoutMs },
        'the MTA closed the connection while a callback was running (its timeout is shorter than ours?)',
      );
    }
    this.silent = true;
    if (!this.stopped) {
      this.stopped = true;
      if (!this.running) this.cleanup();
    }
    return this.finished;
  }

  // ---- the queue ----------------------------------------------------------------------------

  private dequeue(): Frame | undefined {
    if (this.head >= this.queue.length) {
      if (this.queue.length > 0) {
        this.queue = [];
        this.head = 0;
      }
      return undefined;
    }
    const frame = this.queue[this.head]!;
    this.queue[this.head] = undefined;
    this.head += 1;
    this.queuedBytesCount -= frame.payload.length + 5;
    return frame;
  }

  private pump(): void {
    while (!this.stopped) {
      const frame = this.dequeue();
      if (frame === undefined) {
        this.running = false;
        this.onDrain?.();
        return;
      }
      let pending: Later;
      try {
        pending = this.process(frame);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (pending) {
        pending.then(
          () => this.pump(),
          (err: unknown) => this.fail(err),
        );
        return;
      }
    }
    this.cleanup();
  }

  private fail(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const wasSilent = this.silent;
    this.stopped = true;
    this.silent = true;
    if (!wasSilent) this.io.close(error);
    this.cleanup();
  }

  /** End the session: abort the open message, close the handler, then tell the io. */
  private cleanup(): void {
    if (this.cleanupStarted) return;
    this.cleanupStarted = true;
    this.running = true;
    this.queue = [];
    this.head = 0;
    this.queuedBytesCount = 0;
    const done = () => {
      this.running = false;
      if (this.quitting && !this.silent) this.io.close();
      this.resolveFinished();
    };
    let pending: Later;
    try {
      pending = this.endConnection();
    } catch (err) {
      this.logError('close', err);
      done();
      return;
    }
    if (pending) {
      pending.then(done, (err: unknown) => {
        this.logError('close', err);
        done();
      });
    } else {
      done();
    }
  }

  private write(packet: Buffer): void {
    if (!this.silent) this.io.write(packet);
  }

  // ---- commands -----------------------------------------------------------------------------

  private process(frame: Frame): Later {
    const command = parseCommand(frame.code, frame.payload);
    if (this.negotiated === undefined) {
      if (command.type === 'optneg') return this.onOptneg(command);
      if (command.type === 'quit') return this.onQuit();
      throw new MilterProtocolError(`${commandName(frame.code)} before option negotiation`);
    }
    switch (command.type) {
      case 'optneg':
        throw new MilterProtocolError('a second SMFIC_OPTNEG on the same connection');
      case 'macro':
        return this.onMacro(command);
      case 'connect': {
        const { type: _, ...info } = command;
        return this.onConnect(info);
      }
      case 'helo':
        return this.onHelo(command.name);
      case 'mail':
        return this.onMail(command.args);
      case 'rcpt':
        return this.onRcpt(command.args);
      case 'data':
        return this.onData();
      case 'header':
        return this.onHeader(command.name, command.value, command.raw);
      case 'eoh':
        return this.onEoh();
      case 'body':
        return this.onBody(command.chunk);
      case 'eob':
        return this.onEndOfMessage(command.chunk);
      case 'abort':
        return after(this.abortMessage(), () => this.macros.clearFrom(STAGE.envfrom));
      case 'quit':
        return this.onQuit();
      case 'quitNc':
        // The SMTP connection ends, the MTA connection stays: the next CONNECT gets a new
        // handler and the options negotiated here.
        return after(this.endConnection(), () => this.macros.clearFrom(STAGE.connect));
      case 'unknown':
        return this.onUnknown(command.line);
    }
  }

  private onOptneg(command: Extract<MilterCommand, { type: 'optneg' }>): void {
    let result: ReturnType<typeof negotiate>;
    try {
      result = negotiate(this.milter.plan, command);
    } catch (err) {
      throw new MilterProtocolError((err as Error).message);
    }
    this.negotiated = result.negotiated;
    if (result.negotiated.missingActions !== 0) {
      this.logger?.warn(
        {
          milter: this.milter.definition.name,
          remote: this.remote,
          missing: `0x${result.negotiated.missingActions.toString(16)}`,
          offered: `0x${command.actions.toString(16)}`,
        },
        'the MTA does not offer every action the milter lists; those actions will throw',
      );
    }
    this.write(encodeReply(result.reply));
  }

  private onMacro(command: Extract<MilterCommand, { type: 'macro' }>): void {
    const stage = stageOfCommand(command.stage);
    if (stage === undefined) return;
    this.macros.set(stage, command.macros);
    // Envelope-from macros announce a new MAIL: a message decided earlier is behind us.
    if (stage === STAGE.envfrom && this.message === 'done') this.resetMessage('none');
  }

  private onConnect(info: ConnectInfo): Later {
    const begin = (): Later => {
      this.macros.clearFrom(STAGE.helo);
      this.resetMessage('none');
      this.connectInfo = info;
      this.heloName = undefined;
      this.connectionFinal = undefined;
      const [handler, context] = this.openConnection();
      return this.step(
        'connect',
        'connection',
        handler.connect ? () => handler.connect!(context, info) : undefined,
      );
    };
    // A CONNECT in a running connection (no QUIT_NC first) ends the running one; libmilter
    // would drop the command and leave the MTA waiting.
    return this.handler ? after(this.endConnection(), begin) : begin();
  }

  private onHelo(name: string): Later {
    const [handler, context] = this.openConnection();
    const go = (): Later => {
      this.resetMessage('none');
      this.heloName = name;
      this.macros.clearFrom(STAGE.envfrom);
      return this.step(
        'helo',
        'connection',
        handler.helo ? () => handler.helo!(context, name) : undefined,
      );
    };
    // HELO in the middle of a message aborts it (libmilter does the same).
    return this.message === 'open' ? after(this.abortMessage(), go) : go();
  }

  private onMail(args: string[]): Later {
    const [handler, context] = this.openConnection();
    const go = (): Later => {
      this.macros.clearFrom(STAGE.envrcpt);
      this.resetMessage(this.connectionFinal ? 'none' : 'open');
      const [sender, ...params] = args;
      return this.step(
        'envfrom',
        'message',
        handler.envfrom ? () => handler.envfrom!(context, sender!, params) : undefined,
      );
    };
    // A MAIL in an open message: the old one was aborted without SMFIC_ABORT.
    return this.message === 'open' ? after(this.abortMessage(), go) : go();
  }

  private onRcpt(args: string[]): Later {
    const [handler, context] = this.openConnection();
    this.macros.clearFrom(STAGE.data);
    this.beginMessage();
    const [recipient, ...params] = args;
    return this.step(
      'envrcpt',
      'recipient',
      handler.envrcpt ? () => handler.envrcpt!(context, recipient!, params) : undefined,
    );
  }

  private onData(): Later {
    const [handler, context] = this.openConnection();
    this.macros.clearFrom(STAGE.eoh);
    this.beginMessage();
    return this.step('data', 'message', handler.data ? () => handler.data!(context) : undefined);
  }

  private onHeader(name: string, value: string, bytes?: { name: Buffer; value: Buffer }): Later {
    const [handler, context] = this.openConnection();
    this.beginMessage();
    const raw: RawHeaderField = {
      name: bytes?.name ?? Buffer.from(name),
      value: bytes?.value ?? Buffer.from(value),
      leadingSpace: this.contextHost.headerLeadingSpace,
    };
    return this.step(
      'header',
      'message',
      handler.header ? () => handler.header!(context, name, value, raw) : undefined,
    );
  }

  private onEoh(): Later {
    const [handler, context] = this.openConnection();
    this.macros.clearFrom(STAGE.eom);
    this.beginMessage();
    return this.step('eoh', 'message', handler.eoh ? () => handler.eoh!(context) : undefined);
  }

  private onBody(chunk: Buffer): Later {
    const [handler, context] = this.openConnection();
    this.beginMessage();
    return this.step(
      'body',
      'message',
      handler.body ? () => handler.body!(context, chunk) : undefined,
    );
  }

  private onUnknown(line: string): Later {
    const [handler, context] = this.openConnection();
    return this.step(
      'unknown',
      'unknown',
      handler.unknown ? () => handler.unknown!(context, line) : undefined,
    );
  }

  private onQuit(): void {
    // The pump sees `stopped`, aborts and closes the handler, then closes the connection.
    this.stopped = true;
    this.quitting = true;
  }

  /**
   * End of message. Sendmail may send the last body chunk with it: like libmilter, it goes to
   * the body callback first, and a final verdict there is the answer. Then eom runs; its
   * modifications and the final reply go out in one write. If eom fails (throws, times out or
   * returns something invalid) its modifications are dropped and onError answers alone.
   */
  private onEndOfMessage(chunk: Buffer): Later {
    const [handler, context] = this.openConnection();
    this.beginMessage();
    if (this.connectionFinal) {
      this.write(this.connectionFinal);
      return;
    }
    if (this.message === 'done') {
      const final = this.messageFinal!;
      this.resetMessage('none');
      this.write(final);
      return;
    }
    if (chunk.length === 0 || this.skipBody || !handler.body)
      return this.endOfMessage(handler, context);
    const noReply = this.noReply('body');
    const result = this.invoke('body', () => handler.body!(context, chunk));
    const next = (value: unknown): Later => {
      if (noReply) {
        if (value instanceof CallbackFailure) this.logError('body', value.error);
        return this.endOfMessage(handler, context);
      }
      const outcome = this.outcome('body', value);
      if (outcome.verdict === 'continue' || outcome.verdict === 'skip') {
        return this.endOfMessage(handler, context);
      }
      this.resetMessage('none');
      this.write(outcome.packet);
    };
    return isPromise(result) ? result.then(next) : next(result);
  }

  private endOfMessage(handler: MilterHandler, context: HandlerContext): Later {
    this.modifications = [];
    this.bodyParts = [];
    if (!handler.eom) {
      this.resetMessage('none');
      this.write(CONTINUE);
      return;
    }
    // Each eom call gets a view of its own: a late action from an eom that timed out must not
    // land in the next message's end of message.
    const view = Object.create(context) as HandlerContext;
    this.eomContext = view;
    this.eomBase = context;
    const result = this.invoke('eom', () => handler.eom!(view));
    const finish = (value: unknown): void => {
      this.eomContext = undefined;
      this.eomBase = undefined;
      const outcome = this.outcome('eom', value);
      const parts = outcome.failed ? [] : this.modifications;
      if (!outcome.failed && this.bodyParts.length > 0) {
        parts.push(encodeReplaceBody(Buffer.concat(this.bodyParts)));
      }
      this.resetMessage('none');
      // One write: Postfix reads the modifications and the verdict as one answer.
      this.write(parts.length > 0 ? Buffer.concat([...parts, outcome.packet]) : outcome.packet);
    };
    if (isPromise(result)) return result.then(finish);
    finish(result);
  }

  // ---- connection and message state ---------------------------------------------------------

  /** The handler of the running SMTP connection, made when the connection's first command comes. */
  private openConnection(): [MilterHandler, HandlerContext] {
    if (this.handler === undefined) {
      try {
        this.handler = this.milter.createHandler();
      } catch (err) {
        // Without a handler nothing can be decided: the connection gets the onError answer.
        this.logError('connect', err);
        this.handler = {};
        this.connectionFinal = VERDICT_PACKETS[this.milter.definition.onError ?? 'tempfail'];
      }
      this.context = new HandlerContext(this.contextHost);
    }
    return [this.handler, this.context!];
  }

  /** Abort the open message (calling `abort`), or just forget a decided one. */
  private abortMessage(): Later {
    const wasOpen = this.message === 'open';
    this.resetMessage('none');
    if (!wasOpen || this.handler === undefined) return;
    return this.aux('abort', this.handler, this.context!);
  }

  /** End the SMTP connection: abort the open message, close the handler, forget its facts. */
  private endConnection(): Later {
    const handler = this.handler;
    const context = this.context;
    const forget = () => {
      this.handler = undefined;
      this.context = undefined;
      this.connectInfo = undefined;
      this.heloName = undefined;
      this.connectionFinal = undefined;
    };
    if (handler === undefined) {
      this.resetMessage('none');
      forget();
      return;
    }
    const close = (): Later => after(this.aux('close', handler, context!), forget);
    return after(this.abortMessage(), close);
  }

  /** Message commands start a message when none is open (MAIL may not be sent at all). */
  private beginMessage(): void {
    if (this.message === 'none' && !this.connectionFinal) this.resetMessage('open');
  }

  private resetMessage(next: 'none' | 'open'): void {
    this.message = next;
    this.messageFinal = undefined;
    this.skipHeaders = false;
    this.skipBody = false;
    this.modifications = [];
    this.bodyParts = [];
  }

  private noReply(step: Step): boolean {
    return (this.negotiated!.protocol & STEP_FLAGS[step].noReply) !== 0;
  }

  // ---- callbacks ----------------------------------------------------------------------------

  /**
   * One step: the handler is called unless the connection or message was decided, the step is
   * being skipped, or there is no callback; the reply is written unless the step is NR_*.
   */
  private step(
    step: Step,
    scope: Scope,
    call: (() => MaybePromise<StepResult>) | undefined,
  ): Later {
    const noReply = this.noReply(step);
    const decided =
      this.connectionFinal ??
      (scope !== 'connection' && scope !== 'unknown' && this.message === 'done'
        ? this.messageFinal
        : undefined) ??
      ((step === 'header' && this.skipHeaders) || (step === 'body' && this.skipBody)
        ? SKIP
        : undefined);
    if (decided !== undefined || call === undefined) {
      if (!noReply) this.write(decided ?? CONTINUE);
      return;
    }
    const result = this.invoke(step, call);
    if (isPromise(result)) return result.then((value) => this.settle(step, scope, noReply, value));
    this.settle(step, scope, noReply, result);
  }

  private settle(step: Step, scope: Scope, noReply: boolean, value: unknown): void {
    if (noReply) {
      // The MTA waits for nothing, so the result is ignored (as libmilter does); failures are
      // still logged.
      if (value instanceof CallbackFailure) this.logError(step, value.error);
      return;
    }
    const { packet, verdict } = this.outcome(step, value);
    this.write(packet);
    if (verdict === 'continue') return;
    if (verdict === 'skip') {
      if (step === 'header') this.skipHeaders = true;
      else this.skipBody = true;
      return;
    }
    if (scope === 'connection') {
      // Postfix refuses DISCARD at connect and HELO and goes on; making it final would discard
      // every later message. It is sent once, and the handler keeps its say.
      if (verdict === 'discard') {
        this.logger?.warn({ step }, `'discard' means nothing at ${step}; the MTA ignores it`);
        return;
      }
      this.connectionFinal = packet;
    } else if (scope === 'message' || verdict === 'accept') {
      if (scope === 'message' || this.message === 'open') {
        this.message = 'done';
        this.messageFinal = packet;
      }
    }
  }

  /** The reply packet for a callback's result, with failures and invalid results mapped to onError. */
  private outcome(step: string, value: unknown): Outcome {
    if (value instanceof CallbackFailure) {
      this.logError(step, value.error);
      return this.errorOutcome();
    }
    if (typeof value === 'string') {
      if (value === 'skip') {
        // Only where it means something (body, and header) and only where negotiated.
        const allowed =
          (step === 'body' || step === 'header') &&
          (this.negotiated!.protocol & Protocol.SKIP) !== 0;
        return allowed
          ? { packet: SKIP, verdict: 'skip', failed: false }
          : { packet: CONTINUE, verdict: 'continue', failed: false };
      }
      const packet = VERDICT_PACKETS[value as Exclude<Verdict, 'skip'>];
      if (packet !== undefined) return { packet, verdict: value as Verdict, failed: false };
    } else if (isSmtpReply(value)) {
      try {
        const text = formatReply(value);
        const verdict = value.code < 500 ? 'tempfail' : 'reject';
        return { packet: encodeReply({ type: 'replyCode', text }), verdict, failed: false };
      } catch (err) {
        this.logError(step, err);
        return this.errorOutcome();
      }
    }
    this.logError(
      step,
      new MilterReplyError(
        `the ${step} callback returned ${describeValue(value)}; expected 'continue', 'accept', 'reject', 'tempfail', 'discard', 'skip' or an SmtpReply`,
      ),
    );
    return this.errorOutcome();
  }

  private errorOutcome(): Outcome {
    const verdict = this.milter.definition.onError ?? 'tempfail';
    return { packet: VERDICT_PACKETS[verdict], verdict, failed: true };
  }

  /**
   * Call a callback: a synchronous result comes back as it is (no promise, no timer); a promise
   * is bounded by callbackTimeoutMs. Throws and rejections come back as CallbackFailure.
   */
  private invoke(step: string, call: () => unknown): unknown {
    let value: unknown;
    try {
      value = call();
    } catch (err) {
      return new CallbackFailure(err);
    }
    if (!isPromise(value)) return value;
    const ms = this.callbackTimeoutMs;
    return new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => {
        resolve(
          new CallbackFailure(
            new MilterCallbackTimeout(`the ${step} callback did not finish within ${ms} ms`),
          ),
        );
      }, ms);
      timer.unref();
      Promise.resolve(value).then(
        (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        (err: unknown) => {
          clearTimeout(timer);
          resolve(new CallbackFailure(err));
        },
      );
    });
  }

  /** Call abort or close; failures are logged, there is nothing to answer. */
  private aux(step: 'abort' | 'close', handler: MilterHandler, context: HandlerContext): Later {
    const callback = handler[step];
    if (typeof callback !== 'function') return;
    const result = this.invoke(step, () => callback.call(handler, context));
    const done = (value: unknown) => {
      if (value instanceof CallbackFailure) this.logError(step, value.error);
    };
    if (isPromise(result)) return result.then(done);
    done(result);
  }

  private logError(step: string, err: unknown): void {
    this.logger?.error(
      { err, step, milter: this.milter.definition.name, remote: this.remote },
      `milter ${this.milter.definition.name}: the ${step} callback failed`,
    );
  }

  // ---- what contexts see ----------------------------------------------------------------------

  private readonly contextHost = {
    session: this,
    get connection(): ConnectInfo | undefined {
      return this.session.connectInfo;
    },
    get helo(): string | undefined {
      return this.session.heloName;
    },
    getSymbol: (name: string) => this.macros.get(name),
    get headerLeadingSpace(): boolean {
      return ((this.session.negotiated?.protocol ?? 0) & Protocol.HDR_LEADSPC) !== 0;
    },
    get actions() {
      const negotiated = this.session.negotiated;
      return {
        agreed: negotiated?.actions ?? 0,
        offered: negotiated?.offered.actions ?? 0,
        listed: this.session.milter.plan.actions,
      };
    },
    inEom: (context: HandlerContext) =>
      context === this.eomContext || (context !== undefined && context === this.eomBase),
    inCallback: () => this.running,
    modify: (packet: Buffer) => {
      this.modifications.push(packet);
    },
    replaceBody: (chunk: Buffer) => {
      this.bodyParts.push(chunk);
    },
    progress: () => this.write(PROGRESS),
  };
}
