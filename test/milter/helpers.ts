/**
 * Test helpers for the milter library: packets built by hand (so tests do not trust the codec
 * they test), a session harness that records every write separately, and a capturing logger.
 */
import {
  FrameDecoder,
  type MilterDefinition,
  type MilterLogger,
  MilterSession,
  type SessionOptions,
} from '../../src/milter/index.js';

/** A NUL-terminated string. */
export function cs(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

export function be32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes;
}

export function be16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

/** A packet by hand: length (command byte included), command letter, payload parts. */
export function pkt(letter: string | number, ...parts: Array<Buffer | string>): Buffer {
  const payload = Buffer.concat(
    parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)),
  );
  const code = typeof letter === 'number' ? letter : letter.charCodeAt(0);
  return Buffer.concat([be32(payload.length + 1), Buffer.from([code]), payload]);
}

/** SMFIC_MACRO for `stage` with name/value pairs. */
export function macroPkt(stage: string, pairs: Record<string, string> = {}): Buffer {
  return pkt('D', stage, ...Object.entries(pairs).flatMap(([n, v]) => [cs(n), cs(v)]));
}

/** SMFIC_OPTNEG as Postfix 3.7 sends it. */
export function optnegPkt(version = 6, actions = 0x1ff, protocol = 0x1fffff): Buffer {
  return pkt('O', be32(version), be32(actions), be32(protocol));
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

export function captureLogger(): MilterLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    debug: (fields, message) => lines.push({ level: 'debug', fields, message }),
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
  };
}

/** Split concatenated packets into [letter, payload] pairs. */
export function splitPackets(bytes: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let at = 0;
  while (at < bytes.length) {
    const length = bytes.readUInt32BE(at);
    out.push([String.fromCharCode(bytes[at + 4]!), bytes.subarray(at + 5, at + 4 + length)]);
    at += 4 + length;
  }
  return out;
}

/**
 * A session fed with bytes, as the server feeds it, that keeps each write apart (so a test can
 * see that end of message is one write) and knows when the session has gone quiet.
 */
export class Harness {
  readonly writes: Buffer[] = [];
  readonly logger = captureLogger();
  readonly session: MilterSession;
  closedWith: Array<Error | undefined> = [];
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];

  constructor(definition: MilterDefinition, options: SessionOptions = {}) {
    this.session = new MilterSession(
      definition,
      {
        write: (data) => this.writes.push(Buffer.from(data)),
        close: (error) => this.closedWith.push(error),
      },
      {
        logger: this.logger,
        ...options,
        onDrain: () => {
          const waiters = this.waiters;
          this.waiters = [];
          for (const wake of waiters) wake();
        },
      },
    );
  }

  /** Feed bytes and wait until every command they hold has been answered. */
  async send(...packets: Buffer[]): Promise<void> {
    this.decoder.push(Buffer.concat(packets));
    for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
      this.session.receive(frame);
    }
    await this.idle();
  }

  /** Wait until the session is not busy (no callback pending, nothing queued, cleanup done). */
  async idle(): Promise<void> {
    while (this.session.busy) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        // Cleanup does not drain: also look again soon.
        setImmediate(resolve);
      });
    }
  }

  /** Writes since the last call, each as [letter, payload] packets. */
  take(): Array<Array<[string, Buffer]>> {
    const writes = this.writes.splice(0);
    return writes.map(splitPackets);
  }

  /** The letters of all packets written since the last call, flattened. */
  letters(): string {
    return this.take()
      .flat()
      .map(([letter]) => letter)
      .join('');
  }
}
