/**
 * The DNS list check's public vocabulary: list settings, inputs, and the result it returns.
 */
import type { Clock, Resolver } from '../../dns/types.js';

/**
 * What a list holds: client addresses that send spam (`dnsbl`), client addresses vouched for
 * (`dnswl`), or domains that appear in spam (`rhsbl`).
 */
export type DnsxlKind = 'dnsbl' | 'dnswl' | 'rhsbl';

/**
 * One list as configured: plain data, as it comes from the TOML file.
 *
 * @example
 * { zone: 'zen.example', kind: 'dnsbl', codes: ['127.0.0.2-127.0.0.11'], weight: 2, txt: true }
 */
export interface DnsxlList {
  /** The list's DNS zone, e.g. `zen.example`; a trailing dot and upper case are allowed. */
  zone: string;
  kind: DnsxlKind;
  /** What a listing counts for in the score (block lists only). A number of at least 0; default 1. */
  weight?: number;
  /**
   * The return codes that mean "listed": addresses (`127.0.0.4`) or inclusive ranges
   * (`127.0.0.2-127.0.0.11`), all inside 127.0.0.0/8. Default: any code in 127.0.0.0/8 that is
   * not an unusable code.
   */
  codes?: readonly string[];
  /**
   * The return codes that mean "this list will not answer you" (a blocked or public resolver,
   * too many queries), in the same forms. Default `127.255.255.0-127.255.255.255`, the block
   * Spamhaus uses for these errors. An empty list turns the rule off.
   */
  unusableCodes?: readonly string[];
  /** Fetch the TXT record of a listing as the reason. Default false. */
  txt?: boolean;
}

/** The facts the lists are asked about. */
export interface DnsxlInput {
  /**
   * The SMTP client's address, IPv4 or IPv6 (IPv4-mapped IPv6 is looked up as IPv4). Required
   * when a `dnsbl` or `dnswl` list is configured.
   */
  ip?: string;
  /**
   * The domain `rhsbl` lists are asked about (the sender's domain, the HELO name, ...). Required
   * when an `rhsbl` list is configured; a domain that cannot be valid (empty for the null
   * sender, an address literal) is not looked up.
   */
  domain?: string;
}

/** Services and settings of a check. `resolver` and `lists` are required. */
export interface DnsxlOptions {
  resolver: Resolver;
  lists: readonly DnsxlList[];
  clock?: Clock;
  /** Wall time for all lookups together, in milliseconds. Default 10000. */
  timeBudgetMs?: number;
  /** The block-list score from which the suggested reply rejects. Default 1. */
  threshold?: number;
}

export const DEFAULT_DNSXL_BUDGET_MS = 10_000;
export const DEFAULT_DNSXL_THRESHOLD = 1;
export const DEFAULT_DNSXL_UNUSABLE_CODES: readonly string[] = Object.freeze([
  '127.255.255.0-127.255.255.255',
]);

/**
 * What one list said:
 * - `listed`: an accepted return code;
 * - `not-listed`: NXDOMAIN, NODATA, or only codes the list does not accept (see `detail`);
 * - `unusable`: the list refuses to answer us (a code from `unusableCodes`); never a hit;
 * - `tempfail`: a temporary DNS failure, or the time budget ran out.
 */
export type DnsxlListWord = 'listed' | 'not-listed' | 'unusable' | 'tempfail';

/** One list's result. */
export interface DnsxlListResult {
  /** The zone in normal form (lower case, A-labels, no trailing dot). */
  zone: string;
  kind: DnsxlKind;
  result: DnsxlListWord;
  /** The name asked, or absent when nothing was asked (an invalid domain). */
  query?: string;
  /** The accepted codes for `listed`; the refusal codes for `unusable`; else empty. */
  codes: string[];
  weight: number;
  /** The list's TXT reason for a listing, printable ASCII, when `txt` was asked for and found. */
  reason?: string;
  /**
   * Why the result is what it is, for logs: `invalid-domain`, `name-too-long`, the temporary
   * failure (`timeout`, `servfail`, `time budget exhausted`, ...), `bad answer: 10.0.0.1` for
   * answers outside 127.0.0.0/8, `other codes: 127.0.0.9` for codes the list does not accept.
   */
  detail?: string;
}

/**
 * The check's verdict, for policies that want one word:
 * - `whitelisted`: a DNSWL lists the client;
 * - `listed`: the block lists' score reached the threshold (and no DNSWL could have vouched);
 * - `tempfail`: lists that failed could have changed the verdict;
 * - `not-listed`: otherwise.
 */
export type DnsxlResultWord = 'whitelisted' | 'listed' | 'not-listed' | 'tempfail';

/** A suggested SMTP reply for the result. */
export interface DnsxlReply {
  code: number;
  xcode: string;
  text: string;
}

/** What `checkDnsxl` returns. */
export interface DnsxlResult {
  result: DnsxlResultWord;
  /** The client address in canonical form (IPv4 for IPv4-mapped), when one was given. */
  ip?: string;
  /** The domain in normal form, or as given when it is invalid, when one was given. */
  domain?: string;
  /** One entry per configured list, in configuration order. */
  lists: DnsxlListResult[];
  /** Block lists (`dnsbl`, `rhsbl`) that list the client or domain. */
  hits: number;
  /** Sum of the weights of the block lists that list the client or domain. */
  score: number;
  /** Whether any DNSWL lists the client. */
  whitelisted: boolean;
  /** Sum of the weights of the DNSWLs that list the client (for a threshold of their own). */
  whitelistScore: number;
  /** Lists that failed temporarily. */
  tempfails: number;
  /** Lists that refused to answer us. */
  unusable: number;
  /** The suggested SMTP reply. */
  reply: DnsxlReply;
}
