/**
 * An SMTP dialogue as the client saw it: each command with the reply it got. Two sources produce
 * the same shape: swaks' printed transcript (parseSwaksTranscript), and our own small client for
 * sessions of several transactions on one connection, which swaks cannot do (smtpDialogue).
 */
import { connect, type Socket } from 'node:net';

/** Which step of the dialogue an exchange is. `dot` is the end of DATA (the lone `.`). */
export type SmtpStage =
  | 'banner'
  | 'ehlo'
  | 'helo'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'dot'
  | 'rset'
  | 'quit'
  | 'other';

export interface SmtpExchange {
  stage: SmtpStage;
  /** The command line as sent ('' for the banner and for `dot`). */
  command: string;
  /** For `mail` and `rcpt`: the address inside the angle brackets (`<>` → ''). */
  address?: string;
  /** The reply lines as received, e.g. `['550-5.7.1 rejected by sample', '550 5.7.1 see docs']`. */
  reply: string[];
}

/** The stage and address of a command line. */
export function classifyCommand(line: string): Pick<SmtpExchange, 'stage' | 'address'> {
  const verb = line.slice(0, 4).toUpperCase();
  const address = /<([^>]*)>/.exec(line)?.[1];
  switch (verb) {
    case 'EHLO':
      return { stage: 'ehlo' };
    case 'HELO':
      return { stage: 'helo' };
    case 'MAIL':
      return { stage: 'mail', address: address ?? '' };
    case 'RCPT':
      return { stage: 'rcpt', address: address ?? '' };
    case 'DATA':
      return { stage: 'data' };
    case 'RSET':
      return { stage: 'rset' };
    case 'QUIT':
      return { stage: 'quit' };
    default:
      return { stage: 'other' };
  }
}

/** True when a reply line is the last of its reply (`250 ok`, not `250-more`). */
const isLastLine = (line: string) => !/^\d{3}-/.test(line);

/**
 * Parses what swaks prints (` -> ` sent, `<-  ` received, `<** ` received error; `===`/`***`
 * informational lines are skipped). Message lines sent after a 354 are not exchanges; the lone
 * `.` that ends them is the `dot` exchange.
 */
export function parseSwaksTranscript(output: string): SmtpExchange[] {
  const exchanges: SmtpExchange[] = [];
  let current: SmtpExchange | undefined;
  let inData = false;
  for (const raw of output.split(/\r?\n/)) {
    const sent = /^ [-~]> (.*)$/.exec(raw);
    const received = /^<[-~*][* ] (.*)$/.exec(raw);
    if (sent) {
      const line = sent[1] ?? '';
      if (inData) {
        if (line !== '.') continue;
        inData = false;
        current = { stage: 'dot', command: '', reply: [] };
      } else {
        current = { command: line, ...classifyCommand(line), reply: [] };
      }
      exchanges.push(current);
    } else if (received) {
      const line = received[1] ?? '';
      if (!current) {
        current = { stage: 'banner', command: '', reply: [] };
        exchanges.push(current);
      }
      current.reply.push(line);
      if (isLastLine(line)) {
        if (current.stage === 'data' && line.startsWith('354')) inData = true;
        current = undefined;
      }
    }
  }
  return exchanges;
}

/** One transaction for smtpDialogue. */
export interface DialogueTransaction {
  from: string;
  to: string[];
  /** The message as it should arrive: CRLF line ends, not yet dot-stuffed. */
  data: string;
}

/** A line-oriented SMTP connection: send a line, read one whole reply. */
class Connection {
  private buffer = '';
  private lines: string[] = [];
  private waiting: (() => void) | undefined;
  private closed = false;

  constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end = this.buffer.indexOf('\r\n');
      while (end >= 0) {
        this.lines.push(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end + 2);
        end = this.buffer.indexOf('\r\n');
      }
      this.waiting?.();
    });
    const close = () => {
      this.closed = true;
      this.waiting?.();
    };
    socket.on('close', close);
    socket.on('error', close);
  }

  async reply(): Promise<string[]> {
    const reply: string[] = [];
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        reply.push(line);
        if (isLastLine(line)) return reply;
        continue;
      }
      if (this.closed) {
        reply.push('(connection closed)');
        return reply;
      }
      await new Promise<void>((resolve) => {
        this.waiting = () => {
          this.waiting = undefined;
          resolve();
        };
      });
    }
  }

  write(text: string): void {
    if (!this.closed) this.socket.write(text, 'latin1');
  }
}

/**
 * Plays several transactions over one SMTP connection, the way a careful client does: a refused
 * MAIL, or no accepted RCPT, ends the transaction with RSET; the next one starts with MAIL.
 *
 * @example
 * const exchanges = await smtpDialogue(2525, 'client.example', [
 *   { from: 'a@example.com', to: ['b@example.net'], data: 'Subject: one\r\n\r\nhi\r\n' },
 * ]);
 */
export async function smtpDialogue(
  port: number,
  helo: string,
  transactions: readonly DialogueTransaction[],
  timeoutMs = 60_000,
): Promise<SmtpExchange[]> {
  const socket = connect(port, '127.0.0.1');
  const timer = setTimeout(() => socket.destroy(new Error('smtp dialogue timed out')), timeoutMs);
  const conn = new Connection(socket);
  const exchanges: SmtpExchange[] = [];
  const command = async (line: string) => {
    conn.write(`${line}\r\n`);
    const exchange: SmtpExchange = { command: line, ...classifyCommand(line), reply: [] };
    exchanges.push(exchange);
    exchange.reply = await conn.reply();
    return exchange.reply[exchange.reply.length - 1] ?? '';
  };
  try {
    exchanges.push({ stage: 'banner', command: '', reply: await conn.reply() });
    await command(`EHLO ${helo}`);
    for (const tx of transactions) {
      if (!(await command(`MAIL FROM:<${tx.from}>`)).startsWith('2')) {
        await command('RSET');
        continue;
      }
      let accepted = 0;
      for (const rcpt of tx.to)
        if ((await command(`RCPT TO:<${rcpt}>`)).startsWith('2')) accepted++;
      if (accepted === 0 || !(await command('DATA')).startsWith('354')) {
        await command('RSET');
        continue;
      }
      const body = tx.data.endsWith('\r\n') || tx.data === '' ? tx.data : `${tx.data}\r\n`;
      conn.write(body.replace(/^\./gm, '..'));
      conn.write('.\r\n');
      const dot: SmtpExchange = { stage: 'dot', command: '', reply: await conn.reply() };
      exchanges.push(dot);
    }
    await command('QUIT');
    return exchanges;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
