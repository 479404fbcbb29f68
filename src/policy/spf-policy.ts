/**
 * The per-result SPF policy as a table: the defaults (Fail REJECT, Softfail CBV, Neutral OK,
 * PermError REJECT, Pass OK, None three strikes, TempError tempfail), the domain lists that adjust
 * them, and the access map that overrides both for a result and a domain.
 */
import type { SpfResultWord } from '../checks/spf/types.js';
import { inDomains, type SpfPolicySettings } from './settings.js';

/** The DSN template each result's DSN uses. */
export type DsnTemplateName = 'strike3' | 'softfail' | 'neutral' | 'permerror' | 'quarantine';

/** What to do with a sender after SPF. */
export type SpfAction =
  | { kind: 'OK' }
  | { kind: 'CBV' }
  | { kind: 'DSN'; template: DsnTemplateName }
  | { kind: 'REJECT' }
  | { kind: 'ERROR'; code: number; xcode: string; text: string }
  /** None: look for some other verified identity (best guess, HELO, PTR). */
  | { kind: 'STRIKES' }
  | { kind: 'TEMPFAIL' };

/** Where the action came from, for the log line. */
export type SpfPolicySource =
  | 'default'
  | 'access-map'
  | 'accept_softfail'
  | 'accept_fail'
  | 'reject_neutral';

export interface SpfPolicyChoice {
  action: SpfAction;
  source: SpfPolicySource;
}

/** The defaults, as a table. */
export const DEFAULT_SPF_POLICY: Readonly<Record<SpfResultWord, SpfAction['kind']>> = Object.freeze(
  {
    pass: 'OK',
    fail: 'REJECT',
    softfail: 'CBV',
    neutral: 'OK',
    permerror: 'REJECT',
    none: 'STRIKES',
    temperror: 'TEMPFAIL',
  },
);

const TEMPLATE_OF: Record<SpfResultWord, DsnTemplateName> = {
  pass: 'softfail',
  fail: 'softfail',
  softfail: 'softfail',
  neutral: 'neutral',
  permerror: 'permerror',
  none: 'strike3',
  temperror: 'softfail',
};

/**
 * The action for an SPF result from a sender domain.
 *
 * @example
 * await spfPolicy('softfail', 'bounces.amazon.example', { ...settings, acceptSoftfail: ['amazon.example'] })
 * // { action: { kind: 'OK' }, source: 'accept_softfail' }
 */
export async function spfPolicy(
  result: SpfResultWord,
  domain: string,
  settings: SpfPolicySettings,
): Promise<SpfPolicyChoice> {
  // TempError never has a policy: DNS trouble is always come-back-later.
  if (result === 'temperror') return { action: { kind: 'TEMPFAIL' }, source: 'default' };
  const entry = await settings.accessMap?.lookup(result, domain);
  if (entry) {
    const a = entry.action;
    if (a.kind === 'ERROR') return { action: { ...a }, source: 'access-map' };
    return { action: actionOf(a.kind, result), source: 'access-map' };
  }
  if (result === 'fail' && inDomains(domain, settings.acceptFail)) {
    // A fail from these domains is judged as their softfail would be.
    const softened = await spfPolicy('softfail', domain, settings);
    return softened.source === 'default' ? { ...softened, source: 'accept_fail' } : softened;
  }
  if (result === 'softfail' && inDomains(domain, settings.acceptSoftfail)) {
    return { action: { kind: 'OK' }, source: 'accept_softfail' };
  }
  if (
    (result === 'neutral' || result === 'softfail') &&
    inDomains(domain, settings.rejectNeutral)
  ) {
    return { action: { kind: 'REJECT' }, source: 'reject_neutral' };
  }
  return { action: actionOf(DEFAULT_SPF_POLICY[result], result), source: 'default' };
}

function actionOf(kind: SpfAction['kind'], result: SpfResultWord): SpfAction {
  switch (kind) {
    case 'DSN':
      // A DSN for a pass says nothing useful: a pass is simply accepted.
      return result === 'pass' ? { kind: 'OK' } : { kind: 'DSN', template: TEMPLATE_OF[result] };
    case 'OK':
    case 'CBV':
    case 'REJECT':
    case 'STRIKES':
    case 'TEMPFAIL':
      return { kind };
    default:
      return { kind: 'REJECT' };
  }
}

/**
 * The DSN template for a result (fail and softfail share one).
 *
 * @example
 * templateFor('none')  // 'strike3'
 */
export function templateFor(result: SpfResultWord): DsnTemplateName {
  return TEMPLATE_OF[result];
}
