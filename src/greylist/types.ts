/**
 * Greylisting's public vocabulary: settings, the facts of one request, and the decision.
 */
import type { DnsxlList } from '../checks/dnsxl/types.js';
import type { PtrResult } from '../checks/ptr/types.js';
import type { SpfResult } from '../checks/spf/types.js';
import type { Clock, Resolver } from '../dns/types.js';
import type { Store } from '../store/types.js';

/** Greylisting settings; durations in milliseconds. See `DEFAULT_GREYLIST_SETTINGS`. */
export interface GreylistSettings {
  /** Minimum wait before a greylisted triplet passes. bley: 29 min. */
  periodMs: number;
  /** Extra wait per early retry. bley: 10 min. */
  penaltyMs: number;
  /** After this long since the first attempt a triplet passes whatever its retries. bley: 12 h. */
  maxMs: number;
  /** DNS lists: `dnsbl` and `dnswl` kinds (zones, codes, weights as in the DNS list check). */
  lists: readonly DnsxlList[];
  /** Greylist when the block lists' score reaches this. bley: 1. */
  dnsblThreshold: number;
  /** Pass at once when the white lists' score reaches this. bley: 1. */
  dnswlThreshold: number;
  /** Greylist when HELO + dynamic + SPF + sender=recipient reaches this. bley: 2. */
  rfcThreshold: number;
  /** Evaluate SPF (fail/softfail scores 1) when it could still change the outcome. Default true. */
  spf: boolean;
  /** Key by client network (IPv4 /24, IPv6 /64) instead of the exact address. Default false. */
  keyByNetwork: boolean;
  /**
   * Key a sender whose SPF passes (for MAIL FROM) by its authenticated domain (`spf:example.com`)
   * instead of the client: a retry from another host of the sender's pool passes at once.
   * Default true.
   */
  keySpfPassByDomain: boolean;
  /** Auto-whitelist a client after this many successful deliveries; 0 turns it off. Default 5 (postgrey). */
  autoWhitelistAfter: number;
  /**
   * All the DNS work of one decision (the client's name, the DNS lists, SPF) within this time;
   * what has not answered by then counts as failed (and may make the decision `dns-tempfail`).
   * Default 10 s.
   */
  dnsBudgetMs: number;
  /** How long the per-address good and bad caches hold a verdict; 0 turns them off. Default 60 s. */
  cacheMs: number;
  /** Entries in each short-term cache at most. Default 100000. */
  cacheEntries: number;
  /** Passed triplets expire this long after they were last seen. Default 40 days. */
  passedTtlMs: number;
  /** Greylisted triplets expire this long after they were last seen. Default 10 days. */
  greylistedTtlMs: number;
  /** Decision-log lines expire after this. Default 30 days. */
  decisionTtlMs: number;
  /** Call-back outcomes in the same store expire after this (the `[cbv]` cache period). */
  callbackTtlMs?: number;
  /** Reputation counters in the same store not updated for this long expire. */
  reputationTtlMs?: number;
  /** DMARC evaluations in the same store older than this expire. */
  dmarcTtlMs?: number;
  /** The host name in X-Greylist and in the decision log. */
  hostname: string;
  /** The version in X-Greylist (`mailgate-VERSION`). */
  version: string;
  /** Add `X-Greylist` to messages that passed after waiting. Default true. */
  header: boolean;
  /** Write each decision to the store's decision log. Default true. */
  decisionLog: boolean;
  /** When the store fails: `open` passes and logs, `tempfail` defers (verdict `tempfail`). */
  storeFailure: 'open' | 'tempfail';
}

/** The facts of one request (Postfix's policy attributes, or the milter's equivalents). */
export interface GreylistRequest {
  /** The client's address as the MTA gives it (IPv6 in any spelling; `::ffff:` mapped accepted). */
  ip: string;
  /**
   * The client's verified reverse name as the MTA found it (Postfix's `client_name`); `unknown`
   * or empty when there is none. When undefined, mailgate looks the PTR up itself.
   */
  clientName?: string;
  helo?: string;
  /** Envelope sender; empty for the null sender. */
  sender: string;
  recipient: string;
  /**
   * The session's own lookups, when a caller has them (the policy engine's memoised checks): the
   * greylister asks these instead of looking up the client's name or SPF a second time.
   */
  lookups?: GreylistLookups;
  /**
   * Labels for the decision-log line, from what the caller decided before (the policy engine's
   * `SPF pass`), so that reports read them from greylisting's lines too. At most 4 are kept.
   */
  logTags?: readonly string[];
}

/** Lookups a caller shares with the greylister, each run at most once by the caller. */
export interface GreylistLookups {
  /** The client's PTR finding (verified name or not). */
  ptr?: () => Promise<PtrResult>;
  /** The SPF result for the request's sender, HELO and client. */
  spf?: () => Promise<SpfResult>;
}

/**
 * - `pass`: let it through (with `header` after a wait);
 * - `greylist`: temporary failure, come back later;
 * - `tempfail`: the store failed and `fail = "tempfail"`;
 */
export type GreylistVerdict = 'pass' | 'greylist' | 'tempfail';

/** The scores bley computes for a new triplet (absent = not evaluated). */
export interface GreylistScores {
  dnswl?: number;
  dnsbl?: number;
  helo?: number;
  dyn?: number;
  spf?: number;
  s_eq_r?: number;
}

/** What the greylister decided, and why. */
export interface GreylistDecision {
  verdict: GreylistVerdict;
  /**
   * Stable reason word: `postmaster`, `whitelist-recipient`, `whitelist-client`,
   * `auto-whitelist`, `cache-good`, `cache-bad`, `dnswl`, `dnsbl`, `score`, `clean`,
   * `known`, `waited`, `max-wait`, `early-retry`, `dns-tempfail`, `store-failure`.
   */
  reason: string;
  /** The key as stored (normalised). */
  key: { client: string; sender: string; recipient: string };
  scores: GreylistScores;
  /** Seconds the triplet waited, for `waited` / `max-wait`. */
  delay?: number;
  /** A header to add after a wait: `{ name: 'X-Greylist', value: 'delayed ...' }`. */
  header?: { name: string; value: string };
  /** Problems met on the way (a DNS list tempfail, a store error), for the log line. */
  problems: string[];
  /** For `whitelist-client` / `whitelist-recipient`: the entry that matched, `file:line: entry`. */
  match?: string;
}

/** Services a greylister uses. */
export interface GreylistServices {
  store: Store;
  resolver: Resolver;
  clock?: Clock;
}

/**
 * The log calls greylisting makes, in pino's call shape (`logger.info(fields, message)`), so a
 * pino logger can be passed as it is.
 */
export interface GreylistLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}
