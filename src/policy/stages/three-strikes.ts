/**
 * Three strikes, for senders whose domain publishes no SPF: some identity must check out — the
 * best-guess record passes, or the HELO is the client's (its SPF passes, or its A or MX addresses
 * are the client's, /24 allowed), or the client has a verified PTR that does not look dynamic.
 * Otherwise the sender is refused (`reject_noptr`) or called back.
 */
import type { SpfResult } from '../../checks/spf/types.js';
import { logValue } from '../../text/index.js';
import { type Decision, deferral, proceed, refuse } from '../decision.js';
import type { PolicySession } from '../session.js';
import type { PolicySettings } from '../settings.js';
import { owe } from './owe.js';

/**
 * @example
 * const decision = await threeStrikes(session, settings, spf, ['SPF none']);
 */
export async function threeStrikes(
  session: PolicySession,
  settings: PolicySettings,
  spf: SpfResult,
  tags: string[],
): Promise<Decision> {
  const { facts } = session;
  if (spf.guess !== undefined) {
    session.transaction.headers.push({
      name: 'X-Guessed-SPF',
      value: `${spf.guess} (${logValue(settings.hostname, 253)}: best guess record for ${logValue(spf.domain, 253)})`,
    });
    if (spf.guess === 'pass')
      return proceed('best-guess-pass', [], ['mail from', ...tags, 'best guess pass']);
  }
  const heloSpf = await facts.heloSpf();
  if (heloSpf.result === 'pass')
    return proceed('helo-spf-pass', [], ['mail from', ...tags, 'HELO SPF pass']);
  if (heloSpf.result === 'fail') {
    return refuse(
      'helo-spf-fail',
      550,
      '5.7.1',
      `hello SPF: fail: ${heloSpf.explanation ?? 'HELO name not authorized'}`,
      ['REJECT', ...tags, 'hello SPF fail'],
    );
  }
  const helo = await facts.heloFull();
  const matches = helo.outcomes.find((o) => o.rule === 'matches');
  if (matches?.result === 'pass')
    return proceed('helo-valid', [], ['mail from', ...tags, 'HELO validated']);
  const ptr = await facts.ptr();
  if (ptr.result === 'verified' && !ptr.dynamic) {
    return proceed('ptr-valid', [], ['mail from', ...tags, 'PTR validated']);
  }
  // A lookup that failed might have found the identity: come back rather than judge without it.
  if (
    heloSpf.result === 'temperror' ||
    matches?.result === 'tempfail' ||
    ptr.result === 'tempfail'
  ) {
    return deferral(
      'three-strikes-tempfail',
      451,
      '4.4.3',
      'cannot verify your HELO or PTR now, try again later',
      ['TEMPFAIL', ...tags, 'three strikes DNS failure'],
    );
  }
  if (settings.spf.rejectNoPtr) {
    return refuse(
      'no-ptr-helo-spf',
      550,
      '5.7.1',
      'no PTR, HELO or SPF: we need some valid identity for your mail',
      ['REJECT', ...tags, 'no PTR, HELO or SPF'],
    );
  }
  return owe(session, settings, 'CBV', undefined, 'three-strikes', [
    ...tags,
    'no PTR, HELO or SPF',
  ]);
}
