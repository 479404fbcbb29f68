/**
 * Finding the DMARC record that applies to a domain, and organizational domains: the DNS Tree
 * Walk of RFC 9989 section 4.10 (with its label-count shortcut, and the psd= rules of section
 * 4.10.2), RFC 7489's lookup at the domain and then at its organizational domain by the public
 * suffix list (section 6.6.3), and the existence test np= needs (section 3.2.13). Every lookup
 * of one check goes through one memo, so walks from several names share what they have in
 * common, and one budget bounds them all.
 */
import { getDomain } from 'tldts';
import { printableAscii, truncate } from '../../text/index.js';
import type { BudgetedQueries } from '../budget.js';
import { labelCount, lastLabels, parentOf } from './domain.js';
import { isDmarcRecord, type RecordReading, readDmarcRecord } from './record.js';
import type { DmarcDiscovery } from './types.js';

/**
 * The most queries one walk asks: RFC 9989 section 4.10's shortcut makes any name, however many
 * labels it has, cost at most eight.
 */
export const MAX_WALK_QUERIES = 8;

/** What one `_dmarc` lookup found. */
export type DmarcLookup =
  | { kind: 'record'; domain: string; reading: RecordReading }
  /** No DMARC record: no name, no TXT, none starting v=DMARC1, or `several` that were all discarded. */
  | { kind: 'none'; domain: string; several: number }
  | { kind: 'temporary'; domain: string; detail: string };

/** A walk up from `start`: each name asked, in order, and where it stopped. */
export interface TreeWalk {
  start: string;
  steps: DmarcLookup[];
  /** Set when a lookup failed: the walk stopped there, and what it would have found is unknown. */
  failed?: Extract<DmarcLookup, { kind: 'temporary' }>;
}

/** Where the record that applies to a domain was found, or why none was. */
export type PolicyDiscovery =
  | {
      kind: 'found';
      /** The domain whose `_dmarc` holds the record. */
      policyDomain: string;
      reading: RecordReading;
      /** The domain's organizational domain, when discovery learnt it on the way. */
      organizationalDomain?: string;
    }
  | { kind: 'none'; reason: string }
  | { kind: 'temporary'; reason: string };

/** A domain's organizational domain, or why it could not be found. */
export type OrganizationalDomain =
  | { kind: 'known'; domain: string }
  | { kind: 'temporary'; reason: string };

/** Whether a name exists, as np= asks (RFC 9989 section 3.2.13: NXDOMAIN means it does not). */
export type Existence = { kind: 'exists' | 'missing' } | { kind: 'temporary'; reason: string };

/**
 * The DMARC lookups of one check: memoised (a name is asked once however many walks pass it)
 * and all under the check's one budget.
 *
 * @example
 * const dns = new DmarcDns(new BudgetedQueries(resolver, clock, 5000), 'tree-walk');
 * const found = await dns.discover('mail.example.com');
 * if (found.kind === 'found') found.policyDomain  // 'example.com'
 */
export class DmarcDns {
  private readonly lookups = new Map<string, Promise<DmarcLookup>>();
  private readonly walks = new Map<string, Promise<TreeWalk>>();
  private readonly existence = new Map<string, Promise<Existence>>();

  constructor(
    readonly dns: BudgetedQueries,
    readonly discovery: DmarcDiscovery,
  ) {}

  /**
   * The DMARC record at `_dmarc.<domain>` (RFC 9989 section 4.10 steps 1, 2, 5 and 6).
   *
   * @example
   * (await dns.lookup('example.com')).kind  // 'record' | 'none' | 'temporary'
   */
  lookup(domain: string): Promise<DmarcLookup> {
    let known = this.lookups.get(domain);
    if (!known) {
      known = this.ask(domain);
      this.lookups.set(domain, known);
    }
    return known;
  }

  private async ask(domain: string): Promise<DmarcLookup> {
    const answer = await this.dns.query(`_dmarc.${domain}`, 'TXT');
    switch (answer.kind) {
      case 'nxdomain':
      case 'nodata':
        return { kind: 'none', domain, several: 0 };
      case 'temporary':
        return { kind: 'temporary', domain, detail: describeTrouble(answer.reason, answer.detail) };
      case 'answer': {
        // A record's strings are one text (section 4.5); only those starting v=DMARC1 count.
        const texts = answer.records.map((r) => r.strings.join('')).filter(isDmarcRecord);
        const [only] = texts;
        if (texts.length !== 1 || only === undefined) {
          return { kind: 'none', domain, several: texts.length };
        }
        return { kind: 'record', domain, reading: readDmarcRecord(only, this.discovery) };
      }
    }
  }

  /**
   * The DNS Tree Walk from `start` (RFC 9989 section 4.10): the name itself, then its parents
   * one label at a time, except that a name of eight labels or more goes straight to its last
   * seven; it stops at a record with psd=y or psd=n, at the top label, or at a lookup that failed.
   *
   * @example
   * (await dns.walk('a.b.c.d.e.f.g.h.i.example.com')).steps.map((s) => s.domain)
   * // ['a.b.c.d.e.f.g.h.i.example.com', 'e.f.g.h.i.example.com', 'f.g.h.i.example.com', ...,
   * //  'example.com', 'com']
   */
  walk(start: string): Promise<TreeWalk> {
    let known = this.walks.get(start);
    if (!known) {
      known = this.walkFrom(start);
      this.walks.set(start, known);
    }
    return known;
  }

  private async walkFrom(start: string): Promise<TreeWalk> {
    const walk: TreeWalk = { start, steps: [] };
    let target: string | null = start;
    while (target !== null && walk.steps.length < MAX_WALK_QUERIES) {
      const step = await this.lookup(target);
      walk.steps.push(step);
      if (step.kind === 'temporary') {
        walk.failed = step;
        return walk;
      }
      // Steps 2 and 6: a single record that says whether it is a PSD ends the walk.
      if (step.kind === 'record' && (step.reading.psd === 'y' || step.reading.psd === 'n')) break;
      target =
        target === start && labelCount(start) >= MAX_WALK_QUERIES
          ? lastLabels(start, MAX_WALK_QUERIES - 1)
          : parentOf(target);
    }
    return walk;
  }

  /**
   * The organizational domain of `domain`: by the Tree Walk (RFC 9989 section 4.10.2), or in
   * `psl` mode by the public suffix list (RFC 7489 section 3.2); or why a lookup failed.
   *
   * @example
   * await dns.organizationalDomain('news.example.com')  // { kind: 'known', domain: 'example.com' }
   */
  async organizationalDomain(domain: string): Promise<OrganizationalDomain> {
    if (this.discovery === 'psl') return { kind: 'known', domain: pslOrganizationalDomain(domain) };
    const walk = await this.walk(domain);
    const found = organizationalDomainOf(walk);
    if (found !== undefined) return { kind: 'known', domain: found };
    const detail = walk.failed?.detail ?? 'unknown';
    return {
      kind: 'temporary',
      reason: `DNS trouble finding the organizational domain of ${domain}: _dmarc.${walk.failed?.domain}: ${detail}`,
    };
  }

  /**
   * The record that applies to `domain`: RFC 9989 section 4.10.1 by default, RFC 7489 section
   * 6.6.3 in `psl` mode.
   *
   * @example
   * const found = await dns.discover('news.example.com');
   * if (found.kind === 'found') found.policyDomain  // 'example.com' when only it has a record
   */
  discover(domain: string): Promise<PolicyDiscovery> {
    return this.discovery === 'psl' ? this.discoverPsl(domain) : this.discoverByWalk(domain);
  }

  private async discoverByWalk(domain: string): Promise<PolicyDiscovery> {
    const first = await this.lookup(domain);
    if (first.kind === 'temporary') return trouble(first);
    if (first.kind === 'record') {
      const psd = first.reading.psd;
      // A record that says psd=y or psd=n at the name ends a walk from it there: the name is its
      // own organizational domain (section 4.10.2 rules 1 and 3).
      return psd === 'y' || psd === 'n'
        ? {
            kind: 'found',
            policyDomain: domain,
            reading: first.reading,
            organizationalDomain: domain,
          }
        : { kind: 'found', policyDomain: domain, reading: first.reading };
    }
    const walk = await this.walk(domain);
    if (walk.failed) return trouble(walk.failed);
    const organizational = organizationalDomainOf(walk)!;
    const records = walk.steps.filter((s) => s.kind === 'record');
    // The organizational domain's record, else the PSD's (section 4.10.1): the PSD's is the last
    // the walk found, since psd=y ends it. An organizational domain the shortcut skipped has
    // not been asked about; its PSD's record stands for it rather than a ninth query.
    const chosen = records.find((s) => s.domain === organizational) ?? records.at(-1);
    if (chosen) {
      return {
        kind: 'found',
        policyDomain: chosen.domain,
        reading: chosen.reading,
        organizationalDomain: organizational,
      };
    }
    return { kind: 'none', reason: noRecord(domain, walk.steps) };
  }

  private async discoverPsl(domain: string): Promise<PolicyDiscovery> {
    const organizational = pslOrganizationalDomain(domain);
    const first = await this.lookup(domain);
    if (first.kind === 'temporary') return trouble(first);
    if (first.kind === 'record') {
      return {
        kind: 'found',
        policyDomain: domain,
        reading: first.reading,
        organizationalDomain: organizational,
      };
    }
    // Step 5: several records at the domain end discovery; only an empty set goes on (step 3).
    if (first.several > 0 || organizational === domain) {
      return { kind: 'none', reason: noRecord(domain, [first]) };
    }
    const second = await this.lookup(organizational);
    if (second.kind === 'temporary') return trouble(second);
    if (second.kind === 'record') {
      return {
        kind: 'found',
        policyDomain: organizational,
        reading: second.reading,
        organizationalDomain: organizational,
      };
    }
    return { kind: 'none', reason: noRecord(domain, [first, second]) };
  }

  /**
   * Whether `domain` exists (RFC 9989 section 3.2.13, after RFC 8020: NXDOMAIN for a name means
   * it and everything below it do not exist, whatever the type asked). One A query: the type does
   * not change the rcode, and every resolver path handles A.
   *
   * @example
   * (await dns.exists('ghost.example.com')).kind  // 'missing' on NXDOMAIN
   */
  exists(domain: string): Promise<Existence> {
    let known = this.existence.get(domain);
    if (!known) {
      known = this.dns.query(domain, 'A').then((answer): Existence => {
        if (answer.kind === 'nxdomain') return { kind: 'missing' };
        if (answer.kind !== 'temporary') return { kind: 'exists' };
        const trouble = describeTrouble(answer.reason, answer.detail);
        return {
          kind: 'temporary',
          reason: `DNS trouble asking whether ${domain} exists: ${trouble}`,
        };
      });
      this.existence.set(domain, known);
    }
    return known;
  }
}

/**
 * The organizational domain a walk found (RFC 9989 section 4.10.2): the first record from the
 * bottom with psd=n; else the name one label below a record with psd=y (not the start's own);
 * else the record highest up; else the start itself. Undefined when a lookup failed, since the
 * record it missed could have been any of those. A record that starts v=DMARC1 counts even when
 * its policy is unusable: its psd= is still what the domain's owner said.
 *
 * @example
 * organizationalDomainOf(walkOf('a.mail.example.com'))  // 'example.com'
 */
export function organizationalDomainOf(walk: TreeWalk): string | undefined {
  if (walk.failed) return undefined;
  const records = walk.steps.filter((s) => s.kind === 'record');
  const last = records.at(-1);
  if (!last) return walk.start;
  // The walk ends at the first psd=y or psd=n, so only the last record can carry one.
  if (last.reading.psd === 'n') return last.domain;
  if (last.reading.psd === 'y' && last.domain !== walk.start) {
    return lastLabels(walk.start, labelCount(last.domain) + 1);
  }
  return last.domain;
}

/**
 * The organizational domain by the public suffix list (RFC 7489 section 3.2), ICANN section
 * only; a name that is itself a public suffix is its own.
 *
 * @example
 * pslOrganizationalDomain('mail.example.co.uk')  // 'example.co.uk'
 * pslOrganizationalDomain('co.uk')               // 'co.uk'
 */
export function pslOrganizationalDomain(domain: string): string {
  return (
    getDomain(domain, { allowPrivateDomains: false, extractHostname: false, detectIp: false }) ??
    domain
  );
}

function trouble(failed: Extract<DmarcLookup, { kind: 'temporary' }>): PolicyDiscovery {
  return {
    kind: 'temporary',
    reason: `DNS trouble looking up _dmarc.${failed.domain}: ${failed.detail}`,
  };
}

/** The reason for `none`, naming where several records cancelled each other out. */
function noRecord(domain: string, steps: readonly DmarcLookup[]): string {
  const where: string[] = [];
  for (const s of steps) {
    if (s.kind === 'none' && s.several > 1) where.push(`${s.several} at _dmarc.${s.domain}`);
  }
  if (where.length === 0) return `no DMARC record for ${domain}`;
  return `no DMARC record for ${domain}: several DMARC records (${where.join(', ')}), so none applies`;
}

/** A resolver failure in words for a reason: its kind, and its detail bounded and printable. */
function describeTrouble(reason: string, detail: string): string {
  return detail ? `${reason} (${truncate(printableAscii(detail), 120)})` : reason;
}
