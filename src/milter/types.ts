/**
 * The milter library's public vocabulary: what a handler returns, what it is told, what it may
 * do at end of message, and how a milter declares itself. pymilter's shape in TypeScript idiom:
 * one handler object per SMTP connection, one callback per protocol step.
 */

/** What a step's callback decides. `skip` is only meaningful for body chunks (and headers). */
export type Verdict = 'continue' | 'accept' | 'reject' | 'tempfail' | 'discard' | 'skip';

/**
 * A custom SMTP reply: a 4xx or 5xx code, an optional enhanced status code whose class digit
 * agrees with the code (`4.x.x` for 4xx, `5.x.x` for 5xx), and 1 to 32 lines of text without CR
 * or LF. The library doubles `%` (Sendmail's reply formatting would eat it).
 */
export interface SmtpReply {
  code: number;
  xcode?: string;
  lines: string[];
}

/** What a callback may return, synchronously or as a promise. */
export type StepResult = Verdict | SmtpReply;
export type MaybePromise<T> = T | Promise<T>;

/** The protocol steps a handler can take part in. */
export type Step =
  | 'connect'
  | 'helo'
  | 'envfrom'
  | 'envrcpt'
  | 'data'
  | 'header'
  | 'eoh'
  | 'body'
  | 'unknown';

/** End-of-message actions a milter asks the MTA to allow (negotiated as SMFIF_* flags). */
export type ModificationAction =
  | 'addHeader'
  | 'changeHeader'
  | 'addRecipient'
  | 'addRecipientWithArgs'
  | 'deleteRecipient'
  | 'changeFrom'
  | 'replaceBody'
  | 'quarantine';

/** Macro stages, for the symbol lists a milter asks for. */
export type MacroStageName = 'connect' | 'helo' | 'envfrom' | 'envrcpt' | 'data' | 'eoh' | 'eom';

/** A header field as the MTA sent it. */
export interface RawHeaderField {
  name: Buffer;
  /**
   * The value's bytes. Folded lines are separated as the MTA sends them (Postfix and Sendmail
   * send a bare LF).
   */
  value: Buffer;
  /**
   * True when SMFIP_HDR_LEADSPC was agreed: the value holds all that followed the colon,
   * leading whitespace included. Otherwise the MTA removed the whitespace after the colon.
   */
  leadingSpace: boolean;
}

/** What SMFIC_CONNECT says about the client. */
export interface ConnectInfo {
  /** The client's host name as the MTA resolved it, or `[address]` when unknown. */
  hostname: string;
  family: 'inet' | 'inet6' | 'unix' | 'unknown';
  /** Client port (0 for unix and unknown). */
  port: number;
  /** Client address (IP text, or socket path for unix). */
  address: string;
}

/** A log sink with pino's call shape, so that a pino logger plugs in as it is. */
export interface MilterLogger {
  debug?(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * What a callback can see and do. End-of-message actions may only be called from `eom`, and only
 * when negotiated; otherwise they throw a `MilterActionError` that says which rule was broken.
 */
export interface MilterContext {
  /** The connection's facts (undefined before SMFIC_CONNECT, or when the MTA skips it). */
  readonly connection: ConnectInfo | undefined;
  /** The HELO name, once given. */
  readonly helo: string | undefined;
  /** Free per-connection storage for the handler (pymilter's setpriv/getpriv). */
  readonly state: Map<string, unknown>;
  /** A macro's value; `x` and `{x}` are the same name. */
  getSymbol(name: string): string | undefined;
  /**
   * Whether SMFIP_HDR_LEADSPC was agreed: header values received keep the whitespace after the
   * colon, and values given to addHeader, insertHeader and changeHeader must bring their own.
   */
  readonly headerLeadingSpace: boolean;
  addHeader(name: string, value: string): void;
  /** Insert a header at `index` (0 = first). */
  insertHeader(index: number, name: string, value: string): void;
  /** Change the `index`th (1-based, among headers of that name) header; `null` deletes it. */
  changeHeader(name: string, index: number, value: string | null): void;
  addRecipient(recipient: string, esmtpArgs?: string): void;
  deleteRecipient(recipient: string): void;
  changeFrom(sender: string, esmtpArgs?: string): void;
  /** Replace the body; call several times to send it in chunks. */
  replaceBody(chunk: Buffer | string): void;
  quarantine(reason: string): void;
  /** Tell the MTA we are still working (SMFIR_PROGRESS), sent at once. */
  progress(): void;
}

/**
 * One handler per SMTP connection. Every callback is optional: a step without a callback is one
 * the milter does not need, and the library asks the MTA not to send it (when the MTA allows).
 */
export interface MilterHandler {
  connect?(ctx: MilterContext, info: ConnectInfo): MaybePromise<StepResult>;
  helo?(ctx: MilterContext, name: string): MaybePromise<StepResult>;
  envfrom?(ctx: MilterContext, sender: string, esmtpParams: string[]): MaybePromise<StepResult>;
  envrcpt?(ctx: MilterContext, recipient: string, esmtpParams: string[]): MaybePromise<StepResult>;
  data?(ctx: MilterContext): MaybePromise<StepResult>;
  /**
   * One header field. `name` and `value` are UTF-8 text (invalid bytes become U+FFFD); `raw`
   * has the bytes as the MTA sent them, for checks that must see them exactly (DKIM).
   */
  header?(
    ctx: MilterContext,
    name: string,
    value: string,
    raw: RawHeaderField,
  ): MaybePromise<StepResult>;
  eoh?(ctx: MilterContext): MaybePromise<StepResult>;
  body?(ctx: MilterContext, chunk: Buffer): MaybePromise<StepResult>;
  eom?(ctx: MilterContext): MaybePromise<StepResult>;
  unknown?(ctx: MilterContext, command: string): MaybePromise<StepResult>;
  /** The message was aborted (SMFIC_ABORT): forget message state, keep connection state. */
  abort?(ctx: MilterContext): MaybePromise<void>;
  /** The connection ends. */
  close?(ctx: MilterContext): MaybePromise<void>;
}

/** How a milter declares itself; this drives option negotiation. */
export interface MilterDefinition {
  /** A name for logs. */
  name: string;
  /** Make the handler for a new connection. */
  handler: () => MilterHandler;
  /** End-of-message actions it will use. */
  actions?: ModificationAction[];
  /** Steps it has a callback for but will not answer (SMFIP_NR_*): results there are ignored. */
  noReply?: Step[];
  /** Macros it wants at each stage (SMFIR_SETSYMLIST in the negotiation reply). */
  macros?: Partial<Record<MacroStageName, string[]>>;
  /** Ask the MTA to show rejected recipients too (SMFIP_RCPT_REJ). */
  rejectedRecipients?: boolean;
  /** Header values with their leading space kept (SMFIP_HDR_LEADSPC). */
  headerLeadingSpace?: boolean;
  /** What an exception (or a callback timeout) in a callback answers. Default `tempfail`. */
  onError?: 'tempfail' | 'continue' | 'reject';
}

/** Server-side settings. */
export interface MilterServerOptions {
  /** `inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path` (also `local:/path`). */
  listen: string;
  /** File mode of a unix socket, e.g. 0o660. */
  socketMode?: number;
  /** Close a connection idle this long waiting for the MTA. Default 7 minutes. */
  idleTimeoutMs?: number;
  /** A callback taking longer than this answers as `onError` says. Default 60 s. */
  callbackTimeoutMs?: number;
  /** Largest packet accepted from the MTA. Default 1 MiB + 1 KiB. */
  maxPacketBytes?: number;
  logger?: MilterLogger;
}
