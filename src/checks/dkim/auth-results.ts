/**
 * The dkim clauses of Authentication-Results (RFC 8601 section 2.7.1), in the shape the policy
 * engine renders: this module only chooses the words and properties, the renderer quotes and
 * bounds them.
 */
import type { AuthResultsClause } from '../auth-results.js';
import type { DkimSignatureResult } from './types.js';

/** One `header.X=value` property of a dkim clause. */
export interface DkimAuthResultsProperty {
  ptype: 'header';
  property: 'd' | 's' | 'b' | 'i' | 'a';
  value: string;
}

/** One dkim clause: an AuthResultsClause with DKIM's words. */
export interface DkimAuthResultsClause extends AuthResultsClause {
  method: 'dkim';
  result: 'none' | DkimSignatureResult['result'];
  reason?: string;
  properties: DkimAuthResultsProperty[];
}

/**
 * One clause per signature, or one `dkim=none` for an unsigned message. A reason is given for
 * every result but a plain pass (a pass with a testing key says so).
 *
 * @example
 * dkimAuthResults(await verifyDkim(message, {}, { resolver }))
 * // [{ method: 'dkim', result: 'pass', properties: [
 * //   { ptype: 'header', property: 'd', value: 'example.com' }, ... 'i', 's', 'a', 'b' ] }]
 * dkimAuthResults([])  // [{ method: 'dkim', result: 'none', properties: [] }]
 */
export function dkimAuthResults(results: readonly DkimSignatureResult[]): DkimAuthResultsClause[] {
  if (results.length === 0) return [{ method: 'dkim', result: 'none', properties: [] }];
  return results.map((r) => {
    const properties: DkimAuthResultsProperty[] = [];
    const add = (property: DkimAuthResultsProperty['property'], value: string) => {
      if (value !== '') properties.push({ ptype: 'header', property, value });
    };
    add('d', r.domain);
    add('i', r.identity);
    add('s', r.selector);
    add('a', r.algorithm);
    add('b', r.headerB);
    const clause: DkimAuthResultsClause = { method: 'dkim', result: r.result, properties };
    if (r.result !== 'pass' || r.testing) clause.reason = r.reason;
    return clause;
  });
}
