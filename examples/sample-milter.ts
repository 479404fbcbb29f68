/**
 * A sample milter written with mailgate's milter library, the way a user of the library would
 * write one. It logs every step (at end of message with the `i` and `{auth_authen}` macros), and:
 *
 * - adds `X-Sample-Milter: <client ip>` to every message;
 * - rejects MAIL FROM `<reject@...>` with a two-line 550 reply;
 * - tempfails RCPT TO `<later@...>` with `451 4.7.1 try later`;
 * - quarantines messages whose Subject contains `quarantine`;
 * - replaces the body with `replaced\r\n` when the Subject contains `replace-body`;
 * - changes the first Subject to `[sample] <old subject>`.
 *
 * Run it with `./bin/mailgate sample-milter --listen inet:8891@127.0.0.1`, or directly:
 * `node --import tsx examples/sample-milter.ts --listen inet:8891@127.0.0.1`.
 */
import { pathToFileURL } from 'node:url';
import {
  createMilterServer,
  type MilterContext,
  type MilterDefinition,
  type MilterHandler,
  type MilterLogger,
  reply,
  type StepResult,
} from '../src/milter/index.js';

/** The address part of a MAIL FROM or RCPT TO argument, without angle brackets, lower-cased. */
function localPart(address: string): string {
  const bare = address.replace(/^<|>$/g, '');
  const at = bare.lastIndexOf('@');
  return (at >= 0 ? bare.slice(0, at) : bare).toLowerCase();
}

/** One connection's worth of the sample milter. */
class SampleHandler implements MilterHandler {
  #subject: string | undefined;

  constructor(private readonly log: MilterLogger) {}

  connect(ctx: MilterContext): StepResult {
    const info = ctx.connection;
    this.log.info({ step: 'connect', hostname: info?.hostname, address: info?.address }, 'connect');
    return 'continue';
  }

  helo(_ctx: MilterContext, name: string): StepResult {
    this.log.info({ step: 'helo', helo: name }, 'helo');
    return 'continue';
  }

  envfrom(_ctx: MilterContext, sender: string, params: string[]): StepResult {
    this.log.info({ step: 'envfrom', sender, params }, 'mail from');
    this.#subject = undefined;
    if (localPart(sender) === 'reject')
      return reply(550, '5.7.1', 'rejected by sample', 'see docs');
    return 'continue';
  }

  envrcpt(_ctx: MilterContext, recipient: string, params: string[]): StepResult {
    this.log.info({ step: 'envrcpt', recipient, params }, 'rcpt to');
    if (localPart(recipient) === 'later') return reply(451, '4.7.1', 'try later');
    return 'continue';
  }

  data(): StepResult {
    this.log.info({ step: 'data' }, 'data');
    return 'continue';
  }

  header(_ctx: MilterContext, name: string, value: string): StepResult {
    this.log.info({ step: 'header', name }, 'header');
    if (this.#subject === undefined && name.toLowerCase() === 'subject') this.#subject = value;
    return 'continue';
  }

  eoh(): StepResult {
    this.log.info({ step: 'eoh' }, 'end of headers');
    return 'continue';
  }

  body(_ctx: MilterContext, chunk: Buffer): StepResult {
    this.log.info({ step: 'body', bytes: chunk.length }, 'body chunk');
    return 'continue';
  }

  eom(ctx: MilterContext): StepResult {
    // Macros as the MTA sent them: the queue ID arrives with MAIL FROM, the login with AUTH.
    const queueId = ctx.getSymbol('i');
    const login = ctx.getSymbol('auth_authen');
    this.log.info({ step: 'eom', subject: this.#subject, queueId, login }, 'end of message');
    ctx.addHeader('X-Sample-Milter', ctx.connection?.address ?? 'unknown');
    const subject = this.#subject;
    if (subject !== undefined) {
      ctx.changeHeader('Subject', 1, `[sample] ${subject.trimStart()}`);
      if (subject.includes('quarantine')) ctx.quarantine('subject asks for quarantine');
      if (subject.includes('replace-body')) ctx.replaceBody('replaced\r\n');
    }
    return 'continue';
  }

  abort(): void {
    this.log.info({ step: 'abort' }, 'abort');
    this.#subject = undefined;
  }

  close(): void {
    this.log.info({ step: 'close' }, 'close');
  }
}

/**
 * The sample milter's definition: what it needs from the MTA and what it will do.
 *
 * @example
 * const server = createMilterServer(sampleMilter(logger), { listen: 'inet:8891@127.0.0.1' });
 */
export function sampleMilter(log: MilterLogger): MilterDefinition {
  return {
    name: 'sample',
    handler: () => new SampleHandler(log),
    actions: ['addHeader', 'changeHeader', 'replaceBody', 'quarantine'],
    // It only logs these steps, so the MTA need not wait for an answer.
    noReply: ['connect', 'helo', 'data', 'header', 'eoh', 'body'],
  };
}

/** One line per event on stderr: `level message key=value ...`, control characters escaped. */
export function lineLogger(out: NodeJS.WritableStream = process.stderr): MilterLogger {
  const write = (level: string) => (fields: Record<string, unknown>, message: string) => {
    const pairs = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${JSON.stringify(v instanceof Error ? (v.stack ?? v.message) : v)}`);
    out.write(`${level} ${message}${pairs.length ? ` ${pairs.join(' ')}` : ''}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/**
 * Run the sample milter until SIGTERM or SIGINT; prints `listening on SPEC` when ready.
 *
 * @example
 * await runSampleMilter('inet:8891@127.0.0.1');
 */
export async function runSampleMilter(listen: string): Promise<void> {
  const logger = lineLogger();
  const server = createMilterServer(sampleMilter(logger), { listen, logger });
  const { address } = await server.listen();
  process.stdout.write(`listening on ${address}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void server.close(10_000).then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const at = process.argv.indexOf('--listen');
  const listen = at > 0 ? process.argv[at + 1] : undefined;
  if (!listen) {
    process.stderr.write('usage: sample-milter --listen SPEC (e.g. inet:8891@127.0.0.1)\n');
    process.exit(2);
  }
  await runSampleMilter(listen);
}
