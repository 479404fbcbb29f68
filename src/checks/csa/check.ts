/**
 * checkCsa: Client SMTP Authorization (draft-ietf-marid-csv-csa-02) of one HELO name, with the
 * subdomain search of the parent domains that csv.py left out.
 */

import { formatIp, type IpAddress, parseIp, sameIp, unmapIpv4 } from '../../dns/address.js';
import type {
  AaaaRecord,
  ARecord,
  CnameRecord,
  DnsRecord,
  DnsResult,
  RecordType,
  SrvRecord,
} from '../../dns/types.js';
import { printableAscii } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { csaReply } from './reply.js';
import { csaSubject, isLoopback } from './subject.js';
import {
  type CsaInput,
  type CsaLimits,
  type CsaOptions,
  type CsaReason,
  type CsaResult,
  type CsaResultWord,
  DEFAULT_CSA_LIMITS,
} from './types.js';

/** The CSA version this check understands: the SRV priority field. */
const CSA_VERSION = 1;
/** Port field bit 1: every host below this domain must have a CSA record of its own. */
const EXPLICIT_AUTHORIZATION = 1;
/** CNAME links followed inside an additional section, as the resolver does in answers. */
const MAX_CNAME_LINKS = 8;

type Draft = Omit<CsaResult, 'reply'>;

/**
 * Check the CSA record of the client's HELO name.
 *
 * @example
 * const r = await checkCsa({ ip: '192.0.2.1', helo: 'mx.example.com' },
 *   { resolver: createResolver() });
 * r.result  // 'pass' | 'fail' | 'neutral' | 'none' | 'tempfail'
 * r.reason  // 'ok', 'address-mismatch', 'no-record', ...
 * r.reply   // { code: 250, xcode: '2.7.0', text: 'CSA: 192.0.2.1 is authorized by mx.example.com' }
 */
export async function checkCsa(input: CsaInput, options: CsaOptions): Promise<CsaResult> {
  const parsed = parseIp(input.ip);
  if (!parsed) throw new TypeError(`not an IP address: ${printableAscii(String(input.ip))}`);
  const ip = unmapIpv4(parsed);
  const helo = typeof input.helo === 'string' ? input.helo : '';
  const draft: Draft = { result: 'none', reason: 'no-record', ip: formatIp(ip), helo, queries: 0 };

  // Connections from this host (the MTA's own submissions, content filters) are not CSA's
  // business, and nobody should have to list localhost in their records.
  if (isLoopback(ip)) return finish(draft, 'none', 'local');
  const subject = csaSubject(helo);
  if (subject.kind === 'local') return finish(draft, 'none', 'local');
  if (subject.kind === 'invalid') return finish(draft, 'none', 'invalid-helo');
  draft.domain = subject.name;

  const lookup = new Lookup(options, draft);
  const owner = `_client._smtp.${subject.name}`;
  const own = await lookup.query(owner, 'SRV');
  if (own.kind === 'temporary') {
    draft.problem = problem(own, `SRV lookup for ${owner}`);
    return finish(draft, 'tempfail', 'srv-lookup-failed');
  }
  if (own.kind === 'answer') return decideOwn(draft, lookup, ip, owner, own);

  // No record at the name: a parent may say that its hosts must each have one. Top-down, as
  // the parents nearest the registrable domain are the ones most likely in every cache.
  for (const parent of subject.parents) {
    const name = `_client._smtp.${parent}`;
    const answer = await lookup.query(name, 'SRV');
    if (answer.kind === 'temporary') {
      // The parent we could not ask might have required explicit authorization: we cannot say
      // none, so it is the SRV lookup that failed.
      draft.problem = problem(answer, `SRV lookup for ${name}`);
      return finish(draft, 'tempfail', 'srv-lookup-failed');
    }
    if (answer.kind !== 'answer') continue;
    const strict = answer.records.some(
      (r) => r.priority === CSA_VERSION && (r.port & EXPLICIT_AUTHORIZATION) !== 0,
    );
    if (strict) {
      draft.record = name;
      return finish(draft, 'fail', 'explicit-authorization-required');
    }
  }
  return finish(draft, 'none', 'no-record');
}

/** The name has SRV records of its own: they decide, and its parents are not asked. */
async function decideOwn(
  draft: Draft,
  lookup: Lookup,
  ip: IpAddress,
  owner: string,
  answer: Extract<DnsResult<'SRV'>, { kind: 'answer' }>,
): Promise<CsaResult> {
  const records = answer.records.filter((r) => r.priority === CSA_VERSION);
  // Records of other versions are ignored; a name with none of ours has published nothing we
  // understand, which is not the same as publishing nothing: the parent search does not apply.
  if (records.length === 0) return finish(draft, 'none', 'no-record');
  draft.record = owner;
  if (records.length > 1) return finish(draft, 'fail', 'ambiguous');
  const record = records[0]!;
  const weight = record.weight;
  // Reserved weights are ignored, as if there were no record.
  if (weight > 3) {
    delete draft.record;
    return finish(draft, 'none', 'no-record');
  }
  draft.target = record.target === '' ? '.' : record.target;
  if (weight <= 1) return finish(draft, 'fail', 'not-authorized');
  // Authorized, but the target's addresses must not be used to authenticate it.
  if (weight === 3) return finish(draft, 'neutral', 'uncertain');
  // A target of `.` has no addresses (RFC 2782); asking the root about it would only load it.
  if (record.target === '') return finish(draft, 'fail', 'no-addresses');
  return checkTarget(draft, lookup, ip, record, answer.additional);
}

/** Weight 2: the client must be one of the target's addresses. */
async function checkTarget(
  draft: Draft,
  lookup: Lookup,
  ip: IpAddress,
  record: SrvRecord,
  additional: readonly DnsRecord[],
): Promise<CsaResult> {
  const type = ip.family === 4 ? 'A' : 'AAAA';
  let addresses = fromAdditional(additional, record.target, type);
  if (addresses === null) {
    const answer = await lookup.query(record.target, type);
    if (answer.kind === 'temporary') {
      draft.problem = problem(answer, `${type} lookup for ${record.target}`);
      return finish(draft, 'tempfail', 'address-lookup-failed');
    }
    addresses = answer.kind === 'answer' ? (answer.records as Array<ARecord | AaaaRecord>) : [];
  }
  if (addresses.length === 0) return finish(draft, 'fail', 'no-addresses');
  for (const address of addresses) {
    const parsed = parseIp(address.address);
    if (parsed && sameIp(unmapIpv4(parsed), ip)) return finish(draft, 'pass', 'ok');
  }
  return finish(draft, 'fail', 'address-mismatch');
}

/**
 * The target's addresses of one type from the additional section of the SRV answer, following
 * CNAMEs found there; null when the section has none (servers may leave it empty, and its
 * absence proves nothing), so that the caller asks.
 */
function fromAdditional(
  additional: readonly DnsRecord[],
  target: string,
  type: 'A' | 'AAAA',
): Array<ARecord | AaaaRecord> | null {
  let current = target.toLowerCase();
  const seen = new Set([current]);
  for (let link = 0; link <= MAX_CNAME_LINKS; link++) {
    const found = additional.filter(
      (r): r is ARecord | AaaaRecord => r.type === type && r.name.toLowerCase() === current,
    );
    if (found.length > 0) return found;
    const cname = additional.find(
      (r): r is CnameRecord => r.type === 'CNAME' && r.name.toLowerCase() === current,
    );
    if (!cname) return null;
    current = cname.target.toLowerCase();
    if (seen.has(current)) return null;
    seen.add(current);
  }
  return null;
}

/** The queries of one check, counted and bounded by its query and time budgets. */
class Lookup {
  private readonly dns: BudgetedQueries;

  constructor(options: CsaOptions, draft: Draft) {
    const limits = resolveLimits<CsaLimits>('CSA', DEFAULT_CSA_LIMITS, options.limits);
    // The meter counts into the result as it goes, and refuses past the query limit.
    const meter = { charge: () => ++draft.queries <= limits.queries };
    this.dns = new BudgetedQueries(
      options.resolver,
      options.clock ?? systemClock,
      limits.timeBudgetMs,
      meter,
    );
  }

  query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
    return this.dns.query(name, type);
  }
}

/**
 * What a temporary failure was, in words fit for a reply: the resolver's detail (which names our
 * DNS servers) stays out of it.
 */
function problem(answer: { reason: string }, what: string): string {
  const why =
    answer.reason === 'budget'
      ? 'query budget spent'
      : answer.reason === 'deadline'
        ? 'time budget exhausted'
        : answer.reason;
  return `${what} failed (${why})`;
}

function finish(draft: Draft, result: CsaResultWord, reason: CsaReason): CsaResult {
  const out = draft as CsaResult;
  out.result = result;
  out.reason = reason;
  out.reply = csaReply(out);
  return out;
}
