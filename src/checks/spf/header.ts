/**
 * Header values that record an SPF result: Received-SPF (RFC 7208 section 9.1) and the `spf=`
 * clause of Authentication-Results (RFC 8601). Every value that came from the client or from DNS
 * is quoted or escaped, so hostile input cannot break the header's syntax, and each is bounded so
 * that the whole field stays within the 998-character line limit of RFC 5322 unfolded.
 */
import {
  headerComment,
  headerValue,
  isDotAtom,
  mimeValue,
  quotedString,
} from '../../text/index.js';
import type { SpfResult, SpfResultWord } from './types.js';

/** Result words as pyspf writes them in Received-SPF, which our users' filters match on. */
const HEADER_WORD: Record<SpfResultWord, string> = {
  pass: 'Pass',
  fail: 'Fail',
  softfail: 'SoftFail',
  neutral: 'Neutral',
  none: 'None',
  permerror: 'PermError',
  temperror: 'TempError',
};

// Bounds after escaping; with the keys they add up to well under 998 characters.
const COMMENT_MAX = 240;
const VALUE_MAX = 110;

type HeaderFacts = Pick<
  SpfResult,
  'result' | 'identity' | 'ip' | 'sender' | 'domain' | 'helo' | 'mechanism' | 'problem'
>;

/** The comment of Received-SPF, in the words of RFC 7208's examples. */
export function receivedSpfComment(r: HeaderFacts, receiver: string): string {
  const o = r.domain;
  const c = r.ip;
  let text: string;
  switch (r.result) {
    case 'pass':
      text = `domain of ${o} designates ${c} as permitted sender`;
      break;
    case 'fail':
      text = `domain of ${o} does not designate ${c} as permitted sender`;
      break;
    case 'softfail':
      text = `transitioning domain of ${o} does not designate ${c} as permitted sender`;
      break;
    case 'neutral':
      text = `${c} is neither permitted nor denied by domain of ${o}`;
      break;
    case 'none':
      text = `domain of ${o} does not designate permitted sender hosts`;
      break;
    case 'permerror':
      text = `permanent error in processing domain of ${o}: ${r.problem ?? 'invalid record'}`;
      break;
    case 'temperror':
      text = `temporary error in processing during lookup of ${o}`;
      break;
  }
  return `${receiver}: ${text}`;
}

/**
 * The value of a Received-SPF header field (without the field name).
 *
 * @example
 * receivedSpf(result, { receiver: 'mx.example.org' })
 * // 'Pass (mx.example.org: domain of example.com designates 192.0.2.1 as permitted sender)
 * //  client-ip=192.0.2.1; envelope-from="jo@example.com"; helo=mail.example.com;
 * //  receiver=mx.example.org; mechanism="ip4:192.0.2.0/24"; identity=mailfrom'   (one line)
 */
export function receivedSpf(r: HeaderFacts, options: { receiver?: string } = {}): string {
  const receiver = options.receiver ?? 'unknown';
  const pairs: string[] = [`client-ip=${headerValue(r.ip)}`];
  if (r.identity === 'mailfrom') pairs.push(`envelope-from=${quotedString(r.sender, VALUE_MAX)}`);
  if (r.helo) pairs.push(`helo=${headerValue(r.helo, VALUE_MAX)}`);
  pairs.push(`receiver=${headerValue(receiver, VALUE_MAX)}`);
  if ((r.result === 'permerror' || r.result === 'temperror') && r.problem) {
    pairs.push(`problem=${quotedString(r.problem, VALUE_MAX)}`);
  }
  if (r.mechanism && r.result !== 'none')
    pairs.push(`mechanism=${headerValue(r.mechanism, VALUE_MAX)}`);
  pairs.push(`identity=${r.identity}`);
  const comment = headerComment(receivedSpfComment(r, receiver), COMMENT_MAX);
  return `${HEADER_WORD[r.result]} (${comment}) ${pairs.join('; ')}`;
}

/**
 * The `spf=` clause of an Authentication-Results header (RFC 8601 section 2.7.2).
 *
 * @example
 * authResultsClause(result)  // 'spf=pass smtp.mailfrom=jo@example.com'
 */
export function authResultsClause(r: HeaderFacts): string {
  const property =
    r.identity === 'helo'
      ? `smtp.helo=${domainValue(r.helo)}`
      : `smtp.mailfrom=${addressValue(r.sender)}`;
  const reason = r.problem ? ` reason=${quotedString(r.problem, VALUE_MAX)}` : '';
  return `spf=${r.result}${reason} ${property}`;
}

/**
 * A whole Authentication-Results value: our authserv-id, then the clauses.
 *
 * @example
 * authenticationResults('mx.example.org', [authResultsClause(result)])
 * // 'mx.example.org; spf=pass smtp.mailfrom=jo@example.com'
 */
export function authenticationResults(authservId: string, clauses: string[]): string {
  const id = mimeValue(authservId, VALUE_MAX);
  return clauses.length ? `${id}; ${clauses.join('; ')}` : `${id}; none`;
}

const DOMAIN =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** A domain-name pvalue when the text is one, else a quoted-string. */
function domainValue(text: string): string {
  return text.length <= VALUE_MAX && DOMAIN.test(text) ? text : quotedString(text, VALUE_MAX);
}

/** An address pvalue (dot-atom local part @ domain-name), else a quoted-string. */
function addressValue(address: string): string {
  const at = address.lastIndexOf('@');
  if (
    address.length <= VALUE_MAX &&
    at > 0 &&
    isDotAtom(address.slice(0, at)) &&
    DOMAIN.test(address.slice(at + 1))
  ) {
    return address;
  }
  return quotedString(address, VALUE_MAX);
}
