/**
 * From a validated NOERROR/NXDOMAIN response to what the query means: an answer, NXDOMAIN,
 * NODATA, or a CNAME chain that stops short and must be followed with another query.
 */
import { answerTtl, negativeTtl } from './cache.js';
import { type DnsMessage, Rcode, sameName } from './codec.js';
import type { CnameRecord, DnsRecord, DnsResult, RecordType } from './types.js';

/** RFC 1034 leaves the bound to us; 8 links is more than any sane zone uses. */
export const MAX_CNAME_HOPS = 8;

/** A result the resolver can hand out, and how long it may be cached (undefined: not at all). */
export interface Final {
  kind: 'final';
  result: DnsResult;
  ttl: number | undefined;
}

/** A chain whose last name the server did not resolve for us. */
export interface FollowUp {
  kind: 'follow';
  cnames: CnameRecord[];
  /** The name to ask about next. */
  next: string;
}

export type Outcome = Final | FollowUp;

function final(result: DnsResult, ttl: number | undefined): Final {
  return { kind: 'final', result, ttl };
}

/**
 * Interpret a response to `name`/`type` whose rcode is NOERROR or NXDOMAIN. Only records on the
 * CNAME chain that starts at the question are believed; anything else in the answer section is
 * out of place and ignored.
 *
 * @example
 * const outcome = interpret('www.example.com', 'A', message);
 * if (outcome.kind === 'follow') { ... query outcome.next ... }
 */
export function interpret(name: string, type: RecordType, message: DnsMessage): Outcome {
  const { answers } = message;
  if (type === 'CNAME') {
    const records = answers.filter((r) => r.type === 'CNAME' && sameName(r.name, name));
    if (message.rcode === Rcode.NXDOMAIN) return final(nxdomain(), negativeTtl(message.authority));
    if (records.length > 0) return final(answer(records, [], message), answerTtl(records, []));
    return final(nodata(), negativeTtl(message.authority));
  }

  const cnames: CnameRecord[] = [];
  const seen = new Set([name.toLowerCase()]);
  let current = name;
  for (;;) {
    const records = answers.filter((r) => r.type === type && sameName(r.name, current));
    if (records.length > 0 && message.rcode === Rcode.NOERROR) {
      return final(answer(records, cnames, message), answerTtl(records, cnames));
    }
    const cname = answers.find(
      (r): r is CnameRecord => r.type === 'CNAME' && sameName(r.name, current),
    );
    if (!cname) break;
    cnames.push(cname);
    const target = cname.target.toLowerCase();
    // A loop or an endless chain has no data at its end; nothing to cache, nothing to follow.
    if (seen.has(target) || cnames.length > MAX_CNAME_HOPS) return final(nodata(), undefined);
    seen.add(target);
    current = cname.target;
  }

  const soaTtl = negativeTtl(message.authority);
  const negativeFor = (ttl: number | undefined) =>
    ttl === undefined || cnames.length === 0 ? ttl : Math.min(ttl, answerTtl([], cnames));
  if (message.rcode === Rcode.NXDOMAIN) return final(nxdomain(), negativeFor(soaTtl));
  // A chain ending in an SOA is the server's NODATA for the chain's end (RFC 2308 section 2.2):
  // it did follow the chain. Without one, it stopped (e.g. an authoritative server whose alias
  // leaves its zones) and the end must be asked about separately.
  if (cnames.length > 0 && soaTtl === undefined) return { kind: 'follow', cnames, next: current };
  return final(nodata(), negativeFor(soaTtl));
}

function answer(records: DnsRecord[], cnames: CnameRecord[], message: DnsMessage): DnsResult {
  return { kind: 'answer', records, cnames, additional: message.additional, cached: false };
}

function nxdomain(): DnsResult {
  return { kind: 'nxdomain', cached: false };
}

function nodata(): DnsResult {
  return { kind: 'nodata', cached: false };
}
