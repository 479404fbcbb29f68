/**
 * The CSA check's public vocabulary: inputs, settings, and the result it returns.
 */
import type { Clock, Resolver } from '../../dns/types.js';

/** The results of a CSA check (draft-ietf-marid-csv-csa-02, as csv.py reported them). */
export type CsaResultWord = 'pass' | 'fail' | 'neutral' | 'none' | 'tempfail';

/**
 * Why the check gave its result: a stable word for logs and policy.
 *
 * - pass: `ok` — the client's address is one of the authorized target's addresses.
 * - fail: `not-authorized` (weight 0 or 1), `address-mismatch` (weight 2, the target's addresses
 *   do not include the client), `no-addresses` (weight 2, the target has none or is `.`),
 *   `ambiguous` (more than one version-1 record at the name), `explicit-authorization-required`
 *   (no record at the name, and a parent domain says every host below it needs one).
 * - neutral: `uncertain` — weight 3, authorized but not verifiable.
 * - none: `no-record` (nothing usable at the name or its parents), `local` (localhost or a
 *   loopback client; not checked), `invalid-helo` (the HELO cannot be a host name; not checked).
 * - tempfail: `srv-lookup-failed` (an SRV query of the name or a parent failed temporarily, or the
 *   check's own budget ran out), `address-lookup-failed` (the target's address query did).
 */
export type CsaReason =
  | 'ok'
  | 'not-authorized'
  | 'address-mismatch'
  | 'no-addresses'
  | 'ambiguous'
  | 'explicit-authorization-required'
  | 'uncertain'
  | 'no-record'
  | 'local'
  | 'invalid-helo'
  | 'srv-lookup-failed'
  | 'address-lookup-failed';

/** What the SMTP session tells us. */
export interface CsaInput {
  /** The SMTP client's address, IPv4 or IPv6 (IPv4-mapped IPv6 is treated as IPv4). */
  ip: string;
  /** The HELO/EHLO argument as the client sent it: a host name, an address literal or garbage. */
  helo: string;
}

/** Bounds on the DNS work of one check. */
export interface CsaLimits {
  /**
   * DNS queries asked of the resolver, cached or not. A check needs at most 7 (the name, five
   * parents, the target's addresses), so the default never decides a result; a lower value that
   * runs out gives tempfail, like the time budget.
   */
  queries: number;
  /** Wall time for the whole check in milliseconds; when it runs out the result is tempfail. */
  timeBudgetMs: number;
}

export const DEFAULT_CSA_LIMITS: Readonly<CsaLimits> = Object.freeze({
  queries: 10,
  timeBudgetMs: 10_000,
});

/** Services and settings of a check. Only `resolver` is required. */
export interface CsaOptions {
  resolver: Resolver;
  /** Time source for the time budget. Default `Date.now`. */
  clock?: Clock;
  limits?: Partial<CsaLimits>;
}

/** A suggested SMTP reply for the result. */
export interface CsaReply {
  code: number;
  xcode: string;
  text: string;
}

/** What `checkCsa` returns. */
export interface CsaResult {
  result: CsaResultWord;
  reason: CsaReason;
  /** The client address in canonical form. */
  ip: string;
  /** The HELO as given (unsanitised: escape it before it reaches a log line). */
  helo: string;
  /**
   * The name whose `_client._smtp` record was asked for: the HELO in lower-case A-label form, or
   * the reverse name of an address literal. Absent when the HELO was not checked.
   */
  domain?: string;
  /** Owner of the record that decided: `_client._smtp.<domain>`, or that of a parent domain. */
  record?: string;
  /** Target of the deciding record at the name (`.` for the root), when it had one. */
  target?: string;
  /** For tempfail: which query failed and why (never the address of our DNS servers). */
  problem?: string;
  /** DNS queries asked of the resolver, cached or not. */
  queries: number;
  /** The suggested SMTP reply. */
  reply: CsaReply;
}
