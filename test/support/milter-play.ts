/**
 * One SMTP session played through a milter from the MTA's side, step by step, stopping where the
 * milter objects: what the daemon's milter tests assert on.
 */
import { MilterClient, type MilterResponse } from '../../src/milter/index.js';

export interface MilterSession {
  ip: string;
  helo: string;
  sender?: string;
  /** Default `sam@ours.test`. */
  recipient?: string;
  /** Default one Subject field. */
  headers?: Array<[string, string]>;
}

/**
 * Plays a session as far as it goes; returns each step's answer and the end-of-message reply.
 *
 * @example
 * const { answers, eom } = await playMilterSession('inet:10028@127.0.0.1',
 *   { ip: '192.0.2.10', helo: 'mail.example.com', sender: 'jo@example.com' });
 */
export async function playMilterSession(spec: string, s: MilterSession) {
  const client = await MilterClient.connect(spec, { timeoutMs: 5000 });
  const answers: Record<string, MilterResponse | undefined> = {};
  try {
    await client.negotiate();
    answers['connect'] = await client.connect(`[${s.ip}]`, 'inet', 40000, s.ip);
    if (answers['connect']?.verdict !== 'continue') return { answers };
    answers['helo'] = await client.helo(s.helo);
    if (answers['helo']?.verdict !== 'continue') return { answers };
    if (s.sender === undefined) return { answers };
    answers['mail'] = await client.mail(`<${s.sender}>`);
    if (answers['mail']?.verdict !== 'continue') return { answers };
    answers['rcpt'] = await client.rcpt(`<${s.recipient ?? 'sam@ours.test'}>`);
    if (answers['rcpt']?.verdict !== 'continue') return { answers };
    await client.data();
    for (const [name, value] of s.headers ?? [['Subject', 'hello']]) {
      await client.header(name, value);
    }
    await client.eoh();
    await client.body('Hi.\r\n');
    const eom = await client.eom();
    return { answers, eom };
  } finally {
    await client.close();
  }
}

/** A step's reply as `code xcode text`, or its verdict when it has no reply. */
export const replyOf = (r: MilterResponse | undefined) => (r?.reply ? r.reply.text : r?.verdict);
