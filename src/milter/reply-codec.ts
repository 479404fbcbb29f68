/**
 * SMFIR_* replies, milter to MTA: encoding every reply and modification of protocol version 6,
 * including the option negotiation reply with its macro lists, and parsing them back (strictly)
 * for the MTA-side test client.
 */
import { MILTER_CHUNK_SIZE, Reply } from './constants.js';
import {
  cstring,
  describeCode,
  encodeFrame,
  MilterProtocolError,
  PayloadReader,
  u32,
} from './frame.js';

/** A reply or modification from the milter, as on the wire. */
export type MilterReply =
  | { type: 'continue' }
  | { type: 'accept' }
  | { type: 'reject' }
  | { type: 'tempfail' }
  | { type: 'discard' }
  | { type: 'skip' }
  | { type: 'progress' }
  | { type: 'shutdown' }
  | { type: 'connFail' }
  /** A full SMTP reply text, e.g. `550 5.7.1 no` or a multi-line one joined with CRLF. */
  | { type: 'replyCode'; text: string }
  | { type: 'addHeader'; name: string; value: string }
  /** `index` 0 inserts before the first header. */
  | { type: 'insertHeader'; index: number; name: string; value: string }
  /** `index` counts headers of that name from 1; an empty value deletes the header. */
  | { type: 'changeHeader'; index: number; name: string; value: string }
  | { type: 'addRecipient'; recipient: string }
  | { type: 'addRecipientWithArgs'; recipient: string; args?: string }
  | { type: 'deleteRecipient'; recipient: string }
  | { type: 'changeFrom'; sender: string; args?: string }
  /** Part of the new body; the MTA concatenates consecutive parts. */
  | { type: 'replaceBody'; chunk: Buffer }
  | { type: 'quarantine'; reason: string }
  | {
      type: 'optneg';
      version: number;
      actions: number;
      protocol: number;
      /** Macro lists per SMFIM_* stage: space-separated names. */
      symbols: Array<{ stage: number; names: string }>;
    };

const NAMES: Record<number, string> = {
  [Reply.ADDRCPT]: 'SMFIR_ADDRCPT',
  [Reply.DELRCPT]: 'SMFIR_DELRCPT',
  [Reply.ADDRCPT_PAR]: 'SMFIR_ADDRCPT_PAR',
  [Reply.SHUTDOWN]: 'SMFIR_SHUTDOWN',
  [Reply.ACCEPT]: 'SMFIR_ACCEPT',
  [Reply.REPLBODY]: 'SMFIR_REPLBODY',
  [Reply.CONTINUE]: 'SMFIR_CONTINUE',
  [Reply.DISCARD]: 'SMFIR_DISCARD',
  [Reply.CHGFROM]: 'SMFIR_CHGFROM',
  [Reply.CONN_FAIL]: 'SMFIR_CONN_FAIL',
  [Reply.ADDHEADER]: 'SMFIR_ADDHEADER',
  [Reply.INSHEADER]: 'SMFIR_INSHEADER',
  [Reply.CHGHEADER]: 'SMFIR_CHGHEADER',
  [Reply.PROGRESS]: 'SMFIR_PROGRESS',
  [Reply.QUARANTINE]: 'SMFIR_QUARANTINE',
  [Reply.REJECT]: 'SMFIR_REJECT',
  [Reply.SKIP]: 'SMFIR_SKIP',
  [Reply.TEMPFAIL]: 'SMFIR_TEMPFAIL',
  [Reply.REPLYCODE]: 'SMFIR_REPLYCODE',
  [Reply.OPTNEG]: 'SMFIC_OPTNEG',
};

/**
 * The protocol's name of a reply byte, for logs.
 *
 * @example
 * replyName(0x63)  // 'SMFIR_CONTINUE'
 */
export function replyName(code: number): string {
  return NAMES[code] ?? `unknown reply ${describeCode(code)}`;
}

const EMPTY_REPLY = {
  continue: Reply.CONTINUE,
  accept: Reply.ACCEPT,
  reject: Reply.REJECT,
  tempfail: Reply.TEMPFAIL,
  discard: Reply.DISCARD,
  skip: Reply.SKIP,
  progress: Reply.PROGRESS,
  shutdown: Reply.SHUTDOWN,
  connFail: Reply.CONN_FAIL,
} as const;

type EmptyReplyType = keyof typeof EMPTY_REPLY;

// Replies without payload are the same bytes every time: build them once.
const EMPTY_FRAMES = new Map<EmptyReplyType, Buffer>(
  Object.entries(EMPTY_REPLY).map(([type, code]) => [type as EmptyReplyType, encodeFrame(code)]),
);

/**
 * The packet of a reply without payload. The buffer is shared: never write into it.
 *
 * @example
 * simpleReplyFrame('continue')  // <00 00 00 01 63>
 */
export function simpleReplyFrame(type: EmptyReplyType): Buffer {
  return EMPTY_FRAMES.get(type)!;
}

function index32(index: number, what: string): Buffer {
  if (!(Number.isInteger(index) && index >= 0 && index <= 0xffffffff)) {
    throw new RangeError(`${what} index ${index} is not an integer from 0 to 2^32-1`);
  }
  return u32(index);
}

/**
 * The packets of a body replacement: the bytes as they are (binary-safe), cut into packets of
 * at most MILTER_CHUNK_SIZE (65535) bytes, concatenated. An empty body is one empty packet,
 * which replaces the body with nothing.
 *
 * @example
 * encodeReplaceBody(Buffer.alloc(70000)).length  // 2 packets: 5 + 65535 + 5 + 4465 bytes
 */
export function encodeReplaceBody(body: Uint8Array): Buffer {
  if (body.length <= MILTER_CHUNK_SIZE) return encodeFrame(Reply.REPLBODY, body);
  const frames: Buffer[] = [];
  for (let at = 0; at < body.length; at += MILTER_CHUNK_SIZE) {
    frames.push(encodeFrame(Reply.REPLBODY, body.subarray(at, at + MILTER_CHUNK_SIZE)));
  }
  return Buffer.concat(frames);
}

/**
 * Encode a reply. A `replaceBody` larger than 65535 bytes becomes several packets in one buffer.
 *
 * @example
 * encodeReply({ type: 'addHeader', name: 'X-Spam', value: 'no' })
 * // <00 00 00 0e 68 58 2d 53 70 61 6d 00 6e 6f 00>
 */
export function encodeReply(reply: MilterReply): Buffer {
  switch (reply.type) {
    case 'replyCode':
      return encodeFrame(Reply.REPLYCODE, cstring(reply.text, 'reply text'));
    case 'addHeader':
      return encodeFrame(
        Reply.ADDHEADER,
        cstring(reply.name, 'header name'),
        cstring(reply.value, 'header value'),
      );
    case 'insertHeader':
    case 'changeHeader':
      return encodeFrame(
        reply.type === 'insertHeader' ? Reply.INSHEADER : Reply.CHGHEADER,
        index32(reply.index, 'header'),
        cstring(reply.name, 'header name'),
        cstring(reply.value, 'header value'),
      );
    case 'addRecipient':
      return encodeFrame(Reply.ADDRCPT, cstring(reply.recipient, 'recipient'));
    case 'addRecipientWithArgs':
      return reply.args === undefined
        ? encodeFrame(Reply.ADDRCPT_PAR, cstring(reply.recipient, 'recipient'))
        : encodeFrame(
            Reply.ADDRCPT_PAR,
            cstring(reply.recipient, 'recipient'),
            cstring(reply.args, 'ESMTP arguments'),
          );
    case 'deleteRecipient':
      return encodeFrame(Reply.DELRCPT, cstring(reply.recipient, 'recipient'));
    case 'changeFrom':
      return reply.args === undefined
        ? encodeFrame(Reply.CHGFROM, cstring(reply.sender, 'sender'))
        : encodeFrame(
            Reply.CHGFROM,
            cstring(reply.sender, 'sender'),
            cstring(reply.args, 'ESMTP arguments'),
          );
    case 'replaceBody':
      return encodeReplaceBody(reply.chunk);
    case 'quarantine':
      return encodeFrame(Reply.QUARANTINE, cstring(reply.reason, 'quarantine reason'));
    case 'optneg': {
      const parts = [u32(reply.version), u32(reply.actions), u32(reply.protocol)];
      for (const { stage, names } of reply.symbols) {
        parts.push(u32(stage), cstring(names, 'macro list'));
      }
      return encodeFrame(Reply.OPTNEG, ...parts);
    }
    default:
      return simpleReplyFrame(reply.type);
  }
}

const BY_CODE = new Map<number, EmptyReplyType>(
  Object.entries(EMPTY_REPLY).map(([type, code]) => [code, type as EmptyReplyType]),
);

/**
 * Parse a reply packet (the MTA side). Strict like Postfix: a missing NUL, trailing bytes or an
 * unknown reply byte is a MilterProtocolError.
 *
 * @example
 * parseReply(0x79, Buffer.from('550 5.7.1 no\0'))  // { type: 'replyCode', text: '550 5.7.1 no' }
 */
export function parseReply(code: number, payload: Buffer): MilterReply {
  const what = replyName(code);
  const reader = new PayloadReader(payload, what);
  const simple = BY_CODE.get(code);
  if (simple !== undefined) {
    reader.end();
    return { type: simple };
  }
  const done = <T extends MilterReply>(reply: T): T => {
    reader.end();
    return reply;
  };
  switch (code) {
    case Reply.REPLYCODE:
      return done({ type: 'replyCode', text: reader.string('reply text') });
    case Reply.ADDHEADER: {
      const name = reader.string('header name');
      return done({ type: 'addHeader', name, value: reader.string('header value') });
    }
    case Reply.INSHEADER:
    case Reply.CHGHEADER: {
      const index = reader.u32('header index');
      const name = reader.string('header name');
      const value = reader.string('header value');
      const type = code === Reply.INSHEADER ? 'insertHeader' : 'changeHeader';
      return done({ type, index, name, value });
    }
    case Reply.ADDRCPT:
      return done({ type: 'addRecipient', recipient: reader.string('recipient') });
    case Reply.ADDRCPT_PAR: {
      const recipient = reader.string('recipient');
      if (reader.remaining === 0) return { type: 'addRecipientWithArgs', recipient };
      return done({
        type: 'addRecipientWithArgs',
        recipient,
        args: reader.string('ESMTP arguments'),
      });
    }
    case Reply.DELRCPT:
      return done({ type: 'deleteRecipient', recipient: reader.string('recipient') });
    case Reply.CHGFROM: {
      const sender = reader.string('sender');
      if (reader.remaining === 0) return { type: 'changeFrom', sender };
      return done({ type: 'changeFrom', sender, args: reader.string('ESMTP arguments') });
    }
    case Reply.REPLBODY:
      return { type: 'replaceBody', chunk: reader.rest() };
    case Reply.QUARANTINE:
      return done({ type: 'quarantine', reason: reader.string('quarantine reason') });
    case Reply.OPTNEG: {
      const version = reader.u32('version');
      const actions = reader.u32('actions');
      const protocol = reader.u32('protocol flags');
      const symbols: Array<{ stage: number; names: string }> = [];
      while (reader.remaining > 0) {
        const stage = reader.u32('macro stage');
        symbols.push({ stage, names: reader.string('macro list') });
      }
      return { type: 'optneg', version, actions, protocol, symbols };
    }
    default:
      throw new MilterProtocolError(`unknown reply ${describeCode(code)}`);
  }
}
