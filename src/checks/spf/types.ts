/**
 * The SPF check's public vocabulary: inputs, settings, and the result it returns.
 */
import type { Clock, Resolver } from '../../dns/types.js';

/** The seven results of RFC 7208 section 2.6. */
export type SpfResultWord =
  | 'pass'
  | 'fail'
  | 'softfail'
  | 'neutral'
  | 'none'
  | 'permerror'
  | 'temperror';

/** Which identity was checked (RFC 7208 section 2.3 and 2.4). */
export type SpfIdentity = 'mailfrom' | 'helo';

/** What the SMTP session tells us. */
export interface SpfInput {
  /** The SMTP client's address, IPv4 or IPv6 (IPv4-mapped IPv6 is treated as IPv4). */
  ip: string;
  /** The MAIL FROM address without angle brackets; empty for the null reverse-path. */
  sender: string;
  /** The HELO/EHLO argument; checked as `postmaster@helo` when the sender is empty. */
  helo?: string;
  /** Check the HELO identity instead of MAIL FROM. */
  identity?: SpfIdentity;
}

/** The processing limits; the defaults are those of RFC 7208 section 4.6.4. */
export interface SpfLimits {
  /** DNS-querying mechanisms and modifiers per check (include, a, mx, ptr, exists, redirect). */
  terms: number;
  /** Lookups answering NXDOMAIN or no data before the check gives permerror. */
  voidLookups: number;
  /** MX names an `mx` mechanism may look up before it gives permerror. */
  mxNames: number;
  /** PTR names the `ptr` mechanism and `%{p}` consider; the rest are ignored. */
  ptrNames: number;
  /** All DNS queries of one check, including exp and `%{p}`: a hard bound on work. */
  queries: number;
  /**
   * Longest SPF record evaluated, in characters; a longer one is permerror. Real records are a
   * few hundred characters; TXT answers over TCP can reach 64 KB, and parsing is work.
   */
  recordLength: number;
  /** Wall time for the whole check in milliseconds; when it runs out the result is temperror. */
  timeBudgetMs: number;
}

export const DEFAULT_SPF_LIMITS: Readonly<SpfLimits> = Object.freeze({
  terms: 10,
  voidLookups: 2,
  mxNames: 10,
  ptrNames: 10,
  queries: 150,
  recordLength: 8192,
  timeBudgetMs: 20_000,
});

/** The guess record pyspf users know: what a typical domain would publish. */
export const DEFAULT_GUESS_RECORD = 'v=spf1 a/24 mx/24 ptr';

/** Services and settings of a check. Only `resolver` is required. */
export interface SpfOptions {
  resolver: Resolver;
  clock?: Clock;
  limits?: Partial<SpfLimits>;
  /** Our host name: `%{r}` in explanations and the `receiver=` key of Received-SPF. */
  receiver?: string;
  /** Explanation for a fail when the record gives none (or its `exp=` fails). */
  defaultExplanation?: string;
  /**
   * Lax processing: when the strict result is permerror, evaluate again tolerating the common
   * record mistakes and report that as `laxResult`. The reported `result` stays permerror.
   */
  lax?: boolean;
  /** When the domain has no record, evaluate this guess record and report its result as `guess`. */
  bestGuess?: boolean | string;
  /**
   * A local zone of records for domains that publish none: `<domain>._spf.<zone>` is consulted
   * when `<domain>` has no SPF record, and its record is used as if the domain had published it.
   */
  fallbackZone?: string;
}

/** A suggested SMTP reply for the result. */
export interface SpfReply {
  code: number;
  xcode: string;
  text: string;
}

/** What `checkSpf` returns. */
export interface SpfResult {
  result: SpfResultWord;
  identity: SpfIdentity;
  /** The client address in canonical form. */
  ip: string;
  /** The checked sender: MAIL FROM, or `postmaster@<helo>` for the HELO identity. */
  sender: string;
  /** The domain whose policy was checked (the sender's domain or the HELO name). */
  domain: string;
  helo: string;
  /** The directive that decided, e.g. `-all`, `ip4:192.0.2.0/24`, or `default` when none matched. */
  mechanism?: string;
  /** The explanation of a fail (from `exp=`, or the default explanation), printable ASCII. */
  explanation?: string;
  /** Whether the explanation came from the domain's `exp=` (a third party's words) or is ours. */
  explanationSource?: 'record' | 'default';
  /** What went wrong, for permerror and temperror. */
  problem?: string;
  /** The record that was evaluated at the top level, as published. */
  record?: string;
  /** Where the record came from: the domain itself, or the local fallback zone. */
  source?: 'dns' | 'fallback';
  /** DNS-querying terms evaluated (counted against `limits.terms`). */
  lookups: number;
  /** Void lookups seen (counted against `limits.voidLookups`). */
  voidLookups: number;
  /** DNS queries asked of the resolver, cached or not. */
  queries: number;
  /** Lax-mode result when the strict result is permerror and lax processing was asked for. */
  laxResult?: SpfResultWord;
  /** The mistakes lax processing forgave in the top record. */
  forgiven?: string[];
  /** Best-guess result when the real result is none and a best guess was asked for. */
  guess?: SpfResultWord;
  /** The suggested SMTP reply. */
  reply: SpfReply;
}
