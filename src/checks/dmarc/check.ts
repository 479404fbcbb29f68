/**
 * checkDmarc: the DMARC mechanism for one message (RFC 9989 section 5.3, or RFC 7489 section 6.6
 * in `psl` mode): the Author Domain, the record that applies to it, alignment of the SPF and
 * DKIM passes, the policy for the domain (p=, sp= or np=), and the disposition after testing
 * mode or pct= sampling.
 */
import { printableAscii, truncate } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { evaluateAlignment } from './alignment.js';
import { DmarcDns } from './discovery.js';
import { authorDomains } from './from.js';
import {
  DEFAULT_DMARC_SETTINGS,
  type DmarcDiscovery,
  type DmarcInput,
  type DmarcPolicy,
  type DmarcResult,
  type DmarcResultWord,
  type DmarcServices,
  type DmarcSettings,
} from './types.js';

/**
 * DNS queries of one check at most, whatever the message holds: one walk is at most eight
 * (RFC 9989 section 4.10), and an ordinary message needs one or two walks.
 */
export const MAX_DNS_QUERIES = 64;
/**
 * Author Domains evaluated for a From with several (RFC 9989 section 11.5: limiting them keeps
 * such a message from becoming a denial of service).
 */
export const MAX_AUTHOR_DOMAINS = 4;
/** Longest reason given. */
const MAX_REASON = 500;

/** One step down, as t=y (RFC 9989 section 4.7) and pct= sampling (RFC 7489 section 6.6.4) ask. */
export const ONE_LOWER: Readonly<Record<DmarcPolicy, DmarcPolicy>> = {
  reject: 'quarantine',
  quarantine: 'none',
  none: 'none',
};
const STRICTNESS: Record<DmarcPolicy, number> = { none: 0, quarantine: 1, reject: 2 };

/** What every evaluation of one check shares. */
interface Context {
  input: DmarcInput;
  dns: DmarcDns;
  discovery: DmarcDiscovery;
  honorPct: boolean;
  random: () => number;
}

/**
 * Evaluate DMARC for a message.
 *
 * A From with no usable domain, several From fields, or addresses with different domains make
 * DMARC validation impossible (RFC 9989 section 5.3.1): the result is `permerror` with the
 * reason. Since such messages are how spoofers try to slip past DMARC (section 11.5), up to
 * MAX_AUTHOR_DOMAINS of their domains are still evaluated, and the disposition is the strictest
 * among those that fail.
 *
 * @example
 * const r = await checkDmarc(
 *   { from: [fieldFromText('From: Jo <jo@example.com>')],
 *     spf: { domain: 'bounce.example.com', result: 'pass', scope: 'mfrom' }, dkim: [] },
 *   {}, { resolver });
 * r.result        // 'pass' (aspf=r: bounce.example.com shares example.com)
 * r.disposition   // 'none'
 */
export async function checkDmarc(
  input: DmarcInput,
  settings: Partial<DmarcSettings> = {},
  services?: DmarcServices,
): Promise<DmarcResult> {
  if (!services?.resolver) throw new TypeError('checkDmarc needs a resolver in its services');
  const discovery = settings.discovery ?? DEFAULT_DMARC_SETTINGS.discovery;
  if (discovery !== 'tree-walk' && discovery !== 'psl') {
    throw new TypeError(`DMARC discovery must be 'tree-walk' or 'psl', got ${String(discovery)}`);
  }
  const { timeBudgetMs } = resolveLimits(
    'DMARC',
    { timeBudgetMs: DEFAULT_DMARC_SETTINGS.timeBudgetMs },
    { timeBudgetMs: settings.timeBudgetMs },
  );
  let charged = 0;
  const meter = { charge: () => ++charged <= MAX_DNS_QUERIES };
  const budget = new BudgetedQueries(
    services.resolver,
    services.clock ?? systemClock,
    timeBudgetMs,
    meter,
  );
  const context: Context = {
    input,
    dns: new DmarcDns(budget, discovery),
    discovery,
    honorPct: settings.honorPct ?? DEFAULT_DMARC_SETTINGS.honorPct,
    random: services.random ?? Math.random,
  };

  const authors = authorDomains(input?.from ?? []);
  let result: DmarcResult;
  if (authors.kind === 'one') {
    result = await evaluateDomain(context, authors.domain);
  } else {
    const evaluated: DmarcResult[] = [];
    for (const domain of authors.domains.slice(0, MAX_AUTHOR_DOMAINS)) {
      evaluated.push(await evaluateDomain(context, domain));
    }
    result = irregular(authors.reason, authors.domains.length, evaluated);
  }
  // Queries the meter refused were never sent; the count is of those that were.
  result.queries = Math.min(budget.queries, MAX_DNS_QUERIES);
  result.reason = truncate(printableAscii(result.reason), MAX_REASON);
  return result;
}

/** The check for one Author Domain. */
async function evaluateDomain(context: Context, domain: string): Promise<DmarcResult> {
  const r = emptyResult();
  r.domain = domain;
  const found = await context.dns.discover(domain);
  if (found.kind === 'temporary') return finish(r, 'temperror', found.reason);
  if (found.kind === 'none') return finish(r, 'none', found.reason);
  r.policyDomain = found.policyDomain;
  if (found.organizationalDomain !== undefined) {
    r.organizationalDomain = found.organizationalDomain;
  }
  const parse = found.reading.parse;
  if (!parse.ok) return finish(r, 'permerror', `${parse.reason} (at _dmarc.${found.policyDomain})`);
  const record = parse.record;
  r.record = record;
  r.testing = record.t === true;
  // The record of the domain itself gives p=; one found above it gives the subdomain policy
  // (RFC 9989 section 4.10.1, RFC 7489 section 6.6.3).
  const atAuthor = found.policyDomain === domain;
  r.policy = atAuthor ? record.p : (record.sp ?? record.p);

  const alignment = await evaluateAlignment(
    context.dns,
    domain,
    record,
    found.organizationalDomain,
    context.input,
  );
  if (alignment.organizationalDomain !== undefined) {
    r.organizationalDomain = alignment.organizationalDomain;
  }
  r.spfAligned = alignment.spfAligned;
  r.alignedDkimDomains = alignment.alignedDkimDomains;
  r.dkimAligned = alignment.alignedDkimDomains.length > 0;
  if (r.spfAligned || r.dkimAligned) {
    const aligned = [
      ...(r.spfAligned ? [`SPF ${alignment.spfDomain}`] : []),
      ...(r.dkimAligned ? [`DKIM ${r.alignedDkimDomains.join(', ')}`] : []),
    ];
    return finish(r, 'pass', `${aligned.join(' and ')} aligned with ${domain}`);
  }
  // Section 5.3.6: a query that did not complete leaves the message neither passing nor failing.
  if (alignment.undecided !== undefined) return finish(r, 'temperror', alignment.undecided);

  // np= counts only for a subdomain that does not exist, and only where it says something sp=
  // (or p=) does not: only then is the existence of the domain worth a query.
  if (
    !atAuthor &&
    context.discovery === 'tree-walk' &&
    record.np !== undefined &&
    record.np !== r.policy
  ) {
    const existence = await context.dns.exists(domain);
    if (existence.kind === 'temporary') return finish(r, 'temperror', existence.reason);
    if (existence.kind === 'missing') r.policy = record.np;
  }
  r.disposition = r.policy;
  let lowered = '';
  if (r.testing && r.policy !== 'none') {
    r.disposition = ONE_LOWER[r.policy];
    lowered = `; testing mode (t=y): ${r.disposition}`;
  } else if (
    context.discovery === 'psl' &&
    context.honorPct &&
    record.pct !== undefined &&
    record.pct < 100 &&
    r.policy !== 'none' &&
    !(context.random() * 100 < record.pct)
  ) {
    r.disposition = ONE_LOWER[r.policy];
    lowered = `; left out of the pct=${record.pct} sample: ${r.disposition}`;
  }
  return finish(r, 'fail', `${unalignedReason(alignment, domain, record)}${lowered}`);
}

/** Why nothing aligned, naming what was tried. */
function unalignedReason(
  alignment: Awaited<ReturnType<typeof evaluateAlignment>>,
  domain: string,
  record: { aspf: string; adkim: string },
): string {
  const tried = [
    ...(alignment.spfDomain !== undefined ? [`SPF ${alignment.spfDomain}`] : []),
    ...(alignment.dkimDomains.length > 0 ? [`DKIM ${alignment.dkimDomains.join(', ')}`] : []),
  ];
  if (tried.length === 0) return `no SPF or DKIM pass to align with ${domain}`;
  return `${tried.join(' and ')} not aligned with ${domain} (aspf=${record.aspf}, adkim=${record.adkim})`;
}

/**
 * The result for a message without exactly one Author Domain: permerror, with the facts of the
 * evaluated domain whose failure asks for the strictest disposition (or of the first evaluated,
 * when none failed).
 */
function irregular(reason: string, domains: number, evaluated: DmarcResult[]): DmarcResult {
  let chosen: DmarcResult | undefined;
  for (const r of evaluated) {
    if (r.result !== 'fail') continue;
    if (!chosen || STRICTNESS[r.disposition] > STRICTNESS[chosen.disposition]) chosen = r;
  }
  chosen ??= evaluated[0];
  let text = reason;
  if (chosen) text += `; ${chosen.domain}: ${chosen.result} (${chosen.reason})`;
  if (domains > evaluated.length) {
    text += `; only ${evaluated.length} of ${domains} From domains evaluated`;
  }
  return finish(chosen ?? emptyResult(), 'permerror', text);
}

/** A result of one shape, filled in as the check learns. */
function emptyResult(): DmarcResult {
  return {
    result: 'none',
    reason: '',
    domain: undefined,
    policyDomain: undefined,
    organizationalDomain: undefined,
    policy: 'none',
    disposition: 'none',
    spfAligned: false,
    dkimAligned: false,
    alignedDkimDomains: [],
    record: undefined,
    testing: false,
    queries: 0,
  };
}

function finish(r: DmarcResult, result: DmarcResultWord, reason: string): DmarcResult {
  r.result = result;
  r.reason = reason;
  return r;
}
