/**
 * Local sender reputation as the daemon runs it: one recorder (batched writes) and one reader
 * (cached reads) over the world's store, bound to what the engine and the greylister ask of it.
 */
import type { Config } from '../config/index.js';
import type { GreylistReputation } from '../greylist/index.js';
import type { ReputationService } from '../policy/index.js';
import {
  type ReputationEvent,
  type ReputationLogger,
  ReputationReader,
  ReputationRecorder,
} from '../reputation/index.js';
import type { Store } from '../store/types.js';
import { reputationSettings } from './settings.js';

/** A running reputation setup of one world. */
export interface DaemonReputation {
  /** For the engine's stages. */
  service: ReputationService;
  /** For the greylister. */
  greylist: GreylistReputation;
  /** Writes what is pending, then stops the timer. */
  close(): Promise<void>;
}

/**
 * Builds reputation for a configuration, or null when `[reputation] enabled` is off.
 *
 * @example
 * const reputation = buildReputation(config, store, logger);
 * reputation?.service.record(['domain:example.org'], 'spf:pass');
 */
export function buildReputation(
  config: Config,
  store: Store,
  logger: ReputationLogger,
): DaemonReputation | null {
  const r = config.reputation;
  if (!r.enabled) return null;
  const settings = reputationSettings(config);
  const recorder = new ReputationRecorder(store, {
    logger,
    halfLifeMs: settings.halfLifeMs,
    flushMs: r.flush_interval,
  });
  const reader = new ReputationReader(store, settings, { logger });
  const record = (subjects: readonly string[], event: ReputationEvent) => {
    recorder.record(subjects, event);
  };
  const goodStanding = async (subjects: readonly string[]): Promise<string | null> => {
    const found = await reader.lookup(subjects);
    return found.find((s) => s.goodStanding)?.subject ?? null;
  };
  return {
    service: { record, goodStanding, cbvSkip: r.cbv_skip },
    greylist: { record, ...(r.greylist_skip ? { goodStanding } : {}) },
    close: () => recorder.close(),
  };
}
