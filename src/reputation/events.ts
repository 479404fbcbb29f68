/**
 * What reputation counts: the events, and what each says about a sender. The store keeps counts
 * of events, never weights, so a weight can change in a later release without rewriting data;
 * the weights are applied when a score is computed (see score.ts and docs/reputation.md).
 */
import type { CallbackResult } from '../store/types.js';

/** Whether an event speaks for the sender, against it, or says nothing either way. */
export type Evidence = 'good' | 'bad' | 'neutral';

/** What one event counts for. */
export interface EventMeaning {
  evidence: Evidence;
  /** How much one occurrence weighs, 0 or more (0 exactly when neutral). */
  weight: number;
}

/**
 * The events and their weights. Why these weights:
 *
 * - `spf:pass` +1: the domain authorised the client. Cheap for a spammer with a domain of their
 *   own, so it only ever counts one.
 * - `spf:fail` −2: the domain says this client may not use its name. Stronger than a pass
 *   because passes cost nothing to earn; against a domain it means the name is being forged,
 *   which is reason enough not to skip checks for mail claiming it.
 * - `spf:softfail` −1: the domain's "probably not".
 * - `spf:permerror` −0.5: a broken record; careless more often than hostile.
 * - `spf:neutral`, `spf:none`, `spf:temperror` 0: they say nothing about the sender. Counted,
 *   so the CLI shows them, but they add no confidence either (see `observations`).
 * - `cbv:accepted` +1: the sender address exists; spammers use real addresses too.
 * - `cbv:rejected` −2: the sender's own MX says the address does not exist, a forged or
 *   invented sender.
 * - `greylist:pass` +1: a greylisted triplet came back after the wait: a real MTA with a queue.
 * - `greylist:refused` −0.5: counted once per new triplet greylisted (not per early retry).
 *   Every sender is refused once before it comes back, so a refusal then a pass nets +0.5, and
 *   what never comes back keeps its −0.5; refusals alone never outweigh a pass.
 * - `dmarc:pass` +1, `dmarc:fail` −2: as SPF's pass and fail, for the From domain's policy.
 */
export const REPUTATION_EVENTS = {
  'spf:pass': { evidence: 'good', weight: 1 },
  'spf:fail': { evidence: 'bad', weight: 2 },
  'spf:softfail': { evidence: 'bad', weight: 1 },
  'spf:neutral': { evidence: 'neutral', weight: 0 },
  'spf:none': { evidence: 'neutral', weight: 0 },
  'spf:permerror': { evidence: 'bad', weight: 0.5 },
  'spf:temperror': { evidence: 'neutral', weight: 0 },
  'cbv:accepted': { evidence: 'good', weight: 1 },
  'cbv:rejected': { evidence: 'bad', weight: 2 },
  'greylist:pass': { evidence: 'good', weight: 1 },
  'greylist:refused': { evidence: 'bad', weight: 0.5 },
  'dmarc:pass': { evidence: 'good', weight: 1 },
  'dmarc:fail': { evidence: 'bad', weight: 2 },
} as const satisfies Record<string, EventMeaning>;

/** An event name, as stored: `spf:pass`, `cbv:rejected`, `greylist:pass`, ... */
export type ReputationEvent = keyof typeof REPUTATION_EVENTS;

/** Every event, in the order of REPUTATION_EVENTS (the order the CLI prints them in). */
export const REPUTATION_EVENT_NAMES = Object.keys(REPUTATION_EVENTS) as ReputationEvent[];

/**
 * Whether a text is an event this code knows (a row written by a newer release may not be).
 *
 * @example
 * isReputationEvent('spf:pass')  // true
 * isReputationEvent('spf:Pass')  // false
 */
export function isReputationEvent(text: string): text is ReputationEvent {
  return Object.hasOwn(REPUTATION_EVENTS, text);
}

/**
 * The event for an SPF result word, in any case (`Pass`, `softfail`, `PermError`); null for a
 * word that is no SPF result.
 *
 * @example
 * spfEvent('SoftFail')  // 'spf:softfail'
 * spfEvent('maybe')     // null
 */
export function spfEvent(result: string): ReputationEvent | null {
  const event = `spf:${result.toLowerCase()}`;
  return isReputationEvent(event) ? event : null;
}

/**
 * The event for a call-back outcome as the store keeps it: a DSN that was accepted or rejected
 * says what a plain call-back would have.
 *
 * @example
 * cbvEvent('dsn-rejected')  // 'cbv:rejected'
 */
export function cbvEvent(result: CallbackResult): ReputationEvent {
  return result === 'accepted' || result === 'dsn-accepted' ? 'cbv:accepted' : 'cbv:rejected';
}
