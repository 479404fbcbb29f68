/**
 * The world services the stages use, passed in: nothing here opens a socket or reads a file.
 */
import type { Clock } from '../dns/types.js';
import type { GreylistDecision, GreylistRequest } from '../greylist/types.js';
import type { MetricCheck } from '../observe/metrics.js';
import type { ReputationEvent } from '../reputation/events.js';
import type { DmarcResultRow } from '../store/types.js';
import type { GreylistActions } from './greylist.js';
import type { DsnTemplateName } from './spf-policy.js';

/** Greylisting as the engine uses it. */
export interface GreylistService {
  decide(request: GreylistRequest): Promise<GreylistDecision>;
  actions: GreylistActions;
}

/** What a verification concluded. */
export interface VerificationOutcome {
  /**
   * - `accepted`: the sender's MX took the address (or the DSN);
   * - `rejected`: it refused (5xx), or the domain cannot receive mail (null MX, no domain, an MX
   *   that is us or loopback);
   * - `tempfail`: no answer, 4xx, DNS trouble, or the per-domain rate was exceeded.
   */
  result: 'accepted' | 'rejected' | 'tempfail';
  /** The reply or reason, one line of printable text. */
  reply: string;
  /** Served from the cache. */
  cached: boolean;
  /** Stable word for the log: `accepted`, `rejected`, `null-mx`, `fraud`, `rate-limited`, ... */
  detail: string;
}

/** What a DSN needs to say. */
export interface DsnFacts {
  template: DsnTemplateName;
  recipients: string[];
  subject: string;
  spfResult: string;
  receivedSpf: string;
  permError: string;
}

/** Call-back verification and DSNs, with caching and rate limits (see src/policy/callback.ts). */
export interface SenderVerifier {
  callback(sender: string): Promise<VerificationOutcome>;
  dsn(sender: string, facts: DsnFacts): Promise<VerificationOutcome>;
}

/** One line per decision; pino's call shape. */
export interface PolicyLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  /** Whether lines of a level are written (pino has it); absent means they are. */
  isLevelEnabled?(level: string): boolean;
}

/** Local sender reputation as the stages use it (built on src/reputation by the daemon). */
export interface ReputationService {
  /** Counts an event for the subjects; never waits, never throws. */
  record(subjects: readonly string[], event: ReputationEvent): void;
  /**
   * The first of the subjects in good standing, or null (also when the store cannot say).
   *
   * @example
   * await reputation.goodStanding(['net:192.0.2.0/24'])  // 'net:192.0.2.0/24' or null
   */
  goodStanding(subjects: readonly string[]): Promise<string | null>;
  /** Skip the call-back for a client whose network is in good standing. */
  cbvSkip: boolean;
}

/** Keeps DMARC evaluations for reports; never waits, never throws. */
export interface DmarcReportRecorder {
  record(row: DmarcResultRow): void;
}

/** What the engine counts (the daemon's metrics, src/observe); absent when metrics are off. */
export interface EngineMetrics {
  /** A decision, with the seconds its stage took. */
  decision(door: 'milter' | 'policy', stage: string, verdict: string, seconds: number): void;
  /** A check's result word, with the seconds it took when known. */
  check(check: MetricCheck, result: string, seconds?: number): void;
}

export interface PolicyServices {
  clock?: Clock;
  metrics?: EngineMetrics | null;
  dmarcReports?: DmarcReportRecorder | null;
  greylist?: GreylistService | null;
  verifier?: SenderVerifier | null;
  reputation?: ReputationService | null;
}
