/**
 * The policy protocol's public vocabulary: a request as Postfix (or Exim) sends it, the handler
 * a server calls, and the server's options.
 */

/**
 * One policy request: the attributes as sent, `name` → `value`, in a null-prototype object (a
 * name like `__proto__` is just a name). Values are the raw text after the first `=`, without the
 * line end; Postfix's attribute names are documented in its SMTPD_POLICY_README
 * (`request`, `protocol_state`, `client_address`, `client_name`, `helo_name`, `sender`,
 * `recipient`, `sasl_username`, `instance`, ...). A name sent twice keeps the last value.
 */
export type PolicyRequest = Readonly<Record<string, string>>;

/**
 * A reply action as Postfix reads it: `DUNNO`, `OK`, `DEFER_IF_PERMIT text`, `PREPEND header`,
 * `450 4.7.1 text`, ... The server writes `action=<it>` and an empty line. It must be one line of
 * printable text; the server replaces anything else with a tempfail and logs it.
 */
export type PolicyAction = string;

/** What the server calls for each request; may be async. A thrown error answers the error action. */
export type PolicyHandler = (
  request: PolicyRequest,
  info: PolicyRequestInfo,
) => PolicyAction | Promise<PolicyAction>;

/** Facts about where a request came from, for logs. */
export interface PolicyRequestInfo {
  /** A number unique within the server for the connection. */
  connectionId: number;
  /** The peer as `address:port`, or `unix` for a unix socket. */
  peer: string;
}

/** A log sink with pino's call shape, so that a pino logger plugs in as it is. */
export interface PolicyLogger {
  debug?(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * - `postfix`: many requests per connection (Postfix keeps connections open and reuses them);
 * - `exim`: the connection is closed after each reply, as Exim's `${readsocket}` expects.
 */
export type PolicyMode = 'postfix' | 'exim';

export interface PolicyServerOptions {
  handler: PolicyHandler;
  mode?: PolicyMode;
  logger?: PolicyLogger;
  /** Longest line in bytes, line end excluded; longer closes the connection. Default 8192. */
  maxLineBytes?: number;
  /** Largest request in bytes; larger closes the connection. Default 65536. */
  maxRequestBytes?: number;
  /** A connection silent this long (ms) is closed. Default 300000 (Postfix's max_idle is 100 s). */
  idleTimeoutMs?: number;
  /** A handler that has not answered in this time (ms) gets `errorAction`. Default 20000. */
  handlerTimeoutMs?: number;
  /** The action when the handler throws, times out or returns an invalid action. Default `DEFER_IF_PERMIT 4.3.0 temporary policy failure`. */
  errorAction?: PolicyAction;
  /** File mode for unix sockets. */
  socketMode?: number;
}
