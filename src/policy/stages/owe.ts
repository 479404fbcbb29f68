/** A call-back or DSN owed until the message is known. */
import { type Decision, proceed } from '../decision.js';
import type { PolicySession } from '../session.js';
import type { PolicySettings } from '../settings.js';
import type { DsnTemplateName } from '../spf-policy.js';

/**
 * A verification is owed; without call-backs (turned off) the sender gets the benefit of the
 * doubt, as bms.py did with CBV off.
 */
/** @example return owe(session, settings, 'CBV', undefined, 'spf-softfail', tags); */
export function owe(
  session: PolicySession,
  settings: PolicySettings,
  kind: 'CBV' | 'DSN',
  template: DsnTemplateName | undefined,
  reason: string,
  tags: string[],
): Decision {
  if (!settings.callback.enabled) return proceed(reason, [], ['mail from', ...tags, `${kind} off`]);
  session.transaction.verification = {
    kind,
    reason,
    ...(template !== undefined ? { template } : {}),
  };
  return proceed(reason, [], ['mail from', ...tags, `${kind} owed`]);
}
