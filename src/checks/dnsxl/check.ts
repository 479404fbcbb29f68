/**
 * checkDnsxl: one client address and/or domain against the configured DNS lists (RFC 5782), all
 * asked at once within one time budget.
 */

import { formatIp, parseIp, reverseLabels, unmapIpv4 } from '../../dns/address.js';
import type { DnsResult, Resolver, TemporaryReason } from '../../dns/types.js';
import { printableAscii, truncate } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { dnsxlDomain } from './domain.js';
import {
  type CompiledList,
  compileDnsxlLists,
  inAnyRange,
  ipv4Number,
  isLoopback,
} from './list.js';
import { dnsxlReply } from './reply.js';
import {
  DEFAULT_DNSXL_BUDGET_MS,
  DEFAULT_DNSXL_THRESHOLD,
  type DnsxlInput,
  type DnsxlListResult,
  type DnsxlOptions,
  type DnsxlResult,
  type DnsxlResultWord,
} from './types.js';

/** Longest reason kept from a list's TXT record, in characters. */
const MAX_REASON = 200;

/** What every list lookup of one check shares. */
interface Lookup {
  resolver: Resolver;
  /** The reversed address labels (`1.2.0.192`, or 32 nibbles), or null without an address. */
  reversed: string | null;
  /** The domain in normal form, or null when it cannot be valid (or none was given). */
  domain: string | null;
  /** Milliseconds left of the budget. */
  timeLeft: () => number;
}

/**
 * Ask every configured list about the client address (`dnsbl`, `dnswl`) or the domain (`rhsbl`).
 * Throws a TypeError for programming errors: bad list settings, an address that is not one, or a
 * list whose subject was not given.
 *
 * @example
 * const r = await checkDnsxl({ ip: '192.0.2.1', domain: 'example.com' }, {
 *   resolver: createResolver(),
 *   lists: [
 *     { zone: 'zen.example', kind: 'dnsbl', codes: ['127.0.0.2-127.0.0.11'], txt: true },
 *     { zone: 'dbl.example', kind: 'rhsbl', codes: ['127.0.1.2-127.0.1.99'] },
 *     { zone: 'list.dnswl.example', kind: 'dnswl' },
 *   ],
 * });
 * r.result  // 'whitelisted' | 'listed' | 'not-listed' | 'tempfail'
 * r.score   // sum of the weights of the block lists that list it
 */
export async function checkDnsxl(input: DnsxlInput, options: DnsxlOptions): Promise<DnsxlResult> {
  const lists = compileDnsxlLists(options.lists);
  const threshold = options.threshold ?? DEFAULT_DNSXL_THRESHOLD;
  if (!(Number.isFinite(threshold) && threshold > 0)) {
    throw new TypeError('checkDnsxl: threshold must be a number above 0');
  }
  const budget = options.timeBudgetMs ?? DEFAULT_DNSXL_BUDGET_MS;
  if (!(Number.isFinite(budget) && budget > 0)) {
    throw new TypeError('checkDnsxl: timeBudgetMs must be a number of milliseconds above 0');
  }

  let ip: string | undefined;
  let reversed: string | null = null;
  if (input.ip !== undefined) {
    const parsed = parseIp(input.ip);
    if (!parsed) throw new TypeError(`checkDnsxl: not an IP address: ${printableAscii(input.ip)}`);
    const address = unmapIpv4(parsed);
    ip = formatIp(address);
    reversed = reverseLabels(address).join('.');
  } else if (lists.some((l) => l.kind !== 'rhsbl')) {
    throw new TypeError('checkDnsxl: dnsbl and dnswl lists need the client address (ip)');
  }
  let domain: string | null = null;
  let shownDomain: string | undefined;
  if (input.domain !== undefined) {
    domain = dnsxlDomain(input.domain);
    shownDomain = domain ?? printableAscii(truncate(input.domain, 256));
  } else if (lists.some((l) => l.kind === 'rhsbl')) {
    throw new TypeError('checkDnsxl: rhsbl lists need a domain');
  }

  const dns = new BudgetedQueries(options.resolver, options.clock ?? systemClock, budget);
  const lookup: Lookup = {
    resolver: options.resolver,
    reversed,
    domain,
    timeLeft: () => dns.timeLeft(),
  };
  // Every list at once: one slow list must not use up the time of the others.
  const results = await Promise.all(lists.map((list) => askList(list, lookup)));

  const result: Omit<DnsxlResult, 'reply'> = {
    result: 'not-listed',
    lists: results,
    hits: 0,
    score: 0,
    whitelisted: false,
    whitelistScore: 0,
    tempfails: 0,
    unusable: 0,
  };
  if (ip !== undefined) result.ip = ip;
  if (shownDomain !== undefined) result.domain = shownDomain;
  let failedWeight = 0;
  let failedWhitelist = false;
  for (const r of results) {
    if (r.result === 'tempfail') {
      result.tempfails++;
      if (r.kind === 'dnswl') failedWhitelist = true;
      else failedWeight += r.weight;
    } else if (r.result === 'unusable') {
      result.unusable++;
    } else if (r.result === 'listed') {
      if (r.kind === 'dnswl') {
        result.whitelisted = true;
        result.whitelistScore += r.weight;
      } else {
        result.hits++;
        result.score += r.weight;
      }
    }
  }
  result.result = verdict(result, threshold, failedWeight, failedWhitelist);
  return { ...result, reply: dnsxlReply(result) };
}

/**
 * A DNSWL listing wins, as it does for bley's users; a block-list score at the threshold rejects
 * unless a DNSWL that failed might have vouched for the client; failures that could have reached
 * the threshold are a tempfail, never a silent "not listed".
 */
function verdict(
  totals: Pick<DnsxlResult, 'whitelisted' | 'score'>,
  threshold: number,
  failedWeight: number,
  failedWhitelist: boolean,
): DnsxlResultWord {
  if (totals.whitelisted) return 'whitelisted';
  if (totals.score >= threshold) return failedWhitelist ? 'tempfail' : 'listed';
  if (failedWeight > 0 && totals.score + failedWeight >= threshold) return 'tempfail';
  return 'not-listed';
}

/** Ask one list, and its TXT record for the reason when it lists the subject. */
async function askList(list: CompiledList, lookup: Lookup): Promise<DnsxlListResult> {
  const out: DnsxlListResult = {
    zone: list.zone,
    kind: list.kind,
    result: 'not-listed',
    codes: [],
    weight: list.weight,
  };
  let name: string;
  if (list.kind === 'rhsbl') {
    if (lookup.domain === null) return { ...out, detail: 'invalid-domain' };
    name = `${lookup.domain}.${list.zone}`;
  } else {
    name = `${lookup.reversed}.${list.zone}`;
  }
  // Such a name cannot be asked; the resolver would call it NXDOMAIN without a word.
  if (name.length > 253) return { ...out, detail: 'name-too-long' };
  out.query = name;

  const answer = await lookup.resolver.query(name, 'A', { timeout: lookup.timeLeft() });
  if (answer.kind === 'temporary')
    return { ...out, result: 'tempfail', detail: why(answer.reason) };
  // NXDOMAIN and NODATA both mean "not listed" (RFC 5782 2.1).
  if (answer.kind !== 'answer') return out;

  const bad = new Set<string>();
  const refused = new Set<string>();
  const accepted = new Set<string>();
  const other = new Set<string>();
  for (const record of answer.records) {
    const n = ipv4Number(record.address);
    if (n === null || !isLoopback(n)) bad.add(printableAscii(record.address));
    else if (inAnyRange(n, list.unusable)) refused.add(record.address);
    else if (list.codes === null || inAnyRange(n, list.codes)) accepted.add(record.address);
    else other.add(record.address);
  }
  const notes: string[] = [];
  if (bad.size) notes.push(`bad answer: ${[...bad].join(', ')}`);
  if (other.size) notes.push(`other codes: ${[...other].join(', ')}`);

  if (refused.size) {
    notes.unshift('query refused');
    return { ...out, result: 'unusable', codes: [...refused], detail: notes.join('; ') };
  }
  if (accepted.size === 0) return notes.length ? { ...out, detail: notes.join('; ') } : out;

  out.result = 'listed';
  out.codes = [...accepted];
  if (list.txt) {
    const txt = await lookup.resolver.query(name, 'TXT', { timeout: lookup.timeLeft() });
    const reason = reasonOf(txt);
    if (reason) out.reason = reason;
    else if (txt.kind === 'temporary') notes.push(`no reason (${why(txt.reason)})`);
  }
  if (notes.length) out.detail = notes.join('; ');
  return out;
}

/** The listing's TXT records as one line of printable ASCII, or undefined when there is none. */
function reasonOf(txt: DnsResult<'TXT'>): string | undefined {
  if (txt.kind !== 'answer') return undefined;
  const texts = new Set<string>();
  for (const record of txt.records) {
    const text = printableAscii(record.strings.join('')).trim();
    if (text) texts.add(text);
  }
  if (texts.size === 0) return undefined;
  return truncate([...texts].join('; '), MAX_REASON);
}

function why(reason: TemporaryReason): string {
  return reason === 'deadline' ? 'time budget exhausted' : reason;
}
