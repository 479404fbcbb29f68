/**
 * The request path's writer. Counting an event must cost a request nothing: `record` only adds
 * to a batch in memory, and the batch goes to the store in one call, every second or when it is
 * big, off the request path. When the store is down the batch is dropped (reputation is a
 * hint, not a ledger), once-per-outage logging says so, and memory stays bounded.
 */
import { systemClock } from '../dns/clock.js';
import type { Clock } from '../dns/types.js';
import { MAX_REPUTATION_SUBJECT, type ReputationDelta, type Store } from '../store/types.js';
import { logValue } from '../text/index.js';
import { isReputationEvent, type ReputationEvent } from './events.js';
import { addDecaying, DEFAULT_REPUTATION_SETTINGS } from './score.js';

/** The log calls reputation makes, in pino's call shape. */
export interface ReputationLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** How a recorder batches; every number has a default. */
export interface ReputationRecorderOptions {
  /** Where failures are reported: `reputation-flush-failed`, `reputation-flush-recovered`. */
  logger: ReputationLogger;
  /** The half-life the store decays counters with (the settings' `halfLifeMs`). Default 30 d. */
  halfLifeMs?: number;
  /** How long a batch gathers before it is written, in ms. Default 1000. */
  flushMs?: number;
  /** A batch of this many rows is written at once, without waiting for `flushMs`. Default 500. */
  flushRows?: number;
  /**
   * Rows kept waiting at most (while a write is under way or the store is slow); events for
   * further rows are dropped and counted. Default 10 000.
   */
  maxPendingRows?: number;
  /** Where `record` takes the time from when it is given none. Default the system clock. */
  clock?: Clock;
}

/** What a recorder has done, for metrics and tests. */
export interface ReputationRecorderStats {
  /** Rows waiting for the next write. */
  pending: number;
  /** Events counted (once per subject), dropped or not. */
  recorded: number;
  /** Rows the store accepted. */
  written: number;
  /** Rows lost: the batch was full, a write failed, or the recorder was closed. */
  dropped: number;
  /** Store calls that succeeded. */
  flushes: number;
  /** Store calls that failed. */
  failedFlushes: number;
}

export const DEFAULT_FLUSH_MS = 1_000;
export const DEFAULT_FLUSH_ROWS = 500;
export const DEFAULT_MAX_PENDING_ROWS = 10_000;

/** Subjects are cut before they are kept: the store cuts them further, to code points. */
const MAX_SUBJECT_UNITS = 2 * MAX_REPUTATION_SUBJECT;

function positive(name: string, value: number, integer: boolean): number {
  if (!(Number.isFinite(value) && value > 0) || (integer && !Number.isSafeInteger(value))) {
    throw new TypeError(
      `ReputationRecorder: ${name} must be a ${integer ? 'whole ' : ''}number above 0`,
    );
  }
  return value;
}

/**
 * Batches reputation events for the store. Events for one subject and event within a batch
 * become one row (added as the store would add them), so a busy sender costs one row per
 * batch, not one per message. Timers are unref'd: a recorder never keeps the process alive.
 *
 * @example
 * const recorder = new ReputationRecorder(store, { logger, halfLifeMs: settings.halfLifeMs });
 * recorder.record(reputationSubjects({ ip, senderDomain }), 'spf:pass', Date.now());
 * // ... at shutdown:
 * await recorder.close();
 */
export class ReputationRecorder {
  private readonly halfLifeMs: number;
  private readonly flushMs: number;
  private readonly flushRows: number;
  private readonly maxPendingRows: number;
  private readonly clock: Clock;
  private readonly logger: ReputationLogger;
  /** Keyed by event, NUL, subject: events hold no NUL, so no two pairs share a key. */
  private pending = new Map<string, ReputationDelta>();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private writing: Promise<void> | undefined;
  /** A write failed and none has succeeded since: the next failure is not logged again. */
  private outage = false;
  /** Events were dropped for a full batch since the last good write (logged once). */
  private full = false;
  private closed = false;
  private readonly counters = {
    recorded: 0,
    written: 0,
    dropped: 0,
    flushes: 0,
    failedFlushes: 0,
  };
  /** Rows dropped since the outage began, for the recovery line. */
  private droppedInOutage = 0;

  constructor(
    private readonly store: Pick<Store, 'addReputation' | 'description'>,
    options: ReputationRecorderOptions,
  ) {
    this.logger = options.logger;
    this.halfLifeMs = positive(
      'halfLifeMs',
      options.halfLifeMs ?? DEFAULT_REPUTATION_SETTINGS.halfLifeMs,
      true,
    );
    this.flushMs = positive('flushMs', options.flushMs ?? DEFAULT_FLUSH_MS, false);
    this.flushRows = positive('flushRows', options.flushRows ?? DEFAULT_FLUSH_ROWS, true);
    this.maxPendingRows = positive(
      'maxPendingRows',
      options.maxPendingRows ?? DEFAULT_MAX_PENDING_ROWS,
      true,
    );
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Counts one `event` for each of `subjects` at `now` (default: the clock's time). Returns at
   * once and never waits for the store; a store that is down costs nothing here.
   *
   * @example
   * recorder.record(['domain:example.org', 'net:192.0.2.0/24'], 'greylist:pass', Date.now());
   */
  record(subjects: readonly string[], event: ReputationEvent, now?: number): void {
    if (!isReputationEvent(event)) {
      throw new TypeError(`ReputationRecorder: unknown event ${JSON.stringify(String(event))}`);
    }
    const time = now ?? this.clock.now();
    if (!Number.isSafeInteger(time)) {
      throw new TypeError(`ReputationRecorder: now must be integral milliseconds, got ${time}`);
    }
    for (const given of subjects) {
      this.counters.recorded++;
      if (this.closed) {
        this.counters.dropped++;
        continue;
      }
      const subject = given.length > MAX_SUBJECT_UNITS ? given.slice(0, MAX_SUBJECT_UNITS) : given;
      const key = `${event}\u0000${subject}`;
      const waiting = this.pending.get(key);
      if (waiting) {
        const sum = addDecaying(waiting, { amount: 1, time }, this.halfLifeMs);
        waiting.amount = sum.amount;
        waiting.time = sum.time;
      } else if (this.pending.size >= this.maxPendingRows) {
        this.drop(1);
        if (!this.full) {
          this.full = true;
          this.logger.warn(
            { store: this.store.description, pending: this.pending.size },
            'reputation-pending-full',
          );
        }
      } else {
        this.pending.set(key, { subject, event, amount: 1, time });
      }
    }
    if (this.pending.size > 0 && !this.closed) this.schedule();
  }

  /** Arranges the next write: at once for a full batch, else after flushMs. */
  private schedule(): void {
    // A write under way schedules the next one when it ends.
    if (this.writing) return;
    if (this.pending.size >= this.flushRows) {
      if (this.immediate) return;
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        void this.flush();
      });
      this.immediate.unref();
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
    this.timer.unref();
  }

  private drop(rows: number): void {
    this.counters.dropped += rows;
    if (this.outage) this.droppedInOutage += rows;
  }

  /**
   * Writes what is waiting now, in one store call, after the write under way (if any). Never
   * rejects: a failed write is logged (once per outage) and its rows are dropped.
   *
   * @example
   * await recorder.flush();
   */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.immediate);
    this.immediate = undefined;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.writing = this.write(batch);
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
    }
    if (this.pending.size > 0 && !this.closed) this.schedule();
  }

  private async write(batch: ReputationDelta[]): Promise<void> {
    try {
      await this.store.addReputation(batch, this.halfLifeMs);
    } catch (err) {
      this.counters.failedFlushes++;
      if (!this.outage) {
        this.outage = true;
        this.droppedInOutage = 0;
        this.logger.warn(
          {
            err,
            error: logValue(err instanceof Error ? err.message : String(err), 500),
            store: this.store.description,
            rows: batch.length,
          },
          'reputation-flush-failed',
        );
      }
      this.drop(batch.length);
      return;
    }
    this.counters.flushes++;
    this.counters.written += batch.length;
    this.full = false;
    if (this.outage) {
      this.outage = false;
      this.logger.info(
        { store: this.store.description, dropped: this.droppedInOutage },
        'reputation-flush-recovered',
      );
    }
  }

  /**
   * Stops the timer and writes what is waiting; events recorded afterwards are dropped.
   * Idempotent; never rejects.
   *
   * @example
   * await recorder.close();
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** Counts so far (see ReputationRecorderStats). */
  stats(): ReputationRecorderStats {
    return { pending: this.pending.size, ...this.counters };
  }
}
