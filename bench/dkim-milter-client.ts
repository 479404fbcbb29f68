/**
 * The MTA side of the DKIM milter benchmark: one SMTP connection carrying one signed message,
 * played to a milter with MilterClient (src/milter/testing) as Postfix 3.7 plays it.
 *
 * Per connection: the negotiation (version 6, every action, every protocol flag offered),
 * CONNECT, HELO, MAIL FROM, RCPT TO, DATA when the milter wants it, the header fields of the
 * message (a Received field of ours first, as Postfix passes its own), EOH, the body in packets
 * of at most 64 KB, end of message; then QUIT. Each answered step is awaited before the next
 * is sent; a step the milter asked not to get is not sent, one it answers nothing for is not
 * waited for, and a step's macros go only with the step. Header values go as Postfix sends
 * them: folded with bare LF, the whitespace after the colon kept only when the milter asked for
 * it (SMFIP_HDR_LEADSPC).
 */
import { performance } from 'node:perf_hooks';
import { parseMessage } from '../src/checks/message/index.js';
import { Protocol } from '../src/milter/constants.js';
import { MilterClient, type MilterResponse } from '../src/milter/testing/index.js';
import { CLIENT, RECEIVER, RECIPIENT, SENDER } from './dkim-world.js';

/** What Postfix 3.7 offers. */
const OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

/** A message as the MTA hands it to milters, in both header forms. */
export interface MilterMessage {
  /** Name, value with the whitespace after the colon, value without it (LF folds). */
  headers: Array<{ name: string; spaced: string; bare: string }>;
  body: Buffer;
  size: number;
}

/**
 * The message taken apart for the milter protocol, a Received field of the MTA's on top.
 *
 * @example
 * const message = milterMessage(signed);
 * message.headers[1]!.name  // 'DKIM-Signature'
 */
export function milterMessage(message: Buffer): MilterMessage {
  const { headers, body } = parseMessage(message);
  const received = {
    name: 'Received',
    value: ` from ${CLIENT.hostname} (${CLIENT.hostname} [${CLIENT.ip}])\r\n\tby ${RECEIVER} (Postfix) with ESMTPS id 4Tz9Qb0LmQz9sW\r\n\tfor <${RECIPIENT}>; Mon, 1 Jan 2024 12:00:00 +0000 (UTC)`,
  };
  const fields = [
    received,
    ...headers.map((f) => ({
      name: f.name,
      value: f.raw.subarray(f.raw.indexOf(0x3a) + 1).toString('latin1'),
    })),
  ];
  return {
    headers: fields.map(({ name, value }) => {
      const lf = value.replace(/\r\n/g, '\n');
      return { name, spaced: lf, bare: lf.replace(/^[ \t]+/, '') };
    }),
    body,
    size: message.length,
  };
}

/** How a transaction ended, as the MTA saw it. */
export interface Outcome {
  /** `accepted`, or the first answer that was not `continue` and the step it came at. */
  ending: string;
  /** The values of the Authentication-Results fields the milter added or inserted. */
  authResults: string[];
  /** Every modification, for the first transaction's report. */
  modifications: string[];
  /** From opening the connection to the answer to end of message, in milliseconds. */
  ms: number;
  /** The protocol flags the milter chose. */
  protocol: number;
  /** Replies waited for, the negotiation's and end of message's included. */
  awaited: number;
}

let queueIds = 0x5c1d2e;

/**
 * One SMTP connection with one message, played to the milter at `listen`.
 *
 * @example
 * const outcome = await oneTransaction('inet:8891@127.0.0.1', milterMessage(signed));
 * outcome.authResults  // [' mx.bench.example; dkim=pass header.d=signer.bench.example ...']
 */
export async function oneTransaction(listen: string, message: MilterMessage): Promise<Outcome> {
  const start = performance.now();
  const queueId = (queueIds++).toString(16).toUpperCase();
  const client = await MilterClient.connect(listen, { log: false, timeoutMs: 30_000 });
  let protocol = 0;
  let awaited = 0;
  const stopped = (step: string, r: MilterResponse | undefined): Outcome | undefined => {
    if (r !== undefined) awaited++;
    if (r === undefined || r.verdict === 'continue' || r.verdict === 'skip') return undefined;
    const why = r.reply ? ` (${r.reply.text.slice(0, 100)})` : '';
    return {
      ending: `${r.verdict} at ${step}${why}`,
      authResults: [],
      modifications: [],
      ms: performance.now() - start,
      protocol,
      awaited,
    };
  };
  try {
    protocol = (await client.negotiate(OFFER)).protocol;
    awaited++;
    const sends = (no: number) => (protocol & no) === 0;
    const spaced = (protocol & Protocol.HDR_LEADSPC) !== 0;
    if (sends(Protocol.NOCONNECT)) {
      await client.macro('C', {
        j: RECEIVER,
        '{daemon_name}': RECEIVER,
        '{daemon_addr}': '198.51.100.254',
        v: 'Postfix 3.7.11',
        _: `${CLIENT.hostname} [${CLIENT.ip}]`,
      });
    }
    // The steps before end of message, in order, each with the macros Postfix sends with it.
    const steps: Array<[string, () => Promise<MilterResponse | undefined>]> = [
      [
        'CONNECT',
        () => client.connect(CLIENT.hostname, 'inet', 40_000 + (queueIds % 20_000), CLIENT.ip),
      ],
      ['HELO', () => client.helo(CLIENT.hostname)],
      [
        'MAIL',
        async () => {
          if (sends(Protocol.NOMAIL)) {
            await client.macro('M', { i: queueId, '{mail_addr}': SENDER, '{mail_mailer}': 'smtp' });
          }
          return client.mail(`<${SENDER}>`, [`SIZE=${message.size}`]);
        },
      ],
      [
        'RCPT',
        async () => {
          if (sends(Protocol.NORCPT)) {
            await client.macro('R', { '{rcpt_addr}': RECIPIENT, '{rcpt_mailer}': 'local' });
          }
          return client.rcpt(`<${RECIPIENT}>`);
        },
      ],
      [
        'DATA',
        async () => {
          if (sends(Protocol.NODATA)) await client.macro('T', { i: queueId });
          return client.data();
        },
      ],
      ...message.headers.map((h): [string, () => Promise<MilterResponse | undefined>] => [
        'header',
        () => client.header(h.name, spaced ? h.spaced : h.bare),
      ]),
      ['EOH', () => client.eoh()],
      ['body', () => client.body(message.body)],
    ];
    for (const [step, run] of steps) {
      const end = stopped(step, await run());
      if (end) return end;
    }
    await client.macro('E', { i: queueId });
    const eom = await client.eom();
    awaited++;
    const verdict = eom.verdict.verdict;
    const authResults: string[] = [];
    const modifications: string[] = [];
    for (const m of eom.modifications) {
      if (m.action === 'addHeader' || m.action === 'insertHeader') {
        modifications.push(`${m.action} ${m.name}:${m.value}`);
        if (m.name.toLowerCase() === 'authentication-results') authResults.push(m.value);
      } else {
        modifications.push(m.action);
      }
    }
    return {
      ending:
        verdict === 'continue' || verdict === 'accept'
          ? 'accepted'
          : `${verdict} at end of message${eom.verdict.reply ? ` (${eom.verdict.reply.text.slice(0, 100)})` : ''}`,
      authResults,
      modifications,
      ms: performance.now() - start,
      protocol,
      awaited,
    };
  } finally {
    try {
      await client.quit();
    } catch {
      // The connection already failed; the error that matters was thrown above.
    }
    await client.close();
  }
}

const STEPS: ReadonlyArray<[name: string, left: number, unanswered: number]> = [
  ['CONNECT', Protocol.NOCONNECT, Protocol.NR_CONN],
  ['HELO', Protocol.NOHELO, Protocol.NR_HELO],
  ['MAIL', Protocol.NOMAIL, Protocol.NR_MAIL],
  ['RCPT', Protocol.NORCPT, Protocol.NR_RCPT],
  ['DATA', Protocol.NODATA, Protocol.NR_DATA],
  ['header', Protocol.NOHDRS, Protocol.NR_HDR],
  ['EOH', Protocol.NOEOH, Protocol.NR_EOH],
  ['body', Protocol.NOBODY, Protocol.NR_BODY],
];

/**
 * Which steps a milter's protocol flags have it answer, take without answering, or leave out.
 *
 * @example
 * describeProtocol(0x180780)  // 'answered CONNECT HELO MAIL RCPT EOH; no reply header body; left out DATA; HDR_LEADSPC'
 */
export function describeProtocol(protocol: number): string {
  const answered: string[] = [];
  const unanswered: string[] = [];
  const left: string[] = [];
  for (const [name, no, nr] of STEPS) {
    if (protocol & no) left.push(name);
    else if (protocol & nr) unanswered.push(name);
    else answered.push(name);
  }
  const parts = [`answered ${answered.join(' ') || 'none'}`];
  if (unanswered.length) parts.push(`no reply ${unanswered.join(' ')}`);
  if (left.length) parts.push(`left out ${left.join(' ')}`);
  if (protocol & Protocol.HDR_LEADSPC) parts.push('HDR_LEADSPC');
  return parts.join('; ');
}
