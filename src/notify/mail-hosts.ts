/**
 * Where mail for a domain goes: its MX hosts in preference order (RFC 5321 5.1), their
 * addresses, and the addresses we must never connect to.
 */
import { formatIp, parseIp } from '../dns/address.js';
import type { Clock, DnsResult, RecordType, Resolver } from '../dns/types.js';
import { logValue } from '../text/index.js';
import { systemClock, TimeBudget } from './budget.js';
import { addressRules, type ForbiddenReason, forbiddenAddress } from './fraud.js';
import { isHostName, normaliseName } from './mailbox.js';
import type { SmtpTarget } from './types.js';

export const DEFAULT_MAX_HOSTS = 5;
export const DEFAULT_SMTP_PORT = 25;
const DEFAULT_DNS_TIMEOUT_MS = 10_000;

export interface MailHostsOptions {
  resolver: Resolver;
  /** Our own addresses or networks: an MX host with one of them is never connected to. */
  ourAddresses: readonly string[];
  /** Our own host names: an MX host with one of them is never connected to. */
  ourNames: readonly string[];
  /**
   * Addresses exempt from the loopback and unspecified rules (never from `ourAddresses`). The
   * daemon sets none; it exists for a site whose mail hosts really are on loopback, and for
   * tests. Default none.
   */
  allowAddresses?: readonly string[];
  /** Most addresses returned (and so tried). Default 5. */
  maxHosts?: number;
  /** The port every target gets. Default 25. */
  port?: number;
  /** Time for all the DNS queries together. Default 10 s. */
  timeoutMs?: number;
  clock?: Clock;
}

/** One address of one mail host. */
export interface MailTarget extends SmtpTarget {
  /** The MX preference; 0 for an implicit MX. */
  preference: number;
}

/** A host we will not connect to, and why. */
export interface RefusedHost {
  name: string;
  address?: string;
  reason: ForbiddenReason | 'our-name';
}

export type MailHosts =
  | {
      kind: 'hosts';
      targets: MailTarget[];
      /** True when the domain has no MX and its own address stands in (RFC 5321 5.1). */
      implicit: boolean;
      /** Less preferred hosts dropped because they are ours or loopback. */
      refused: RefusedHost[];
      detail: string;
    }
  /** A null MX (RFC 7505): the domain accepts no mail. */
  | { kind: 'null-mx'; detail: string }
  /** NXDOMAIN, or not a domain name at all. */
  | { kind: 'no-domain'; detail: string }
  /** The domain exists but names no host with an address (and no DNS failure explains it). */
  | { kind: 'no-host'; detail: string }
  /** The most preferred hosts are ours, loopback or unspecified. */
  | { kind: 'fraud'; refused: RefusedHost[]; detail: string }
  | { kind: 'tempfail'; detail: string };

interface MxHost {
  name: string;
  preference: number;
}

/**
 * The mail hosts of `domain`, as targets in the order to try them: MX records by preference
 * (stable among equals), each host's A then AAAA addresses; the domain's own addresses when it
 * has no MX. As RFC 5321 5.1 asks of a host that finds itself in an MX list, a preference level
 * holding a host that is ours, loopback or unspecified is dropped with every less preferred
 * one; when nothing is left the outcome is `fraud`. An `ourAddresses` or `allowAddresses` value
 * that does not parse is a configuration error: the promise rejects with a RangeError.
 *
 * @example
 * const r = await mailHosts('example.com', { resolver, ourAddresses: ['192.0.2.25'], ourNames: ['mx.example.org'] });
 * if (r.kind === 'hosts') r.targets  // [{ address: '198.51.100.7', port: 25, name: 'mx1.example.com', preference: 10 }, ...]
 */
export async function mailHosts(domain: string, options: MailHostsOptions): Promise<MailHosts> {
  const rules = addressRules(options.ourAddresses, options.allowAddresses);
  const ourNames = new Set(options.ourNames.map(normaliseName));
  const maxHosts = Math.max(1, options.maxHosts ?? DEFAULT_MAX_HOSTS);
  const port = options.port ?? DEFAULT_SMTP_PORT;
  const budget = new TimeBudget(
    options.clock ?? systemClock,
    options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS,
  );
  const query = <T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> => {
    const left = budget.left();
    if (left <= 0) {
      return Promise.resolve({
        kind: 'temporary',
        reason: 'deadline',
        detail: 'time budget spent',
      });
    }
    return options.resolver.query(name, type, { timeout: left });
  };

  const name = normaliseName(domain);
  if (!isHostName(name))
    return { kind: 'no-domain', detail: `not a domain name: ${logValue(domain, 80)}` };

  const mx = await query(name, 'MX');
  if (mx.kind === 'temporary') {
    return { kind: 'tempfail', detail: `MX lookup for ${name} failed (${mx.reason})` };
  }
  if (mx.kind === 'nxdomain') return { kind: 'no-domain', detail: `${name} does not exist` };
  let hosts: MxHost[];
  const implicit = mx.kind === 'nodata' || mx.records.length === 0;
  if (mx.kind === 'nodata' || mx.records.length === 0) {
    hosts = [{ name, preference: 0 }];
  } else {
    // RFC 7505: a null MX is the domain's only MX; alongside others it is just unusable.
    if (mx.records.every((r) => r.exchange === '')) {
      return { kind: 'null-mx', detail: `${name} has a null MX: it accepts no mail` };
    }
    hosts = mx.records
      .filter((r) => r.exchange !== '')
      .map((r) => ({ name: normaliseName(r.exchange), preference: r.preference }))
      .sort((a, b) => a.preference - b.preference);
  }

  const targets: MailTarget[] = [];
  const refused: RefusedHost[] = [];
  const problems: string[] = [];
  let temporary = false;
  let looked = 0;
  for (const group of byPreference(hosts)) {
    const candidates: MailTarget[] = [];
    let dropGroup = false;
    const lookups: MxHost[] = [];
    for (const host of group) {
      if (ourNames.has(host.name)) {
        refused.push({ name: host.name, reason: 'our-name' });
        dropGroup = true;
        continue;
      }
      const literal = parseIp(host.name);
      if (literal) {
        const why = forbiddenAddress(literal, rules);
        if (why) {
          refused.push({ name: host.name, address: formatIp(literal), reason: why });
          dropGroup = true;
        } else {
          problems.push(`${host.name} is an address, not a host name`);
        }
        continue;
      }
      if (!isHostName(host.name)) {
        problems.push(`not a host name: ${logValue(host.name, 80)}`);
        continue;
      }
      if (looked >= maxHosts) break;
      looked++;
      lookups.push(host);
    }
    const found = await Promise.all(lookups.map((host) => addressesOf(host.name, query)));
    found.forEach((result, i) => {
      const host = lookups[i]!;
      if (result.temporary) {
        temporary = true;
        problems.push(`address lookup for ${host.name} failed (${result.temporary})`);
      } else if (result.addresses.length === 0) {
        problems.push(`${host.name} has no address`);
      }
      for (const text of result.addresses) {
        const ip = parseIp(text);
        if (!ip) continue;
        const why = forbiddenAddress(ip, rules);
        if (why) {
          refused.push({ name: host.name, address: formatIp(ip), reason: why });
          dropGroup = true;
        } else {
          candidates.push({
            address: formatIp(ip),
            port,
            name: host.name,
            preference: host.preference,
          });
        }
      }
    });
    if (dropGroup) break;
    for (const c of candidates) {
      if (!targets.some((t) => t.address === c.address)) targets.push(c);
    }
    if (targets.length >= maxHosts || looked >= maxHosts) break;
  }

  if (targets.length > 0) {
    const kept = targets.slice(0, maxHosts);
    const names = [...new Set(kept.map((t) => t.name))].join(', ');
    return {
      kind: 'hosts',
      targets: kept,
      implicit,
      refused,
      detail: `mail hosts of ${name}: ${names}`,
    };
  }
  if (refused.length > 0) {
    const list = refused.map(describeRefused).join(', ');
    return { kind: 'fraud', refused, detail: `${name} names hosts we never connect to: ${list}` };
  }
  const why = problems.length > 0 ? problems.join('; ') : 'no usable MX';
  if (temporary) return { kind: 'tempfail', detail: `${name}: ${why}` };
  return { kind: 'no-host', detail: `${name}: ${why}` };
}

function describeRefused(host: RefusedHost): string {
  return host.address === undefined || host.address === host.name
    ? `${host.name} (${host.reason})`
    : `${host.name} ${host.address} (${host.reason})`;
}

/** Hosts in runs of equal preference, already sorted. */
function byPreference(hosts: MxHost[]): MxHost[][] {
  const groups: MxHost[][] = [];
  for (const host of hosts) {
    const last = groups[groups.length - 1];
    if (last && last[0]!.preference === host.preference) last.push(host);
    else groups.push([host]);
  }
  return groups;
}

/** A host's IPv4 then IPv6 addresses; a failure counts only when nothing was found. */
async function addressesOf(
  name: string,
  query: <T extends RecordType>(name: string, type: T) => Promise<DnsResult<T>>,
): Promise<{ addresses: string[]; temporary?: string }> {
  const [a, aaaa] = await Promise.all([query(name, 'A'), query(name, 'AAAA')]);
  const addresses = [
    ...(a.kind === 'answer' ? a.records.map((r) => r.address) : []),
    ...(aaaa.kind === 'answer' ? aaaa.records.map((r) => r.address) : []),
  ];
  if (addresses.length > 0) return { addresses };
  const failed = [a, aaaa].find((r) => r.kind === 'temporary');
  return failed?.kind === 'temporary' ? { addresses, temporary: failed.reason } : { addresses };
}
