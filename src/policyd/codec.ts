/**
 * The policy protocol's wire format, without sockets: a streaming decoder that cuts bytes into
 * requests (`name=value` lines, an empty line ends a request) and the reply encoder.
 *
 * The decoder is the hot path of a policy server, so it works on byte offsets in one buffer:
 * line ends are found with Buffer.indexOf, a request's lines are remembered as offsets while it
 * is incomplete (a partial request is never scanned twice), and strings are made only for the
 * names and values of a complete request.
 */
import type { PolicyAction, PolicyRequest } from './types.js';

/** Longest line by default, in bytes, line end excluded. */
export const DEFAULT_MAX_LINE_BYTES = 8192;
/** Largest request by default, in bytes: its attribute lines with their line ends. */
export const DEFAULT_MAX_REQUEST_BYTES = 65536;
/**
 * Longest reply action. Postfix reads a reply line of any length, but an SMTP reply line is
 * 512 bytes at most and a PREPENDed header is folded text that rarely needs more than this.
 */
export const MAX_ACTION_LENGTH = 4096;

/** Why a byte stream is not the policy protocol. */
export type PolicyProtocolErrorCode =
  | 'line-too-long'
  | 'request-too-large'
  | 'bad-line'
  | 'binary'
  | 'incomplete';

/** The input broke the protocol; the connection cannot go on. `code` says how. */
export class PolicyProtocolError extends Error {
  override name = 'PolicyProtocolError';
  constructor(
    readonly code: PolicyProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A reply action that cannot be sent: not one line of printable text. */
export class PolicyActionError extends Error {
  override name = 'PolicyActionError';
}

export interface DecoderOptions {
  /** Longest line in bytes, line end excluded. Default 8192. */
  maxLineBytes?: number;
  /** Largest request in bytes (attribute lines with their line ends). Default 65536. */
  maxRequestBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const EQUALS = 0x3d;
const NUL = 0x00;
const MIN_CAPACITY = 4096;
/** How much of an offending line an error message shows (escaped by whoever logs it). */
const EXCERPT_BYTES = 48;
// C0 controls but TAB, and DEL: binary, never text a mail server sends.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

function limit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isInteger(value) && value > 0)) {
    throw new RangeError(`policy decoder: ${name} must be a positive integer, not ${value}`);
  }
  return value;
}

/** An attribute name byte: letters, digits, `_`, `-`, `.` (Postfix's are lowercase and `_`). */
function isNameByte(byte: number): boolean {
  return (
    (byte >= 0x61 && byte <= 0x7a) ||
    byte === 0x5f ||
    (byte >= 0x30 && byte <= 0x39) ||
    (byte >= 0x41 && byte <= 0x5a) ||
    byte === 0x2d ||
    byte === 0x2e
  );
}

/**
 * Cuts a byte stream into policy requests. Push bytes as they arrive, then pull requests with
 * `next()` until it returns undefined; a protocol error is thrown by `next()` once the requests
 * before it have been pulled, so that they can still be answered in order. After an error the
 * decoder is spent.
 *
 * @example
 * const decoder = new PolicyDecoder();
 * decoder.push(Buffer.from('request=smtpd_access_policy\nsender=a@b.example\n\n'));
 * decoder.next();  // { request: 'smtpd_access_policy', sender: 'a@b.example' }
 * decoder.next();  // undefined: nothing more yet
 */
export class PolicyDecoder {
  private readonly maxLineBytes: number;
  private readonly maxRequestBytes: number;
  /** Unconsumed input lives in buf[0, end); it may be a pushed chunk, never written into then. */
  private buf: Buffer = Buffer.alloc(0);
  private end = 0;
  private owned = false;
  /** Start of the request being read, and of its next line. */
  private requestStart = 0;
  private lineStart = 0;
  /** Complete lines of the request being read: start, end (line end excluded), pairwise. */
  private lines: number[] = [];
  /** Offset of the first NUL byte in buf, or -1: found per chunk, natively. */
  private nulAt = -1;
  private failed: PolicyProtocolError | undefined;

  constructor(options: DecoderOptions = {}) {
    this.maxLineBytes = limit('maxLineBytes', options.maxLineBytes, DEFAULT_MAX_LINE_BYTES);
    this.maxRequestBytes = limit(
      'maxRequestBytes',
      options.maxRequestBytes,
      DEFAULT_MAX_REQUEST_BYTES,
    );
  }

  /** Bytes received and not yet returned as requests. */
  get buffered(): number {
    return this.end - this.requestStart;
  }

  /** Add received bytes. The chunk is kept, not copied, when nothing else is pending. */
  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    if (this.requestStart === this.end) {
      // Nothing pending: reading can start over in the new chunk, and usually ends in it too.
      this.buf = chunk;
      this.end = chunk.length;
      this.owned = false;
      this.requestStart = 0;
      this.lineStart = 0;
      this.lines.length = 0;
      this.nulAt = chunk.indexOf(NUL);
      return;
    }
    const live = this.end - this.requestStart;
    const needed = live + chunk.length;
    if (!this.owned || this.requestStart + needed > this.buf.length) {
      // Grow geometrically so that a request arriving a byte at a time costs linear copying.
      const capacity = Math.max(MIN_CAPACITY, needed * 2);
      const next = Buffer.allocUnsafe(capacity);
      this.buf.copy(next, 0, this.requestStart, this.end);
      this.rebase(next);
    }
    chunk.copy(this.buf, this.end);
    if (this.nulAt < 0) {
      const at = chunk.indexOf(NUL);
      if (at >= 0) this.nulAt = this.end + at;
    }
    this.end += chunk.length;
  }

  private rebase(next: Buffer): void {
    const shift = this.requestStart;
    for (let i = 0; i < this.lines.length; i++) this.lines[i]! -= shift;
    this.lineStart -= shift;
    if (this.nulAt >= 0) this.nulAt -= shift;
    this.end -= shift;
    this.requestStart = 0;
    this.buf = next;
    this.owned = true;
  }

  /**
   * The next complete request, or undefined when more bytes are needed.
   *
   * @throws PolicyProtocolError when the input breaks the protocol (and on every call after).
   */
  next(): PolicyRequest | undefined {
    if (this.failed) throw this.failed;
    const buf = this.buf;
    while (this.lineStart < this.end) {
      const start = this.lineStart;
      const newline = buf.indexOf(LF, start);
      if (newline < 0 || newline >= this.end) {
        this.checkPartial();
        return undefined;
      }
      let stop = newline;
      if (stop > start && buf[stop - 1] === CR) stop--;
      if (this.nulAt >= 0 && this.nulAt < newline) {
        throw this.fail('binary', `a NUL byte in line ${this.lineNumber()}`);
      }
      if (stop - start > this.maxLineBytes) {
        throw this.fail(
          'line-too-long',
          `line ${this.lineNumber()} is ${stop - start} bytes long, more than ${this.maxLineBytes}`,
        );
      }
      this.lineStart = newline + 1;
      if (stop === start) return this.complete(newline + 1);
      if (newline + 1 - this.requestStart > this.maxRequestBytes) {
        throw this.tooLarge(newline + 1 - this.requestStart);
      }
      this.lines.push(start, stop);
    }
    this.checkPartial();
    return undefined;
  }

  /**
   * At end of input: the request the peer ended by closing instead of with an empty line (its
   * last line may lack its line end too), or undefined when nothing but complete requests and
   * empty lines came. Exim's `${readsocket}` closes its side after sending, and a request
   * written without the final empty line is common there.
   *
   * @throws PolicyProtocolError like `next()`, and `incomplete` when requests are still pending
   *   (call `next()` until undefined first).
   *
   * @example
   * decoder.push(Buffer.from('request=smtpd_access_policy\nsender=a@b.example'));
   * decoder.next();    // undefined
   * decoder.finish();  // { request: 'smtpd_access_policy', sender: 'a@b.example' }
   */
  finish(): PolicyRequest | undefined {
    if (this.next() !== undefined) {
      throw this.fail('incomplete', 'finish() while complete requests were still pending');
    }
    const start = this.lineStart;
    if (start < this.end) {
      // The partial line passed checkPartial in next(): no NUL, within the limits.
      let stop = this.end;
      if (this.buf[stop - 1] === CR) stop--;
      this.lineStart = this.end;
      if (stop > start) this.lines.push(start, stop);
    }
    if (this.lines.length === 0) return undefined;
    return this.complete(this.end);
  }

  /** The unterminated line so far must not already break a limit, nor hold a NUL. */
  private checkPartial(): void {
    const start = this.lineStart;
    const length = this.end - start;
    if (length === 0) return;
    if (this.nulAt >= start) {
      throw this.fail('binary', `a NUL byte in line ${this.lineNumber()}`);
    }
    // The last byte may be the CR of a CRLF still to come.
    const crPending = this.buf[this.end - 1] === CR;
    if (length > this.maxLineBytes && !(crPending && length === this.maxLineBytes + 1)) {
      throw this.fail(
        'line-too-long',
        `line ${this.lineNumber()} is longer than ${this.maxLineBytes} bytes`,
      );
    }
    // A lone CR may begin the empty line that ends the request; anything else is an attribute
    // line, which will count at least one more byte, its line end.
    if (crPending && length === 1) return;
    if (this.end + 1 - this.requestStart > this.maxRequestBytes) {
      throw this.tooLarge(this.end + 1 - this.requestStart);
    }
  }

  private tooLarge(bytes: number): PolicyProtocolError {
    return this.fail(
      'request-too-large',
      `the request is at least ${bytes} bytes, more than ${this.maxRequestBytes}`,
    );
  }

  /** Build the request from its lines; `next` is where reading goes on. */
  private complete(next: number): PolicyRequest {
    const buf = this.buf;
    const lines = this.lines;
    const request: Record<string, string> = Object.create(null);
    for (let i = 0; i < lines.length; i += 2) {
      const start = lines[i]!;
      const stop = lines[i + 1]!;
      let equals = start;
      while (equals < stop && isNameByte(buf[equals]!)) equals++;
      if (equals === stop || buf[equals] !== EQUALS || equals === start) {
        throw this.fail(
          'bad-line',
          `line ${i / 2 + 1} of the request is not name=value: ${excerpt(buf, start, stop)}`,
        );
      }
      const value = buf.toString('utf8', equals + 1, stop);
      if (CONTROL.test(value)) {
        throw this.fail('binary', `a control character in line ${i / 2 + 1} of the request`);
      }
      request[buf.toString('latin1', start, equals)] = value;
    }
    lines.length = 0;
    this.requestStart = next;
    this.lineStart = next;
    if (next >= this.end) this.release();
    return request;
  }

  private release(): void {
    this.buf = Buffer.alloc(0);
    this.end = 0;
    this.owned = false;
    this.requestStart = 0;
    this.lineStart = 0;
    this.nulAt = -1;
  }

  private lineNumber(): number {
    return this.lines.length / 2 + 1;
  }

  private fail(code: PolicyProtocolErrorCode, message: string): PolicyProtocolError {
    this.failed = new PolicyProtocolError(code, message);
    this.release();
    return this.failed;
  }
}

/** Raw text for an error message; whoever logs it escapes it. */
function excerpt(buf: Buffer, start: number, stop: number): string {
  const cut = Math.min(stop, start + EXCERPT_BYTES);
  return buf.toString('latin1', start, cut) + (cut < stop ? '...' : '');
}

/**
 * Why an action cannot be sent, or undefined when it can: it must be a non-empty single line of
 * printable ASCII, at most MAX_ACTION_LENGTH characters. Postfix would read a CR, LF or NUL as
 * the end of the reply or of the line, so such an action could smuggle in a second reply.
 *
 * @example
 * actionProblem('DUNNO')          // undefined
 * actionProblem('REJECT a\r\nb')  // 'contains a control or non-ASCII character'
 */
export function actionProblem(action: unknown): string | undefined {
  if (typeof action !== 'string') return `is a ${action === null ? 'null' : typeof action}`;
  if (action.trim().length === 0) return 'is empty';
  if (action.length > MAX_ACTION_LENGTH) {
    return `is ${action.length} characters long, more than ${MAX_ACTION_LENGTH}`;
  }
  if (/[^\x20-\x7e]/.test(action)) return 'contains a control or non-ASCII character';
  return undefined;
}

/**
 * The reply to one request: `action=<action>`, then the empty line that ends it.
 *
 * @throws PolicyActionError when the action cannot be sent (see `actionProblem`).
 *
 * @example
 * encodeReply('DEFER_IF_PERMIT 4.7.1 greylisted').toString()
 * // 'action=DEFER_IF_PERMIT 4.7.1 greylisted\n\n'
 */
export function encodeReply(action: PolicyAction): Buffer {
  const problem = actionProblem(action);
  if (problem !== undefined) {
    throw new PolicyActionError(`policy action ${problem}`);
  }
  return Buffer.from(`action=${action}\n\n`, 'latin1');
}
