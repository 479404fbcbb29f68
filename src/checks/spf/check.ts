/**
 * checkSpf: one SPF check of one identity, with pyspf's extras (lax mode, best guess, a local
 * fallback zone) around RFC 7208's check_host().
 */
import { formatIp, parseIp, unmapIpv4 } from '../../dns/address.js';
import { type EvaluationContext, type HostOutcome, SpfEvaluation } from './evaluate.js';
import { expandMacroString, type MacroValues, parseMacroString } from './macro.js';
import { SpfProblem } from './problem.js';
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
  if (!parsed) throw new TypeError(`not an IP address: ${input.ip}`);
  const ip = unmapIpv4(parsed);
  const helo = input.helo ?? '';
  const identity: SpfIdentity =
    input.identity === 'helo' || input.sender === '' ? 'helo' : 'mailfrom';
  const sender = identity === 'helo' ? `postmaster@${helo}` : input.sender;
  const at = sender.lastIndexOf('@');
  const local = at > 0 ? sender.slice(0, at) : 'postmaster';
  const domain = at >= 0 ? sender.slice(at + 1) : sender;
  const clock = options.clock ?? { now: Date.now };
  const limits: SpfLimits = { ...DEFAULT_SPF_LIMITS, ...options.limits };
  const start = clock.now();

  const base = {
    identity,
    ip: formatIp(ip),
    sender,
    domain,
    helo,
  };
  const context = (lax: boolean): EvaluationContext => ({
    ip,
    sender,
    local,
    senderDomain: domain,
    helo,
    receiver: options.receiver ?? 'unknown',
    resolver: options.resolver,
    limits: lax ? { ...limits, ...maxOf(limits, LAX_LIMITS) } : limits,
    deadline: start + limits.timeBudgetMs,
    now: () => clock.now(),
    lax,
  });

  if (!isCheckableDomain(domain)) {
    return finish({ ...base, result: 'none', lookups: 0, voidLookups: 0, queries: 0 });
  }

  const evaluation = new SpfEvaluation(context(false));
  const strict = await run(evaluation, domain, options.fallbackZone);
  const failedAt = strict.outcome?.result === 'fail' ? strict.outcome.failedAt : undefined;
  const explanation = failedAt ? await evaluation.explain(failedAt) : null;
  const result: Omit<SpfResult, 'reply'> = {
    ...base,
    ...strict.fields,
    lookups: evaluation.terms,
    voidLookups: evaluation.voids,
    queries: evaluation.queries,
  };
  if (explanation !== null) result.explanation = explanation;
  if (result.result === 'fail' && result.explanation === undefined) {
    result.explanation = defaultExplanation(options.defaultExplanation, {
      sender,
      local,
      senderDomain: domain,
      domain,
      ip,
      helo,
      receiver: options.receiver ?? 'unknown',
      timestamp: Math.floor(clock.now() / 1000),
    });
  }

  if (result.result === 'permerror' && options.lax) {
    const laxEvaluation = new SpfEvaluation(context(true));
    const lax = await run(laxEvaluation, domain, options.fallbackZone);
    result.laxResult = lax.fields.result;
    result.queries += laxEvaluation.queries;
  }

  if (result.result === 'none' && options.bestGuess) {
    const record = typeof options.bestGuess === 'string' ? options.bestGuess : DEFAULT_GUESS_RECORD;
    const guessing = new SpfEvaluation(context(false));
    const guess = await runRecord(guessing, record, domain);
    result.guess = guess.fields.result;
    result.queries += guessing.queries;
  }
  return finish(result);
}

interface RunOutcome {
  outcome?: HostOutcome;
  fields: Pick<SpfResult, 'result' | 'mechanism' | 'problem' | 'record' | 'source'>;
}

/** check_host() on the domain, falling back to the local zone when it publishes no record. */
async function run(
  evaluation: SpfEvaluation,
  domain: string,
  fallbackZone?: string,
): Promise<RunOutcome> {
  return guarded(async () => {
    let text = await evaluation.findRecord(domain);
    let source: 'dns' | 'fallback' = 'dns';
    if (text === null && fallbackZone) {
      text = await evaluation.findRecord(`${domain}._spf.${fallbackZone.replace(/\.$/, '')}`);
      source = 'fallback';
    }
    if (text === null) return { fields: { result: 'none' } };
    const outcome = await evaluation.evaluateRecord(text, domain);
    return {
      outcome,
      fields: { result: outcome.result, mechanism: outcome.mechanism, record: text, source },
    };
  });
}

async function runRecord(
  evaluation: SpfEvaluation,
  record: string,
  domain: string,
): Promise<RunOutcome> {
  return guarded(async () => {
    const outcome = await evaluation.evaluateRecord(record, domain);
    return { outcome, fields: { result: outcome.result, mechanism: outcome.mechanism } };
  });
}

async function guarded(body: () => Promise<RunOutcome>): Promise<RunOutcome> {
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof SpfProblem)) throw err;
    return { fields: { result: err.result, problem: err.message, mechanism: err.mechanism } };
  }
}

function defaultExplanation(template: string | undefined, values: MacroValues): string {
  const text = template ?? DEFAULT_EXPLANATION;
  try {
    return expandMacroString(parseMacroString(text, 'explanation'), values);
  } catch {
    // A configured default that is not a valid macro string is used as plain text.
    return text;
  }
}

function maxOf(limits: SpfLimits, floor: Partial<SpfLimits>): Partial<SpfLimits> {
  const out: Partial<SpfLimits> = {};
  for (const [key, value] of Object.entries(floor) as Array<[keyof SpfLimits, number]>) {
    out[key] = Math.max(limits[key], value);
  }
  return out;
}

/**
 * Whether a domain can have an SPF policy at all (RFC 7208 4.3): a multi-label name with labels of
 * 1 to 63 octets, at most 253 in all, not an address literal. Anything else gives `none`.
 */
export function isCheckableDomain(domain: string): boolean {
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (name.length === 0 || name.length > 253) return false;
  if (!/^[\x21-\x7e]+$/.test(name) || name.includes('[')) return false;
  const labels = name.split('.');
  if (labels.length < 2) return false;
  for (const label of labels) if (label.length === 0 || label.length > 63) return false;
  return !/^\d+$/.test(labels[labels.length - 1]!);
}

function finish(result: Omit<SpfResult, 'reply'>): SpfResult {
  return { ...result, reply: spfReply(result) };
}

export type { SpfResultWord };
