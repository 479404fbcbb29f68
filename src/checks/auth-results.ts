/**
 * The shape of one Authentication-Results clause (RFC 8601 resinfo) as checks give it: plain
 * data, which the policy engine renders, quoting and escaping every value. Checks that write a
 * clause (DKIM, DMARC, ARC) return this; none of them renders it.
 */

/** A `ptype.property=value` of a clause, with an optional comment after the value. */
export interface AuthResultsProperty {
  /** `smtp`, `header`, `body` or `policy` (RFC 8601 section 2.3). */
  ptype: string;
  /** e.g. `mailfrom`, `d`, `iprev`. */
  property: string;
  /** The value as found; rendered as RFC 8601 allows, quoted when it must be. */
  value: string;
  comment?: string;
}

/** One method's result, for any method. */
export interface AuthResultsClause {
  /** The method keyword: `dkim`, `dmarc`, `arc`, `iprev`, ... */
  method: string;
  /** The method's version (`dkim/1`), written only when given. */
  version?: number;
  /** The result keyword: `pass`, `fail`, `none`, `temperror`, ... */
  result: string;
  /** A comment after the result, e.g. `(good signature)`. */
  comment?: string;
  /** The `reason=` text. */
  reason?: string;
  properties?: readonly AuthResultsProperty[];
}
