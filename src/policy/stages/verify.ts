/**
 * Running an owed call-back or DSN, and what its outcome means for the message: accepted goes
 * on, refused is refused with the remote reply, anything else comes back later.
 */
import { receivedSpf } from '../../checks/spf/header.js';
import { logValue } from '../../text/index.js';
import { type Decision, deferral, proceed, refuse } from '../decision.js';
import type { PolicyServices, VerificationOutcome } from '../services.js';
import type { PendingVerification, PolicySession } from '../session.js';

/**
 * @example
 * const decision = await verify(session, services, { kind: 'CBV', reason: 'spf-softfail' });
 */
export async function verify(
  session: PolicySession,
  services: PolicyServices,
  owed: PendingVerification,
): Promise<Decision> {
  const { facts } = session;
  const sender = facts.sender ?? '';
  // The null sender cannot be called back (nobody to call); it is judged by its HELO alone.
  if (sender === '' || !services.verifier) {
    return proceed(owed.reason, [], [owed.kind, sender === '' ? 'null sender' : 'no verifier']);
  }
  let outcome: VerificationOutcome;
  if (owed.kind === 'DSN') {
    const spf = await facts.spf();
    const subject = facts.headers.find((h) => h.name.toLowerCase() === 'subject')?.value ?? '';
    outcome = await services.verifier.dsn(sender, {
      template: owed.template ?? 'softfail',
      recipients: [...facts.recipients],
      subject: subject.trim(),
      spfResult: spf.result,
      receivedSpf: receivedSpf(spf, { receiver: facts.settings.hostname }),
      permError: spf.problem ?? '',
    });
  } else {
    outcome = await services.verifier.callback(sender);
  }
  const tags = [owed.kind, owed.reason, outcome.detail, ...(outcome.cached ? ['cached'] : [])];
  const reply = logValue(outcome.reply, 300);
  if (outcome.result === 'accepted') return proceed(owed.reason, [], tags);
  if (outcome.result === 'rejected') {
    return refuse(`${owed.kind.toLowerCase()}-rejected`, 550, '5.7.1', `${owed.kind}: ${reply}`, [
      'REJECT',
      ...tags,
    ]);
  }
  return deferral(`${owed.kind.toLowerCase()}-tempfail`, 451, '4.7.1', `${owed.kind}: ${reply}`, [
    'TEMPFAIL',
    ...tags,
  ]);
}
