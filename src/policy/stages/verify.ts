/**
 * Running an owed call-back or DSN, and what its outcome means for the message: accepted goes
 * on, refused is refused with the remote reply, anything else comes back later.
 */
import { receivedSpf } from '../../checks/spf/header.js';
import { reputationSubjects } from '../../reputation/subjects.js';
import { logValue } from '../../text/index.js';
import { type Decision, deferral, proceed, refuse } from '../decision.js';
import type { PolicyServices, VerificationOutcome } from '../services.js';
import { observe, type PendingVerification, type PolicySession } from '../session.js';

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
  // A client whose network has long behaved well is not worth a call to its sender's MX. Only
  // the network counts: a sender's domain is what a forger claims, and its SPF did not pass here.
  const reputation = services.reputation;
  if (owed.kind === 'CBV' && reputation?.cbvSkip) {
    const [network] = reputationSubjects({ ip: facts.client.ip, senderDomain: '' });
    const standing = network ? await reputation.goodStanding([network]) : null;
    if (standing) {
      return proceed(owed.reason, [], [owed.kind, owed.reason, 'skipped: good standing', standing]);
    }
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
  // A cached outcome was counted when it was fresh.
  if (!outcome.cached && outcome.result !== 'tempfail') {
    observe(session, outcome.result === 'accepted' ? 'cbv:accepted' : 'cbv:rejected');
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
