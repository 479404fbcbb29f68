/**
 * src/reputation — local sender reputation: per sender domain and client network, decaying
 * counts of what was seen (SPF results, call-back outcomes, greylisting, DMARC), kept in the
 * store so that every MX host on one database shares them, and the score, confidence and good
 * standing made of them. The recorder batches events off the request path; the reader answers
 * from a small cache and says "unknown" rather than fail. The formulas: docs/reputation.md.
 *
 * May import the store's types, src/dns (address helpers, the clock) and src/text; never
 * policy, serve, greylisting, the checks or a protocol library, which build on it.
 */
export {
  cbvEvent,
  type EventMeaning,
  type Evidence,
  isReputationEvent,
  REPUTATION_EVENT_NAMES,
  REPUTATION_EVENTS,
  type ReputationEvent,
  spfEvent,
} from './events.js';
export {
  DEFAULT_CACHE_ENTRIES,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_LOOKUP_TIMEOUT_MS,
  DEFAULT_RETRY_AFTER_MS,
  lookupReputation,
  type Reputation,
  ReputationReader,
  type ReputationReaderOptions,
  readReputation,
  type UnknownReputation,
} from './reader.js';
export {
  DEFAULT_FLUSH_MS,
  DEFAULT_FLUSH_ROWS,
  DEFAULT_MAX_PENDING_ROWS,
  type ReputationLogger,
  ReputationRecorder,
  type ReputationRecorderOptions,
  type ReputationRecorderStats,
} from './recorder.js';
export {
  addDecaying,
  DEFAULT_REPUTATION_SETTINGS,
  type Decaying,
  decay,
  type EvidenceSums,
  REPUTATION_TTL_HALF_LIVES,
  type ReputationSettings,
  type ReputationStanding,
  reputationOf,
  reputationTtlMs,
  type Standing,
  standingOf,
} from './score.js';
export {
  DOMAIN_PREFIX,
  domainSubject,
  eventSubjects,
  NETWORK_PREFIX,
  networkSubject,
  reputationSubjects,
  type SubjectFacts,
  subjectOf,
} from './subjects.js';
