/**
 * RCPT TO: greylisting, when this door greylists; and at the policy server, which never sees the
 * message, the call-back the SPF policy owes (a DSN needs the message, so a plain call-back).
 */

import { spfEvent } from '../../reputation/events.js';
import { type Decision, proceed } from '../decision.js';
import { greylistToDecision } from '../greylist.js';
import type { PolicyServices } from '../services.js';
import { observe, type PolicySession } from '../session.js';
import { verify } from './verify.js';

export interface RcptOptions {
  /** Greylist this recipient. */
  greylist: boolean;
  /** Run an owed verification now (the policy server: there is no end of message). */
  verifyNow: boolean;
  /** The MTA's verified client name, when it gave one (Postfix's client_name). */
  clientName?: string;
  /** Count the sender's SPF result for reputation here (the policy server, first recipient). */
  countSender?: boolean;
  /** Postfix's `instance`: one per message, so that a sender is counted once per message. */
  instance?: string;
}

/**
 * @example
 * const decision = await rcptStage(session, services, 'sam@example.org', { greylist: true, verifyNow: false });
 */
export async function rcptStage(
  session: PolicySession,
  services: PolicyServices,
  recipient: string,
  options: RcptOptions,
): Promise<Decision> {
  const { facts } = session;
  facts.recipients.push(recipient);
  // The policy server decides each RCPT afresh, its MAIL FROM stage replayed and not counted
  // there: the sender's SPF result is counted here, at a message's first recipient.
  if (options.countSender && session.transaction.spfPolicy) {
    observe(session, spfEvent((await facts.spf()).result));
  }
  if (options.verifyNow && session.transaction.verification) {
    const owed = session.transaction.verification;
    const checked = await verify(session, services, { ...owed, kind: 'CBV' });
    if (checked.verdict !== 'continue') return checked;
  }
  const greylist = services.greylist;
  if (!options.greylist || !greylist) return proceed('rcpt', [], ['rcpt to']);
  if (facts.ours) return proceed('rcpt', [], ['rcpt to', facts.addressClass().class]);
  // A sender the registry vouched for is authenticated and well rated: delay buys nothing.
  const vouched = session.transaction.vouched;
  if (vouched) return proceed(`${vouched}-vouched`, [], ['rcpt to', `vouched by ${vouched}`]);
  const decided = await greylist.decide({
    ip: facts.client.ip,
    sender: facts.sender ?? '',
    recipient,
    ...(facts.helo !== undefined ? { helo: facts.helo } : {}),
    ...(options.clientName !== undefined ? { clientName: options.clientName } : {}),
    lookups: { ptr: () => facts.ptr(), spf: () => facts.spf() },
    // Where RCPT is the last word (the policy server), greylisting's line is the request's line
    // in the decision log: it says how SPF judged the sender. The milter's end of message says it.
    ...(options.verifyNow && session.transaction.spf !== undefined
      ? { logTags: [`SPF ${session.transaction.spf}`] }
      : {}),
  });
  const decision = greylistToDecision(decided, greylist.actions);
  if (decision.verdict === 'continue') {
    // One X-Greylist per message, however many recipients waited.
    for (const header of decision.headers) {
      if (!session.transaction.headers.some((h) => h.name === header.name)) {
        session.transaction.headers.push(header);
      }
    }
  }
  return decision;
}
