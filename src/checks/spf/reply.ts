/**
 * The SMTP reply a receiver would give for each SPF result. Enhanced status codes are those RFC
 * 7372 registered for SPF; the texts are safe to put on the wire whatever the record contained.
 */
import { printableAscii, truncate } from '../../text/index.js';
import type { SpfReply, SpfResult } from './types.js';

/**
 * The suggested reply: 550 for fail and permerror, 451 for temperror, 250 otherwise.
 *
 * @example
 * spfReply({ result: 'temperror', problem: 'TXT lookup for example.com failed (timeout)', ... })
 * // { code: 451, xcode: '4.7.24', text: 'SPF temporary error: TXT lookup for example.com failed (timeout)' }
 */
export function spfReply(
  r: Pick<SpfResult, 'result' | 'explanation' | 'explanationSource' | 'problem' | 'domain' | 'ip'>,
): SpfReply {
  switch (r.result) {
    case 'pass':
      return reply(250, '2.7.0', `${r.ip} is authorized by the SPF policy of ${r.domain}`);
    case 'fail':
      // An exp= text is the sender domain's words, and says so (RFC 7208 6.2).
      if (r.explanation && r.explanationSource === 'record') {
        return reply(550, '5.7.23', `${r.domain} explains: ${r.explanation}`);
      }
      return reply(
        550,
        '5.7.23',
        r.explanation ?? `SPF policy of ${r.domain} does not authorize ${r.ip}`,
      );
    case 'softfail':
      return reply(250, '2.7.0', `the SPF policy of ${r.domain} discourages mail from ${r.ip}`);
    case 'neutral':
      return reply(
        250,
        '2.7.0',
        `the SPF policy of ${r.domain} neither permits nor denies ${r.ip}`,
      );
    case 'none':
      return reply(250, '2.7.0', `no SPF policy for ${r.domain}`);
    case 'permerror':
      return reply(550, '5.7.24', `SPF permanent error: ${r.problem ?? 'invalid record'}`);
    case 'temperror':
      return reply(451, '4.7.24', `SPF temporary error: ${r.problem ?? 'DNS failure'}`);
  }
}

function reply(code: number, xcode: string, text: string): SpfReply {
  return { code, xcode, text: truncate(printableAscii(text), 400) };
}
