/**
 * The SMTP client world service: one conversation with one remote host per call, described by
 * where it stopped and why rather than by exceptions.
 */

/** A host to talk to. */
export interface SmtpTarget {
  /** The IP address to connect to (a literal: the client never resolves names itself). */
  address: string;
  port: number;
  /** The MX host name the address came from, for logs. */
  name: string;
}

/** What to say in one conversation. */
export interface SmtpScript {
  /** Our EHLO (and HELO fallback) name. */
  helo: string;
  /** The reverse path without angle brackets; `''` for the null sender `<>`. */
  from: string;
  /** The one forward path, without angle brackets. */
  to: string;
  /**
   * The message to send after RCPT (RFC 5322, CRLF line ends). Without it the conversation is a
   * probe: it ends with QUIT after RCPT TO and never reaches DATA.
   */
  message?: Buffer;
  /**
   * Host names of ours. When the banner or the EHLO reply names one of them, the conversation
   * ends before MAIL FROM with kind `self`: the far end is this site, and talking on could loop
   * (our own MTA asking us about the probe we are making).
   */
  selfNames?: readonly string[];
}

export interface SmtpConverseOptions {
  /** Hard limit for the whole conversation, connect to close, in milliseconds. */
  timeoutMs: number;
  /**
   * Use STARTTLS when the server offers it (opportunistic: no certificate check, and plain text
   * when the server refuses). Default false.
   */
  starttls?: boolean;
}

/** How far a conversation got: the step that failed, or `done` when every step succeeded. */
export type SmtpStage = 'connect' | 'banner' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'done';

/**
 * How it ended: `ok` (every step 2xx), `permanent` (a 5xx reply), `temporary` (a 4xx reply, or
 * a reply the protocol does not allow there), `timeout`, `network` (refused, reset, closed, TLS
 * failure), or `self` (the far end named one of `selfNames`).
 */
export type SmtpKind = 'ok' | 'permanent' | 'temporary' | 'timeout' | 'network' | 'self';

export interface SmtpOutcome {
  stage: SmtpStage;
  kind: SmtpKind;
  /** The reply code of the last reply that decided the outcome, when there was one. */
  code?: number;
  /** That reply's text without its codes, one line, printable ASCII, at most 300 characters. */
  reply?: string;
  /** What happened, one printable line for logs. */
  detail: string;
  /** The banner (the 220 greeting) as one sanitised line, once it was read. */
  banner?: string;
  /** The host name the server gave in its EHLO (or HELO) reply, lower case, once known. */
  greetingName?: string;
  /** With kind `self`: which of `selfNames` the server named. */
  selfName?: string;
}

/**
 * The SMTP client world service.
 *
 * @example
 * const smtp = createSmtpClient();
 * const o = await smtp.converse(
 *   { address: '192.0.2.25', port: 25, name: 'mx.example.com' },
 *   { helo: 'mail.example.org', from: '', to: 'someone@example.com' },
 *   { timeoutMs: 10_000 },
 * );
 * o.kind  // 'ok' when RCPT TO was accepted
 */
export interface SmtpClient {
  /**
   * Connect, read the banner, EHLO (HELO when EHLO is refused), MAIL FROM, RCPT TO; then either
   * QUIT (a probe) or DATA with `script.message` and QUIT. Never rejects for an SMTP or network
   * outcome: it returns where it stopped and why. A script that could not be sent safely (a
   * CR or LF in an address, say) is a caller's bug and rejects with a TypeError.
   */
  converse(
    target: SmtpTarget,
    script: SmtpScript,
    options: SmtpConverseOptions,
  ): Promise<SmtpOutcome>;
}
