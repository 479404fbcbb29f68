/**
 * The one answer the engine gives at a step, whichever door asked: the milter door turns it into
 * a milter reply, the policy door into a Postfix action. Checks suggest replies; stages decide;
 * doors only translate.
 */
import { printableAscii, truncate } from '../text/index.js';

/**
 * - `continue`: no objection at this step (headers may still be due at end of message);
 * - `accept`: accept the message without further checks (milter SMFIR_ACCEPT);
 * - `reject` / `tempfail`: refuse, permanently or for now, with `reply`;
 * - `discard`: accept and drop; `quarantine`: accept and hold (Postfix HOLD).
 */
export type DecisionVerdict =
  | 'continue'
  | 'accept'
  | 'reject'
  | 'tempfail'
  | 'discard'
  | 'quarantine';

/** An SMTP reply: 4xx or 5xx with an enhanced code of the same class, one line of text. */
export interface DecisionReply {
  code: number;
  xcode: string;
  text: string;
}

/** A header field to add at end of message; `top` inserts it before all others. */
export interface DecisionHeader {
  name: string;
  value: string;
  position?: 'top' | 'bottom';
}

/** What the engine decided at one step, and why. */
export interface Decision {
  verdict: DecisionVerdict;
  /** The reply for `reject` and `tempfail` (and the reason text for `discard`/`quarantine`). */
  reply?: DecisionReply;
  /**
   * The Postfix action the site configured for this outcome (`greylist.action`,
   * `store.fail_action`), answered as written by the policy door instead of one made from
   * `reply`.
   */
  policyAction?: string;
  /** Header fields to add at end of message. */
  headers: DecisionHeader[];
  /** Incoming header fields to delete at end of message (1-based among fields of that name). */
  removeHeaders?: Array<{ name: string; index: number }>;
  /** One stable word for the outcome (`numeric-helo`, `spf-fail`, `greylisted`, `ok`, ...). */
  reason: string;
  /** The log words that explain it, e.g. `['REJECT', 'numeric hello name']`. */
  tags: string[];
}

/** Longest reply text kept: the milter library splits nothing, and MTAs cut long lines. */
const MAX_REPLY_TEXT = 400;

/**
 * A decision that objects to nothing.
 *
 * @example
 * return proceed('ok');
 * return proceed('spf-pass', [{ name: 'Received-SPF', value, position: 'top' }]);
 */
export function proceed(
  reason: string,
  headers: DecisionHeader[] = [],
  tags: string[] = [],
): Decision {
  return { verdict: 'continue', headers, reason, tags };
}

/**
 * A permanent refusal. The text is made one line of printable ASCII: it may carry the client's
 * words (a HELO name, an address).
 *
 * @example
 * refuse('numeric-helo', 550, '5.7.1', `numeric hello name: ${helo}`, ['REJECT', 'numeric hello name'])
 */
export function refuse(
  reason: string,
  code: number,
  xcode: string,
  text: string,
  tags: string[] = ['REJECT'],
): Decision {
  return { verdict: 'reject', reply: safeReply(code, xcode, text), headers: [], reason, tags };
}

/**
 * A temporary refusal (come back later).
 *
 * @example
 * deferral('spf-temperror', 451, '4.4.3', 'SPF temporary error: DNS timeout', ['TEMPFAIL', 'SPF'])
 */
export function deferral(
  reason: string,
  code: number,
  xcode: string,
  text: string,
  tags: string[] = ['TEMPFAIL'],
): Decision {
  return { verdict: 'tempfail', reply: safeReply(code, xcode, text), headers: [], reason, tags };
}

/**
 * A reply checked and made safe: a code of the verdict's class, an enhanced code of the same
 * class (replaced by `N.0.0` when it is not one), and one bounded line of printable text.
 *
 * @example
 * safeReply(550, '5.7.1', 'bad\r\nname')  // { code: 550, xcode: '5.7.1', text: 'bad  name' }
 */
export function safeReply(code: number, xcode: string, text: string): DecisionReply {
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    throw new RangeError(`not a 4xx or 5xx reply code: ${code}`);
  }
  const klass = String(code)[0];
  const x = /^[45]\.\d{1,3}\.\d{1,3}$/u.test(xcode) && xcode[0] === klass ? xcode : `${klass}.0.0`;
  const line = truncate(printableAscii(text).replace(/\s+/gu, ' ').trim(), MAX_REPLY_TEXT);
  return { code, xcode: x, text: line === '' ? 'rejected' : line };
}

/**
 * The SMTP reply a configured Postfix action stands for, so that a milter answers what the policy
 * server would: `DEFER_IF_PERMIT text` → 450 4.7.1 text (Postfix's own default for a deferral),
 * `REJECT text` → 550 5.7.1, `4NN x.y.z text` as written. Null for actions that are no refusal.
 *
 * @example
 * replyOfPostfixAction('DEFER_IF_PERMIT greylisted, try again later')
 * // { code: 450, xcode: '4.7.1', text: 'greylisted, try again later' }
 */
export function replyOfPostfixAction(action: string): DecisionReply | null {
  const numeric = /^([45]\d\d)(?:\s+([45]\.\d{1,3}\.\d{1,3}))?(?:\s+(.*))?$/su.exec(action);
  if (numeric) {
    const code = Number(numeric[1]);
    return safeReply(code, numeric[2] ?? `${numeric[1]![0]}.7.1`, numeric[3] ?? 'refused');
  }
  const word = /^(\S+)(?:\s+(.*))?$/su.exec(action);
  if (!word) return null;
  const verb = word[1]!.toUpperCase();
  let rest = word[2] ?? '';
  const enhanced = /^([45]\.\d{1,3}\.\d{1,3})\s*(.*)$/su.exec(rest);
  let xcode: string | undefined;
  if (enhanced) {
    xcode = enhanced[1];
    rest = enhanced[2] ?? '';
  }
  if (verb === 'DEFER' || verb === 'DEFER_IF_PERMIT' || verb === 'DEFER_IF_REJECT') {
    return safeReply(450, xcode?.startsWith('4') ? xcode : '4.7.1', rest || 'try again later');
  }
  if (verb === 'REJECT') {
    return safeReply(550, xcode?.startsWith('5') ? xcode : '5.7.1', rest || 'rejected');
  }
  return null;
}
