/**
 * The HELO check's public vocabulary: inputs, options, limits, and the result it returns.
 */
import type { Clock, Resolver } from '../../dns/types.js';

/**
 * The rules, in the order they are evaluated and reported (and the order that picks the reply
 * when several would reject).
 */
export const HELO_RULES = [
  'missing',
  'bare-ip',
  'literal',
  'syntax',
  'fqdn',
  'public-suffix',
  'own-name',
  'localhost',
  'resolves',
  'matches',
  'changed',
] as const;

/**
 * - `missing`: no HELO/EHLO name at all.
 * - `bare-ip`: an IP address (or a dotted quad) where an address literal belongs.
 * - `literal`: an address literal that is malformed or not the client's address.
 * - `syntax`: a name with bad characters, empty or over-long labels, or hyphens at label ends.
 * - `fqdn`: a name that is not fully qualified (one label, or a numeric top label).
 * - `public-suffix`: a name whose suffix is not on the public suffix list, or that is one.
 * - `own-name`: one of our own names or addresses (bms.py's `hello_blacklist`), from a client
 *   that is neither internal nor authenticated.
 * - `localhost`: `localhost` or a loopback literal from a client that is not loopback.
 * - `resolves`: the name has no address (A or AAAA) and no MX record.
 * - `matches`: no address of the name, or of its MX hosts, is the client's.
 * - `changed`: a second HELO/EHLO in the session named another host.
 */
export type HeloRule = (typeof HELO_RULES)[number];

/**
 * - `pass`: the rule looked and found nothing wrong.
 * - `fail`: the rule found its problem.
 * - `tempfail`: the rule could not decide because DNS failed temporarily or time ran out.
 * - `skip`: the rule is switched off or does not apply (the `reason` says which).
 */
export type HeloRuleResult = 'pass' | 'fail' | 'tempfail' | 'skip';

/** One rule's outcome. */
export interface HeloOutcome {
  rule: HeloRule;
  result: HeloRuleResult;
  /**
   * A stable word for the outcome, e.g. `mismatch`, `prefix`, `nxdomain`, `timeout`, `disabled`;
   * docs/checks/helo.md lists them per rule.
   */
  reason: string;
  /** Human-readable detail, printable ASCII; client text in it is escaped and shortened. */
  detail: string;
}

/**
 * The verdict:
 * - `pass`: no rule failed or tempfailed.
 * - `suspect`: rules failed or tempfailed, but none of them is set to reject.
 * - `tempfail`: a rule set to reject could not decide (DNS); nothing rejected.
 * - `reject`: a rule set to reject failed.
 */
export type HeloVerdict = 'pass' | 'suspect' | 'tempfail' | 'reject';

/**
 * bley's HELO score: 0 when the HELO is the client's verified PTR name, 1 when both share a
 * registrable domain or the HELO is the client's own address literal, 2 otherwise.
 */
export type BleyScore = 0 | 1 | 2;

/** What the SMTP session tells us. */
export interface HeloInput {
  /** The SMTP client's address, IPv4 or IPv6 (IPv4-mapped IPv6 is treated as IPv4). */
  ip: string;
  /** The HELO/EHLO argument as the client sent it; empty or absent when it sent none. */
  helo?: string | null;
  /** The argument of an earlier HELO/EHLO in the same session, for the `changed` rule. */
  previousHelo?: string | null;
  /** The client's verified (forward-confirmed) PTR name, for the bley score. */
  ptrName?: string | null;
  /** The client is one of ours (bms.py's `internal_connect`): it may use our own names. */
  internal?: boolean;
  /** The client authenticated (SMTP AUTH): it may use our own names. */
  authenticated?: boolean;
}

/** How a client address and an address it claims must relate. */
export type AddressMatch = 'exact' | 'prefix';

export interface HeloOptions {
  /** Rules switched on (true) or off (false); every rule is on unless switched off. */
  rules?: Partial<Record<HeloRule, boolean>>;
  /**
   * Rules whose failure rejects. Default: `missing`, `bare-ip` and `own-name`, the HELOs bms.py
   * rejects at once; every other failure makes the verdict `suspect`.
   */
  reject?: Partial<Record<HeloRule, boolean>>;
  /**
   * Our own host names and mail domains (bms.py's `hello_blacklist`), compared without case and
   * trailing dot. An entry starting with a dot (`.example.com`) matches every name under it.
   */
  ourNames?: string[];
  /** Our own addresses: a literal or bare IP naming one of them is the `own-name` rule's business. */
  ourAddresses?: string[];
  /** `literal`: the client's exact address (default), or any in the same /24 (IPv4) or /64 (IPv6). */
  literalMatch?: AddressMatch;
  /**
   * `matches`: an address of the name or of its MX hosts must be the client's (`exact`), or in
   * the same /24 or /64 (`prefix`, the default: bms.py's "a/24 mx/24" HELO validation).
   */
  resolveMatch?: AddressMatch;
  /**
   * Suffixes accepted as if they were public suffixes, for names in private namespaces
   * (`internal`, `lan`, `corp.example.com`).
   */
  extraSuffixes?: string[];
}

export interface HeloLimits {
  /** MX hosts of the HELO name whose addresses are compared; the rest are ignored. */
  mxNames: number;
  /** Wall time for the whole check in milliseconds; when it runs out DNS rules tempfail. */
  timeBudgetMs: number;
}

export const DEFAULT_HELO_LIMITS: Readonly<HeloLimits> = Object.freeze({
  mxNames: 10,
  timeBudgetMs: 10_000,
});

/** Services and settings of the check. Only `resolver` is required. */
export interface HeloContext {
  resolver: Resolver;
  clock?: Clock;
  options?: HeloOptions;
  limits?: Partial<HeloLimits>;
}

export interface HeloReply {
  code: number;
  xcode: string;
  text: string;
}

/** What the HELO argument is. */
export type HeloForm = 'missing' | 'bare-ip' | 'literal' | 'name';

/** What `checkHelo` returns. */
export interface HeloResult {
  /** The verdict. */
  result: HeloVerdict;
  /** The rule that decided a `reject` or `tempfail`. */
  rule?: HeloRule;
  /** Every rule's outcome, in `HELO_RULES` order. */
  outcomes: HeloOutcome[];
  /** The rules that failed, in order: a short form of `outcomes` for logs. */
  failed: HeloRule[];
  /** bley's score for the HELO. */
  score: BleyScore;
  /** The client address in canonical form. */
  ip: string;
  /** The HELO argument as given. */
  helo: string;
  form: HeloForm;
  /** For a valid name: lower case, A-labels, no trailing dot. */
  name?: string;
  /** For a well-formed literal or bare IP: the address in canonical form. */
  address?: string;
  /** For an IPv6 literal: whether it carried the `IPv6:` tag RFC 5321 asks for. */
  tagged?: boolean;
  /** DNS queries asked of the resolver, cached or not. */
  queries: number;
  /** The suggested SMTP reply. */
  reply: HeloReply;
}
