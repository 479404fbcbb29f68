/**
 * The SMTP reply a receiver would give for each CSA result: the codes csv.py gave (with real
 * enhanced status codes where it left `?.?.?`), texts naming the client and its HELO. Everything
 * in a text came from the client or from DNS, so texts are reduced to printable ASCII and cut.
 */
import { printableAscii, truncate } from '../../text/index.js';
import type { CsaReply, CsaResult } from './types.js';

/** Longest HELO shown in a reply: a host name is at most 253 characters. */
const SHOWN_HELO = 255;

/**
 * The suggested reply: 550 5.7.1 for fail, 451 4.4.3 for tempfail, 250 otherwise.
 *
 * @example
 * csaReply({ result: 'fail', reason: 'address-mismatch', ip: '192.0.2.9', helo: 'mx.example.com' })
 * // { code: 550, xcode: '5.7.1', text: 'CSA: 192.0.2.9 is not authorized by mx.example.com' }
 */
export function csaReply(
  r: Pick<
    CsaResult,
    'result' | 'reason' | 'ip' | 'helo' | 'domain' | 'record' | 'target' | 'problem'
  >,
): CsaReply {
  const helo = shownHelo(r);
  const ip = r.ip;
  const refused = `CSA: ${ip} is not authorized by ${helo}`;
  switch (r.reason) {
    case 'ok':
      return reply(250, '2.7.0', `CSA: ${ip} is authorized by ${helo}`);
    case 'not-authorized':
      return reply(550, '5.7.1', `${refused}: ${helo} may not send mail`);
    case 'address-mismatch':
      return reply(550, '5.7.1', refused);
    case 'no-addresses':
      return reply(550, '5.7.1', `${refused}: no addresses for ${r.target ?? 'the target'}`);
    case 'ambiguous':
      return reply(550, '5.7.1', `${refused}: more than one CSA record`);
    case 'explicit-authorization-required':
      return reply(
        550,
        '5.7.1',
        `${refused}: ${parentOf(r.record)} requires a CSA record for each of its hosts`,
      );
    case 'uncertain':
      return reply(250, '2.7.0', `CSA: ${ip} is not listed by ${helo}; do not depend on delivery`);
    case 'no-record':
      return reply(250, '2.7.0', `CSA: no CSA record for ${helo}`);
    case 'local':
      return reply(250, '2.7.0', 'CSA: local client, not checked');
    case 'invalid-helo':
      return reply(250, '2.7.0', `CSA: ${helo} is not a host name, not checked`);
    case 'srv-lookup-failed':
      return reply(
        451,
        '4.4.3',
        `CSA: ${r.problem ?? `DNS failure looking up the CSA record of ${helo}`}; try again later`,
      );
    case 'address-lookup-failed':
      return reply(
        451,
        '4.4.3',
        `CSA: ${r.problem ?? `DNS failure looking up the addresses of ${r.target}`}; try again later`,
      );
  }
}

/**
 * The HELO as the client wrote it, made safe; an internationalised name, which printable ASCII
 * would turn into question marks, is shown in its A-label form.
 */
function shownHelo(r: Pick<CsaResult, 'helo' | 'domain'>): string {
  const safe = printableAscii(r.helo);
  const shown = safe !== r.helo && r.domain ? r.domain : safe;
  return truncate(shown === '' ? '(empty)' : shown, SHOWN_HELO);
}

function parentOf(record: string | undefined): string {
  return record ? record.replace(/^_client\._smtp\./, '') : 'a parent domain';
}

function reply(code: number, xcode: string, text: string): CsaReply {
  return { code, xcode, text: truncate(printableAscii(text), 400) };
}
