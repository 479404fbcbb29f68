/**
 * Trying a domain's mail hosts one after another under one time budget, as an MTA does: the
 * next host on a failure that says nothing about the address, a stop on an answer that does.
 */
import type { TimeBudget } from './budget.js';
import type {
  SmtpClient,
  SmtpKind,
  SmtpOutcome,
  SmtpScript,
  SmtpStage,
  SmtpTarget,
} from './types.js';

/** One conversation with one host, for the result and the logs. */
export interface HostAttempt {
  name: string;
  address: string;
  port: number;
  stage: SmtpStage;
  kind: SmtpKind;
  code?: number;
  reply?: string;
  detail: string;
}

export interface HostWalk {
  attempts: HostAttempt[];
  /** The conversation that settled it, when one did. */
  final?: { target: SmtpTarget; outcome: SmtpOutcome };
  /** True when the budget ran out before every host was tried. */
  spent: boolean;
}

export interface WalkOptions {
  budget: TimeBudget;
  /** Most time one host may take; the budget left caps it too. */
  hostTimeoutMs: number;
  starttls: boolean;
  /** Whether an outcome ends the walk (an answer about the address) or the next host is tried. */
  settles: (outcome: SmtpOutcome) => boolean;
}

/**
 * Converse with each target in turn until one settles it or the budget is spent.
 *
 * @example
 * const walk = await walkHosts(targets, script, smtp, {
 *   budget, hostTimeoutMs: 10_000, starttls: false, settles: (o) => o.kind !== 'network',
 * });
 */
export async function walkHosts(
  targets: readonly SmtpTarget[],
  script: SmtpScript,
  smtp: SmtpClient,
  options: WalkOptions,
): Promise<HostWalk> {
  const attempts: HostAttempt[] = [];
  for (const target of targets) {
    const left = options.budget.left();
    if (left <= 0) return { attempts, spent: true };
    const outcome = await smtp.converse(target, script, {
      timeoutMs: Math.min(options.hostTimeoutMs, left),
      starttls: options.starttls,
    });
    attempts.push(attemptOf(target, outcome));
    if (options.settles(outcome)) return { attempts, final: { target, outcome }, spent: false };
  }
  return { attempts, spent: false };
}

function attemptOf(target: SmtpTarget, outcome: SmtpOutcome): HostAttempt {
  const attempt: HostAttempt = {
    name: target.name,
    address: target.address,
    port: target.port,
    stage: outcome.stage,
    kind: outcome.kind,
    detail: outcome.detail,
  };
  if (outcome.code !== undefined) attempt.code = outcome.code;
  if (outcome.reply !== undefined) attempt.reply = outcome.reply;
  return attempt;
}
