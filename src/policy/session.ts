/**
 * What the engine carries from one stage to the next within a session: the facts, and the
 * transaction's own decisions so far (a verification owed at end of message, headers to add).
 */
import type { HeaderField } from '../checks/message/index.js';
import type { ReputationEvent } from '../reputation/events.js';
import type { DecisionHeader } from './decision.js';
import type { SessionFacts } from './facts.js';
import type { MessageChecks } from './message-checks.js';
import type { DsnTemplateName } from './spf-policy.js';

/** A call-back or DSN the SPF policy asked for, run once the message is known. */
export interface PendingVerification {
  kind: 'CBV' | 'DSN';
  template?: DsnTemplateName;
  /** Why it is owed: `spf-softfail`, `three-strikes`, ... */
  reason: string;
}

/** One transaction's decisions (from MAIL FROM to end of message). */
export interface TransactionState {
  verification?: PendingVerification;
  /** Headers due at end of message, in the order they were decided. */
  headers: DecisionHeader[];
  /** Authentication-Results clauses decided before end of message (`x-registry=...`). */
  authResults?: string[];
  /**
   * The sender was vouched for (the registry accepted it): no later sender check and no
   * greylisting for this transaction. The value says who vouched.
   */
  vouched?: string;
  /** Hold the message at end of message (quarantine), with this reason. */
  quarantine?: string;
  /** The SPF policy ran for this transaction (not skipped by a vouching registry). */
  spfPolicy?: boolean;
  /** The SPF result the policy judged, for the decision log of a message that got through. */
  spf?: string;
  /** What the stage saw that counts for the sender's reputation; the engine records it. */
  observed?: ReputationEvent[];
  /** Lines for the administrator, logged once by the engine after the stage (`registry-alert`). */
  alerts?: Array<{ message: string; text: string }>;
  /** The message's header fields as sent, for the checks that read the message (bounded). */
  fields?: MessageFields;
  /** DKIM, ARC and signing of this message, started at end of headers. */
  message?: MessageChecks;
}

/** The header fields gathered for the message checks, and what was left out. */
export interface MessageFields {
  list: HeaderField[];
  bytes: number;
  /** Fields past the bound, not kept: the message is then not verified. */
  dropped: number;
}

/** The engine's view of one SMTP session. */
export interface PolicySession {
  /** A short id for log lines (the milter connection's, or the policy request's). */
  id: string;
  facts: SessionFacts;
  transaction: TransactionState;
  /**
   * The stage being run was decided before (the policy server replays a session from connect at
   * each request): only an objection is logged again.
   */
  replaying?: boolean;
  /** The door the session came through (for metrics); the milter's when not said. */
  door?: 'milter' | 'policy';
}

/**
 * @example
 * const session = newSession('c1', facts);
 */
export function newSession(id: string, facts: SessionFacts): PolicySession {
  return { id, facts, transaction: { headers: [] } };
}

/** Forget the transaction (a new MAIL FROM, end of message, abort). */
export function resetTransaction(session: PolicySession): void {
  session.transaction = { headers: [] };
}

/**
 * Notes an event for the sender's reputation, recorded by the engine once the stage is decided.
 *
 * @example
 * observe(session, 'spf:pass');
 */
export function observe(session: PolicySession, event: ReputationEvent | null): void {
  if (event) session.transaction.observed = [...(session.transaction.observed ?? []), event];
}
