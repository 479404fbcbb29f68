/**
 * The policy door's translation: a Decision becomes the one Postfix action of a policy reply.
 */
import type { Decision } from '../policy/index.js';

/**
 * - a configured action (`greylist.action`, `store.fail_action`) is answered as written;
 * - `continue` is DUNNO, or `PREPEND` of its first header (a policy reply carries one action);
 * - `accept` is DUNNO too: OK would skip the MTA's own later restrictions (relay control);
 * - a refusal is `NNN x.y.z text`; discard is DISCARD, quarantine HOLD.
 *
 * @example
 * postfixAction(refuse('spf-fail', 550, '5.7.1', 'SPF fail'))  // '550 5.7.1 SPF fail'
 */
export function postfixAction(decision: Decision): string {
  if (decision.policyAction !== undefined) return decision.policyAction;
  const reply = decision.reply;
  switch (decision.verdict) {
    case 'continue':
    case 'accept': {
      const header = decision.headers[0];
      return header ? `PREPEND ${header.name}: ${header.value}` : 'DUNNO';
    }
    case 'reject':
    case 'tempfail':
      return reply
        ? `${reply.code} ${reply.xcode} ${reply.text}`
        : decision.verdict === 'reject'
          ? 'REJECT'
          : 'DEFER_IF_PERMIT';
    case 'discard':
      return reply ? `DISCARD ${reply.text}` : 'DISCARD';
    case 'quarantine':
      return reply ? `HOLD ${reply.text}` : 'HOLD';
  }
}
