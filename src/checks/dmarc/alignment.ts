/**
 * Identifier Alignment (RFC 9989 sections 3.2.10, 4.4 and 4.10.2): whether the domains SPF and
 * DKIM authenticated are the From domain (strict) or share its organizational domain
 * (relaxed). Only passes count. Organizational domains are found only when an answer needs
 * them: an identical domain aligns in either mode, strict mode compares strings, and a domain
 * outside the From domain's organizational domain cannot share it.
 */
import type { DmarcDns, OrganizationalDomain } from './discovery.js';
import { dmarcDomain, isAtOrBelow } from './domain.js';
import type { DmarcAlignment, DmarcInput, DmarcRecord } from './types.js';

/** Distinct passing DKIM domains considered; a message with more is no ordinary one. */
export const MAX_DKIM_DOMAINS = 10;

/** What alignment found for one author domain. */
export interface AlignmentOutcome {
  /** The SPF-authenticated domain, when SPF passed for a usable domain. */
  spfDomain?: string;
  spfAligned: boolean;
  /** The DKIM-authenticated domains considered (passing, usable, distinct), in input order. */
  dkimDomains: string[];
  alignedDkimDomains: string[];
  /** Why alignment could not be decided for some identifier (DNS trouble), if it could not. */
  undecided?: string;
  /** The author domain's organizational domain, when it is known (given, or found here). */
  organizationalDomain?: string;
}

type Verdict = { kind: 'aligned' | 'unaligned' } | { kind: 'undecided'; reason: string };

/**
 * Check every authenticated identifier against `author` under the record's modes.
 * `authorOrganizational` is the author domain's organizational domain when discovery already
 * knows it.
 *
 * @example
 * const outcome = await evaluateAlignment(dns, 'news.example.com', record, undefined, input);
 * outcome.spfAligned  // true for an SPF pass of bounce.example.com under aspf=r
 */
export async function evaluateAlignment(
  dns: DmarcDns,
  author: string,
  record: DmarcRecord,
  authorOrganizational: string | undefined,
  input: Pick<DmarcInput, 'spf' | 'dkim'>,
): Promise<AlignmentOutcome> {
  let authorOrg: Promise<OrganizationalDomain> | undefined =
    authorOrganizational === undefined
      ? undefined
      : Promise.resolve({ kind: 'known', domain: authorOrganizational });
  const organizationalOfAuthor = () => {
    authorOrg ??= dns.organizationalDomain(author);
    return authorOrg;
  };
  const verdict = async (identifier: string, mode: DmarcAlignment): Promise<Verdict> => {
    if (identifier === author) return { kind: 'aligned' };
    if (mode === 's') return { kind: 'unaligned' };
    const ours = await organizationalOfAuthor();
    if (ours.kind === 'temporary') return { kind: 'undecided', reason: ours.reason };
    // An organizational domain is the name itself or one of its parents.
    if (!isAtOrBelow(identifier, ours.domain)) return { kind: 'unaligned' };
    const theirs = await dns.organizationalDomain(identifier);
    if (theirs.kind === 'temporary') return { kind: 'undecided', reason: theirs.reason };
    return { kind: theirs.domain === ours.domain ? 'aligned' : 'unaligned' };
  };

  const outcome: AlignmentOutcome = { spfAligned: false, dkimDomains: [], alignedDkimDomains: [] };
  const spf = input.spf;
  const spfDomain =
    spf && spf.result === 'pass' && typeof spf.domain === 'string' ? dmarcDomain(spf.domain) : null;
  if (spfDomain !== null) outcome.spfDomain = spfDomain;
  for (const signature of Array.isArray(input.dkim) ? input.dkim : []) {
    if (outcome.dkimDomains.length >= MAX_DKIM_DOMAINS) break;
    if (signature?.result !== 'pass' || typeof signature.domain !== 'string') continue;
    const domain = dmarcDomain(signature.domain);
    if (domain !== null && !outcome.dkimDomains.includes(domain)) outcome.dkimDomains.push(domain);
  }

  // All at once: the lookups are memoised, so walks that meet share their queries.
  const [spfVerdict, ...dkimVerdicts] = await Promise.all([
    spfDomain === null ? Promise.resolve(undefined) : verdict(spfDomain, record.aspf),
    ...outcome.dkimDomains.map((domain) => verdict(domain, record.adkim)),
  ]);
  const undecided: string[] = [];
  if (spfVerdict?.kind === 'aligned') outcome.spfAligned = true;
  if (spfVerdict?.kind === 'undecided') undecided.push(spfVerdict.reason);
  dkimVerdicts.forEach((v, index) => {
    if (v?.kind === 'aligned') outcome.alignedDkimDomains.push(outcome.dkimDomains[index]!);
    if (v?.kind === 'undecided') undecided.push(v.reason);
  });
  if (undecided.length > 0) outcome.undecided = undecided[0];
  const ours = await authorOrg;
  if (ours?.kind === 'known') outcome.organizationalDomain = ours.domain;
  return outcome;
}
