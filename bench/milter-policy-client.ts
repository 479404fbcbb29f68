/**
 * The MTA side of the milter SPF-policy benchmark: one SMTP connection with one message, played
 * to a milter with MilterClient (src/milter/testing) as Postfix 3.7 plays it, and how it ended.
 *
 * Per connection: the negotiation (version 6, every action, every protocol flag offered), CONNECT
 * (with Postfix's connect macros), HELO, MAIL FROM, RCPT TO, DATA, the headers, EOH, a small body
 * and end of message, each step awaited before the next is sent; a step the milter asked not to
 * get is not sent, one it answers nothing for is not waited for, and a step's macros go only with
 * the step. The first answer that is not `continue` is the milter's final answer (a reject at
 * MAIL FROM ends the transaction there, as the MTA sees it); otherwise the answer to end of
 * message is. Then QUIT.
 */
import { performance } from 'node:perf_hooks';
import { Protocol } from '../src/milter/constants.js';
import { MilterClient, type MilterResponse } from '../src/milter/testing/index.js';
import { type MilterCase, RECEIVER } from './milter-policy-world.js';

/** What Postfix 3.7 offers. */
const OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

const BODY = (() => {
  const line = 'The quarterly figures are attached as agreed; please check the totals.\r\n';
  return Buffer.from(line.repeat(20));
})();

/** How a transaction ended, as the MTA saw it. */
export interface Outcome {
  /** `accepted`, `rejected at MAIL`, `tempfail at RCPT`, `discarded`, ... */
  ending: string;
  /** Whether the milter added an Authentication-Results or Received-SPF header. */
  spfHeader: boolean;
  /** The SMTP reply of a refusal, for the report. */
  reply?: string;
  /** From opening the connection to the final answer, in milliseconds. */
  ms: number;
}

const STEP_LABEL: Record<string, string> = {
  connect: 'CONNECT',
  helo: 'HELO',
  mail: 'MAIL',
  rcpt: 'RCPT',
  data: 'DATA',
  header: 'header',
  eoh: 'EOH',
  body: 'body',
  eom: 'end of message',
};

/** The final answer's ending, or undefined when the milter lets the transaction go on. */
function endingOf(step: string, r: MilterResponse | undefined): string | undefined {
  if (r === undefined || r.verdict === 'continue' || r.verdict === 'skip') return undefined;
  switch (r.verdict) {
    case 'accept':
      return 'accepted';
    case 'reject':
      return `rejected at ${STEP_LABEL[step]}`;
    case 'tempfail':
      return `tempfail at ${STEP_LABEL[step]}`;
    case 'discard':
      return 'discarded';
    default:
      return `${r.verdict} at ${STEP_LABEL[step]}`;
  }
}

const SPF_HEADER = /^(authentication-results|received-spf)$/i;

let queueIds = 0x4a1b2c;

/**
 * One SMTP connection carrying one message for `c`, played to the milter at `listen`.
 *
 * @example
 * const outcome = await oneTransaction('inet:8893@127.0.0.1', world.cases[0]);
 * outcome.ending  // 'accepted'
 */
export async function oneTransaction(listen: string, c: MilterCase): Promise<Outcome> {
  const start = performance.now();
  const queueId = (queueIds++).toString(16).toUpperCase();
  const client = await MilterClient.connect(listen, { log: false, timeoutMs: 30_000 });
  const done = (ending: string, r?: MilterResponse, spfHeader = false): Outcome => {
    const ms = performance.now() - start;
    return r?.reply ? { ending, spfHeader, reply: r.reply.text, ms } : { ending, spfHeader, ms };
  };
  try {
    const { protocol } = await client.negotiate(OFFER);
    // Postfix sends a step's macros only with the step itself.
    const sends = (no: number) => (protocol & no) === 0;
    const hostname = c.hostname.startsWith('[') ? 'unknown' : c.hostname;
    const headers: Array<[string, string]> = [
      [
        'Received',
        `from ${c.helo} (${hostname} [${c.ip}])\r\n\tby ${RECEIVER} (Postfix) with ESMTP id ${queueId}\r\n\tfor <${c.recipient}>; Mon, 1 Jan 2024 12:00:00 +0000 (UTC)`,
      ],
      ['Message-ID', `<${queueId}.${c.ip}@${c.sender.split('@')[1]}>`],
      ['Date', 'Mon, 1 Jan 2024 11:59:58 +0000'],
      ['From', `Sender <${c.sender}>`],
      ['To', `<${c.recipient}>`],
      ['Subject', 'Quarterly figures'],
      ['MIME-Version', '1.0'],
      ['Content-Type', 'text/plain; charset=utf-8'],
    ];
    // The steps before end of message, in order, each with the macros Postfix sends with it.
    const steps: Array<[string, () => Promise<MilterResponse | undefined>]> = [
      [
        'connect',
        async () => {
          if (sends(Protocol.NOCONNECT)) {
            await client.macro('C', {
              j: RECEIVER,
              '{daemon_name}': RECEIVER,
              '{daemon_addr}': '198.51.100.254',
              v: 'Postfix 3.7.11',
              _: `${hostname} [${c.ip}]`,
            });
          }
          return client.connect(c.hostname, 'inet', 40_000 + (queueIds % 20_000), c.ip);
        },
      ],
      ['helo', () => client.helo(c.helo)],
      [
        'mail',
        async () => {
          if (sends(Protocol.NOMAIL)) {
            await client.macro('M', {
              i: queueId,
              '{mail_addr}': c.sender,
              '{mail_mailer}': 'smtp',
            });
          }
          return client.mail(`<${c.sender}>`, ['SIZE=2400']);
        },
      ],
      [
        'rcpt',
        async () => {
          if (sends(Protocol.NORCPT)) {
            await client.macro('R', { '{rcpt_addr}': c.recipient, '{rcpt_mailer}': 'local' });
          }
          return client.rcpt(`<${c.recipient}>`);
        },
      ],
      [
        'data',
        async () => {
          if (sends(Protocol.NODATA)) await client.macro('T', { i: queueId });
          return client.data();
        },
      ],
      ...headers.map(([name, value]): [string, () => Promise<MilterResponse | undefined>] => [
        'header',
        () => client.header(name, value),
      ]),
      ['eoh', () => client.eoh()],
      ['body', () => client.body(BODY)],
    ];
    for (const [step, run] of steps) {
      const r = await run();
      const ending = endingOf(step, r);
      if (ending) return done(ending, r);
    }
    await client.macro('E', { i: queueId });
    const eom = await client.eom();
    const spfHeader = eom.modifications.some(
      (m) => (m.action === 'addHeader' || m.action === 'insertHeader') && SPF_HEADER.test(m.name),
    );
    return done(endingOf('eom', eom.verdict) ?? 'accepted', eom.verdict, spfHeader);
  } finally {
    try {
      await client.quit();
    } catch {
      // The connection already failed; the error that matters was thrown above.
    }
    await client.close();
  }
}
