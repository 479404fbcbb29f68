/**
 * checkSpf: one SPF check of one identity, with pyspf's extras (lax mode, best guess, a local
 * fallback zone) around RFC 7208's check_host().
 */

import { domainToASCII } from 'node:url';
import { formatIp, parseIp, unmapIpv4 } from '../../dns/address.js';
import { printableAscii } from '../../text/index.js';
import { systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { type EvaluationContext, type HostOutcome, SpfEvaluation } from './evaluate.js';
import {
  expandMacroString,
  type MacroString,
  type MacroValues,
  parseMacroString,
} from './macro.js';
import { SpfProblem } from './problem.js';
import { isSpfRecord, parseRecord } from './record.js';
import { spfReply } from './reply.js';
import {
  DEFAULT_GUESS_RECORD,
  DEFAULT_SPF_LIMITS,
  type SpfIdentity,
  type SpfInput,
  type SpfLimits,
  type SpfOptions,
  type SpfResult,
  type SpfResultWord,
} from './types.js';

/** The explanation of a fail when the record gives none; a macro string like `exp=` text. */
export const DEFAULT_EXPLANATION =
  'SPF policy of %{o} does not authorize %{c} to send mail as %{s}';

/** Limits lax mode allows, as pyspf's users know them. */
const LAX_LIMITS: Partial<SpfLimits> = { terms: 40, mxNames: 40, ptrNames: 40 };

/** The identity as check_host() sees it. */
interface Identity {
  identity: SpfIdentity;
  sender: string;
  local: string;
  /** The domain in A-label form, or null when it cannot have a policy. */
  domain: string | null;
  /** The domain as given, for reporting when it cannot be checked. */
  given: string;
}

/**
 * Check the SPF policy for one client and identity.
 *
 * @example
 * const r = await checkSpf({ ip: '192.0.2.1', sender: 'jo@example.com', helo: 'mx.example.com' },
 *   { resolver: createResolver() });
 * r.result       // 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror'
 * r.explanation  // set for fail
 */
export async function checkSpf(input: SpfInput, options: SpfOptions): Promise<SpfResult> {
  const parsed = parseIp(input.ip);
  if (!parsed) throw new TypeError(`not an IP address: ${printableAscii(input.ip)}`);
  const ip = unmapIpv4(parsed);
  const helo = input.helo ?? '';
  const who = identityOf(input, helo);
  const clock = options.clock ?? systemClock;
  const limits = resolveLimits<SpfLimits>('SPF', DEFAULT_SPF_LIMITS, options.limits);
  const start = clock.now();
  const receiver = options.receiver ?? 'unknown';

  const result: Omit<SpfResult, 'reply'> = {
    result: 'none',
    identity: who.identity,
    ip: formatIp(ip),
    sender: who.sender,
    domain: who.domain ?? who.given,
    helo,
    lookups: 0,
    voidLookups: 0,
    queries: 0,
  };
  const domain = who.domain;
  if (domain === null) return finish(result);

  const context = (lax: boolean): EvaluationContext => ({
    ip,
    sender: who.sender,
    local: who.local,
    senderDomain: domain,
    helo,
    receiver,
    resolver: options.resolver,
    limits: lax ? { ...limits, ...atLeast(limits, LAX_LIMITS) } : limits,
    deadline: start + limits.timeBudgetMs,
    now: () => clock.now(),
    lax,
  });

  const evaluation = new SpfEvaluation(context(false));
  const strict = await run(
    evaluation,
    () => findPolicy(evaluation, domain, options.fallbackZone),
    domain,
  );
  applyRun(result, strict);
  if (strict.outcome?.failedAt) {
    const explanation = await evaluation.explain(strict.outcome.failedAt);
    if (explanation !== null) {
      result.explanation = explanation;
      result.explanationSource = 'record';
    }
  }
  result.lookups = evaluation.terms;
  result.voidLookups = evaluation.voids;
  result.queries = evaluation.queries;
  if (result.result === 'fail' && result.explanation === undefined) {
    result.explanation = defaultExplanation(options.defaultExplanation, {
      sender: who.sender,
      local: who.local,
      senderDomain: domain,
      domain,
      ip,
      helo,
      receiver,
      timestamp: Math.floor(clock.now() / 1000),
    });
    result.explanationSource = 'default';
  }

  if (result.result === 'permerror' && options.lax) {
    const laxEvaluation = new SpfEvaluation(context(true));
    const lax = await run(
      laxEvaluation,
      () => findPolicy(laxEvaluation, domain, options.fallbackZone),
      domain,
    );
    result.laxResult = lax.result;
    const forgiven = lax.record ? parseRecordForgiven(lax.record) : [];
    if (forgiven.length) result.forgiven = [...forgiven];
    result.queries += laxEvaluation.queries;
  }

  if (result.result === 'none' && options.bestGuess) {
    const guessing = new SpfEvaluation(context(false));
    const record = guessRecord(options.bestGuess);
    const guess = await run(
      guessing,
      async () => ({ text: record, source: 'dns' as const }),
      domain,
    );
    result.guess = guess.result;
    result.queries += guessing.queries;
  }
  return finish(result);
}

/** The identity to check: MAIL FROM, or postmaster@HELO (RFC 7208 2.3, 2.4, 4.3). */
function identityOf(input: SpfInput, helo: string): Identity {
  const identity: SpfIdentity =
    input.identity === 'helo' || input.sender === '' || input.sender === '<>' ? 'helo' : 'mailfrom';
  // Senders arrive as the MTA wrote them, with or without the angle brackets of the SMTP command.
  const sender = /^<.*>$/s.test(input.sender) ? input.sender.slice(1, -1) : input.sender;
  const address = identity === 'helo' ? `postmaster@${helo}` : sender;
  const at = address.lastIndexOf('@');
  const local = at > 0 ? address.slice(0, at) : 'postmaster';
  const given = at >= 0 ? address.slice(at + 1) : address;
  const domain = checkableDomain(given);
  return { identity, sender: `${local}@${domain ?? given}`, local, domain, given };
}

interface PolicyText {
  text: string | null;
  source: 'dns' | 'fallback';
}

/** The domain's record, or the local fallback zone's record for it when it publishes none. */
async function findPolicy(
  evaluation: SpfEvaluation,
  domain: string,
  fallbackZone: string | undefined,
): Promise<PolicyText> {
  const text = await evaluation.findRecord(domain);
  if (text !== null || !fallbackZone) return { text, source: 'dns' };
  const zone = fallbackZone.endsWith('.') ? fallbackZone.slice(0, -1) : fallbackZone;
  return { text: await evaluation.findRecord(`${domain}._spf.${zone}`), source: 'fallback' };
}

interface RunOutcome {
  result: SpfResultWord;
  outcome?: HostOutcome;
  mechanism?: string;
  problem?: string;
  record?: string;
  source?: 'dns' | 'fallback';
}

/** Evaluate the policy `find` gives as the policy of `domain`, turning problems into results. */
async function run(
  evaluation: SpfEvaluation,
  find: () => Promise<PolicyText>,
  domain: string,
): Promise<RunOutcome> {
  let record: string | undefined;
  let source: 'dns' | 'fallback' | undefined;
  try {
    const policy = await find();
    if (policy.text === null) return { result: 'none' };
    record = policy.text;
    source = policy.source;
    const outcome = await evaluation.evaluateRecord(record, domain);
    return { result: outcome.result, outcome, mechanism: outcome.mechanism, record, source };
  } catch (err) {
    if (!(err instanceof SpfProblem)) throw err;
    return {
      result: err.result,
      problem: err.message,
      mechanism: err.mechanism,
      record,
      source,
    };
  }
}

/** What lax parsing forgave in the top record (empty when it does not parse even so). */
function parseRecordForgiven(text: string): string[] {
  try {
    return parseRecord(text, true).forgiven;
  } catch {
    return [];
  }
}

function applyRun(result: Omit<SpfResult, 'reply'>, run: RunOutcome): void {
  result.result = run.result;
  if (run.mechanism !== undefined) result.mechanism = run.mechanism;
  if (run.problem !== undefined) result.problem = run.problem;
  if (run.record !== undefined) result.record = run.record;
  if (run.source !== undefined) result.source = run.source;
}

/** The guess record, with `v=spf1` put in front when it was left out. */
function guessRecord(bestGuess: true | string): string {
  if (bestGuess === true) return DEFAULT_GUESS_RECORD;
  return isSpfRecord(bestGuess) ? bestGuess : `v=spf1 ${bestGuess}`;
}

const parsedDefaults = new Map<string, MacroString | null>();

function defaultExplanation(template: string | undefined, values: MacroValues): string {
  const text = template ?? DEFAULT_EXPLANATION;
  let parsed = parsedDefaults.get(text);
  if (parsed === undefined) {
    try {
      parsed = parseMacroString(text, 'explanation');
    } catch {
      // A configured default that is not a valid macro string is used as plain text.
      parsed = null;
    }
    if (parsedDefaults.size > 100) parsedDefaults.clear();
    parsedDefaults.set(text, parsed);
  }
  return printableAscii(parsed ? expandMacroString(parsed, values) : text);
}

function atLeast(limits: SpfLimits, floor: Partial<SpfLimits>): Partial<SpfLimits> {
  const out: Partial<SpfLimits> = {};
  for (const [key, value] of Object.entries(floor) as Array<[keyof SpfLimits, number]>) {
    out[key] = Math.max(limits[key], value);
  }
  return out;
}

/**
 * The domain in the form DNS asks for it, or null when it cannot have a policy (RFC 7208 4.3): a
 * multi-label name with labels of 1 to 63 octets, at most 253 in all, not an address literal, not
 * a numeric top label. Internationalised names are converted to A-labels (RFC 8616 3), so that
 * a U-label sender domain is checked like its A-label form rather than escaping as `none`.
 *
 * @example
 * checkableDomain('bücher.example')  // 'xn--bcher-kva.example'
 * checkableDomain('[192.0.2.1]')     // null
 */
export function checkableDomain(domain: string): string | null {
  let name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (name.length === 0 || name.includes('[')) return null;
  if (!/^[\x21-\x7e]+$/.test(name)) {
    if (/[\x00-\x20\x7f]/.test(name)) return null;
    const ascii = domainToASCII(name);
    if (!ascii) return null;
    name = ascii;
  }
  if (name.length > 253) return null;
  const labels = name.split('.');
  if (labels.length < 2) return null;
  for (const label of labels) if (label.length === 0 || label.length > 63) return null;
  return /^\d+$/.test(labels[labels.length - 1]!) ? null : name;
}

/** Whether a domain can have an SPF policy at all; see `checkableDomain`. */
export function isCheckableDomain(domain: string): boolean {
  return checkableDomain(domain) !== null;
}

function finish(result: Omit<SpfResult, 'reply'>): SpfResult {
  (result as SpfResult).reply = spfReply(result);
  return result as SpfResult;
}
