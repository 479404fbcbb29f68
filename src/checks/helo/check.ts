/**
 * checkHelo: the HELO/EHLO argument judged by named, switchable rules (bms.py's HELO checks and
 * the usual MTA restrictions), a verdict with a suggested reply, and bley's HELO score.
 */

import { formatIp, type IpAddress, parseIp, sameIp, unmapIpv4 } from '../../dns/address.js';
import type { DnsResult, RecordType } from '../../dns/types.js';
import { printableAscii } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { comparableName, isLocalhostName, isLoopback } from '../ptr/names.js';
import {
  checkName,
  fqdnProblem,
  type ParsedHelo,
  parseHelo,
  registrableDomain,
  suffixProblem,
} from './parse.js';
import { heloReply, shownHelo } from './reply.js';
import { addressMatch, MATCH_PREFIX, resolveHelo } from './resolve.js';
import {
  type AddressMatch,
  type BleyScore,
  DEFAULT_HELO_LIMITS,
  HELO_RULES,
  type HeloContext,
  type HeloInput,
  type HeloLimits,
  type HeloOptions,
  type HeloOutcome,
  type HeloResult,
  type HeloRule,
  type HeloVerdict,
} from './types.js';

/** The rules whose failure rejects unless told otherwise: those bms.py rejects at once. */
export const DEFAULT_REJECT_RULES: readonly HeloRule[] = ['missing', 'bare-ip', 'own-name'];

/** The options with defaults filled in and lists parsed. */
interface Settings {
  enabled: (rule: HeloRule) => boolean;
  rejects: (rule: HeloRule) => boolean;
  names: Set<string>;
  domains: string[];
  addresses: IpAddress[];
  literalMatch: AddressMatch;
  resolveMatch: AddressMatch;
  extraSuffixes: string[];
}

type Verdict = Pick<HeloOutcome, 'result' | 'reason' | 'detail'>;

/**
 * Check a HELO/EHLO argument against the client it came from.
 *
 * @example
 * const r = await checkHelo(
 *   { ip: '192.0.2.1', helo: 'mail.example.com', ptrName: 'mail.example.com' },
 *   { resolver: createResolver(), options: { ourNames: ['mx.example.org'] } },
 * );
 * r.result   // 'pass' | 'suspect' | 'tempfail' | 'reject'
 * r.failed   // e.g. ['matches']
 * r.score    // 0: the HELO is the verified PTR name
 */
export async function checkHelo(input: HeloInput, context: HeloContext): Promise<HeloResult> {
  const parsedIp = parseIp(input.ip);
  if (!parsedIp) throw new TypeError(`not an IP address: ${printableAscii(input.ip)}`);
  const client = unmapIpv4(parsedIp);
  const settings = heloSettings(context.options);
  const limits = resolveLimits<HeloLimits>('HELO', DEFAULT_HELO_LIMITS, context.limits);
  const dns = new BudgetedQueries(
    context.resolver,
    context.clock ?? systemClock,
    limits.timeBudgetMs,
  );
  const query = <T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> =>
    dns.query(name, type);

  const helo = input.helo ?? '';
  const parsed = parseHelo(helo);
  const shown = shownHelo(parsed.text);
  const judged: Partial<Record<HeloRule, Verdict>> = {
    missing: missingRule(parsed),
    'bare-ip': bareIpRule(parsed, shown),
    literal: literalRule(parsed, client, settings.literalMatch, shown),
    syntax: syntaxRule(parsed, shown),
    fqdn: nameRule(parsed, (name) => fqdnProblem(name), shown, 'fully qualified'),
    'public-suffix': nameRule(
      parsed,
      (name) => suffixProblem(name, settings.extraSuffixes),
      shown,
      'under a public suffix',
    ),
    'own-name': ownNameRule(parsed, input, settings, shown),
    localhost: localhostRule(parsed, client, shown),
    changed: changedRule(parsed, input.previousHelo, shown),
  };

  const wantResolves = settings.enabled('resolves');
  const wantMatches = settings.enabled('matches');
  const name = resolvableName(parsed);
  if (name === null) {
    const skip = notAName(parsed);
    judged.resolves = skip;
    judged.matches = skip;
  } else if (wantResolves || wantMatches) {
    const dns = await resolveHelo(
      {
        name,
        client,
        match: settings.resolveMatch,
        mxNames: limits.mxNames,
        resolves: wantResolves,
        matches: wantMatches,
      },
      query,
    );
    judged.resolves = dns.resolves;
    judged.matches = dns.matches;
  }

  const outcomes: HeloOutcome[] = HELO_RULES.map((rule) => {
    if (!settings.enabled(rule)) {
      return { rule, result: 'skip', reason: 'disabled', detail: 'rule switched off' };
    }
    return { rule, ...(judged[rule] as Verdict) };
  });
  const decided =
    outcomes.find((o) => o.result === 'fail' && settings.rejects(o.rule)) ??
    outcomes.find((o) => o.result === 'tempfail' && settings.rejects(o.rule));
  let result: HeloVerdict;
  if (decided) result = decided.result === 'fail' ? 'reject' : 'tempfail';
  else if (outcomes.some((o) => o.result === 'fail' || o.result === 'tempfail')) result = 'suspect';
  else result = 'pass';

  const out: HeloResult = {
    result,
    outcomes,
    failed: outcomes.filter((o) => o.result === 'fail').map((o) => o.rule),
    score: scoreOf(parsed, client, input.ptrName),
    ip: formatIp(client),
    helo,
    form: parsed.form,
    queries: dns.queries,
    reply: heloReply({
      result,
      decided,
      helo: parsed.text,
      previousHelo: input.previousHelo ?? undefined,
      ip: formatIp(client),
    }),
  };
  if (decided) out.rule = decided.rule;
  if (parsed.name) out.name = parsed.name;
  if (parsed.address) out.address = formatIp(parsed.address);
  if (parsed.tagged !== undefined) out.tagged = parsed.tagged;
  return out;
}

/**
 * bley's HELO score: 0 when the HELO is the client's verified PTR name, 1 when the two share a
 * registrable domain or the HELO is the client's own address literal (any spelling of it, tagged
 * or not), 2 otherwise: also when there is no HELO or PTR name, or the HELO is no valid name. `checkHelo` reports it as `score`.
 *
 * @example
 * bleyScore('mail.example.com', '192.0.2.1', 'smtp.example.com')  // 1
 * bleyScore('[IPv6:2001:DB8::1]', '2001:0db8:0:0:0:0:0:1')         // 1
 */
export function bleyScore(
  helo: string | null | undefined,
  ip: string | IpAddress,
  ptrName?: string | null,
): BleyScore {
  const parsed = typeof ip === 'string' ? parseIp(ip) : ip;
  if (!parsed) throw new TypeError(`not an IP address: ${printableAscii(String(ip))}`);
  return scoreOf(parseHelo(helo), unmapIpv4(parsed), ptrName);
}

function scoreOf(parsed: ParsedHelo, client: IpAddress, ptrName?: string | null): BleyScore {
  if (parsed.form === 'missing') return 2;
  if (parsed.form === 'literal') {
    return parsed.address && sameIp(parsed.address, client) ? 1 : 2;
  }
  // Only a valid name can be a host's name; bley compared strings, we compare names.
  if (!parsed.name || !ptrName) return 2;
  const helo = parsed.name;
  const checked = checkName(ptrName);
  const ptr = typeof checked === 'string' ? checked : comparableName(ptrName);
  if (ptr === helo) return 0;
  const domain = registrableDomain(ptr);
  return domain !== null && domain === registrableDomain(helo) ? 1 : 2;
}

function missingRule(parsed: ParsedHelo): Verdict {
  if (parsed.form === 'missing') {
    return { result: 'fail', reason: 'missing', detail: 'no HELO/EHLO name given' };
  }
  return { result: 'pass', reason: 'ok', detail: 'a HELO/EHLO name was given' };
}

function bareIpRule(parsed: ParsedHelo, shown: string): Verdict {
  if (parsed.form === 'missing') return noHelo();
  if (parsed.form === 'bare-ip') {
    return {
      result: 'fail',
      reason: 'bare-ip',
      detail: `${shown} is an IP address without brackets`,
    };
  }
  return { result: 'pass', reason: 'ok', detail: `${shown} is not a bare IP address` };
}

function literalRule(
  parsed: ParsedHelo,
  client: IpAddress,
  match: AddressMatch,
  shown: string,
): Verdict {
  if (parsed.form === 'missing') return noHelo();
  if (parsed.form !== 'literal') {
    return {
      result: 'skip',
      reason: 'not-a-literal',
      detail: `${shown} is not an address literal`,
    };
  }
  if (!parsed.address) {
    return {
      result: 'fail',
      reason: 'malformed',
      detail: `${shown} is not a valid address literal`,
    };
  }
  const how = addressMatch(client, parsed.address, match);
  const ip = formatIp(client);
  if (how === 'exact') return { result: 'pass', reason: 'exact', detail: `${shown} is ${ip}` };
  if (how === 'prefix') {
    return {
      result: 'pass',
      reason: 'prefix',
      detail: `${shown} is in the /${MATCH_PREFIX[client.family]} of ${ip}`,
    };
  }
  return { result: 'fail', reason: 'mismatch', detail: `${shown} is not ${ip}` };
}

function syntaxRule(parsed: ParsedHelo, shown: string): Verdict {
  if (parsed.form === 'missing') return noHelo();
  if (parsed.form !== 'name') return notAName(parsed);
  if (parsed.problem) {
    return { result: 'fail', reason: parsed.problem, detail: `${shown} is not a valid host name` };
  }
  return { result: 'pass', reason: 'ok', detail: `${shown} is a valid host name` };
}

/** A rule about a valid name: `problem` gives the failing reason word, or null. */
function nameRule(
  parsed: ParsedHelo,
  problem: (name: string) => string | null,
  shown: string,
  /** What the name is when it passes: `fully qualified`. */
  what: string,
): Verdict {
  if (parsed.form === 'missing') return noHelo();
  if (parsed.form !== 'name') return notAName(parsed);
  if (!parsed.name) {
    return { result: 'skip', reason: 'invalid-name', detail: `${shown} is not a valid host name` };
  }
  const why = problem(parsed.name);
  if (why) return { result: 'fail', reason: why, detail: `${shown} is not ${what} (${why})` };
  return { result: 'pass', reason: 'ok', detail: `${shown} is ${what}` };
}

function ownNameRule(
  parsed: ParsedHelo,
  input: HeloInput,
  settings: Settings,
  shown: string,
): Verdict {
  if (parsed.form === 'missing') return noHelo();
  if (input.internal || input.authenticated) {
    return {
      result: 'skip',
      reason: 'trusted',
      detail: 'the client is internal or authenticated and may use our names',
    };
  }
  if (parsed.name && isOurName(parsed.name, settings)) {
    return { result: 'fail', reason: 'our-name', detail: `${shown} is one of our names` };
  }
  const address = parsed.address;
  if (address && settings.addresses.some((ours) => sameIp(ours, address))) {
    return { result: 'fail', reason: 'our-address', detail: `${shown} is one of our addresses` };
  }
  return { result: 'pass', reason: 'ok', detail: `${shown} is not one of ours` };
}

function isOurName(name: string, settings: Settings): boolean {
  if (settings.names.has(name)) return true;
  return settings.domains.some((d) => name.endsWith(`.${d}`));
}

function localhostRule(parsed: ParsedHelo, client: IpAddress, shown: string): Verdict {
  if (parsed.form === 'missing') return noHelo();
  const claimsLoopback =
    (parsed.name !== undefined && parsed.name !== null && isLocalhostName(parsed.name)) ||
    (parsed.address !== undefined && parsed.address !== null && isLoopback(parsed.address));
  if (!claimsLoopback) {
    return { result: 'pass', reason: 'ok', detail: `${shown} does not name a loopback host` };
  }
  if (isLoopback(client)) {
    return { result: 'pass', reason: 'loopback-client', detail: 'the client is on loopback' };
  }
  return {
    result: 'fail',
    reason: 'localhost',
    detail: `${shown} names a loopback host, and ${formatIp(client)} is not one`,
  };
}

function changedRule(
  parsed: ParsedHelo,
  previous: string | null | undefined,
  shown: string,
): Verdict {
  if (parsed.form === 'missing') return noHelo();
  const before = parseHelo(previous);
  if (before.form === 'missing') {
    return { result: 'skip', reason: 'no-previous', detail: 'no earlier HELO/EHLO in the session' };
  }
  if (sameHelo(parsed, before)) {
    return { result: 'pass', reason: 'same', detail: 'the earlier HELO/EHLO named the same host' };
  }
  return {
    result: 'fail',
    reason: 'changed',
    detail: `the earlier HELO/EHLO said ${shownHelo(before.text)}, this one ${shown}`,
  };
}

/** Same host: equal names without case and trailing dot, or literals of the same address. */
function sameHelo(a: ParsedHelo, b: ParsedHelo): boolean {
  if (a.address && b.address) return a.form === b.form && sameIp(a.address, b.address);
  const key = (p: ParsedHelo) => p.name ?? comparableName(p.text);
  return key(a) === key(b);
}

/** The name to ask DNS about: a valid, fully qualified name, or null. */
function resolvableName(parsed: ParsedHelo): string | null {
  if (parsed.form !== 'name' || !parsed.name) return null;
  return fqdnProblem(parsed.name) === null ? parsed.name : null;
}

function noHelo(): Verdict {
  return { result: 'skip', reason: 'no-helo', detail: 'no HELO/EHLO name given' };
}

function notAName(parsed: ParsedHelo): Verdict {
  if (parsed.form === 'missing') return noHelo();
  if (parsed.form === 'name') {
    return parsed.name
      ? { result: 'skip', reason: 'not-fqdn', detail: 'the name is not fully qualified' }
      : { result: 'skip', reason: 'invalid-name', detail: 'the name is not a valid host name' };
  }
  return { result: 'skip', reason: 'not-a-name', detail: 'the HELO is an address, not a name' };
}

/** The options with their defaults; a bad address in `ourAddresses` is a programming error. */
function heloSettings(options: HeloOptions = {}): Settings {
  const rules = options.rules ?? {};
  const reject = options.reject ?? {};
  const names = new Set<string>();
  const domains: string[] = [];
  for (const entry of options.ourNames ?? []) {
    const under = entry.startsWith('.');
    const name = normalName(under ? entry.slice(1) : entry);
    if (name === '') continue;
    if (under) domains.push(name);
    else names.add(name);
  }
  const addresses = (options.ourAddresses ?? []).map((text) => {
    const ip = parseIp(text);
    if (!ip)
      throw new TypeError(`HELO option ourAddresses: not an IP address: ${printableAscii(text)}`);
    return unmapIpv4(ip);
  });
  return {
    enabled: (rule) => rules[rule] !== false,
    rejects: (rule) => reject[rule] ?? DEFAULT_REJECT_RULES.includes(rule),
    names,
    domains,
    addresses,
    literalMatch: options.literalMatch ?? 'exact',
    resolveMatch: options.resolveMatch ?? 'prefix',
    extraSuffixes: (options.extraSuffixes ?? [])
      .map((s) => normalName(s.startsWith('.') ? s.slice(1) : s))
      .filter((s) => s !== ''),
  };
}

/** A configured name in the form HELO names are compared in. */
function normalName(text: string): string {
  const checked = checkName(text);
  return typeof checked === 'string' ? checked : comparableName(text);
}
