/**
 * The SQLite decision log's writer thread. Every decision adds a log line; inserting them (and
 * the WAL checkpoints their volume brings) on the event loop made the log cost as much as the
 * decision itself. This thread has its own connection to the same file and commits the batches
 * the store hands it, one transaction per batch, in order; the event loop only posts them.
 *
 * The thread's code is plain JavaScript evaluated in the thread and loads nothing but the
 * driver, so that it runs the same from the TypeScript sources and from the build.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** One decision-log line, as the values of INSERT_DECISION_SQL's parameters, in order. */
export type DecisionRow = readonly (string | number | null)[];

/** The insert both the thread and the in-thread fallback use. */
export const INSERT_DECISION_SQL = `INSERT INTO decision_log
  (time, host, client, client_name, helo, sender, recipient, action, reason, delay, scores)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

const THREAD_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: workerData.busyTimeoutMs });
db.pragma('synchronous = NORMAL');
const insert = db.prepare(workerData.insertSql);
const insertAll = db.transaction((rows) => {
  for (const row of rows) insert.run(row);
});
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    insertAll.immediate(message.rows);
    parentPort.postMessage({ batch: message.batch, ok: true });
  } catch (error) {
    parentPort.postMessage({
      batch: message.batch,
      ok: false,
      message: String((error && error.message) || error),
      code: error && typeof error.code === 'string' ? error.code : undefined,
    });
  }
});
`;

interface Reply {
  batch: number;
  ok: boolean;
  message?: string;
  code?: string;
}

interface InFlight {
  rows: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Why the thread stopped working, once it has. */
export class LogThreadError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'LogThreadError';
  }
}

/**
 * A writer thread for one SQLite file. `write` resolves once the batch is committed and rejects
 * with a LogThreadError when it was not; after the thread itself fails (it could not open the
 * file, or it died), every batch in flight and every later one rejects, and `broken` says why.
 *
 * @example
 * const thread = new DecisionLogThread('/var/lib/mailgate/mailgate.db', 5000);
 * await thread.write([[Date.now(), 'mx1', '192.0.2.1', null, null, 'a@b', 'c@d', 'pass',
 *   'known', null, null]]);
 * await thread.close();
 */
export class DecisionLogThread {
  private readonly worker: Worker;
  private readonly inFlight = new Map<number, InFlight>();
  private nextBatch = 1;
  private rowsInFlight = 0;
  private failure: LogThreadError | undefined;
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;

  constructor(path: string, busyTimeoutMs: number) {
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path,
        busyTimeoutMs,
        insertSql: INSERT_DECISION_SQL,
      },
      // The thread needs none of the parent's flags (a TypeScript loader, a profiler).
      execArgv: [],
    });
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => this.settle(reply));
    this.worker.on('error', (error) =>
      this.fail(`the decision-log thread failed: ${error.message}`),
    );
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        if (!this.closing) this.fail(`the decision-log thread exited (code ${code})`);
        resolve();
      });
    });
  }

  /** Why the thread no longer writes, or undefined while it does. */
  get broken(): LogThreadError | undefined {
    return this.failure;
  }

  /** Lines posted and not yet committed. */
  get backlog(): number {
    return this.rowsInFlight;
  }

  /** Commits `rows` in one transaction, after every batch written before. */
  write(rows: readonly DecisionRow[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing)
      return Promise.reject(new LogThreadError('the decision-log thread is closed'));
    const batch = this.nextBatch++;
    return new Promise<void>((resolve, reject) => {
      this.inFlight.set(batch, { rows: rows.length, resolve, reject });
      this.rowsInFlight += rows.length;
      // Keep the process up while lines are on their way to the disk, not while idle.
      if (this.inFlight.size === 1) this.worker.ref();
      this.worker.postMessage({ batch, rows });
    });
  }

  /** Resolves once every batch written so far is settled (committed or failed). */
  async idle(): Promise<void> {
    const pending = [...this.inFlight.values()].map(
      (entry) => new Promise<void>((resolve) => wrapSettle(entry, resolve)),
    );
    await Promise.all(pending);
  }

  /** Lets the batches in flight finish, then stops the thread and closes its connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.idle();
      if (!this.failure) this.worker.postMessage('close');
      else await this.worker.terminate();
      this.worker.ref();
      await this.exited;
    })();
    return this.closing;
  }

  private settle(reply: Reply): void {
    const entry = this.inFlight.get(reply.batch);
    if (!entry) return;
    this.forget(reply.batch, entry);
    if (reply.ok) entry.resolve();
    else entry.reject(new LogThreadError(reply.message ?? 'the batch was not written', reply.code));
  }

  private fail(message: string): void {
    this.failure ??= new LogThreadError(message);
    for (const [batch, entry] of this.inFlight) {
      this.forget(batch, entry);
      entry.reject(this.failure);
    }
  }

  private forget(batch: number, entry: InFlight): void {
    this.inFlight.delete(batch);
    this.rowsInFlight -= entry.rows;
    if (this.inFlight.size === 0) this.worker.unref();
  }
}

/** Calls `then` once the entry settles either way, keeping its own callbacks. */
function wrapSettle(entry: InFlight, then: () => void): void {
  const { resolve, reject } = entry;
  entry.resolve = () => {
    resolve();
    then();
  };
  entry.reject = (error) => {
    reject(error);
    then();
  };
}
