/**
 * The DMARC check's public vocabulary: inputs, settings, services, the record, and the result.
 */
import type { Clock, Resolver } from '../../dns/types.js';
import type { HeaderField } from '../message/index.js';

/** The result words of RFC 9989 section 9.2 (the same as RFC 7489's). */
export type DmarcResultWord = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';

/** A Domain Owner Assessment Policy (`p=`, `sp=`, `np=`). */
export type DmarcPolicy = 'none' | 'quarantine' | 'reject';

/** An alignment mode: relaxed or strict. */
export type DmarcAlignment = 'r' | 's';

/** How the policy record and the organizational domains are found. */
export type DmarcDiscovery = 'tree-walk' | 'psl';

/** SPF's result as DMARC reads it. */
export interface DmarcSpfInput {
  /** The domain SPF checked: the MAIL FROM domain, or the HELO name for a null MAIL FROM. */
  domain: string;
  result: 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';
  /**
   * `mfrom` for the MAIL FROM identity; `helo` only when MAIL FROM was null, whose identity is
   * then `postmaster@<HELO>` (RFC 7208 section 2.4, which RFC 9989 section 3.2.4 points to).
   * A HELO result for a message with a MAIL FROM must not be passed.
   */
  scope: 'mfrom' | 'helo';
}

/** One DKIM signature's outcome as DMARC reads it. */
export interface DmarcDkimInput {
  /** The signature's `d=`. */
  domain: string;
  /** DKIM's result word; only `pass` counts. */
  result: string;
  /** The signature's `s=`, kept for reports. */
  selector?: string;
}

/** What the message and the other checks tell the DMARC check. */
export interface DmarcInput {
  /** Every From field of the message (the check handles 0, 1 or several, and several addresses in one). */
  from: readonly HeaderField[];
  /** SPF's result for the MAIL FROM identity (or for HELO when MAIL FROM was null, as RFC 9989 says). */
  spf?: DmarcSpfInput;
  /** Each DKIM signature's result and d= (DMARC counts only passes). */
  dkim: ReadonlyArray<DmarcDkimInput>;
}

/** The receiver's choices. */
export interface DmarcSettings {
  /**
   * `tree-walk` (RFC 9989, the default): records and organizational domains by the DNS Tree
   * Walk. `psl` (RFC 7489): organizational domains from the public suffix list, the record at
   * the From domain or else at its organizational domain.
   */
  discovery: DmarcDiscovery;
  /** `psl` mode only: apply `pct=` sampling with the injected random source. */
  honorPct: boolean;
  /** Wall time for every DNS query of the check together, in milliseconds. */
  timeBudgetMs: number;
}

export const DEFAULT_DMARC_SETTINGS: Readonly<DmarcSettings> = Object.freeze({
  discovery: 'tree-walk',
  honorPct: true,
  timeBudgetMs: 5000,
});

/** The world the check needs. */
export interface DmarcServices {
  resolver: Resolver;
  clock?: Clock;
  /** A number in [0, 1), for `pct=` sampling; `Math.random` when none is given. */
  random?: () => number;
}

/** A DMARC policy record as it applies (frozen: parses are shared). */
export interface DmarcRecord {
  /**
   * The policy for the domain itself. `none` also when `p=` is absent (RFC 9989 section 4.7) or,
   * with a usable `rua=`, invalid (section 4.10.1).
   */
  readonly p: DmarcPolicy;
  /** The policy for existing subdomains, when given and valid. */
  readonly sp?: DmarcPolicy;
  /** The policy for non-existent subdomains (RFC 9989 only), when given and valid. */
  readonly np?: DmarcPolicy;
  readonly adkim: DmarcAlignment;
  readonly aspf: DmarcAlignment;
  /** `t=y`: testing mode (RFC 9989 only); absent when the record does not say. */
  readonly t?: boolean;
  /** `psd=` (RFC 9989 only); absent when the record does not say (which means `u`). */
  readonly psd?: 'y' | 'n' | 'u';
  /** `pct=` (RFC 7489 only); absent when the record does not say (which means 100). */
  readonly pct?: number;
  /** Aggregate report URIs that are syntactically valid, without any obsolete `!size`. */
  readonly rua?: readonly string[];
  /** Failure report URIs, likewise. */
  readonly ruf?: readonly string[];
  /**
   * What was wrong in the record and was discarded for defaults (RFC 9989 section 4.8), in
   * printable ASCII, for the log; empty for a clean record.
   */
  readonly ignored: readonly string[];
}

/** What `parseDmarcRecord` gives. */
export type DmarcRecordParse = { ok: true; record: DmarcRecord } | { ok: false; reason: string };

/** What `checkDmarc` returns. */
export interface DmarcResult {
  result: DmarcResultWord;
  /** Why, in words for the log: printable ASCII, bounded. */
  reason: string;
  /** The RFC5322.From domain (lowercase, A-label), undefined when none could be found. */
  domain?: string;
  /** The domain whose record applied. */
  policyDomain?: string;
  /**
   * The From domain's organizational domain: known whenever relaxed alignment needed it (or the
   * record says, with `psd=`); undefined when the check had no need to find it.
   */
  organizationalDomain?: string;
  /**
   * The policy the record asks for this message (p=, or sp=/np= for subdomains / non-existent
   * ones). Whether a subdomain exists is asked only when np= would change a failure's policy; a
   * pass reports the policy for an existing subdomain.
   */
  policy: DmarcPolicy;
  /**
   * What to apply: `none` unless DMARC failed; for a failure the policy, one step lower in
   * testing mode (t=y, RFC 9989 section 4.7) or for a message left out of pct= sampling
   * (RFC 7489 section 6.6.4).
   */
  disposition: DmarcPolicy;
  spfAligned: boolean;
  dkimAligned: boolean;
  /** The DKIM domains that passed and aligned (for the aggregate report and the log). */
  alignedDkimDomains: string[];
  /** The record that applied. */
  record?: DmarcRecord;
  /** The record asked for testing mode (t=y). */
  testing: boolean;
  /** DNS queries asked, for bounds and metrics. */
  queries: number;
}
