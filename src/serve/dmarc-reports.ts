/**
 * DMARC evaluations on their way to the store, for aggregate reports: `record` only adds to a
 * batch in memory; the batch is written in one call each second, off the request path. A store
 * that is down loses the batch (a report is a statistic, not a ledger), said once per outage.
 */
import type { DmarcReportRecorder } from '../policy/services.js';
import type { DmarcResultRow, Store } from '../store/types.js';

/** Rows waiting at most; past it, new rows are dropped and counted. */
const MAX_PENDING = 10_000;
const FLUSH_MS = 1_000;

export interface DmarcReportLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * @example
 * const reports = new DmarcReportWriter(store, logger);
 * engine services: { dmarcReports: reports }; at shutdown: await reports.close();
 */
export class DmarcReportWriter implements DmarcReportRecorder {
  readonly #store: Store;
  readonly #logger: DmarcReportLogger;
  #pending: DmarcResultRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failing = false;
  #dropped = 0;

  constructor(store: Store, logger: DmarcReportLogger) {
    this.#store = store;
    this.#logger = logger;
  }

  record(row: DmarcResultRow): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.#dropped++;
      return;
    }
    this.#pending.push(row);
    if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Writes what is waiting; never rejects. */
  flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return this.#writing;
    this.#writing = this.#writing.then(() => this.#write(batch));
    return this.#writing;
  }

  async #write(batch: DmarcResultRow[]): Promise<void> {
    try {
      await this.#store.addDmarcResults(batch);
      if (this.#failing) {
        this.#failing = false;
        this.#logger.info({ dropped: this.#dropped }, 'dmarc-record-recovered');
        this.#dropped = 0;
      }
    } catch (err) {
      this.#dropped += batch.length;
      if (!this.#failing) {
        this.#failing = true;
        this.#logger.warn({ err, rows: batch.length }, 'dmarc-record-failed');
      }
    }
  }

  /** Stops the timer and writes the last batch. */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
