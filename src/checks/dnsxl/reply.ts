/**
 * The SMTP reply a receiver would give for each verdict of the DNS list check. The texts are safe
 * on the wire whatever a list's TXT record contained.
 */
import { printableAscii, truncate } from '../../text/index.js';
import type { DnsxlListResult, DnsxlReply, DnsxlResult } from './types.js';

/**
 * The suggested reply: 554 5.7.1 naming the deciding list for `listed`, 451 4.4.3 naming the
 * lists that failed for `tempfail`, 250 2.7.0 otherwise.
 *
 * @example
 * dnsxlReply({ result: 'listed', ip: '192.0.2.1', lists: [{ zone: 'bl.example', kind: 'dnsbl',
 *   result: 'listed', codes: ['127.0.0.2'], weight: 1, reason: 'see https://bl.example/' }] })
 * // { code: 554, xcode: '5.7.1', text: 'client [192.0.2.1] is listed at bl.example: see https://bl.example/' }
 */
export function dnsxlReply(r: Pick<DnsxlResult, 'result' | 'ip' | 'domain' | 'lists'>): DnsxlReply {
  switch (r.result) {
    case 'whitelisted': {
      const list = r.lists.find((l) => l.kind === 'dnswl' && l.result === 'listed');
      return reply(
        250,
        '2.7.0',
        `${subject(r, 'dnswl')} is vouched for by ${list?.zone ?? 'a DNSWL'}`,
      );
    }
    case 'listed': {
      const list = deciding(r.lists);
      if (!list) return reply(554, '5.7.1', 'listed at a DNS block list');
      const why = list.reason ? `: ${list.reason}` : '';
      return reply(554, '5.7.1', `${subject(r, list.kind)} is listed at ${list.zone}${why}`);
    }
    case 'tempfail': {
      const zones = r.lists.filter((l) => l.result === 'tempfail').map((l) => l.zone);
      return reply(451, '4.4.3', `DNS list lookup failed temporarily: ${zones.join(', ')}`);
    }
    case 'not-listed':
      return reply(250, '2.7.0', 'not listed at the DNS block lists consulted');
  }
}

/** The listed block list that weighs most, the first one configured among equals. */
function deciding(lists: readonly DnsxlListResult[]): DnsxlListResult | undefined {
  let best: DnsxlListResult | undefined;
  for (const l of lists) {
    if (l.kind === 'dnswl' || l.result !== 'listed') continue;
    if (!best || l.weight > best.weight) best = l;
  }
  return best;
}

function subject(r: Pick<DnsxlResult, 'ip' | 'domain'>, kind: DnsxlListResult['kind']): string {
  return kind === 'rhsbl' ? `domain ${r.domain ?? ''}` : `client [${r.ip ?? ''}]`;
}

function reply(code: number, xcode: string, text: string): DnsxlReply {
  return { code, xcode, text: truncate(printableAscii(text), 400) };
}
