/**
 * ARC in Authentication-Results: the `arc=` clause we write for a validation (RFC 8617 section
 * 10.1 registers the method, its results none, pass and fail, and the properties
 * `header.oldest-pass` and `smtp.remote-ip`), and our own Authentication-Results gathered into
 * the text an ARC-Authentication-Results carries.
 */
import { printableAscii, truncate } from '../../text/index.js';
import type { AuthResultsClause } from '../auth-results.js';
import { fieldValue, type HeaderField } from '../message/index.js';
import type { ArcResult } from './types.js';

/** What the SMTP conversation tells that the validation cannot know. */
export interface ArcClauseFacts {
  /** The SMTP client's address: `smtp.remote-ip`, which says whom the chain came from. */
  remoteIp?: string;
}

/** Longest reason put in the clause. */
const MAX_REASON = 100;

/**
 * The `arc=` clause for a validation result: `header.oldest-pass` when the chain passed, the
 * client's address as `smtp.remote-ip` when known, the reason when it failed (and a comment when
 * the failure rests on DNS trouble).
 *
 * @example
 * arcAuthResults({ cv: 'pass', oldestPass: 0, ... }, { remoteIp: '192.0.2.1' })
 * // { method: 'arc', result: 'pass', properties: [
 * //   { ptype: 'header', property: 'oldest-pass', value: '0' },
 * //   { ptype: 'smtp', property: 'remote-ip', value: '192.0.2.1' }] }
 */
export function arcAuthResults(
  result: Pick<ArcResult, 'cv' | 'reason' | 'oldestPass' | 'temporary'>,
  facts: ArcClauseFacts = {},
): AuthResultsClause {
  const properties: Array<{ ptype: string; property: string; value: string }> = [];
  if (result.cv === 'pass' && result.oldestPass !== undefined) {
    properties.push({ ptype: 'header', property: 'oldest-pass', value: String(result.oldestPass) });
  }
  if (facts.remoteIp !== undefined && result.cv !== 'none') {
    properties.push({ ptype: 'smtp', property: 'remote-ip', value: facts.remoteIp });
  }
  const clause: AuthResultsClause = { method: 'arc', result: result.cv };
  if (result.cv === 'fail') {
    clause.reason = truncate(printableAscii(result.reason), MAX_REASON);
    if (result.temporary) clause.comment = 'temporary DNS failure';
  }
  if (properties.length > 0) clause.properties = properties;
  return clause;
}

// authserv-id at the start of an Authentication-Results value, an optional version, then ';'.
const AUTHSERV_ID = /^[ \t]*([^\s;"()]+)(?:[ \t]+[0-9]+)?[ \t]*(?:;|$)/;

/**
 * Our Authentication-Results gathered for an ARC-Authentication-Results: the results of every
 * Authentication-Results field whose authserv-id is ours, top first, joined with `; ` after the
 * authserv-id (RFC 8617 section 4.1.1 wants one AAR per set). Undefined when there is none.
 *
 * @example
 * gatherAuthResults([fieldFromText('Authentication-Results: mx.example.net; spf=pass'),
 *   fieldFromText('Authentication-Results: mx.example.net; dkim=pass')], 'mx.example.net')
 * // 'mx.example.net; spf=pass; dkim=pass'
 */
export function gatherAuthResults(
  headers: readonly HeaderField[],
  authservId: string,
): string | undefined {
  const wanted = authservId.toLowerCase();
  const results: string[] = [];
  let found = false;
  for (const field of headers) {
    if (field.key !== 'authentication-results') continue;
    const value = fieldValue(field)
      .replace(/\r\n(?=[ \t])/g, '')
      .replace(/[\x00-\x1f\x7f]+/g, ' ');
    const m = AUTHSERV_ID.exec(value);
    if (!m || m[1]!.toLowerCase() !== wanted) continue;
    found = true;
    const rest = value
      .slice(m[0].length)
      .replace(/[ \t]+/g, ' ')
      .replace(/[ ;]+$/, '')
      .trim();
    // `none` says there were no results: it means nothing beside others.
    if (rest !== '' && rest.toLowerCase() !== 'none') results.push(rest);
  }
  if (!found) return undefined;
  return results.length === 0 ? `${authservId}; none` : `${authservId}; ${results.join('; ')}`;
}
