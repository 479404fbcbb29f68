/**
 * The sender-registry ID check at MAIL FROM, before SPF. ACCEPT vouches for the sender: the later
 * sender checks and greylisting are skipped. REJECT, TEMPFAIL and DISCARD answer at once. FILTER
 * marks the message for the spam filter (a header, or quarantine) and the normal policy goes on:
 * a sender the registry cannot vouch for is still held to its SPF. CONTINUE goes on unmarked.
 */
import type { RegistryResult } from '../../checks/registry/types.js';
import { type Decision, deferral, proceed, refuse } from '../decision.js';
import type { PolicySession } from '../session.js';
import type { RegistryPolicySettings } from '../settings.js';

/** The header FILTER adds in `header` mode, for the spam filter to act on. */
export const REGISTRY_FILTER_HEADER = { name: 'X-Registry-Filter', value: 'YES' };

/** What the registry check decided at MAIL FROM. */
export type RegistryOutcome =
  /** The MAIL FROM stage ends with this decision. */
  | { final: Decision }
  /** The normal policy goes on; its decision carries these tags too. */
  | { final: null; tags: string[] };

/**
 * Run the registry check and say what it decided.
 *
 * @example
 * const registry = await registryStage(session, settings.registry);
 * if (registry.final) return registry.final;
 */
export async function registryStage(
  session: PolicySession,
  settings: RegistryPolicySettings,
): Promise<RegistryOutcome> {
  const r = await session.facts.registry(settings.check, settings.timeBudgetMs);
  const { transaction } = session;
  const tags = ['registry', r.action, ...(r.method ? [r.method] : []), r.reason];
  if (r.alert) {
    transaction.alerts = [
      ...(transaction.alerts ?? []),
      { message: 'registry-alert', text: r.alert },
    ];
  }
  const reason = `registry-${r.reason}`;
  switch (r.action) {
    case 'REJECT':
      return {
        final: refuse(reason, r.reply.code, r.reply.xcode, r.reply.text, ['REJECT', ...tags]),
      };
    case 'TEMPFAIL':
      return {
        final: deferral(reason, r.reply.code, r.reply.xcode, r.reply.text, ['TEMPFAIL', ...tags]),
      };
    case 'DISCARD':
      return {
        final: {
          verdict: 'discard',
          reply: { code: 550, xcode: '5.7.1', text: r.reply.text },
          headers: [],
          reason,
          tags: ['DISCARD', ...tags],
        },
      };
    case 'ACCEPT':
      keepHeaders(session, r, true);
      transaction.vouched = 'registry';
      return { final: proceed(reason, [], ['mail from', ...tags]) };
    case 'FILTER':
      keepHeaders(session, r, false);
      if (settings.filter === 'quarantine') transaction.quarantine = r.reply.text;
      else transaction.headers.push({ ...REGISTRY_FILTER_HEADER });
      return { final: null, tags };
    case 'CONTINUE':
      keepHeaders(session, r, false);
      return { final: null, tags };
  }
}

/**
 * Authent at the top, and the clause for Authentication-Results. The method's Received-SPF is
 * kept only when the SPF policy will not run: it checks the same identity and adds its own.
 */
function keepHeaders(session: PolicySession, r: RegistryResult, final: boolean): void {
  const { transaction } = session;
  for (const header of r.headers) {
    if (!final && header.name === 'Received-SPF') continue;
    transaction.headers.push({ name: header.name, value: header.value, position: 'top' });
  }
  if (r.authResults) transaction.authResults = [...(transaction.authResults ?? []), r.authResults];
}
