/**
 * The PTR check's public vocabulary: inputs, services, limits, and the result it returns.
 */
import type { Clock, Resolver } from '../../dns/types.js';

/**
 * - `verified`: a PTR name resolves back to the client's address (forward-confirmed reverse
 *   DNS, FCrDNS).
 * - `unverified`: PTR names exist, but none of those considered resolves back to the client.
 * - `none`: no PTR record (NXDOMAIN or no data).
 * - `tempfail`: the PTR lookup failed temporarily, or no name verified and a forward lookup
 *   failed temporarily, or the time budget ran out. Never read as "no name".
 */
export type PtrResultWord = 'verified' | 'unverified' | 'none' | 'tempfail';

export interface PtrInput {
  /** The SMTP client's address, IPv4 or IPv6 (IPv4-mapped IPv6 is treated as IPv4). */
  ip: string;
}

export interface PtrLimits {
  /** PTR names that are forward-confirmed; the rest are ignored (RFC 7208 4.6.4 uses 10). */
  names: number;
  /** Wall time for the whole check in milliseconds; when it runs out the result is tempfail. */
  timeBudgetMs: number;
}

export const DEFAULT_PTR_LIMITS: Readonly<PtrLimits> = Object.freeze({
  names: 10,
  timeBudgetMs: 10_000,
});

/** Services and settings of the check. Only `resolver` is required. */
export interface PtrContext {
  resolver: Resolver;
  clock?: Clock;
  limits?: Partial<PtrLimits>;
}

/** Things about the PTR answer that are wrong whatever the verification says. */
export interface PtrFlags {
  /** A PTR name is `localhost` (or `localhost.localdomain`, `*.localhost`) and the client is not loopback. */
  localhost: boolean;
  /** A PTR name is the root, `.`. */
  root: boolean;
  /** There were more PTR names than `limits.names`; only the first ones were considered. */
  truncated: boolean;
}

export interface PtrReply {
  code: number;
  xcode: string;
  text: string;
}

/** What `checkPtr` returns. */
export interface PtrResult {
  result: PtrResultWord;
  /** The client address in canonical form. */
  ip: string;
  /** The first PTR name (in answer order) that resolves back to the client; set for `verified`. */
  name?: string;
  /** The PTR names considered, as DNS gave them (the root as `.`), at most `limits.names`. */
  names: string[];
  /** The considered names that resolve back to the client, in answer order. */
  verifiedNames: string[];
  /**
   * Whether the name looks dynamic (see `looksDynamic`): the verified name, or else the first PTR
   * name. False when there is no name to judge.
   */
  dynamic: boolean;
  /** The heuristic's evidence for `dynamic`, stable words such as `ip-octets`, `keyword:dsl`. */
  reasons: string[];
  flags: PtrFlags;
  /** What failed, for `tempfail`; names no DNS server. */
  problem?: string;
  /** DNS queries asked of the resolver, cached or not. */
  queries: number;
  /** The suggested SMTP reply. */
  reply: PtrReply;
}
