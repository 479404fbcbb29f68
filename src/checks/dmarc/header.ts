/**
 * The `dmarc` clause of Authentication-Results (RFC 8601), with the properties RFC 9989 section
 * 9.1 registers: `header.from` (the Author Domain) and `policy.dmarc` (the policy evaluated,
 * after testing mode and sampling). The clause is data; the policy engine writes it with every
 * other clause, escaping as RFC 8601 needs.
 */
import type { AuthResultsClause } from '../auth-results.js';
import { ONE_LOWER } from './check.js';
import type { DmarcPolicy, DmarcResult, DmarcResultWord } from './types.js';

/** One property of the clause (the shape of the policy engine's AuthResultsProperty). */
export interface DmarcAuthResultsProperty {
  ptype: 'header' | 'policy';
  property: 'from' | 'dmarc';
  value: string;
}

/** The clause: an AuthResultsClause with DMARC's words. */
export interface DmarcAuthResultsClause extends AuthResultsClause {
  method: 'dmarc';
  result: DmarcResultWord;
  /** Why, for the results that are no verdict: none, temperror, permerror. */
  reason?: string;
  properties: DmarcAuthResultsProperty[];
}

/**
 * The Authentication-Results clause for a DMARC result. `policy.dmarc` is written for a verdict
 * (pass or fail): for a failure, the disposition; for a pass, what a failure would have been
 * given (the policy, one step lower in testing mode), which is what receivers downstream and
 * the Domain Owner's tooling read it for. It is also written for a permerror whose evaluated
 * domains asked for something stricter than none.
 *
 * @example
 * resultClause(dmarcAuthResults(result))
 * // 'dmarc=pass header.from=example.com policy.dmarc=reject'
 */
export function dmarcAuthResults(result: DmarcResult): DmarcAuthResultsClause {
  const clause: DmarcAuthResultsClause = { method: 'dmarc', result: result.result, properties: [] };
  const verdict = result.result === 'pass' || result.result === 'fail';
  if (!verdict && result.reason) clause.reason = result.reason;
  if (result.domain !== undefined) {
    clause.properties.push({ ptype: 'header', property: 'from', value: result.domain });
  }
  const evaluated = evaluatedPolicy(result);
  if (verdict || evaluated !== 'none') {
    clause.properties.push({ ptype: 'policy', property: 'dmarc', value: evaluated });
  }
  return clause;
}

function evaluatedPolicy(result: DmarcResult): DmarcPolicy {
  if (result.result !== 'pass') return result.disposition;
  if (!result.testing) return result.policy;
  return ONE_LOWER[result.policy];
}
