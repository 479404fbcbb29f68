/**
 * The policy protocol's wire format, without sockets: a streaming decoder that cuts bytes into
 * requests (`name=value` lines, an empty line ends a request) and the reply encoder.
 *
 * The decoder is the hot path of a policy server. Each chunk becomes one latin1 string (one
 * character per byte) in a single native call, and is searched once for binary bytes; lines are
 * then cut with string searches, which V8 runs without leaving JavaScript, and each line goes
 * into the request as soon as it is complete, so that a partial request is never scanned twice
 * and only an unterminated line is carried over to the next chunk.
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

/** Control characters but TAB, CR and LF, and DEL: binary, never text a mail server sends. */
const BINARY = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** An attribute name: letters, digits, `_`, `-`, `.` (Postfix's are lowercase and `_`). */
const NAME = /^[A-Za-z0-9_.-]+$/;
/** Bytes of a multi-byte UTF-8 sequence, as latin1 characters. */
const HIGH = /[\x80-\xff]/;
/** Either of the above: one scan of a chunk tells plain ASCII text apart, the usual case. */
const UNUSUAL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]/;
const CR = 13;
const EQUALS = 61;
/** Postfix sends about 30 attributes; lines beyond this many are not remembered by name. */
const MAX_REMEMBERED_NAMES = 64;
/** How much of an offending line an error message shows (escaped by whoever logs it). */
const EXCERPT_CHARS = 48;

function limit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isInteger(value) && value > 0)) {
    throw new RangeError(`policy decoder: ${name} must be a positive integer, not ${value}`);
  }
  return value;
}

/**
 * Cuts a byte stream into policy requests. Push bytes as they arrive, then pull requests with
 * `next()` until it returns undefined; a protocol error is thrown by `next()` once the requests
 * before it have been pulled, so that they can still be answered in order. After an error the
 * decoder is spent.
 *
 * Limits are in bytes: a line's without its line end, a request's as the sum of its attribute
 * lines with their line ends (the empty line that ends it not counted). A line still without
 * its end counts one byte more, the least its end can add, so that an endless line or request
 * fails as soon as it is too long rather than when it ends.
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
  /**
   * Unread input from `pos` on, one latin1 character per byte: cutting and measuring then need
   * no trips into native code per line, and byte limits are character counts. Values are made
   * UTF-8 afterwards, only when they hold bytes above 0x7f.
   */
  private text = '';
  private pos = 0;
  /** Index in `text` of the first binary character, or -1. Searched once per chunk. */
  private binaryAt = -1;
  /** Index in `text` of the next CR at or after some line start; -1 when to be searched. */
  private crAt = -1;
  /** Whether `text` may hold bytes above 0x7f. */
  private high = false;
  /** The request being read: its attributes, its lines, and their bytes with line ends. */
  private request: Record<string, string> | undefined;
  private lines = 0;
  private requestBytes = 0;
  /**
   * The names of the last request, by line: Postfix sends the same attributes in the same order
   * every time, so a line that starts with the name its predecessor had there needs no slicing
   * and no checking, and the name is a string V8 already knows as a property key.
   */
  private readonly names: string[] = [];
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
    return this.requestBytes + this.text.length - this.pos;
  }

  /** Add received bytes. */
  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    const added = chunk.toString('latin1');
    let offset: number;
    if (this.pos >= this.text.length) {
      this.text = added;
      this.binaryAt = -1;
      this.high = false;
      offset = 0;
    } else {
      // Only the unterminated rest stays: never more than one line, bounded by maxLineBytes.
      const rest = this.text.length - this.pos;
      this.text = this.text.slice(this.pos) + added;
      if (this.binaryAt >= 0) this.binaryAt -= this.pos;
      offset = rest;
    }
    this.pos = 0;
    this.crAt = -1;
    if (UNUSUAL.test(added)) {
      if (this.binaryAt < 0) {
        const at = added.search(BINARY);
        if (at >= 0) this.binaryAt = offset + at;
      }
      if (!this.high) this.high = HIGH.test(added);
    }
  }

  /**
   * The next complete request, or undefined when more bytes are needed.
   *
   * @throws PolicyProtocolError when the input breaks the protocol (and on every call after).
   */
  next(): PolicyRequest | undefined {
    if (this.failed) throw this.failed;
    const text = this.text;
    for (;;) {
      const start = this.pos;
      const newline = text.indexOf('\n', start);
      if (newline < 0) {
        this.checkPartial();
        return undefined;
      }
      let stop = newline;
      if (stop > start && text.charCodeAt(stop - 1) === CR) stop--;
      if (this.binaryAt >= 0 && this.binaryAt < newline) {
        throw this.fail('binary', `a control character in line ${this.lines + 1}`);
      }
      if (stop - start > this.maxLineBytes) {
        throw this.fail(
          'line-too-long',
          `line ${this.lines + 1} is ${stop - start} bytes long, more than ${this.maxLineBytes}`,
        );
      }
      this.pos = newline + 1;
      if (stop === start) return this.complete();
      this.requestBytes += newline + 1 - start;
      if (this.requestBytes > this.maxRequestBytes) throw this.tooLarge(this.requestBytes);
      this.addLine(text, start, stop);
    }
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
    const text = this.text;
    const start = this.pos;
    if (start < text.length) {
      // The rest passed checkPartial in next(): no binary, within the limits.
      let stop = text.length;
      if (text.charCodeAt(stop - 1) === CR) stop--;
      this.pos = text.length;
      if (stop > start) this.addLine(text, start, stop);
    }
    return this.lines === 0 ? undefined : this.complete();
  }

  /** One attribute line, `text[start, stop)`, into the request being read. */
  private addLine(text: string, start: number, stop: number): void {
    // A CR inside a line (not before its LF) is binary; the next CR is searched once per line
    // at most, and only when the last one found lies behind.
    if (this.crAt < start) {
      const at = text.indexOf('\r', start);
      this.crAt = at < 0 ? text.length : at;
    }
    if (this.crAt < stop) {
      throw this.fail('binary', `a CR inside line ${this.lines + 1}`);
    }
    let name = this.names[this.lines];
    let equals: number;
    if (
      name !== undefined &&
      text.startsWith(name, start) &&
      text.charCodeAt(start + name.length) === EQUALS
    ) {
      equals = start + name.length;
    } else {
      equals = text.indexOf('=', start);
      name = equals > start && equals < stop ? text.slice(start, equals) : '';
      if (!NAME.test(name)) {
        throw this.fail(
          'bad-line',
          `line ${this.lines + 1} of the request is not name=value: ${excerpt(text, start, stop)}`,
        );
      }
      if (this.lines < MAX_REMEMBERED_NAMES) this.names[this.lines] = name;
    }
    let value = text.slice(equals + 1, stop);
    if (this.high && HIGH.test(value)) value = Buffer.from(value, 'latin1').toString('utf8');
    this.request ??= Object.create(null) as Record<string, string>;
    this.request[name] = value;
    this.lines++;
  }

  /** The unterminated line so far must not already break a limit, nor hold binary. */
  private checkPartial(): void {
    const start = this.pos;
    const length = this.text.length - start;
    if (length === 0) return;
    if (this.binaryAt >= start) {
      throw this.fail('binary', `a control character in line ${this.lines + 1}`);
    }
    // The last byte may be the CR of a CRLF still to come.
    const crPending = this.text.charCodeAt(this.text.length - 1) === CR;
    if (length > this.maxLineBytes && !(crPending && length === this.maxLineBytes + 1)) {
      throw this.fail(
        'line-too-long',
        `line ${this.lines + 1} is longer than ${this.maxLineBytes} bytes`,
      );
    }
    // A lone CR may begin the empty line that ends the request; anything else is an attribute
    // line, which will count at least one more byte, its line end.
    if (crPending && length === 1) return;
    if (this.requestBytes + length + 1 > this.maxRequestBytes) {
      throw this.tooLarge(this.requestBytes + length + 1);
    }
  }

  private tooLarge(bytes: number): PolicyProtocolError {
    return this.fail(
      'request-too-large',
      `the request is at least ${bytes} bytes, more than ${this.maxRequestBytes}`,
    );
  }

  /** The request read so far is complete: hand it out and start the next. */
  private complete(): PolicyRequest {
    const request = this.request ?? (Object.create(null) as Record<string, string>);
    this.request = undefined;
    this.lines = 0;
    this.requestBytes = 0;
    if (this.pos >= this.text.length) this.release();
    return request;
  }

  private release(): void {
    this.text = '';
    this.pos = 0;
    this.binaryAt = -1;
    this.crAt = -1;
    this.high = false;
  }

  private fail(code: PolicyProtocolErrorCode, message: string): PolicyProtocolError {
    this.failed = new PolicyProtocolError(code, message);
    this.request = undefined;
    this.lines = 0;
    this.requestBytes = 0;
    this.release();
    return this.failed;
  }
}

/** Raw text for an error message; whoever logs it escapes it. */
function excerpt(text: string, start: number, stop: number): string {
  const cut = Math.min(stop, start + EXCERPT_CHARS);
  return text.slice(start, cut) + (cut < stop ? '...' : '');
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
