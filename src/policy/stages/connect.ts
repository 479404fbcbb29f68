/**
 * CONNECT: classify the client, and refuse a PTR that no real mail host has (`localhost` from a
 * non-loopback address, or the root).
 */
import { type Decision, proceed, refuse } from '../decision.js';
import type { PolicySession } from '../session.js';
import type { PolicySettings } from '../settings.js';

/**
 * @example
 * const decision = await connectStage(session, settings);
 * decision.tags  // ['connect', 'EXTERNAL']
 */
export async function connectStage(
  session: PolicySession,
  settings: PolicySettings,
): Promise<Decision> {
  const { facts } = session;
  if (facts.ours || !settings.rejectPtrLocalhost) {
    // The PTR is looked up later only if a stage needs it (three strikes, greylisting).
    return proceed('connect', [], ['connect', facts.addressClass().class]);
  }
  const ptr = await facts.ptr();
  if (ptr.flags.localhost || ptr.flags.root) {
    return refuse('ptr-localhost', 550, '5.7.1', 'PTR is localhost', [
      'REJECT',
      'PTR is localhost',
    ]);
  }
  const classification = await facts.classification();
  return proceed('connect', [], ['connect', classification.class]);
}
