/**
 * The DNS half of the HELO check: does the name resolve (A, AAAA or MX), and does an address of
 * the name or of its MX hosts match the client? One set of lookups answers both rules.
 */
import {
  formatIp,
  type IpAddress,
  inPrefix,
  parseIp,
  sameIp,
  unmapIpv4,
} from '../../dns/address.js';
import type {
  AaaaRecord,
  ARecord,
  DnsResult,
  RecordType,
  TemporaryReason,
} from '../../dns/types.js';
import { escapeForLog, truncate } from '../../text/index.js';
import type { AddressMatch, HeloOutcome } from './types.js';

/** The prefix lengths that make two addresses "the same network" for `prefix` matching. */
export const MATCH_PREFIX = { 4: 24, 6: 64 } as const;

export type Query = <T extends RecordType>(name: string, type: T) => Promise<DnsResult<T>>;

export interface ResolveRequest {
  name: string;
  client: IpAddress;
  match: AddressMatch;
  mxNames: number;
  /** Whether the `resolves` rule wants an answer (it needs the other address family too). */
  resolves: boolean;
  /** Whether the `matches` rule wants an answer (it may need the MX hosts' addresses). */
  matches: boolean;
}

export type DnsOutcome = Pick<HeloOutcome, 'result' | 'reason' | 'detail'>;

/** How an address relates to the client: exact, same network, or not at all. */
export function addressMatch(
  client: IpAddress,
  other: IpAddress,
  match: AddressMatch,
): 'exact' | 'prefix' | null {
  if (sameIp(client, other)) return 'exact';
  if (match === 'prefix' && inPrefix(client, other, MATCH_PREFIX[client.family])) return 'prefix';
  return null;
}

interface Found {
  address: string;
  how: 'exact' | 'prefix';
  via: string;
}

/**
 * Ask what the rules need and decide them. Address records of the client's family are asked for
 * first (with the other family when `resolves` wants it); the MX hosts only when no address
 * decided. A match wins over a temporary failure elsewhere; a temporary failure with no match
 * is `tempfail`, never a pass or a fail.
 */
export async function resolveHelo(
  req: ResolveRequest,
  query: Query,
): Promise<{ resolves: DnsOutcome; matches: DnsOutcome }> {
  const own: RecordType = req.client.family === 4 ? 'A' : 'AAAA';
  const other: RecordType = own === 'A' ? 'AAAA' : 'A';
  const shownName = shown(req.name);
  // Failures that leave `resolves` open (any lookup) and `matches` open (lookups of the client's
  // address family and of the MX records; the other family cannot match).
  const resolveFailures: TemporaryReason[] = [];
  const matchFailures: TemporaryReason[] = [];

  const [ownAnswer, otherAnswer] = await Promise.all([
    query(req.name, own),
    req.resolves ? query(req.name, other) : Promise.resolve(null),
  ]);
  for (const answer of [ownAnswer, otherAnswer]) {
    if (answer?.kind === 'temporary') resolveFailures.push(answer.reason);
  }
  if (ownAnswer.kind === 'temporary') matchFailures.push(ownAnswer.reason);
  const hasAddress = ownAnswer.kind === 'answer' || otherAnswer?.kind === 'answer';
  const nxdomain = ownAnswer.kind === 'nxdomain';
  const compared: string[] = [];
  let found = best(req, addressesOf(ownAnswer), compared, req.name);

  // The MX hosts are asked about when an address could not decide and the name may exist.
  const exchanges: string[] = [];
  const needMx = (req.matches && !found) || (req.resolves && !hasAddress);
  if (needMx && !nxdomain) {
    const mx = await query(req.name, 'MX');
    if (mx.kind === 'temporary') {
      resolveFailures.push(mx.reason);
      matchFailures.push(mx.reason);
    }
    if (mx.kind === 'answer') {
      const sorted = [...mx.records].sort((a, b) => a.preference - b.preference);
      const seen = new Set<string>();
      for (const r of sorted) {
        const key = r.exchange.toLowerCase();
        if (r.exchange === '' || seen.has(key)) continue;
        seen.add(key);
        exchanges.push(r.exchange);
      }
    }
    if (req.matches && !found && exchanges.length > 0) {
      const considered = exchanges.slice(0, req.mxNames);
      const answers = await Promise.all(considered.map((x) => query(x, own)));
      for (let i = 0; i < answers.length && !found; i++) {
        found = best(req, addressesOf(answers[i]!), compared, `MX host ${considered[i]!}`);
      }
      for (const answer of answers) {
        if (answer.kind === 'temporary') matchFailures.push(answer.reason);
      }
    }
  }

  let resolves: DnsOutcome;
  if (hasAddress) {
    resolves = { result: 'pass', reason: 'address', detail: `${shownName} has address records` };
  } else if (exchanges.length > 0) {
    resolves = { result: 'pass', reason: 'mx', detail: `${shownName} has MX records` };
  } else if (nxdomain) {
    // NXDOMAIN speaks for every type at the name: a failure of another lookup changes nothing.
    resolves = { result: 'fail', reason: 'nxdomain', detail: `${shownName} does not exist` };
  } else if (resolveFailures.length > 0) {
    resolves = temporary(resolveFailures[0]!, shownName);
  } else {
    resolves = {
      result: 'fail',
      reason: 'no-records',
      detail: `${shownName} has no address or MX records`,
    };
  }

  let matches: DnsOutcome;
  const client = formatIp(req.client);
  if (found) {
    matches = {
      result: 'pass',
      reason: found.how,
      detail: `${found.via} has ${found.address}${found.how === 'prefix' ? `, in the network of ${client}` : ''}`,
    };
  } else if (matchFailures.length > 0) {
    matches = temporary(matchFailures[0]!, shownName);
  } else if (compared.length > 0) {
    matches = {
      result: 'fail',
      reason: 'mismatch',
      detail: `no address of ${shownName} or its MX hosts matches ${client}`,
    };
  } else {
    matches = {
      result: 'fail',
      reason: 'no-address',
      detail: `${shownName} and its MX hosts have no IPv${req.client.family} address`,
    };
  }
  return { resolves, matches };
}

function addressesOf(answer: DnsResult): IpAddress[] {
  if (answer.kind !== 'answer') return [];
  const out: IpAddress[] = [];
  for (const record of answer.records as Array<ARecord | AaaaRecord>) {
    const ip = parseIp(record.address);
    if (ip) out.push(unmapIpv4(ip));
  }
  return out;
}

/** The best match among `addresses` (exact before prefix), noting what was compared. */
function best(
  req: ResolveRequest,
  addresses: IpAddress[],
  compared: string[],
  via: string,
): Found | null {
  let prefix: Found | null = null;
  for (const ip of addresses) {
    compared.push(formatIp(ip));
    const how = addressMatch(req.client, ip, req.match);
    if (how === 'exact') return { address: formatIp(ip), how, via: shown(via) };
    if (how === 'prefix') prefix ??= { address: formatIp(ip), how, via: shown(via) };
  }
  return prefix;
}

function shown(text: string): string {
  return truncate(escapeForLog(text), 255);
}

function temporary(reason: TemporaryReason, name: string): DnsOutcome {
  return { result: 'tempfail', reason, detail: `a lookup for ${name} failed (${words(reason)})` };
}

/** A temporary failure in words: the resolver's detail names our servers, so it stays out. */
function words(reason: TemporaryReason): string {
  return reason === 'deadline' ? 'time budget exhausted' : reason;
}
