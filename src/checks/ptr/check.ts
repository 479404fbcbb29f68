/**
 * checkPtr: the client's reverse DNS, forward-confirmed (FCrDNS), with the dynamic-address
 * heuristic and the flags for PTR names no remote host may have.
 */

import {
  formatIp,
  type IpAddress,
  parseIp,
  reverseName,
  sameIp,
  unmapIpv4,
} from '../../dns/address.js';
import type { AaaaRecord, ARecord, DnsResult, RecordType } from '../../dns/types.js';
import { printableAscii } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { looksDynamic } from './dynamic.js';
import { isLocalhostName, isLoopback } from './names.js';
import { ptrReply } from './reply.js';
import {
  DEFAULT_PTR_LIMITS,
  type PtrContext,
  type PtrFlags,
  type PtrInput,
  type PtrLimits,
  type PtrResult,
} from './types.js';

/** One forward lookup's verdict on one PTR name. */
type Confirmation = 'yes' | 'no' | { temporary: string };

/**
 * Look up the client's PTR names and confirm them forward: a name is verified when its A (IPv4
 * client) or AAAA (IPv6 client) records include the client's address. At most `limits.names`
 * names are confirmed, all at once; a match wins over a temporary failure elsewhere.
 *
 * @example
 * const r = await checkPtr({ ip: '192.0.2.1' }, { resolver: createResolver() });
 * r.result   // 'verified' | 'unverified' | 'none' | 'tempfail'
 * r.name     // 'mail.example.com' when verified
 * r.dynamic  // true for names like 'dsl-192-0-2-1.pool.example.net'
 */
export async function checkPtr(input: PtrInput, context: PtrContext): Promise<PtrResult> {
  const parsed = parseIp(input.ip);
  if (!parsed) throw new TypeError(`not an IP address: ${printableAscii(input.ip)}`);
  const ip = unmapIpv4(parsed);
  const limits = resolveLimits<PtrLimits>('PTR', DEFAULT_PTR_LIMITS, context.limits);
  const dns = new BudgetedQueries(
    context.resolver,
    context.clock ?? systemClock,
    limits.timeBudgetMs,
  );
  const query = <T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> =>
    dns.query(name, type);

  const result: Omit<PtrResult, 'reply'> = {
    result: 'none',
    ip: formatIp(ip),
    names: [],
    verifiedNames: [],
    dynamic: false,
    reasons: [],
    flags: { localhost: false, root: false, truncated: false },
    queries: 0,
  };

  const answer = await query(reverseName(ip), 'PTR');
  if (answer.kind === 'temporary') {
    result.result = 'tempfail';
    result.problem = `PTR lookup failed (${why(answer.reason)})`;
  } else if (answer.kind === 'answer') {
    const all = answer.records.map((r) => (r.target === '' ? '.' : r.target));
    result.flags = flagsOf(all, ip, limits.names);
    result.names = all.slice(0, limits.names);
    const confirmations = await Promise.all(result.names.map((name) => confirm(query, name, ip)));
    result.verifiedNames = result.names.filter((_, i) => confirmations[i] === 'yes');
    const failed = confirmations.find((c): c is { temporary: string } => typeof c === 'object');
    if (result.verifiedNames.length > 0) {
      result.result = 'verified';
      result.name = result.verifiedNames[0]!;
    } else if (failed) {
      result.result = 'tempfail';
      result.problem = `forward lookup of a PTR name failed (${failed.temporary})`;
    } else {
      result.result = 'unverified';
    }
    const judged = result.name ?? result.names.find((n) => n !== '.' && !isLocalhostName(n));
    if (judged !== undefined) {
      const verdict = looksDynamic(judged, ip);
      result.dynamic = verdict.dynamic;
      result.reasons = verdict.reasons;
    }
  }
  result.queries = dns.queries;
  (result as PtrResult).reply = ptrReply(result);
  return result as PtrResult;
}

function flagsOf(names: string[], ip: IpAddress, limit: number): PtrFlags {
  return {
    localhost: !isLoopback(ip) && names.some(isLocalhostName),
    root: names.includes('.'),
    truncated: names.length > limit,
  };
}

/**
 * Whether `name` resolves to the client. The root, localhost names and names that are not
 * printable ASCII are not asked about: none of them can honestly name a remote client.
 */
async function confirm(
  query: <T extends RecordType>(name: string, type: T) => Promise<DnsResult<T>>,
  name: string,
  ip: IpAddress,
): Promise<Confirmation> {
  if (name === '.' || !/^[\x21-\x7e]+$/.test(name)) return 'no';
  if (isLocalhostName(name) && !isLoopback(ip)) return 'no';
  const answer = await query(name, ip.family === 4 ? 'A' : 'AAAA');
  if (answer.kind === 'temporary') return { temporary: why(answer.reason) };
  if (answer.kind !== 'answer') return 'no';
  for (const record of answer.records as Array<ARecord | AaaaRecord>) {
    const address = parseIp(record.address);
    if (address && sameIp(unmapIpv4(address), ip)) return 'yes';
  }
  return 'no';
}

/** A temporary failure in words fit for a reply: the resolver's detail names our servers. */
function why(reason: string): string {
  return reason === 'deadline' ? 'time budget exhausted' : reason;
}
