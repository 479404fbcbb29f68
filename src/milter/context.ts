/**
 * The MilterContext handed to a handler's callbacks: the connection's facts and macros, free
 * per-connection storage, and the end-of-message actions, which check where they are called
 * (only in eom), whether they were negotiated, and their arguments, before anything is sent.
 */
import { MilterActionError } from './api.js';
import { Action } from './constants.js';
import { encodeReply, type MilterReply } from './reply-codec.js';
import type { ConnectInfo, MilterContext, ModificationAction } from './types.js';

/** What a context needs from its session. */
export interface ContextHost {
  readonly connection: ConnectInfo | undefined;
  readonly helo: string | undefined;
  getSymbol(name: string): string | undefined;
  /** Whether SMFIP_HDR_LEADSPC was agreed. */
  readonly headerLeadingSpace: boolean;
  /** Negotiated SMFIF_* flags, what the MTA offered, and what the definition listed. */
  readonly actions: { agreed: number; offered: number; listed: number };
  /** Whether this context's eom callback is running now. */
  inEom(context: HandlerContext): boolean;
  /** Queue a modification packet for the end-of-message write. */
  modify(packet: Buffer): void;
  /** Queue part of the replacement body. */
  replaceBody(chunk: Buffer): void;
  /** Send SMFIR_PROGRESS now. */
  progress(): void;
  /** Whether a callback is running now (progress may be sent during any of them). */
  inCallback(): boolean;
}

const NAMES_OF_FLAG: Record<number, ModificationAction> = {
  [Action.ADDHDRS]: 'addHeader',
  [Action.CHGHDRS]: 'changeHeader',
  [Action.ADDRCPT]: 'addRecipient',
  [Action.ADDRCPT_PAR]: 'addRecipientWithArgs',
  [Action.DELRCPT]: 'deleteRecipient',
  [Action.CHGFROM]: 'changeFrom',
  [Action.CHGBODY]: 'replaceBody',
  [Action.QUARANTINE]: 'quarantine',
};

// RFC 5322 field name: printable ASCII except colon.
const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function checkHeaderName(method: string, name: string): void {
  if (typeof name !== 'string' || !HEADER_NAME.test(name)) {
    throw new MilterActionError(
      `${method}(): header name ${JSON.stringify(name)} must be printable ASCII without spaces or colon`,
    );
  }
}

/**
 * A header value may be folded, libmilter style: LF followed by a space or tab (the MTA adds
 * the CR). A bare CR, NUL, or an LF that does not fold would break the message.
 */
function checkHeaderValue(method: string, value: string): void {
  if (typeof value !== 'string')
    throw new MilterActionError(`${method}(): the value must be a string`);
  if (/[\r\0]|\n(?![ \t])/.test(value)) {
    throw new MilterActionError(
      `${method}(): the value contains CR, NUL or an LF not followed by a space or tab (fold with "\\n\\t")`,
    );
  }
}

function checkText(method: string, what: string, text: string, allowEmpty = false): void {
  if (typeof text !== 'string' || (!allowEmpty && text.length === 0) || /[\r\n\0]/.test(text)) {
    throw new MilterActionError(
      `${method}(): the ${what} must be a ${allowEmpty ? '' : 'non-empty '}string without CR, LF or NUL`,
    );
  }
}

function checkIndex(method: string, index: number, min: number): void {
  if (!(Number.isInteger(index) && index >= min && index <= 0xffffffff)) {
    throw new MilterActionError(
      `${method}(): index ${String(index)} must be an integer of at least ${min}`,
    );
  }
}

/**
 * The context of one handler (one SMTP connection). End-of-message actions are queued and sent
 * with the final reply of the message in one write; `progress()` is sent at once.
 *
 * Header values are sent as given, following the convention of the values the handler
 * receives: without HDR_LEADSPC (the default) they carry no leading space and the MTA puts one
 * after the colon; with HDR_LEADSPC (definition.headerLeadingSpace, when the MTA offered it) the
 * MTA adds nothing, so a value that should read `Name: value` is given as `' value'`.
 */
export class HandlerContext implements MilterContext {
  readonly state = new Map<string, unknown>();

  constructor(private readonly host: ContextHost) {}

  get connection(): ConnectInfo | undefined {
    return this.host.connection;
  }

  get helo(): string | undefined {
    return this.host.helo;
  }

  getSymbol(name: string): string | undefined {
    return this.host.getSymbol(name);
  }

  get headerLeadingSpace(): boolean {
    return this.host.headerLeadingSpace;
  }

  /** The rules every end-of-message action shares: in eom, and negotiated. */
  private allow(method: string, flag: number): void {
    if (!this.host.inEom(this)) {
      throw new MilterActionError(
        `${method}() is only allowed in the eom callback (end of message)`,
      );
    }
    if (flag === 0) return;
    const { agreed, offered, listed } = this.host.actions;
    if (agreed & flag) return;
    const action = NAMES_OF_FLAG[flag]!;
    if (!(listed & flag)) {
      throw new MilterActionError(
        `${method}() needs the '${action}' action: list it in the milter definition's actions`,
      );
    }
    throw new MilterActionError(
      `${method}() needs the '${action}' action, which the MTA did not offer (it offered actions 0x${offered.toString(16)})`,
    );
  }

  private send(reply: MilterReply): void {
    this.host.modify(encodeReply(reply));
  }

  addHeader(name: string, value: string): void {
    this.allow('addHeader', Action.ADDHDRS);
    checkHeaderName('addHeader', name);
    checkHeaderValue('addHeader', value);
    this.send({ type: 'addHeader', name, value });
  }

  insertHeader(index: number, name: string, value: string): void {
    // libmilter's smfi_insheader needs SMFIF_ADDHDRS, like smfi_addheader.
    this.allow('insertHeader', Action.ADDHDRS);
    checkIndex('insertHeader', index, 0);
    checkHeaderName('insertHeader', name);
    checkHeaderValue('insertHeader', value);
    this.send({ type: 'insertHeader', index, name, value });
  }

  changeHeader(name: string, index: number, value: string | null): void {
    this.allow('changeHeader', Action.CHGHDRS);
    checkHeaderName('changeHeader', name);
    checkIndex('changeHeader', index, 1);
    if (value !== null) checkHeaderValue('changeHeader', value);
    // An empty value is how the protocol says "delete".
    this.send({ type: 'changeHeader', index, name, value: value ?? '' });
  }

  addRecipient(recipient: string, esmtpArgs?: string): void {
    const withArgs = esmtpArgs !== undefined && esmtpArgs !== '';
    this.allow('addRecipient', withArgs ? Action.ADDRCPT_PAR : Action.ADDRCPT);
    checkText('addRecipient', 'recipient', recipient);
    if (withArgs) {
      checkText('addRecipient', 'ESMTP arguments', esmtpArgs);
      this.send({ type: 'addRecipientWithArgs', recipient, args: esmtpArgs });
    } else {
      this.send({ type: 'addRecipient', recipient });
    }
  }

  deleteRecipient(recipient: string): void {
    this.allow('deleteRecipient', Action.DELRCPT);
    checkText('deleteRecipient', 'recipient', recipient);
    this.send({ type: 'deleteRecipient', recipient });
  }

  changeFrom(sender: string, esmtpArgs?: string): void {
    this.allow('changeFrom', Action.CHGFROM);
    checkText('changeFrom', 'sender', sender);
    if (esmtpArgs !== undefined && esmtpArgs !== '') {
      checkText('changeFrom', 'ESMTP arguments', esmtpArgs);
      this.send({ type: 'changeFrom', sender, args: esmtpArgs });
    } else {
      this.send({ type: 'changeFrom', sender });
    }
  }

  replaceBody(chunk: Buffer | string): void {
    this.allow('replaceBody', Action.CHGBODY);
    if (typeof chunk === 'string') {
      this.host.replaceBody(Buffer.from(chunk, 'utf8'));
    } else if (chunk instanceof Uint8Array) {
      // A copy: the caller may reuse its buffer before the end-of-message write.
      this.host.replaceBody(Buffer.from(chunk));
    } else {
      throw new MilterActionError('replaceBody(): the chunk must be a Buffer or a string');
    }
  }

  quarantine(reason: string): void {
    this.allow('quarantine', Action.QUARANTINE);
    checkText('quarantine', 'reason', reason);
    this.send({ type: 'quarantine', reason });
  }

  /** Allowed during any callback, as libmilter's smfi_progress: it resets the MTA's timer. */
  progress(): void {
    if (!this.host.inCallback()) {
      throw new MilterActionError('progress() is only allowed while a callback is running');
    }
    this.host.progress();
  }
}
