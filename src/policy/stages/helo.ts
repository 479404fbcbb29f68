/**
 * HELO: refuse what no honest client says — a bare IP address for a name, or one of our own
 * names from outside — and, when asked, a CSA fail.
 */

import { logValue } from '../../text/index.js';
import { type Decision, deferral, proceed, refuse } from '../decision.js';
import type { PolicySession } from '../session.js';
import type { PolicySettings } from '../settings.js';

/**
 * @example
 * session.facts.setHelo('192.0.2.1');
 * (await heloStage(session, settings)).reason  // 'numeric-helo'
 */
export async function heloStage(
  session: PolicySession,
  settings: PolicySettings,
): Promise<Decision> {
  const { facts } = session;
  if (facts.ours) return proceed('helo', [], ['hello', facts.addressClass().class]);
  const helo = await facts.heloForm();
  const shown = logValue(facts.helo ?? '', 200);
  if (settings.rejectNumericHelo && helo.form === 'bare-ip') {
    return refuse('numeric-helo', 550, '5.7.1', `numeric hello name: ${shown}`, [
      'REJECT',
      'numeric hello name',
    ]);
  }
  if (helo.failed.includes('own-name')) {
    return refuse('helo-self', 550, '5.7.1', `spam from self: ${shown}`, [
      'REJECT',
      'spam from self',
    ]);
  }
  if (settings.csa === 'off' || helo.form === 'missing') return proceed('helo', [], ['hello']);
  const csa = await facts.csa();
  if (settings.csa === 'reject') {
    if (csa.result === 'fail') {
      return refuse('csa-fail', csa.reply.code, csa.reply.xcode, csa.reply.text, ['REJECT', 'CSA']);
    }
    if (csa.result === 'tempfail') {
      return deferral('csa-tempfail', 451, '4.4.3', 'CSA lookup failed, try again later', [
        'TEMPFAIL',
        'CSA',
      ]);
    }
  }
  // `record`: the result goes into the log line (and so the decision log), nothing more.
  return proceed('helo', [], ['hello', `CSA ${csa.result}`]);
}
