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
  // One object of one shape, filled in as the check learns: the hot path builds no copies.
  const r = emptyResult();

  const claimed = registeredId(helo);
  if (!claimed.ok) {
    const shown = truncate(printableAscii(helo), SHOWN_HELO);
    return finish(
      r,
      'REJECT',
      'invalid-id',
      550,
      '5.7.1',
      `'${shown}' is not a valid sender's name.`,
      help,
    );
  }
  const id = claimed.id;
  r.id = id;
  const clock = options.clock ?? systemClock;
  const budget = options.limits?.timeBudgetMs;
  const limits =
    budget === undefined
      ? DEFAULT_REGISTRY_LIMITS
      : resolveLimits('registry', DEFAULT_REGISTRY_LIMITS, options.limits);
  const dns = new BudgetedQueries(options.resolver, clock, limits.timeBudgetMs);
  const owner = `${id}.${bareZone(settings.zone)}`;

  const answer = await dns.query(owner, 'TXT');
  r.queries = dns.queries;
  const looked = readRecord(answer, owner);
  if (looked.kind === 'missing') {
    return finish(
      r,
      'REJECT',
      'no-record',
      550,
      '5.7.1',
      `Declared ID '${id}' has no Registry record.`,
      help,
    );
  }
  if (looked.kind === 'timeout') {
    return finish(
      r,
      'TEMPFAIL',
      'timeout',
      451,
      '4.4.3',
      `Timeout getting Registry record '${owner}'. Try again later.`,
    );
  }
  if (looked.kind === 'error') {
    r.alert = looked.alert;
    return finish(
      r,
      'TEMPFAIL',
      looked.reason,
      451,
      '4.4.3',
      `Registry record '${owner}' is unusable. Try again later.`,
    );
  }
  const record = looked.record;
  if (record.stop) {
    return finish(r, 'REJECT', 'stop', 550, '5.7.1', `No mail allowed from '${id}'.`, help);
  }

  const { weighed, methods } = judged(record, settings);
  if (!weighed) {
    r.headers.push(authent(`${ipText} ${id} UNVERIFIED`));
    r.authResults = `x-registry=none (no trusted ratings) policy.id=${id}`;
    return finish(
      r,
      'FILTER',
      'no-trusted-ratings',
      250,
      '2.7.0',
      `No trusted ratings for '${id}'. Delivery uncertain.`,
    );
  }
  r.rating = weighed.rating;
  r.ratings = weighed.ratings;
  r.average = weighed.average;
  if (weighed.average < settings.rejectAverage || weighed.minimum < settings.rejectMinimum) {
    return finish(
      r,
      'REJECT',
      'bad-ratings',
      550,
      '5.7.1',
      `Sorry, we accept mail only from reputable domains. Your domain '${id}' has ratings ${weighed.ratings}.`,
      help,
    );
  }

  if (methods.length === 0) {
    r.headers.push(authent(`${ipText} ${id} UNVERIFIED (No supported methods in Registry)`));
    r.authResults = `x-registry=none (no supported methods) policy.id=${id}`;
    return finish(
      r,
      'CONTINUE',
      'no-methods',
      250,
      '2.7.0',
      `No supported methods in Registry for '${id}'. Delivery uncertain.`,
    );
  }

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
    r.queries += outcome.queries;
    if (outcome.action === 'CONTINUE') continue;
    r.method = method.name;
    r.methodResult = outcome.result;
    r.headers.push(
      authent(
        `${ipText} ${id} ${AUTHENT_LABEL[method.name]} ${outcome.result} ratings=${weighed.ratings}`,
      ),
    );
    for (const header of outcome.headers) r.headers.push(header);
    r.authResults = authResultsClause(outcome.authResult, method.name, id, weighed, claimed.name);
    if (outcome.action === 'ACCEPT' && weighed.rating === 'LOW') {
      return finish(
        r,
        'FILTER',
        'low-rating',
        250,
        '2.7.0',
        `Message will be sent to spam filter - don't depend on delivery. Your domain '${id}' has ratings ${weighed.ratings}.${help}`,
      );
    }
    const { code, xcode, text } = outcome.reply;
    return finish(r, outcome.action, reasonOf(outcome.action), code, xcode, text, help);
  }
  r.headers.push(authent(`${ipText} ${id} UNVERIFIED`));
  return finish(
    r,
    'CONTINUE',
    'no-final-result',
    250,
    '2.7.0',
    'No final result from any authentication method.',
  );
}

/** The zone without leading or trailing dots (configuration gives it bare; callers may not). */
function bareZone(zone: string): string {
  return zone.startsWith('.') || zone.endsWith('.') ? zone.replace(/^\.+|\.+$/gu, '') : zone;
}

/**
 * The ratings weighed and the methods chosen for a record under the settings: pure, and the same
 * for every message from one ID, so kept with the (memoised, frozen) record while the settings
 * object stays the same.
 */
function judged(
  record: RegistryRecord,
  settings: RegistrySettings,
): { weighed: Weighed | null; methods: RegistryMethodSetting[] } {
  const known = JUDGED.get(record);
  if (known && known.settings === settings) return known;
  const fresh = {
    settings,
    weighed: weighRatings(record.ratings, settings),
    methods: chooseMethods(record, settings.methods),
  };
  JUDGED.set(record, fresh);
  return fresh;
}

const JUDGED = new WeakMap<
  RegistryRecord,
  { settings: RegistrySettings; weighed: Weighed | null; methods: RegistryMethodSetting[] }
>();

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

function emptyResult(): RegistryResult {
  return {
    action: 'CONTINUE',
    reason: '',
    id: undefined,
    method: undefined,
    methodResult: undefined,
    rating: undefined,
    ratings: undefined,
    average: undefined,
    reply: { code: 250, xcode: '2.7.0', text: '' },
    headers: [],
    authResults: undefined,
    alert: undefined,
    queries: 0,
  };
}

function finish(
  r: RegistryResult,
  action: RegistryAction,
  reason: string,
  code: number,
  xcode: string,
  text: string,
  help = '',
): RegistryResult {
  r.action = action;
  r.reason = reason;
  // Every refusal says where to read why; the help comes last, so a long text cuts the text.
  const pointer = action === 'REJECT' ? help : '';
  const body = truncate(printableAscii(text), MAX_REPLY - pointer.length);
  r.reply = { code, xcode, text: `${body}${pointer}` };
  return r;
}
