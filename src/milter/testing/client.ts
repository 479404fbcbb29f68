/**
 * The MTA side of the milter protocol, for people who write milters and want to test them (what
 * pymilter's test context is for pymilter): connect to a milter, negotiate, play an SMTP session
 * step by step, and get its replies and end-of-message modifications back, decoded and checked.
 * It behaves like an MTA: a step the milter asked not to get (NO*) is not sent, a step it
 * answers nothing for (NR_*) is not waited for, and after `skip` the skipped step is not sent
 * again. Replies that break the protocol are errors with a clear message, never guesses.
 */

import { connect as netConnect, type Socket } from 'node:net';
import { parseListenSpec } from '../../listen/index.js';
import {
  encodeCommand,
  FrameDecoder,
  type MilterCommand,
  MilterProtocolError,
  type MilterReply,
  parseReply,
  replyName,
} from '../codec.js';
import { Action, Command, MILTER_CHUNK_SIZE, Protocol, Reply } from '../constants.js';
import { ACTION_FLAGS, MACRO_STAGE_NUMBER, STEP_FLAGS } from '../negotiate.js';
import type { ConnectInfo, MacroStageName, Step } from '../types.js';

/** What the MTA does with a step's reply. A custom reply is `reject` (5xx) or `tempfail` (4xx). */
export type ResponseVerdict =
  | 'continue'
  | 'accept'
  | 'reject'
  | 'tempfail'
  | 'discard'
  | 'skip'
  | 'shutdown'
  | 'connFail';

/** A milter's answer to one step. */
export interface MilterResponse {
  verdict: ResponseVerdict;
  /** The custom reply (SMFIR_REPLYCODE), `%%` undone as Postfix does. */
  reply?: { code: number; xcode: string; lines: string[]; text: string };
}

/** An end-of-message modification, decoded. Consecutive body parts come as one replaceBody. */
export type Modification =
  | { action: 'addHeader'; name: string; value: string }
  | { action: 'insertHeader'; index: number; name: string; value: string }
  | { action: 'changeHeader'; index: number; name: string; value: string }
  | { action: 'addRecipient'; recipient: string }
  | { action: 'addRecipientWithArgs'; recipient: string; args?: string }
  | { action: 'deleteRecipient'; recipient: string }
  | { action: 'changeFrom'; sender: string; args?: string }
  | { action: 'replaceBody'; body: Buffer }
  | { action: 'quarantine'; reason: string }
  | { action: 'progress' };

export interface EomResult {
  modifications: Modification[];
  verdict: MilterResponse;
}

export interface NegotiationResult {
  version: number;
  actions: number;
  protocol: number;
  /** Macro lists the milter asked for, per stage (names as sent, e.g. `{auth_authen}`). */
  macros: Partial<Record<MacroStageName, string[]>>;
}

/** One line of the client's log. */
export type ClientLogEntry =
  | { direction: 'sent'; command: MilterCommand }
  | { direction: 'received'; reply: MilterReply };

export interface ClientOptions {
  /** Connecting, and waiting for each reply. Default 10 s. */
  timeoutMs?: number;
  /** Largest reply packet accepted. Default 1 MiB + 1 KiB. */
  maxPacketBytes?: number;
  /** Keep `log` (default true; turn off for long benchmark runs). */
  log?: boolean;
}

/** The header command for text or bytes. */
function headerCommand(name: string | Buffer, value: string | Buffer): MilterCommand {
  if (typeof name === 'string' && typeof value === 'string') return { type: 'header', name, value };
  const raw = {
    name: typeof name === 'string' ? Buffer.from(name) : name,
    value: typeof value === 'string' ? Buffer.from(value) : value,
  };
  return { type: 'header', name: raw.name.toString(), value: raw.value.toString(), raw };
}

/** A message for `transaction`: one MAIL, its recipients, the header and body. */
export interface Transaction {
  sender: string;
  senderArgs?: string[];
  recipients: Array<string | { address: string; args?: string[] }>;
  headers?: Array<[name: string | Buffer, value: string | Buffer]>;
  body?: Buffer | string;
  /** Macros sent (as SMFIC_MACRO) before the command of that stage. */
  macros?: Partial<Record<'envfrom' | 'envrcpt' | 'data' | 'eoh' | 'eom', Record<string, string>>>;
}

export interface TransactionResult {
  /** The answers of the steps that are answered, in order. */
  responses: Array<{ step: Step; response: MilterResponse }>;
  eom: EomResult;
}

/** The milter broke the protocol, did not answer in time, or the connection failed. */
export class MilterClientError extends Error {
  override name = 'MilterClientError';
}

const VERDICT_OF: Partial<Record<MilterReply['type'], ResponseVerdict>> = {
  continue: 'continue',
  accept: 'accept',
  reject: 'reject',
  tempfail: 'tempfail',
  discard: 'discard',
  skip: 'skip',
  shutdown: 'shutdown',
  connFail: 'connFail',
};

// The flag each modification needs: the milter's own table, and insertHeader, which rides on
// the add-headers flag.
const MODIFICATION_FLAG: Partial<Record<MilterReply['type'], number>> = {
  ...ACTION_FLAGS,
  insertHeader: Action.ADDHDRS,
};

const STAGE_NAME = new Map<number, MacroStageName>(
  Object.entries(MACRO_STAGE_NUMBER).map(([name, number]) => [number, name as MacroStageName]),
);

const STEP_OF_COMMAND: Partial<Record<MilterCommand['type'], Step>> = {
  connect: 'connect',
  helo: 'helo',
  mail: 'envfrom',
  rcpt: 'envrcpt',
  data: 'data',
  header: 'header',
  eoh: 'eoh',
  body: 'body',
  unknown: 'unknown',
};

/**
 * Parse an SMFIR_REPLYCODE text as Postfix checks it: `ddd` 4xx/5xx, then space or dash, then
 * an enhanced code of the same class on every line.
 */
function parseReplyText(text: string): NonNullable<MilterResponse['reply']> {
  const rawLines = text.split('\r\n');
  const lines: string[] = [];
  let code = 0;
  let xcode = '';
  rawLines.forEach((line, i) => {
    const match = /^([45][0-9][0-9])([ -])([45]\.[0-9]{1,3}\.[0-9]{1,3}) (.*)$/s.exec(line);
    const last = i === rawLines.length - 1;
    if (!match || match[3]![0] !== match[1]![0] || (match[2] === ' ') !== last) {
      throw new MilterClientError(`malformed SMFIR_REPLYCODE text ${JSON.stringify(text)}`);
    }
    if (i === 0) {
      code = Number(match[1]);
      xcode = match[3]!;
    } else if (Number(match[1]) !== code) {
      throw new MilterClientError(
        `SMFIR_REPLYCODE lines disagree on the code: ${JSON.stringify(text)}`,
      );
    }
    // Sendmail formats the text, so the milter doubles '%'; Postfix undoes that, and so do we.
    lines.push(match[4]!.replace(/%(.)/gs, '$1'));
  });
  return { code, xcode, lines, text };
}

/**
 * A connection to a milter, as an MTA makes it.
 *
 * @example
 * const client = await MilterClient.connect('inet:8891@127.0.0.1');
 * await client.negotiate();
 * await client.macro('C', { j: 'mx.example.org' });
 * await client.connect('client.example.com', 'inet', 40000, '192.0.2.1');
 * const reply = await client.helo('client.example.com');  // { verdict: 'continue' }
 * await client.mail('<a@example.com>');
 * await client.rcpt('<b@example.org>');
 * const { modifications, verdict } = await client.eom();
 * await client.quit();
 * await client.close();
 */
export class MilterClient {
  /** Every command sent and reply received, in order (unless turned off). */
  readonly log: ClientLogEntry[] = [];

  private readonly decoder: FrameDecoder;
  private readonly replies: MilterReply[] = [];
  /** Reads waiting for a reply, first come first served (concurrent steps pipeline). */
  private readonly waiters: Array<{
    resolve: (reply: MilterReply) => void;
    reject: (err: Error) => void;
    timer: NodeJS.Timeout | undefined;
  }> = [];
  private failure: Error | undefined;
  private negotiated: NegotiationResult | undefined;
  /** The step the milter said to skip, until another step is sent (Postfix's rule). */
  private skipping: Step | undefined;
  private readonly keepLog: boolean;
  private readonly timeoutMs: number;
  private readonly closedPromise: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    options: ClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.keepLog = options.log ?? true;
    this.decoder = new FrameDecoder({ maxPacketBytes: options.maxPacketBytes });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.failWith(new MilterClientError(`connection error: ${err.message}`)),
    );
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.failWith(new MilterClientError('the milter closed the connection'));
        resolve();
      });
    });
  }

  /**
   * Connect to a milter at a listen spec (`inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path`).
   *
   * @example
   * const client = await MilterClient.connect(server.address!, { timeoutMs: 2000 });
   */
  static connect(spec: string, options: ClientOptions = {}): Promise<MilterClient> {
    const parsed = parseListenSpec(spec);
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket =
        parsed.kind === 'unix'
          ? netConnect(parsed.path)
          : netConnect({ host: parsed.host, port: parsed.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new MilterClientError(`connecting to ${spec} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new MilterClientError(`cannot connect to ${spec}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new MilterClient(socket, options));
      });
    });
  }

  /** What was negotiated, once `negotiate` returned. */
  get options(): NegotiationResult | undefined {
    return this.negotiated;
  }

  /** Resolves when the connection is closed (by either side). */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  // ---- the protocol steps ----------------------------------------------------------------------

  /**
   * Offer options and read the milter's choice. Defaults are what Postfix 3.7 offers: version 6,
   * every action (0x1FF), every protocol flag (0x1FFFFF). The answer is checked: a version above
   * ours, or actions or protocol flags not offered, are errors.
   *
   * @example
   * const { protocol, macros } = await client.negotiate();
   */
  async negotiate(
    offer: { version?: number; actions?: number; protocol?: number } = {},
  ): Promise<NegotiationResult> {
    const version = offer.version ?? 6;
    const actions = offer.actions ?? 0x1ff;
    const protocol = offer.protocol ?? 0x1fffff;
    this.send({ type: 'optneg', version, actions, protocol });
    const reply = await this.nextReply();
    if (reply.type !== 'optneg') {
      throw this.fatal(`expected the SMFIC_OPTNEG answer, got ${describeReply(reply)}`);
    }
    if (reply.version > version || reply.version < 2) {
      throw this.fatal(
        `the milter chose protocol version ${reply.version}; ${version} was offered`,
      );
    }
    if ((reply.actions & ~actions) !== 0) {
      throw this.fatal(
        `the milter asked for actions 0x${reply.actions.toString(16)}; 0x${actions.toString(16)} were offered`,
      );
    }
    if ((reply.protocol & ~protocol) !== 0) {
      throw this.fatal(
        `the milter asked for protocol flags 0x${reply.protocol.toString(16)}; 0x${protocol.toString(16)} were offered`,
      );
    }
    const macros: NegotiationResult['macros'] = {};
    for (const { stage, names } of reply.symbols) {
      const name = STAGE_NAME.get(stage);
      if (name === undefined) throw this.fatal(`macro list for unknown stage ${stage}`);
      if ((reply.actions & Action.SETSYMLIST) === 0) {
        throw this.fatal('macro lists sent without the SETSYMLIST action');
      }
      macros[name] = names.split(' ').filter(Boolean);
    }
    this.negotiated = {
      version: reply.version,
      actions: reply.actions,
      protocol: reply.protocol,
      macros,
    };
    return this.negotiated;
  }

  /**
   * Send macros for a stage (SMFIC_MACRO); there is no reply. `stage` is the command letter the
   * macros go with: `C`, `H`, `M`, `R`, `T`, `L`, `N`, `B` or `E`.
   *
   * @example
   * await client.macro('M', { i: 'ABC123', '{auth_authen}': 'alice' });
   */
  async macro(
    stage: string | number,
    pairs: Record<string, string> | Array<[string, string]>,
  ): Promise<void> {
    const byte = typeof stage === 'number' ? stage : stage.charCodeAt(0);
    const macros = Array.isArray(pairs) ? pairs : Object.entries(pairs);
    this.send({ type: 'macro', stage: byte, macros });
  }

  /** SMFIC_CONNECT. Port and address are not sent for family 'unknown'. */
  connect(
    hostname: string,
    family: ConnectInfo['family'],
    port = 0,
    address = '',
  ): Promise<MilterResponse | undefined> {
    return this.step({ type: 'connect', hostname, family, port, address });
  }

  helo(name: string): Promise<MilterResponse | undefined> {
    return this.step({ type: 'helo', name });
  }

  mail(sender: string, args: string[] = []): Promise<MilterResponse | undefined> {
    return this.step({ type: 'mail', args: [sender, ...args] });
  }

  rcpt(recipient: string, args: string[] = []): Promise<MilterResponse | undefined> {
    return this.step({ type: 'rcpt', args: [recipient, ...args] });
  }

  data(): Promise<MilterResponse | undefined> {
    return this.step({ type: 'data' });
  }

  /** A header field; Buffers go on the wire as they are (8-bit, as an MTA may pass them). */
  header(name: string | Buffer, value: string | Buffer): Promise<MilterResponse | undefined> {
    return this.step(headerCommand(name, value));
  }

  eoh(): Promise<MilterResponse | undefined> {
    return this.step({ type: 'eoh' });
  }

  /**
   * Body content, cut into SMFIC_BODY packets of at most 65535 bytes as an MTA does. Returns the
   * answer to the last packet sent, or the first answer that is not `continue` (then the rest is
   * not sent); nothing is sent for empty content.
   */
  async body(content: Buffer | string): Promise<MilterResponse | undefined> {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    let last: MilterResponse | undefined;
    for (let at = 0; at < bytes.length; at += MILTER_CHUNK_SIZE) {
      last = await this.step({ type: 'body', chunk: bytes.subarray(at, at + MILTER_CHUNK_SIZE) });
      if (last !== undefined && last.verdict !== 'continue') return last;
    }
    return last;
  }

  unknown(line: string): Promise<MilterResponse | undefined> {
    return this.step({ type: 'unknown', line });
  }

  /** End of message: the modifications (in the order sent) and the final answer. */
  async eom(lastChunk: Buffer = Buffer.alloc(0)): Promise<EomResult> {
    this.requireNegotiated();
    this.skipping = undefined;
    this.send({ type: 'eob', chunk: lastChunk });
    return this.readEom();
  }

  /** SMFIC_ABORT: the message is over (no reply). */
  async abort(): Promise<void> {
    this.skipping = undefined;
    this.send({ type: 'abort' });
  }

  /** SMFIC_QUIT: the connection is over (no reply); the milter closes it. */
  async quit(): Promise<void> {
    this.send({ type: 'quit' });
  }

  /** SMFIC_QUIT_NC: this SMTP connection is over, another follows on this socket (no reply). */
  async quitNc(): Promise<void> {
    this.skipping = undefined;
    this.send({ type: 'quitNc' });
  }

  /** Close the socket. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.closedPromise;
  }

  /**
   * A whole message in one write, for benchmarks: the MAIL, RCPT, DATA, header, EOH, body and
   * end-of-message commands (each with its macros, when given) are written at once, then the
   * answers are read in order. NO* steps are left out and NR_* steps are not waited for, as in
   * the step methods. Pipelining like this relies on the milter answering every command it is
   * sent, even after a final verdict; this library's milters do, a libmilter milter may not.
   *
   * @example
   * const { responses, eom } = await client.transaction({
   *   sender: '<a@example.com>', recipients: ['<b@example.org>'],
   *   headers: [['Subject', 'hi']], body: 'hello\r\n',
   * });
   */
  async transaction(message: Transaction): Promise<TransactionResult> {
    const negotiated = this.requireNegotiated();
    const packets: Buffer[] = [];
    const answered: Step[] = [];
    const add = (command: MilterCommand) => {
      const step = STEP_OF_COMMAND[command.type];
      if (step !== undefined && negotiated.protocol & STEP_FLAGS[step].no) return;
      packets.push(this.encode(command));
      if (step !== undefined && !(negotiated.protocol & STEP_FLAGS[step].noReply))
        answered.push(step);
    };
    const macros = (stage: keyof NonNullable<Transaction['macros']>, letter: number) => {
      const pairs = message.macros?.[stage];
      if (pairs) add({ type: 'macro', stage: letter, macros: Object.entries(pairs) });
    };
    macros('envfrom', Command.MAIL);
    add({ type: 'mail', args: [message.sender, ...(message.senderArgs ?? [])] });
    for (const recipient of message.recipients) {
      macros('envrcpt', Command.RCPT);
      const { address, args } =
        typeof recipient === 'string' ? { address: recipient, args: [] } : recipient;
      add({ type: 'rcpt', args: [address, ...(args ?? [])] });
    }
    macros('data', Command.DATA);
    add({ type: 'data' });
    for (const [name, value] of message.headers ?? []) add(headerCommand(name, value));
    macros('eoh', Command.EOH);
    add({ type: 'eoh' });
    const body =
      typeof message.body === 'string'
        ? Buffer.from(message.body, 'utf8')
        : (message.body ?? Buffer.alloc(0));
    for (let at = 0; at < body.length; at += MILTER_CHUNK_SIZE) {
      add({ type: 'body', chunk: body.subarray(at, at + MILTER_CHUNK_SIZE) });
    }
    macros('eom', Command.BODYEOB);
    add({ type: 'eob', chunk: Buffer.alloc(0) });
    this.writeRaw(Buffer.concat(packets));
    const responses: TransactionResult['responses'] = [];
    for (const step of answered) responses.push({ step, response: await this.readResponse(step) });
    this.skipping = undefined;
    return { responses, eom: await this.readEom() };
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  private requireNegotiated(): NegotiationResult {
    if (this.negotiated === undefined) throw new MilterClientError('negotiate() first');
    return this.negotiated;
  }

  private async step(command: MilterCommand): Promise<MilterResponse | undefined> {
    const negotiated = this.requireNegotiated();
    const step = STEP_OF_COMMAND[command.type]!;
    const flags = STEP_FLAGS[step];
    if (negotiated.protocol & flags.no) return undefined;
    if (this.skipping === step) return undefined;
    this.skipping = undefined;
    this.send(command);
    if (negotiated.protocol & flags.noReply) return undefined;
    return this.readResponse(step);
  }

  private async readResponse(step: Step): Promise<MilterResponse> {
    for (;;) {
      const reply = await this.nextReply();
      if (reply.type === 'progress') continue;
      const response = this.toResponse(reply, step);
      if (response.verdict === 'skip') {
        if (!(this.requireNegotiated().protocol & Protocol.SKIP)) {
          throw this.fatal('SMFIR_SKIP without the SKIP protocol flag');
        }
        this.skipping = step;
      }
      return response;
    }
  }

  private toResponse(reply: MilterReply, after: string): MilterResponse {
    if (reply.type === 'replyCode') {
      let parsed: NonNullable<MilterResponse['reply']>;
      try {
        parsed = parseReplyText(reply.text);
      } catch (err) {
        throw this.fatal((err as Error).message);
      }
      return { verdict: parsed.code >= 500 ? 'reject' : 'tempfail', reply: parsed };
    }
    const verdict = VERDICT_OF[reply.type];
    if (verdict === undefined) {
      throw this.fatal(`${describeReply(reply)} is not an answer to ${after}`);
    }
    return { verdict };
  }

  private async readEom(): Promise<EomResult> {
    const negotiated = this.requireNegotiated();
    const modifications: Modification[] = [];
    let body: Buffer[] | undefined;
    for (;;) {
      const reply = await this.nextReply();
      if (reply.type === 'replaceBody') {
        if (!(negotiated.actions & Action.CHGBODY)) {
          throw this.fatal('SMFIR_REPLBODY without the CHGBODY action');
        }
        if (body === undefined) {
          body = [];
          modifications.push({ action: 'replaceBody', body: Buffer.alloc(0) });
        } else if (modifications.at(-1)?.action !== 'replaceBody') {
          // Postfix refuses this too: body parts must come together.
          throw this.fatal('SMFIR_REPLBODY parts interleaved with other modifications');
        }
        body.push(Buffer.from(reply.chunk));
        continue;
      }
      if (reply.type === 'progress') {
        modifications.push({ action: 'progress' });
        continue;
      }
      const flag = MODIFICATION_FLAG[reply.type];
      if (flag !== undefined) {
        if (!(negotiated.actions & flag)) {
          throw this.fatal(
            `${describeReply(reply)} was not negotiated (actions 0x${negotiated.actions.toString(16)})`,
          );
        }
        modifications.push(toModification(reply));
        continue;
      }
      const verdict = this.toResponse(reply, 'SMFIC_BODYEOB');
      if (verdict.verdict === 'skip')
        throw this.fatal('SMFIR_SKIP is not an answer to SMFIC_BODYEOB');
      if (body !== undefined) {
        const at = modifications.findIndex((m) => m.action === 'replaceBody');
        modifications[at] = { action: 'replaceBody', body: Buffer.concat(body) };
      }
      return { modifications, verdict };
    }
  }

  private encode(command: MilterCommand): Buffer {
    if (this.keepLog) this.log.push({ direction: 'sent', command });
    return encodeCommand(command);
  }

  private send(command: MilterCommand): void {
    this.writeRaw(this.encode(command));
  }

  private writeRaw(bytes: Buffer): void {
    if (this.failure) throw this.failure;
    this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    for (;;) {
      let reply: MilterReply;
      try {
        const frame = this.decoder.next();
        if (frame === undefined) return;
        reply = parseReply(frame.code, frame.payload);
      } catch (err) {
        const message = err instanceof MilterProtocolError ? err.message : String(err);
        this.fatal(`malformed reply from the milter: ${message}`);
        return;
      }
      if (this.keepLog) this.log.push({ direction: 'received', reply });
      const waiter = this.waiters.shift();
      if (waiter) {
        clearTimeout(waiter.timer);
        this.armTimer();
        waiter.resolve(reply);
      } else {
        this.replies.push(reply);
      }
    }
  }

  private nextReply(): Promise<MilterReply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject, timer: undefined });
      this.armTimer();
    });
  }

  /** The reply timeout runs for the first waiting read only: replies come in order. */
  private armTimer(): void {
    const first = this.waiters[0];
    if (first === undefined || first.timer !== undefined) return;
    first.timer = setTimeout(() => {
      this.fatal(`no reply from the milter within ${this.timeoutMs} ms`);
    }, this.timeoutMs);
  }

  /** Record a failure that ends the conversation, reject the waiting read, drop the socket. */
  private fatal(message: string): MilterClientError {
    const error = new MilterClientError(message);
    this.failWith(error);
    this.socket.destroy();
    return error;
  }

  private failWith(error: Error): void {
    if (this.failure === undefined) this.failure = error;
    for (const { reject, timer } of this.waiters.splice(0)) {
      clearTimeout(timer);
      reject(this.failure);
    }
  }
}

function describeReply(reply: MilterReply): string {
  return replyName(REPLY_CODE[reply.type]);
}

const REPLY_CODE: Record<MilterReply['type'], number> = {
  continue: Reply.CONTINUE,
  accept: Reply.ACCEPT,
  reject: Reply.REJECT,
  tempfail: Reply.TEMPFAIL,
  discard: Reply.DISCARD,
  skip: Reply.SKIP,
  progress: Reply.PROGRESS,
  shutdown: Reply.SHUTDOWN,
  connFail: Reply.CONN_FAIL,
  replyCode: Reply.REPLYCODE,
  addHeader: Reply.ADDHEADER,
  insertHeader: Reply.INSHEADER,
  changeHeader: Reply.CHGHEADER,
  addRecipient: Reply.ADDRCPT,
  addRecipientWithArgs: Reply.ADDRCPT_PAR,
  deleteRecipient: Reply.DELRCPT,
  changeFrom: Reply.CHGFROM,
  replaceBody: Reply.REPLBODY,
  quarantine: Reply.QUARANTINE,
  optneg: Reply.OPTNEG,
};

function toModification(reply: MilterReply): Modification {
  switch (reply.type) {
    case 'addHeader':
      return { action: 'addHeader', name: reply.name, value: reply.value };
    case 'insertHeader':
      return { action: 'insertHeader', index: reply.index, name: reply.name, value: reply.value };
    case 'changeHeader':
      return { action: 'changeHeader', index: reply.index, name: reply.name, value: reply.value };
    case 'addRecipient':
      return { action: 'addRecipient', recipient: reply.recipient };
    case 'addRecipientWithArgs':
      return reply.args === undefined
        ? { action: 'addRecipientWithArgs', recipient: reply.recipient }
        : { action: 'addRecipientWithArgs', recipient: reply.recipient, args: reply.args };
    case 'deleteRecipient':
      return { action: 'deleteRecipient', recipient: reply.recipient };
    case 'changeFrom':
      return reply.args === undefined
        ? { action: 'changeFrom', sender: reply.sender }
        : { action: 'changeFrom', sender: reply.sender, args: reply.args };
    case 'quarantine':
      return { action: 'quarantine', reason: reply.reason };
    default:
      throw new MilterClientError(`${reply.type} is not a modification`);
  }
}
