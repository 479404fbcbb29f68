/**
 * A thread that moves an SQLite file's write-ahead log into the database file. Left to SQLite,
 * the connection whose commit grows the WAL past 1000 pages does this itself, on the event loop,
 * fsync included: with a decision-log line per request that is every few thousand requests, and
 * each time one request waits for the disk. This thread has its own connection and runs PASSIVE
 * checkpoints, which take no writer lock: they copy what no reader still needs and never make a
 * writer wait, so the event loop only ever appends to the WAL.
 *
 * The thread's code is plain JavaScript evaluated in the thread and loads nothing but the
 * driver, so that it runs the same from the TypeScript sources and from the build.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the thread checkpoints, by default. */
export const DEFAULT_CHECKPOINT_EVERY_MS = 500;
/** Checkpoints that may fail in a row before the thread hands checkpointing back. */
const MAX_FAILURES_IN_A_ROW = 10;

const THREAD_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: workerData.busyTimeoutMs });
// A failed checkpoint is tried again at the next tick (the WAL only grows meanwhile); the same
// problem is reported once, not twice a second, until a checkpoint succeeds again. After
// workerData.maxFailures failures in a row the thread gives up and ends, so that the main
// connection checkpoints again rather than the WAL growing without end.
let lastProblem = '';
let failures = 0;
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    lastProblem = '';
    failures = 0;
  } catch (error) {
    const message = String((error && error.message) || error);
    if (message !== lastProblem) parentPort.postMessage({ type: 'problem', message });
    lastProblem = message;
    if (++failures >= workerData.maxFailures) process.exit(1);
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

interface ThreadMessage {
  type: 'problem';
  message?: string;
}

export interface CheckpointerEvents {
  /** The thread stopped working (it could not open the file, or it died); called once. */
  onFailure(error: Error): void;
  /** A checkpoint failed; the next one is tried at the next tick. */
  onProblem(message: string): void;
}

/**
 * Checkpoints one SQLite file every `everyMs` from a thread of its own until closed.
 *
 * @example
 * const checkpointer = new Checkpointer('/var/lib/mailgate/mailgate.db', 5000, 500, {
 *   onFailure: (err) => console.error(err.message),
 *   onProblem: (message) => console.error(message),
 * });
 * // ... the event loop writes; the WAL is moved into the file in the background ...
 * await checkpointer.close();
 */
export class Checkpointer {
  private readonly worker: Worker;
  private closing: Promise<void> | undefined;
  private failed = false;
  private readonly exited: Promise<void>;

  constructor(path: string, busyTimeoutMs: number, everyMs: number, events: CheckpointerEvents) {
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path,
        busyTimeoutMs,
        everyMs,
        maxFailures: MAX_FAILURES_IN_A_ROW,
      },
      // The thread needs none of the parent's flags (a TypeScript loader, a profiler).
      execArgv: [],
    });
    // A checkpointer alone must not keep a process up.
    this.worker.unref();
    const fail = (error: Error) => {
      if (this.failed || this.closing) return;
      this.failed = true;
      events.onFailure(error);
    };
    this.worker.on('message', (message: ThreadMessage) => {
      if (message.type === 'problem') events.onProblem(message.message ?? 'checkpoint failed');
    });
    this.worker.on('error', (error) => fail(error));
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        fail(new Error(`the thread exited (code ${code})`));
        resolve();
      });
    });
  }

  /** Stops the thread after the checkpoint it may be running; resolves once it is gone. */
  close(): Promise<void> {
    this.closing ??= (() => {
      this.worker.ref();
      // A message, not terminate(): stopping a thread inside the driver's native code can take
      // the whole process down. A thread already gone ignores it.
      this.worker.postMessage('close');
      return this.exited;
    })();
    return this.closing;
  }
}
