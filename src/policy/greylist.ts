/**
 * Greylisting's decision as the engine's: a greylisted or store-failed request defers, with the
 * Postfix action the site configured for it (so the policy server answers exactly that) and the
 * SMTP reply that action stands for (so the milter answers the same); a pass after a wait
 * carries its X-Greylist header.
 */
import type { GreylistDecision } from '../greylist/types.js';
import { type Decision, replyOfPostfixAction, safeReply } from './decision.js';

/** The Postfix actions configured for greylisting's refusals. */
export interface GreylistActions {
  /** `greylist.action`, e.g. `DEFER_IF_PERMIT greylisted, try again later`. */
  greylist: string;
  /** `store.fail_action`, for a store failure under `store.fail = "tempfail"`. */
  storeFailure: string;
}

/**
 * @example
 * greylistToDecision(await greylister.decide(request), { greylist, storeFailure })
 * // { verdict: 'tempfail', reply: { code: 450, xcode: '4.7.1', text: 'greylisted, ...' }, ... }
 */
export function greylistToDecision(d: GreylistDecision, actions: GreylistActions): Decision {
  const tags = ['GREYLIST', d.reason];
  if (d.verdict === 'greylist' || d.verdict === 'tempfail') {
    const action = d.verdict === 'greylist' ? actions.greylist : actions.storeFailure;
    const reply =
      replyOfPostfixAction(action) ??
      (d.verdict === 'greylist'
        ? safeReply(450, '4.7.1', 'greylisted, try again later')
        : safeReply(451, '4.3.0', 'temporary failure, try again later'));
    return {
      verdict: 'tempfail',
      reply,
      policyAction: action,
      headers: [],
      reason: d.verdict === 'greylist' ? 'greylisted' : 'store-failure',
      tags,
    };
  }
  return {
    verdict: 'continue',
    headers: d.header ? [{ ...d.header }] : [],
    reason: d.reason,
    tags,
  };
}
