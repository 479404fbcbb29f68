/**
 * The production SmtpClient: one TCP connection per conversation, spoken through nodemailer's
 * SMTPConnection (see nodemailer-session.ts), under one hard deadline.
 *
 * The socket is ours, not nodemailer's: we connect it (to an address, never a name), so the
 * connect step is told apart from the banner, and we destroy it when the conversation ends,
 * whatever nodemailer's state, so no conversation can leave a socket open.
 */
import { Socket } from 'node:net';
import { parseIp } from '../dns/address.js';
import { logValue, printableAscii } from '../text/index.js';
import { isHeloName, isHostName, parseMailbox } from './mailbox.js';
import { type SessionFailure, SmtpSession } from './nodemailer-session.js';
import { greetingName, namedHost, replyCode, replyText } from './reply.js';
import type {
  SmtpClient,
  SmtpConverseOptions,
  SmtpKind,
  SmtpOutcome,
  SmtpScript,
  SmtpStage,
  SmtpTarget,
} from './types.js';

export interface SmtpClientOptions {
  /** Local address to connect from (a site with several). Default: the system's choice. */
  localAddress?: string;
  /**
   * Most bytes a server may send in one conversation; more is treated as a network failure.
   * Replies are a few hundred bytes, so this only stops a server that floods us. Default 1 MiB.
   */
  maxReadBytes?: number;
}

/** How long QUIT may take once the outcome is known: the answer is in, politeness is cheap. */
const QUIT_GRACE_MS = 1_000;
const MAX_READ_BYTES = 1 << 20;
/** How often the byte count is looked at; a flood is cut within this much of it. */
const READ_CHECK_MS = 50;

const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * The SMTP client on nodemailer's SMTP connection.
 *
 * @example
 * const smtp = createSmtpClient();
 * const o = await smtp.converse(
 *   { address: '192.0.2.25', port: 25, name: 'mx.example.com' },
 *   { helo: 'mail.example.org', from: '', to: 'someone@example.com' },
 *   { timeoutMs: 10_000 },
 * );
 * // { stage: 'rcpt', kind: 'permanent', code: 550, reply: '5.1.1 no such user', ... }
 */
export function createSmtpClient(options: SmtpClientOptions = {}): SmtpClient {
  return {
    converse: (target, script, converseOptions) =>
      converse(target, script, converseOptions, options),
  };
}

async function converse(
  target: SmtpTarget,
  script: SmtpScript,
  options: SmtpConverseOptions,
  client: SmtpClientOptions,
): Promise<SmtpOutcome> {
  checkScript(script);
  const ip = parseIp(target.address);
  if (!ip || !Number.isInteger(target.port) || target.port < 1 || target.port > 65_535) {
    return {
      stage: 'connect',
      kind: 'network',
      detail: `not an IP address and port: ${logValue(`${target.address} ${target.port}`, 80)}`,
    };
  }
  const timeoutMs = Math.max(0, Math.floor(options.timeoutMs));
  const started = performance.now();
  const left = () => timeoutMs - (performance.now() - started);

  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
  });
  const within = <T>(step: Promise<T>): Promise<T | typeof TIMED_OUT> =>
    Promise.race([step, expired]);

  const socket = new Socket();
  // Errors are read through the connect step and the session; one left over must not throw.
  socket.on('error', () => {});
  let flooded = false;
  const maxRead = client.maxReadBytes ?? MAX_READ_BYTES;
  const guard = setInterval(() => {
    if (socket.bytesRead > maxRead) {
      flooded = true;
      socket.destroy();
    }
  }, READ_CHECK_MS);
  let session: SmtpSession | undefined;
  const facts = (outcome: SmtpOutcome): SmtpOutcome => withFacts(outcome, session);
  const timedOut = (stage: SmtpStage): SmtpOutcome =>
    facts({ stage, kind: 'timeout', detail: `no answer within ${timeoutMs} ms (${stage})` });
  const failed = (failure: SessionFailure): SmtpOutcome =>
    facts(
      flooded
        ? { stage: stageOf(session), kind: 'network', detail: `more than ${maxRead} bytes read` }
        : failureOutcome(failure, session),
    );

  try {
    const connected = await within(connectSocket(socket, target.address, target.port, client));
    if (connected === TIMED_OUT) return timedOut('connect');
    if (connected !== null) return { stage: 'connect', kind: 'network', detail: connected };

    session = new SmtpSession({
      socket,
      address: target.address,
      port: target.port,
      servername: isHostName(target.name) ? target.name : undefined,
      helo: script.helo,
      starttls: options.starttls ?? false,
      timeoutMs,
    });
    const opened = await within(settle(session.open()));
    if (opened === TIMED_OUT) return timedOut(stageOf(session));
    if (opened.failure) return failed(opened.failure);

    const self = namedHost(session.banner, session.greeting, script.selfNames ?? []);
    if (self !== undefined) {
      await within(session.quit(Math.min(QUIT_GRACE_MS, left())));
      return facts({
        stage: 'ehlo',
        kind: 'self',
        selfName: self,
        detail: `the server names itself ${self}, one of our names`,
      });
    }

    let last: string;
    if (script.message === undefined) {
      const steps: [SmtpStage, string][] = [
        ['mail', `MAIL FROM:<${script.from}>`],
        ['rcpt', `RCPT TO:<${script.to}>`],
      ];
      last = '';
      for (const [stage, line] of steps) {
        const said = await within(settle(session.command(line)));
        if (said === TIMED_OUT) return timedOut(stage);
        if (said.failure) return failed(said.failure);
        last = said.value;
        const refused = refusal(stage, line, last);
        if (refused) {
          await within(session.quit(Math.min(QUIT_GRACE_MS, left())));
          return facts(refused);
        }
      }
    } else {
      const sent = await within(settle(session.send(script.from, script.to, script.message)));
      if (sent === TIMED_OUT) return timedOut(stageOf(session));
      if (sent.failure) return failed(sent.failure);
      last = sent.value;
    }
    await within(session.quit(Math.min(QUIT_GRACE_MS, left())));
    const code = replyCode(last);
    const reply = replyText(last);
    return facts({
      stage: 'done',
      kind: 'ok',
      ...(code === undefined ? {} : { code }),
      reply,
      detail: `accepted: ${code ?? ''} ${reply}`.trim(),
    });
  } finally {
    clearTimeout(timer);
    clearInterval(guard);
    session?.close();
    socket.destroy();
  }
}

/** A caller's bug, not an outcome: nothing unchecked may reach a command line. */
function checkScript(script: SmtpScript): void {
  if (!isHeloName(script.helo)) {
    throw new TypeError(`not a HELO name: ${logValue(script.helo, 80)}`);
  }
  if (script.from !== '' && !parseMailbox(script.from)) {
    throw new TypeError(`not a sender address: ${logValue(script.from, 80)}`);
  }
  if (!parseMailbox(script.to)) {
    throw new TypeError(`not a recipient address: ${logValue(script.to, 80)}`);
  }
}

function connectSocket(
  socket: Socket,
  address: string,
  port: number,
  client: SmtpClientOptions,
): Promise<string | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => resolve(connectError(err));
    socket.once('error', onError);
    try {
      const local = client.localAddress ? { localAddress: client.localAddress } : {};
      socket.connect({ host: address, port, ...local }, () => {
        socket.off('error', onError);
        resolve(null);
      });
    } catch (err) {
      resolve(connectError(err as NodeJS.ErrnoException));
    }
  });
}

function connectError(err: NodeJS.ErrnoException): string {
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    EADDRNOTAVAIL: 'address not available',
  };
  const code = typeof err.code === 'string' ? err.code : 'error';
  return words[code] ?? `connect failed (${printableAscii(code)})`;
}

type Settled<T> = { value: T; failure?: undefined } | { failure: SessionFailure };

function settle<T>(step: Promise<T>): Promise<Settled<T>> {
  return step.then(
    (value) => ({ value }),
    (failure: SessionFailure) => ({ failure }),
  );
}

/** The outcome of a reply to MAIL or RCPT that is not 2xx; undefined for a 2xx. */
function refusal(stage: SmtpStage, line: string, response: string): SmtpOutcome | undefined {
  const code = replyCode(response);
  const kind = kindOfCode(code);
  if (kind === 'ok') return undefined;
  const reply = replyText(response);
  const verb = line.slice(0, line.indexOf(':'));
  return {
    stage,
    kind,
    ...(code === undefined ? {} : { code }),
    reply,
    detail: `${code ?? 'no code'} at ${verb}: ${reply}`,
  };
}

function kindOfCode(code: number | undefined): SmtpKind {
  if (code === undefined) return 'network';
  if (code >= 200 && code < 300) return 'ok';
  if (code >= 500) return 'permanent';
  // 4xx, and replies the protocol does not allow at this point (1xx, 3xx).
  return 'temporary';
}

const COMMAND_STAGES: Record<string, SmtpStage> = {
  EHLO: 'ehlo',
  HELO: 'ehlo',
  LHLO: 'ehlo',
  STARTTLS: 'ehlo',
  'MAIL FROM': 'mail',
  'RCPT TO': 'rcpt',
  DATA: 'data',
};

const VERB_STAGES: Record<string, SmtpStage> = {
  EHLO: 'ehlo',
  HELO: 'ehlo',
  STARTTLS: 'ehlo',
  MAIL: 'mail',
  RCPT: 'rcpt',
  DATA: 'data',
};

/** Where the session is, from the last command it wrote. */
function stageOf(session: SmtpSession | undefined): SmtpStage {
  if (!session) return 'connect';
  if (session.lastVerb === undefined) return 'banner';
  return VERB_STAGES[session.lastVerb] ?? 'done';
}

function failureOutcome(failure: SessionFailure, session: SmtpSession | undefined): SmtpOutcome {
  const stage =
    (failure.command !== undefined ? COMMAND_STAGES[failure.command] : undefined) ??
    stageOf(session);
  const code = failure.response === undefined ? undefined : replyCode(failure.response);
  if (code !== undefined) {
    const reply = replyText(failure.response!);
    const kind = kindOfCode(code);
    return {
      stage,
      kind: kind === 'ok' ? 'temporary' : kind,
      code,
      reply,
      detail: `${code} at ${stage}: ${reply}`,
    };
  }
  const message = logValue(failure.message, 200);
  if (failure.code === 'ETIMEDOUT') return { stage, kind: 'timeout', detail: message };
  // nodemailer's own refusals before a command is written: the SIZE limit, say.
  if (failure.code === 'EMESSAGE' || failure.code === 'EENVELOPE') {
    return { stage, kind: 'permanent', detail: message };
  }
  return { stage, kind: 'network', detail: message };
}

/** The banner and greeting name, as far as the conversation got. */
function withFacts(outcome: SmtpOutcome, session: SmtpSession | undefined): SmtpOutcome {
  if (!session) return outcome;
  const out = { ...outcome };
  if (session.banner !== undefined) out.banner = replyText(session.banner);
  const name = session.greeting === undefined ? undefined : greetingName(session.greeting);
  if (name !== undefined) out.greetingName = printableAscii(name);
  return out;
}
