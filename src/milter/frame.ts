/**
 * The milter wire format, framing part: every packet is a u32 big-endian length that counts the
 * command byte, then the command byte, then the payload. A streaming decoder cuts TCP reads into
 * packets; a payload reader takes packets apart with errors that say what was wrong.
 */

/** Largest packet accepted by default: libmilter's 1 MiB data size plus room for the rest. */
export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024 + 1024;

// The payload of every empty packet; zero bytes long, so nothing can write into it.
const EMPTY = Buffer.alloc(0);

/** Bytes in the length prefix. */
export const FRAME_HEADER_BYTES = 4;

/**
 * The peer broke the protocol: a bad length, an unknown command, a truncated or malformed
 * payload, a command out of place. The connection cannot be trusted after this and is closed.
 */
export class MilterProtocolError extends Error {
  override name = 'MilterProtocolError';
}

/** One packet: the command (or reply) byte and its payload. */
export interface Frame {
  code: number;
  /** May be a view into the decoder's input; copy it to keep it beyond the current command. */
  payload: Buffer;
}

/**
 * A byte for an error message: `'M' (0x4d)`, or hex only when it is not printable, so that a
 * hostile byte never reaches a log line raw.
 *
 * @example
 * describeCode(0x4d)  // "'M' (0x4d)"
 * describeCode(0x0a)  // '0x0a'
 */
export function describeCode(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCharCode(code)}' (${hex})` : hex;
}

/**
 * One packet as bytes. `payload` may be given in parts, which are copied once, in order.
 *
 * @example
 * encodeFrame(0x63)                         // <00 00 00 01 63>  SMFIR_CONTINUE
 * encodeFrame(0x48, Buffer.from('mx\0'))    // <00 00 00 04 48 6d 78 00>  SMFIC_HELO
 */
export function encodeFrame(code: number, ...payload: Uint8Array[]): Buffer {
  let length = 0;
  for (const part of payload) length += part.length;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + length);
  frame.writeUInt32BE(length + 1, 0);
  frame[FRAME_HEADER_BYTES] = code;
  let at = FRAME_HEADER_BYTES + 1;
  for (const part of payload) {
    frame.set(part, at);
    at += part.length;
  }
  return frame;
}

/**
 * Cuts a byte stream into packets. Input chunks are kept as they came and each byte is copied
 * at most once (a packet inside one chunk is a view, a packet across chunks is assembled once),
 * so coalesced and split reads cost the same as whole ones. A zero length or one above
 * `maxPacketBytes` is an error as soon as the length is read, before any payload is buffered.
 *
 * @example
 * const decoder = new FrameDecoder();
 * decoder.push(chunk);
 * for (let frame = decoder.next(); frame; frame = decoder.next()) handle(frame);
 */
export class FrameDecoder {
  readonly maxPacketBytes: number;
  private chunks: Buffer[] = [];
  private head = 0;
  /** Read position in chunks[head]. */
  private offset = 0;
  private available = 0;
  /** The length of the packet being read, once its prefix is in; -1 before. */
  private length = -1;
  private failure: MilterProtocolError | undefined;

  constructor(options: { maxPacketBytes?: number } = {}) {
    const max = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    if (!(Number.isInteger(max) && max >= 1 && max <= 0xffffffff)) {
      throw new RangeError(`maxPacketBytes must be an integer from 1 to 2^32-1, not ${max}`);
    }
    this.maxPacketBytes = max;
  }

  /** Bytes received and not yet handed out as packets. */
  get buffered(): number {
    return this.available;
  }

  /** Add bytes as they came from the socket. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  /** The next complete packet, or undefined until more bytes arrive. Throws on a bad length. */
  next(): Frame | undefined {
    if (this.failure) throw this.failure;
    if (this.length < 0) {
      if (this.available < FRAME_HEADER_BYTES) return undefined;
      const length = this.readLength();
      if (length === 0) return this.fail('packet length 0 (a packet holds at least its command)');
      if (length > this.maxPacketBytes) {
        return this.fail(`packet length ${length} exceeds the limit of ${this.maxPacketBytes}`);
      }
      this.length = length;
    }
    if (this.available < this.length) return undefined;
    const code = this.take(1)[0]!;
    const payload = this.take(this.length - 1);
    this.length = -1;
    return { code, payload };
  }

  private fail(message: string): never {
    this.failure = new MilterProtocolError(message);
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.available = 0;
    throw this.failure;
  }

  private readLength(): number {
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= FRAME_HEADER_BYTES) {
      const value = first.readUInt32BE(this.offset);
      this.consume(FRAME_HEADER_BYTES);
      return value;
    }
    return this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /** `count` bytes (count <= available): a view when they lie in one chunk, else one copy. */
  private take(count: number): Buffer {
    if (count === 0) return EMPTY;
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= count) {
      const view = first.subarray(this.offset, this.offset + count);
      this.consume(count);
      return view;
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[this.head]!;
      const n = Math.min(count - filled, chunk.length - this.offset);
      chunk.copy(out, filled, this.offset, this.offset + n);
      filled += n;
      this.consume(n);
    }
    return out;
  }

  private consume(count: number): void {
    this.offset += count;
    this.available -= count;
    const chunk = this.chunks[this.head]!;
    if (this.offset === chunk.length) {
      this.chunks[this.head] = undefined as unknown as Buffer; // let the chunk be collected
      this.head += 1;
      this.offset = 0;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      } else if (this.head >= 64) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    }
  }
}

/**
 * Takes one payload apart. Every read checks the bounds and throws a MilterProtocolError naming
 * the packet and the field, so that no malformed input reaches further than this.
 *
 * @example
 * const reader = new PayloadReader(payload, 'SMFIC_HEADER');
 * const name = reader.string('header name');
 * const value = reader.string('header value');
 * reader.end();
 */
export class PayloadReader {
  private at = 0;

  constructor(
    private readonly payload: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.payload.length - this.at;
  }

  private fail(problem: string): never {
    throw new MilterProtocolError(`${this.what}: ${problem}`);
  }

  u8(field: string): number {
    if (this.remaining < 1) this.fail(`truncated: no ${field}`);
    return this.payload[this.at++]!;
  }

  u16(field: string): number {
    if (this.remaining < 2) this.fail(`truncated: ${field} needs 2 bytes, ${this.remaining} left`);
    const value = this.payload.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }

  u32(field: string): number {
    if (this.remaining < 4) this.fail(`truncated: ${field} needs 4 bytes, ${this.remaining} left`);
    const value = this.payload.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }

  /** A NUL-terminated string, decoded as UTF-8 (invalid bytes become U+FFFD). */
  string(field: string): string {
    return this.bytes(field).toString('utf8');
  }

  /** A NUL-terminated string as the bytes sent, without the NUL (a view into the payload). */
  bytes(field: string): Buffer {
    const end = this.payload.indexOf(0, this.at);
    if (end < 0) this.fail(`truncated: ${field} has no terminating NUL`);
    const view = this.payload.subarray(this.at, end);
    this.at = end + 1;
    return view;
  }

  /** NUL-terminated strings up to the end of the payload; the last one must be terminated. */
  strings(field: string): string[] {
    const out: string[] = [];
    while (this.remaining > 0) out.push(this.string(field));
    return out;
  }

  /** The rest of the payload, raw. */
  rest(): Buffer {
    const view = this.payload.subarray(this.at);
    this.at = this.payload.length;
    return view;
  }

  /** Asserts that nothing is left: trailing bytes mean the peer and we disagree on the format. */
  end(): void {
    if (this.remaining > 0) this.fail(`${this.remaining} unexpected trailing bytes`);
  }
}

/**
 * A string as NUL-terminated UTF-8 bytes, refusing an embedded NUL (it would end the field).
 *
 * @example
 * cstring('mx', 'HELO name')  // <6d 78 00>
 */
export function cstring(text: string, field: string): Buffer {
  if (text.includes('\0')) throw new TypeError(`${field} must not contain a NUL character`);
  const bytes = Buffer.allocUnsafe(Buffer.byteLength(text) + 1);
  const n = bytes.write(text, 0, 'utf8');
  bytes[n] = 0;
  return bytes;
}

/**
 * Bytes as a NUL-terminated field, refusing an embedded NUL.
 *
 * @example
 * cbytes(Buffer.from([0xe9]), 'header value')  // <e9 00>
 */
export function cbytes(bytes: Buffer, field: string): Buffer {
  if (bytes.includes(0)) throw new TypeError(`${field} must not contain a NUL byte`);
  return Buffer.concat([bytes, NUL]);
}

const NUL = Buffer.from([0]);

/**
 * A u32 in network order.
 *
 * @example
 * u32(6)  // <00 00 00 06>
 */
export function u32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value >>> 0, 0);
  return bytes;
}
