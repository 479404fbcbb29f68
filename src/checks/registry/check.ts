/**
 * checkId: does the sender registry vouch for the client? The ID the HELO name claims, its
 * registry record, the trusted ratings in it, then the authentication methods the sender offers
 * that the receiver runs, in the receiver's order; the first final answer wins, and a LOW rating
 * turns an ACCEPT into FILTER (checkHelo.py's order and results).
 */
import { formatIp, parseIp, unmapIpv4 } from '../../dns/address.js';
import type { DnsResult } from '../../dns/types.js';
import { printableAscii, quotedString, truncate } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { registeredId } from './id.js';
import { AUTHENT_LABEL, type MethodContext, runMethod } from './methods.js';
import { type Weighed, weighRatings } from './ratings.js';
import { parseRegistryRecord, type RegistryRecord } from './record.js';
import {
  DEFAULT_REGISTRY_LIMITS,
  type RegistryAction,
  type RegistryHeader,
  type RegistryInput,
  type RegistryMethodSetting,
  type RegistryOptions,
  type RegistryResult,
  type RegistrySettings,
} from './types.js';

/** Longest reply text; MTAs cut long lines, and the text carries the client's words. */
const MAX_REPLY = 400;
/** Longest HELO quoted back to the client. */
const SHOWN_HELO = 100;

/**
 * Check the client's registered ID against the sender registry.
 *
 * @example
 * const r = await checkId({ ip: '208.20.133.17', helo: 'mailout17.heaven.net' },
 *   { zone: 'registry.example', services: { S1: { grades: { A: 9, B: 7 }, weight: 5 } },
 *     ...DEFAULT_REGISTRY_SETTINGS },
 *   { resolver });
 * r.action   // 'ACCEPT'
 * r.headers  // [{ name: 'Authent', value: '208.20.133.17 heaven.net QR1 PASS ratings=S1:A' }]
 */
export async function checkId(
  input: RegistryInput,
  settings: RegistrySettings,
  options: RegistryOptions,
): Promise<RegistryResult> {
  const parsed = parseIp(input.ip);
  if (!parsed) throw new TypeError(`not an IP address: ${printableAscii(String(input.ip))}`);
  const ip = unmapIpv4(parsed);
  const ipText = formatIp(ip);
  const helo = typeof input.helo === 'string' ? input.helo : '';
  const help = settings.help ? ` See ${settings.help}` : '';

  const claimed = registeredId(helo);
  if (!claimed.ok) {
    const shown = truncate(printableAscii(helo), SHOWN_HELO);
    return done('REJECT', 'invalid-id', 550, '5.7.1', `'${shown}' is not a valid sender's name.`);
  }
  const { id } = claimed;
  const clock = options.clock ?? systemClock;
  const limits = resolveLimits('registry', DEFAULT_REGISTRY_LIMITS, options.limits);
  const dns = new BudgetedQueries(options.resolver, clock, limits.timeBudgetMs);
  const zone = settings.zone.replace(/^\.+|\.+$/gu, '');
  const owner = `${id}.${zone}`;

  const answer = await dns.query(owner, 'TXT');
  const looked = readRecord(answer, owner);
  if (looked.kind === 'missing') {
    return done(
      'REJECT',
      'no-record',
      550,
      '5.7.1',
      `Declared ID '${id}' has no Registry record.${help}`,
      { id, queries: dns.queries },
    );
  }
  if (looked.kind === 'timeout') {
    return done(
      'TEMPFAIL',
      'timeout',
      451,
      '4.4.3',
      `Timeout getting Registry record '${owner}'. Try again later.`,
      { id, queries: dns.queries },
    );
  }
  if (looked.kind === 'error') {
    return done(
      'TEMPFAIL',
      looked.reason,
      451,
      '4.4.3',
      `Registry record '${owner}' is unusable. Try again later.`,
      { id, queries: dns.queries, alert: looked.alert },
    );
  }
  const record = looked.record;
  if (record.stop) {
    return done('REJECT', 'stop', 550, '5.7.1', `No mail allowed from '${id}'.${help}`, {
      id,
      queries: dns.queries,
    });
  }

  const weighed = weighRatings(record.ratings, settings);
  if (!weighed) {
    return done(
      'FILTER',
      'no-trusted-ratings',
      250,
      '2.7.0',
      `No trusted ratings for '${id}'. Delivery uncertain.`,
      {
        id,
        queries: dns.queries,
        headers: [authent(`${ipText} ${id} UNVERIFIED`)],
        authResults: `x-registry=none (no trusted ratings) policy.id=${id}`,
      },
    );
  }
  const rated = {
    id,
    rating: weighed.rating,
    ratings: weighed.ratings,
    average: weighed.average,
  };
  if (weighed.average < settings.rejectAverage || weighed.minimum < settings.rejectMinimum) {
    return done(
      'REJECT',
      'bad-ratings',
      550,
      '5.7.1',
      `Sorry, we accept mail only from reputable domains. Your domain '${id}' has ratings ${weighed.ratings}.${help}`,
      { ...rated, queries: dns.queries },
    );
  }

  const methods = chooseMethods(record, settings.methods);
  if (methods.length === 0) {
    return done(
      'CONTINUE',
      'no-methods',
      250,
      '2.7.0',
      `No supported methods in Registry for '${id}'. Delivery uncertain.`,
      {
        ...rated,
        queries: dns.queries,
        headers: [authent(`${ipText} ${id} UNVERIFIED (No supported methods in Registry)`)],
        authResults: `x-registry=none (no supported methods) policy.id=${id}`,
      },
    );
  }

  let queries = dns.queries;
  for (const method of methods) {
    const context: MethodContext = {
      ip,
      ipText,
      id,
      helo: claimed.name,
      sender: input.sender,
      record,
      maxQueries: method.maxQueries,
      timeLeft: dns.timeLeft(),
      resolver: options.resolver,
      clock,
      receiver: settings.receiver ?? 'unknown',
    };
    const outcome = await runMethod(method.name, context);
    queries += outcome.queries;
    if (outcome.action === 'CONTINUE') continue;
    const headers = [
      authent(
        `${ipText} ${id} ${AUTHENT_LABEL[method.name]} ${outcome.result} ratings=${weighed.ratings}`,
      ),
      ...outcome.headers,
    ];
    const extra = {
      ...rated,
      method: method.name,
      methodResult: outcome.result,
      queries,
      headers,
      authResults: authResultsClause(outcome.authResult, method.name, id, weighed, claimed.name),
    };
    if (outcome.action === 'ACCEPT' && weighed.rating === 'LOW') {
      return done(
        'FILTER',
        'low-rating',
        250,
        '2.7.0',
        `Message will be sent to spam filter - don't depend on delivery. Your domain '${id}' has ratings ${weighed.ratings}.${help}`,
        extra,
      );
    }
    const { code, xcode, text } = outcome.reply;
    return done(outcome.action, reasonOf(outcome.action), code, xcode, text, extra);
  }
  return done(
    'CONTINUE',
    'no-final-result',
    250,
    '2.7.0',
    'No final result from any authentication method.',
    { ...rated, queries, headers: [authent(`${ipText} ${id} UNVERIFIED`)] },
  );
}

/** The methods to run: the receiver's, in its order, that the sender offers within their bound. */
export function chooseMethods(
  record: RegistryRecord,
  receiver: readonly RegistryMethodSetting[],
): RegistryMethodSetting[] {
  const chosen: RegistryMethodSetting[] = [];
  for (const method of receiver) {
    if (chosen.some((c) => c.name === method.name)) continue;
    // QR1 is offered by publishing netblocks: it needs no query.
    const declared =
      method.name === 'QR1'
        ? record.ip4.length || record.ip6.length
          ? 0
          : undefined
        : record.methods.find((m) => m.name === method.name)?.queries;
    if (declared !== undefined && declared <= method.maxQueries) chosen.push(method);
  }
  return chosen;
}

type Looked =
  | { kind: 'record'; record: RegistryRecord }
  | { kind: 'missing' }
  | { kind: 'timeout' }
  | { kind: 'error'; reason: 'dns-error' | 'parse-error'; alert: string };

function readRecord(answer: DnsResult<'TXT'>, owner: string): Looked {
  if (answer.kind === 'nxdomain' || answer.kind === 'nodata') return { kind: 'missing' };
  if (answer.kind === 'temporary') {
    if (answer.reason === 'timeout' || answer.reason === 'deadline') return { kind: 'timeout' };
    return {
      kind: 'error',
      reason: 'dns-error',
      alert: `TXT lookup for ${owner} failed: ${answer.reason} (${printableAscii(answer.detail)})`,
    };
  }
  if (answer.records.length > 1) {
    return {
      kind: 'error',
      reason: 'parse-error',
      alert: `${owner} has ${answer.records.length} TXT records; a registry publishes one`,
    };
  }
  const text = answer.records[0]!.strings.join('');
  const parsed = parseRegistryRecord(text);
  if (!parsed.ok) {
    return { kind: 'error', reason: 'parse-error', alert: `${owner}: ${parsed.error}` };
  }
  return { kind: 'record', record: parsed.record };
}

function reasonOf(action: RegistryAction): string {
  switch (action) {
    case 'ACCEPT':
      return 'authenticated';
    case 'REJECT':
      return 'not-authorized';
    case 'FILTER':
      return 'filtered';
    case 'TEMPFAIL':
      return 'method-tempfail';
    default:
      return action.toLowerCase();
  }
}

function authent(value: string): RegistryHeader {
  return { name: 'Authent', value };
}

/** `x-registry=pass (QR1) policy.id=heaven.net policy.ratings="S1:A,M2:A" smtp.helo=...`. */
function authResultsClause(
  result: string,
  method: string,
  id: string,
  weighed: Weighed,
  helo: string,
): string {
  return `x-registry=${result} (${method}, rating ${weighed.rating}) policy.id=${id} policy.ratings=${quotedString(weighed.ratings, 200)} smtp.helo=${helo}`;
}

interface Extra {
  id?: string;
  method?: RegistryResult['method'];
  methodResult?: string;
  rating?: RegistryResult['rating'];
  ratings?: string;
  average?: number;
  headers?: RegistryHeader[];
  authResults?: string;
  alert?: string;
  queries?: number;
}

function done(
  action: RegistryAction,
  reason: string,
  code: number,
  xcode: string,
  text: string,
  extra: Extra = {},
): RegistryResult {
  const { headers = [], queries = 0, ...rest } = extra;
  const reply = { code, xcode, text: truncate(printableAscii(text), MAX_REPLY) };
  return { action, reason, ...rest, reply, headers, queries };
}
