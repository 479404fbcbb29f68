/**
 * The SQLite backend: one file (WAL journal) on one host, shared safely by every mailgate process
 * on it. The driver is synchronous; each method does its work in one go, so a method is atomic
 * within the process, and SQLite's locking (IMMEDIATE transactions) makes it atomic between
 * processes. Work that finds the file locked by another process is tried again from a timer,
 * never by sleeping on the event loop.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  callbackParams,
  checkCutoffs,
  checkDecisionBuckets,
  checkDecisionQuery,
  checkHalfLife,
  checkKeyText,
  checkLimit,
  checkRate,
  checkTime,
  checkTripletKey,
  checkWhitelistAt,
  closedError,
  columnsToLookup,
  DECISION_INSERT_COLUMNS,
  DECISION_SEARCH_COLUMNS,
  DEFAULT_BUSY_TIMEOUT_MS,
  type DecisionFilter,
  decisionColumns,
  decisionParams,
  greylistSummarySql,
  LOOKUP_COLUMNS,
  type OpenStoreOptions,
  type Row,
  reputationLookupSubjects,
  reputationRounds,
  reputationUpsertSet,
  rowToCallback,
  rowToClient,
  rowToDecision,
  rowToDecisionCount,
  rowToGreylistSummary,
  rowToReputation,
  rowToTriplet,
  type StoreLogger,
  sortReputationRows,
  stderrStoreLogger,
  storeError,
} from './common.js';
import {
  DMARC_RESULT_COLUMNS,
  dmarcQueryParams,
  dmarcResultFromColumns,
  dmarcResultParams,
} from './dmarc-rows.js';
import { CURRENT_VERSION_SQL, migrateSqlite } from './migrations.js';
import { Checkpointer, DEFAULT_CHECKPOINT_EVERY_MS } from './sqlite-checkpointer.js';
import {
  type CallbackRecord,
  type ClientCounter,
  type Decision,
  type DecisionCount,
  type DecisionQuery,
  type DmarcResultRow,
  type ExpiryCounts,
  type ExpiryCutoffs,
  type FirstAttempt,
  type GreylistSummary,
  type RateTaken,
  type ReputationDelta,
  type ReputationRow,
  type Store,
  type StoredDecision,
  type StoredDmarcResultRow,
  StoreError,
  type Triplet,
  type TripletKey,
  type TripletLookup,
  type TripletState,
} from './types.js';

/** Where an SQLite store lives: a file path, or `:memory:`. */
export interface SqliteTarget {
  /** An absolute path, or `:memory:`. */
  path: string;
  /** For logs: the URL as given. */
  description: string;
}

const KEY = 'client = ? AND sender = ? AND recipient = ?';

function prepareAll(db: Database.Database) {
  return {
    getTriplet: db.prepare(`SELECT * FROM triplets WHERE ${KEY}`),
    insertTriplet: db.prepare(
      `INSERT INTO triplets
         (client, sender, recipient, state, first_seen, last_seen, fail_count, pass_count)
       VALUES (?, ?, ?, ?, ?, ?, 0, ?)
       ON CONFLICT (client, sender, recipient) DO NOTHING
       RETURNING *`,
    ),
    earlyRetry: db.prepare(
      `UPDATE triplets SET
         fail_count = CASE WHEN last_seen <= @sameAttemptAfter THEN fail_count + 1 ELSE fail_count END,
         last_seen = CASE WHEN last_seen <= @sameAttemptAfter THEN @now ELSE last_seen END
       WHERE client = @client AND sender = @sender AND recipient = @recipient RETURNING *`,
    ),
    pass: db.prepare(
      `UPDATE triplets SET state = 'passed', pass_count = pass_count + 1, last_seen = ?
       WHERE ${KEY} RETURNING *`,
    ),
    getClient: db.prepare('SELECT * FROM client_counters WHERE client = ?'),
    // Both point reads in one statement: the one-row subquery always gives one row, with NULL
    // columns for what is missing. Raw rows (arrays) are cheaper to map than named ones.
    lookup: db
      .prepare(
        `SELECT ${LOOKUP_COLUMNS}
         FROM (SELECT ? AS client, ? AS sender, ? AS recipient) AS k
         LEFT JOIN triplets AS t
           ON t.client = k.client AND t.sender = k.sender AND t.recipient = k.recipient
         LEFT JOIN client_counters AS c ON c.client = k.client`,
      )
      .raw(true),
    countClient: db.prepare(
      `INSERT INTO client_counters (client, count, first_seen, last_counted, last_seen)
       VALUES (@client, 1, @now, @now, @now)
       ON CONFLICT (client) DO UPDATE SET
         count = CASE WHEN client_counters.last_counted < @countAfter
                      THEN client_counters.count + 1 ELSE client_counters.count END,
         last_counted = CASE WHEN client_counters.last_counted < @countAfter
                             THEN @now ELSE client_counters.last_counted END,
         last_seen = @now
       RETURNING *`,
    ),
    touchClient: db.prepare('UPDATE client_counters SET last_seen = ? WHERE client = ?'),
    logDecision: db.prepare(
      `INSERT INTO decision_log (${DECISION_INSERT_COLUMNS})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    recentDecisions: db.prepare('SELECT * FROM decision_log ORDER BY time DESC, id DESC LIMIT ?'),
    // better-sqlite3 binds every JS number as REAL, and REAL division would give fractions where
    // the bucket number must be floor((time - from) / bucketMs); time - from is never negative.
    countDecisions: db.prepare(
      `SELECT (time - CAST(@from AS INTEGER)) / CAST(@bucketMs AS INTEGER) AS n, action,
         count(*) AS count
       FROM decision_log WHERE time >= @from AND time < @to
       GROUP BY n, action ORDER BY n, action`,
    ),
    greylistSummary: db.prepare(greylistSummarySql('@whitelistAt')),
    expirePassed: db.prepare("DELETE FROM triplets WHERE state = 'passed' AND last_seen < ?"),
    expireGreylisted: db.prepare(
      "DELETE FROM triplets WHERE state = 'greylisted' AND last_seen < ?",
    ),
    expireClients: db.prepare('DELETE FROM client_counters WHERE last_seen < ?'),
    expireDecisions: db.prepare('DELETE FROM decision_log WHERE time < ?'),
    getCallback: db.prepare('SELECT * FROM callback_cache WHERE sender = ? AND time >= ?'),
    // The WHERE keeps a slower verification (an older time) from overwriting a newer result.
    putCallback: db.prepare(
      `INSERT INTO callback_cache (sender, result, reply, time, host) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (sender) DO UPDATE SET
         result = excluded.result, reply = excluded.reply, time = excluded.time,
         host = excluded.host
       WHERE excluded.time >= callback_cache.time`,
    ),
    // Every SET expression reads the row as it was before the update, so the window test is
    // the same in both. Count and window change in one statement: no read-then-write race.
    takeRate: db
      .prepare(
        `INSERT INTO rate_limits (key, window_start, count) VALUES (@key, @now, 1)
         ON CONFLICT (key) DO UPDATE SET
           window_start = CASE WHEN rate_limits.window_start <= @restartAtOrBefore
                               THEN @now ELSE rate_limits.window_start END,
           count = CASE WHEN rate_limits.window_start <= @restartAtOrBefore THEN 1
                        WHEN rate_limits.count > @limit THEN rate_limits.count
                        ELSE rate_limits.count + 1 END
         RETURNING count`,
      )
      .pluck(true),
    expireCallbacks: db.prepare('DELETE FROM callback_cache WHERE time < ?'),
    expireRates: db.prepare('DELETE FROM rate_limits WHERE window_start < ?'),
    addReputation: db.prepare(
      `INSERT INTO reputation (subject, event, amount, updated)
       VALUES (@subject, @event, @amount, @time)
       ON CONFLICT (subject, event) DO UPDATE SET
         ${reputationUpsertSet('reputation', '@halfLife', 'pow')}`,
    ),
    // The subjects come as one JSON array: one statement whatever their number.
    getReputation: db.prepare(
      `SELECT subject, event, amount, updated FROM reputation
       WHERE subject IN (SELECT value FROM json_each(?))`,
    ),
    expireReputation: db.prepare('DELETE FROM reputation WHERE updated < ?'),
    addDmarcResult: db.prepare(
      `INSERT INTO dmarc_results (${DMARC_RESULT_COLUMNS.join(', ')})
       VALUES (${DMARC_RESULT_COLUMNS.map(() => '?').join(', ')})`,
    ),
    dmarcResultsOf: db.prepare(
      `SELECT * FROM dmarc_results WHERE policy_domain = ? AND time >= ? AND time < ?
       ORDER BY time, id LIMIT ?`,
    ),
    dmarcResultsAll: db.prepare(
      'SELECT * FROM dmarc_results WHERE time >= ? AND time < ? ORDER BY time, id LIMIT ?',
    ),
    expireDmarc: db.prepare('DELETE FROM dmarc_results WHERE time < ?'),
    schemaVersion: db.prepare(CURRENT_VERSION_SQL),
    ping: db.prepare('SELECT 1 AS one'),
  };
}

/**
 * The `findDecisions` statement for the conditions a filter has, and only those: a condition
 * written as `(@from IS NULL OR time >= @from)` would keep SQLite from bounding the scan of the
 * time index by it. Paging reads the anchor line's time in the statement itself, so a page
 * follows on from the line it ends with even when later lines share its time; an anchor that is
 * gone (expired) has nothing after it that is still there, and the answer is empty.
 */
function findDecisionsSql(filter: DecisionFilter): string {
  const where: string[] = [];
  if (filter.from !== null) where.push('time >= @from');
  if (filter.to !== null) where.push('time < @to');
  if (filter.beforeId !== null) {
    const anchor = '(SELECT time FROM decision_log WHERE id = @beforeId)';
    where.push(`time <= ${anchor} AND (time < ${anchor} OR id < @beforeId)`);
  }
  if (filter.action !== null) where.push('action = @action');
  if (filter.pattern !== null) {
    // SQLite's LIKE ignores ASCII case, and only ASCII case.
    const contains = DECISION_SEARCH_COLUMNS.map((c) => `${c} LIKE @pattern ESCAPE '\\'`);
    where.push(`(${contains.join(' OR ')})`);
  }
  return `SELECT * FROM decision_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY time DESC, id DESC LIMIT @limit`;
}

/** A filter's values, named as `findDecisionsSql` names them: the conditions it has, and the limit. */
function findDecisionsParams(filter: DecisionFilter): Record<string, string | number> {
  const params: Record<string, string | number> = { limit: filter.limit };
  for (const name of ['from', 'to', 'beforeId', 'action', 'pattern'] as const) {
    const value = filter[name];
    if (value !== null) params[name] = value;
  }
  return params;
}

/** Decision-log lines committed together at most; more are committed at once. */
const MAX_DECISION_BATCH = 512;
/** How long decision-log lines wait for company before they are committed. */
const DECISION_FLUSH_MS = 50;
/** The longest pause between two tries while another process holds the lock. */
const BUSY_RETRY_MAX_MS = 50;

/** Whether a driver error says the database is locked by another connection. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** One decision-log line, as the parameters of the `logDecision` statement. */
type DecisionRow = readonly (string | number | null)[];

interface PendingDecision {
  row: DecisionRow;
  resolve: () => void;
  reject: (error: StoreError) => void;
}

/** What opening an SQLite store takes (see OpenStoreOptions). */
export type SqliteOptions = Pick<
  OpenStoreOptions,
  'busyTimeoutMs' | 'checkpointEveryMs' | 'logger'
>;

class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly statements: ReturnType<typeof prepareAll>;
  private readonly firstAttemptTx: (
    key: TripletKey,
    state: TripletState,
    now: number,
  ) => { row: Row | undefined; created: boolean };
  private readonly expireTx: (cutoffs: ExpiryCutoffs) => ExpiryCounts;
  private readonly insertDecisionsTx: (rows: readonly DecisionRow[]) => void;
  private readonly addReputationTx: (deltas: readonly ReputationDelta[], halfLife: number) => void;
  private readonly addDmarcResultsTx: (rows: readonly (string | number | null)[][]) => void;
  /** `findDecisions` statements by text: one per combination of conditions, 32 at most. */
  private readonly findStatements = new Map<string, Database.Statement>();
  /** Decision-log lines waiting for the next group commit, with their callers' promises. */
  private pendingDecisions: PendingDecision[] = [];
  private flushScheduled = false;
  private closed = false;
  /** When the decision-log commit first found the file locked by another process. */
  private lockedSince: number | undefined;
  private closing: Promise<void> | undefined;
  /** The checkpoint thread, from the first decision-log commit on (files only). */
  private checkpointer: Checkpointer | undefined;
  /** False for `:memory:`, and once the thread failed: the connection checkpoints itself. */
  private useCheckpointer: boolean;

  constructor(
    private readonly db: Database.Database,
    readonly description: string,
    private readonly path: string,
    private readonly busyTimeoutMs: number,
    private readonly checkpointEveryMs: number,
    private readonly logger: StoreLogger,
  ) {
    this.useCheckpointer = path !== ':memory:';
    const s = prepareAll(db);
    this.statements = s;
    // IMMEDIATE takes the write lock before reading, so the insert-or-read of one process never
    // interleaves with another's and no transaction has to upgrade its lock (which can deadlock).
    const firstAttempt = db.transaction((key: TripletKey, state: TripletState, now: number) => {
      const passCount = state === 'passed' ? 1 : 0;
      const inserted = s.insertTriplet.get(
        key.client,
        key.sender,
        key.recipient,
        state,
        now,
        now,
        passCount,
      ) as Row | undefined;
      if (inserted) return { row: inserted, created: true };
      const existing = s.getTriplet.get(key.client, key.sender, key.recipient) as Row | undefined;
      return { row: existing, created: false };
    });
    this.firstAttemptTx = (key, state, now) => firstAttempt.immediate(key, state, now);
    const expire = db.transaction(
      (c: ExpiryCutoffs): ExpiryCounts => ({
        passed: s.expirePassed.run(c.passedBefore).changes,
        greylisted: s.expireGreylisted.run(c.greylistedBefore).changes,
        clients: s.expireClients.run(c.clientsBefore).changes,
        decisions: s.expireDecisions.run(c.decisionsBefore).changes,
        callbacks:
          c.callbacksBefore === undefined ? 0 : s.expireCallbacks.run(c.callbacksBefore).changes,
        rates: c.ratesBefore === undefined ? 0 : s.expireRates.run(c.ratesBefore).changes,
        reputation:
          c.reputationBefore === undefined ? 0 : s.expireReputation.run(c.reputationBefore).changes,
        ...(c.dmarcBefore === undefined ? {} : { dmarc: s.expireDmarc.run(c.dmarcBefore).changes }),
      }),
    );
    this.expireTx = (cutoffs) => expire.immediate(cutoffs);
    // Every decision adds a log line; one transaction per line would make the log cost more
    // than the decision. Lines that come within DECISION_FLUSH_MS are committed together.
    const insertDecisions = db.transaction((rows: readonly DecisionRow[]) => {
      for (const row of rows) s.logDecision.run(row);
    });
    this.insertDecisionsTx = (rows) => insertDecisions.immediate(rows);
    // One statement per delta in one transaction: in SQLite the loop costs no round trips, and
    // repeated keys simply add in turn.
    const addReputation = db.transaction((deltas: readonly ReputationDelta[], halfLife: number) => {
      for (const d of deltas) {
        s.addReputation.run({
          subject: d.subject,
          event: d.event,
          amount: d.amount,
          time: d.time,
          halfLife,
        });
      }
    });
    this.addReputationTx = (deltas, halfLife) => addReputation.immediate(deltas, halfLife);
    const addDmarcResults = db.transaction((rows: readonly (string | number | null)[][]) => {
      for (const row of rows) s.addDmarcResult.run(row);
    });
    this.addDmarcResultsTx = (rows) => addDmarcResults.immediate(rows);
  }

  /** Commits the waiting decision-log lines in one transaction, settling their promises. */
  private flushDecisions(): void {
    this.flushScheduled = false;
    if (this.pendingDecisions.length === 0) return;
    // At most one batch per transaction, the rest on the next turn of the event loop: lines
    // that piled up behind another process's lock do not hold up requests in one long commit.
    const batch = this.pendingDecisions.splice(0, MAX_DECISION_BATCH);
    try {
      this.insertDecisionsTx(batch.map((entry) => entry.row));
    } catch (error) {
      if (isBusy(error) && !this.closed) {
        // Locked by another process: the lines wait (in order, ahead of newer ones) and the
        // commit is tried again shortly, for at most busyTimeoutMs.
        const now = Date.now();
        this.lockedSince ??= now;
        if (now - this.lockedSince < this.busyTimeoutMs) {
          this.pendingDecisions = batch.concat(this.pendingDecisions);
          this.scheduleFlush(BUSY_RETRY_MAX_MS);
          return;
        }
      }
      this.lockedSince = undefined;
      const failure = storeError('logDecision', error, []);
      for (const entry of batch) entry.reject(failure);
      if (this.pendingDecisions.length > 0) this.scheduleFlush(0);
      return;
    }
    this.lockedSince = undefined;
    for (const entry of batch) entry.resolve();
    if (this.pendingDecisions.length > 0) this.scheduleFlush(0);
    this.wrote();
  }

  /** After a successful write: the WAL grows from now on, so checkpoints go to their thread. */
  private wrote(): void {
    if (this.useCheckpointer && !this.checkpointer && !this.closed) this.startCheckpointer();
  }

  /** A flush after `delayMs` (0: on the next turn of the event loop), unless one is due. */
  private scheduleFlush(delayMs: number): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (delayMs === 0) setImmediate(() => this.flushDecisions());
    else setTimeout(() => this.flushDecisions(), delayMs);
  }

  /**
   * Commits every line logged so far, waiting out another process's lock for at most the busy
   * timeout (lines still locked out then are rejected, as in any flush).
   */
  private async commitPending(): Promise<void> {
    while (this.pendingDecisions.length > 0) {
      // Locked: the retry flushDecisions scheduled commits them (or gives up on them); wait.
      if (this.lockedSince === undefined) this.flushDecisions();
      else await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MAX_MS));
    }
  }

  /**
   * Hands checkpoints to a thread. Should it fail, this connection checkpoints as SQLite does
   * by default again, and says so once.
   */
  private startCheckpointer(): void {
    const giveBack = (error: Error) => {
      this.useCheckpointer = false;
      if (this.closed) return;
      this.db.pragma('wal_autocheckpoint = 1000');
      this.logger.warn(
        { store: this.description, err: error },
        'the SQLite checkpoint thread failed; checkpoints run on the event loop from now on',
      );
    };
    try {
      this.checkpointer = new Checkpointer(this.path, this.busyTimeoutMs, this.checkpointEveryMs, {
        onFailure: giveBack,
        onProblem: (message) =>
          this.logger.warn(
            { store: this.description, problem: message },
            'SQLite checkpoint failed; retried shortly',
          ),
      });
    } catch (error) {
      giveBack(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.db.pragma('wal_autocheckpoint = 0');
  }

  /** Runs one operation: refused after close, driver errors as StoreError. */
  private run<T>(op: string, work: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(op, this.description));
    try {
      return Promise.resolve(work());
    } catch (error) {
      if (isBusy(error)) return this.retryWhenFree(op, work);
      return Promise.reject(storeError(op, error, []));
    }
  }

  /** Runs a write (see run): afterwards the WAL has grown, which starts the checkpoint thread. */
  private runWrite<T>(op: string, work: () => T): Promise<T> {
    return this.run(op, () => {
      const result = work();
      this.wrote();
      return result;
    });
  }

  /**
   * Another process holds the lock. SQLite's busy handler would sleep here, and with it every
   * request of this process; instead the work is tried again from a timer, backing off from
   * 1 ms to 50 ms, until busyTimeoutMs has passed. The work is one statement or one IMMEDIATE
   * transaction, refused before it changed anything, so trying again is safe.
   */
  private retryWhenFree<T>(op: string, work: () => T): Promise<T> {
    const deadline = Date.now() + this.busyTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const attempt = (delay: number) => {
        setTimeout(() => {
          if (this.closed) {
            reject(closedError(op, this.description));
            return;
          }
          try {
            resolve(work());
          } catch (error) {
            if (isBusy(error) && Date.now() < deadline)
              attempt(Math.min(delay * 2, BUSY_RETRY_MAX_MS));
            else reject(storeError(op, error, []));
          }
        }, delay);
      };
      attempt(1);
    });
  }

  getTriplet(key: TripletKey): Promise<Triplet | null> {
    return this.run('getTriplet', () => {
      checkTripletKey('getTriplet', key);
      const row = this.statements.getTriplet.get(key.client, key.sender, key.recipient);
      return row ? rowToTriplet(row as Row) : null;
    });
  }

  firstAttempt(key: TripletKey, state: TripletState, now: number): Promise<FirstAttempt> {
    return this.runWrite('firstAttempt', () => {
      checkTripletKey('firstAttempt', key);
      checkTime('firstAttempt', 'now', now);
      if (state !== 'greylisted' && state !== 'passed') {
        throw new StoreError(`store firstAttempt: unknown state ${JSON.stringify(state)}`);
      }
      const { row, created } = this.firstAttemptTx(key, state, now);
      if (!row) throw new StoreError('store firstAttempt: the triplet vanished while it was read');
      return { triplet: rowToTriplet(row), created };
    });
  }

  recordEarlyRetry(
    key: TripletKey,
    now: number,
    sameAttemptAfter = Number.MAX_SAFE_INTEGER,
  ): Promise<Triplet | null> {
    return this.runWrite('recordEarlyRetry', () => {
      checkTripletKey('recordEarlyRetry', key);
      checkTime('recordEarlyRetry', 'now', now);
      checkTime('recordEarlyRetry', 'sameAttemptAfter', sameAttemptAfter);
      const row = this.statements.earlyRetry.get({
        now,
        sameAttemptAfter,
        client: key.client,
        sender: key.sender,
        recipient: key.recipient,
      });
      return row ? rowToTriplet(row as Row) : null;
    });
  }

  recordPass(key: TripletKey, now: number): Promise<Triplet | null> {
    return this.runWrite('recordPass', () => {
      checkTripletKey('recordPass', key);
      checkTime('recordPass', 'now', now);
      const row = this.statements.pass.get(now, key.client, key.sender, key.recipient);
      return row ? rowToTriplet(row as Row) : null;
    });
  }

  getClient(client: string): Promise<ClientCounter | null> {
    return this.run('getClient', () => {
      checkKeyText('getClient', 'client', client);
      const row = this.statements.getClient.get(client);
      return row ? rowToClient(row as Row) : null;
    });
  }

  lookup(key: TripletKey): Promise<TripletLookup> {
    return this.run('lookup', () => {
      checkTripletKey('lookup', key);
      const row = this.statements.lookup.get(key.client, key.sender, key.recipient);
      if (!row) throw new StoreError('store lookup: the query returned no row');
      return columnsToLookup(row as unknown[]);
    });
  }

  countClient(client: string, now: number, countAfter: number): Promise<ClientCounter> {
    return this.runWrite('countClient', () => {
      checkKeyText('countClient', 'client', client);
      checkTime('countClient', 'now', now);
      checkTime('countClient', 'countAfter', countAfter);
      const row = this.statements.countClient.get({ client, now, countAfter });
      return rowToClient(row as Row);
    });
  }

  touchClient(client: string, now: number): Promise<void> {
    return this.runWrite('touchClient', () => {
      checkKeyText('touchClient', 'client', client);
      checkTime('touchClient', 'now', now);
      this.statements.touchClient.run(now, client);
    });
  }

  logDecision(decision: Decision): Promise<void> {
    if (this.closed) return Promise.reject(closedError('logDecision', this.description));
    let row: DecisionRow;
    try {
      row = decisionParams(decisionColumns(decision));
    } catch (error) {
      return Promise.reject(storeError('logDecision', error, []));
    }
    return new Promise<void>((resolve, reject) => {
      this.pendingDecisions.push({ row, resolve, reject });
      // A full batch is committed at once, unless another process holds the lock (the retry
      // timer commits them then). Otherwise lines gather for a moment and share one commit even
      // when requests come one at a time: callers do not wait for the log.
      if (this.pendingDecisions.length >= MAX_DECISION_BATCH && this.lockedSince === undefined) {
        this.flushDecisions();
      } else {
        this.scheduleFlush(DECISION_FLUSH_MS);
      }
    });
  }

  async recentDecisions(limit: number): Promise<StoredDecision[]> {
    await this.run('recentDecisions', () => checkLimit(limit));
    // The lines logged before this call are part of the answer.
    await this.commitPending();
    return this.run('recentDecisions', () => {
      const rows = this.statements.recentDecisions.all(limit) as Row[];
      return rows.map(rowToDecision);
    });
  }

  async findDecisions(query: DecisionQuery): Promise<StoredDecision[]> {
    const filter = await this.run('findDecisions', () => checkDecisionQuery(query));
    // As for recentDecisions: the lines logged before this call are part of the answer.
    await this.commitPending();
    return this.run('findDecisions', () => {
      const sql = findDecisionsSql(filter);
      let statement = this.findStatements.get(sql);
      if (!statement) {
        statement = this.db.prepare(sql);
        this.findStatements.set(sql, statement);
      }
      const rows = statement.all(findDecisionsParams(filter)) as Row[];
      return rows.map(rowToDecision);
    });
  }

  async countDecisions(from: number, to: number, bucketMs: number): Promise<DecisionCount[]> {
    const range = await this.run('countDecisions', () => checkDecisionBuckets(from, to, bucketMs));
    await this.commitPending();
    return this.run('countDecisions', () => {
      const rows = this.statements.countDecisions.all(range) as Row[];
      return rows.map((row) => rowToDecisionCount(row, range));
    });
  }

  greylistSummary(whitelistAt: number): Promise<GreylistSummary> {
    return this.run('greylistSummary', () => {
      const row = this.statements.greylistSummary.get({
        whitelistAt: checkWhitelistAt(whitelistAt),
      });
      return rowToGreylistSummary(row as Row | undefined);
    });
  }

  getCallback(sender: string, notBefore: number): Promise<CallbackRecord | null> {
    return this.run('getCallback', () => {
      checkKeyText('getCallback', 'sender', sender);
      checkTime('getCallback', 'notBefore', notBefore);
      const row = this.statements.getCallback.get(sender, notBefore);
      return row ? rowToCallback(row as Row) : null;
    });
  }

  putCallback(record: CallbackRecord): Promise<void> {
    return this.runWrite('putCallback', () => {
      this.statements.putCallback.run(callbackParams(record));
    });
  }

  takeRate(key: string, now: number, windowMs: number, limit: number): Promise<RateTaken> {
    return this.runWrite('takeRate', () => {
      const params = checkRate(key, now, windowMs, limit);
      const count = Number(this.statements.takeRate.get(params));
      return { allowed: count <= limit, count };
    });
  }

  addReputation(deltas: readonly ReputationDelta[], halfLifeMs: number): Promise<void> {
    return this.runWrite('addReputation', () => {
      const halfLife = checkHalfLife('addReputation', halfLifeMs);
      const checked = reputationRounds(deltas).flat();
      if (checked.length > 0) this.addReputationTx(checked, halfLife);
    });
  }

  getReputation(subjects: readonly string[]): Promise<ReputationRow[]> {
    return this.run('getReputation', () => {
      const wanted = reputationLookupSubjects(subjects);
      if (wanted.length === 0) return [];
      const rows = this.statements.getReputation.all(JSON.stringify(wanted)) as Row[];
      return sortReputationRows(rows.map(rowToReputation));
    });
  }

  addDmarcResults(rows: readonly DmarcResultRow[]): Promise<void> {
    return this.runWrite('addDmarcResults', () => {
      if (!Array.isArray(rows))
        throw new StoreError('store addDmarcResults: rows must be an array');
      // Every row is checked before any is written: a bad one refuses the batch.
      const params = rows.map(dmarcResultParams);
      if (params.length > 0) this.addDmarcResultsTx(params);
    });
  }

  dmarcResults(
    policyDomain: string | null,
    from: number,
    to: number,
    limit: number,
  ): Promise<StoredDmarcResultRow[]> {
    return this.run('dmarcResults', () => {
      const q = dmarcQueryParams(policyDomain, from, to, limit);
      const rows = (
        q.policyDomain === null
          ? this.statements.dmarcResultsAll.all(q.from, q.to, q.limit)
          : this.statements.dmarcResultsOf.all(q.policyDomain, q.from, q.to, q.limit)
      ) as Row[];
      return rows.map(dmarcResultFromColumns);
    });
  }

  expire(cutoffs: ExpiryCutoffs): Promise<ExpiryCounts> {
    return this.runWrite('expire', () => {
      checkCutoffs(cutoffs);
      this.flushDecisions();
      return this.expireTx(cutoffs);
    });
  }

  schemaVersion(): Promise<number> {
    return this.run('schemaVersion', () => {
      const row = this.statements.schemaVersion.get() as { version: number };
      return Number(row.version);
    });
  }

  ping(): Promise<void> {
    return this.run('ping', () => {
      this.statements.ping.get();
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    // The last lines are committed below; no thread is started for them.
    this.useCheckpointer = false;
    try {
      // Lines waiting for another process's lock get the rest of their busyTimeoutMs.
      await this.commitPending();
    } finally {
      this.closed = true;
    }
    try {
      // Closing the last connection checkpoints the rest of the WAL; the thread goes first.
      await this.checkpointer?.close();
      this.db.close();
    } catch (error) {
      throw storeError('close', error, []);
    }
  }
}

/**
 * Opens (creating file and parent directory when needed) an SQLite store and brings its schema up
 * to date.
 *
 * @example
 * const store = await openSqlite({ path: '/var/lib/mailgate/mailgate.db',
 *   description: 'sqlite:/var/lib/mailgate/mailgate.db' });
 */
export async function openSqlite(
  target: SqliteTarget,
  {
    busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS,
    checkpointEveryMs = DEFAULT_CHECKPOINT_EVERY_MS,
    logger = stderrStoreLogger,
  }: SqliteOptions = {},
): Promise<Store> {
  let db: Database.Database | undefined;
  if (!(Number.isFinite(checkpointEveryMs) && checkpointEveryMs >= 10)) {
    throw new StoreError(
      `store open ${target.description}: checkpointEveryMs must be at least 10, got ${checkpointEveryMs}`,
    );
  }
  try {
    if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
    db = new Database(target.path, { timeout: busyTimeoutMs });
    // WAL lets readers go on while one process writes; NORMAL is safe with WAL (a power cut may
    // lose the last transactions, never corrupt), and greylist state is cheap to lose.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrateSqlite(db, target.description);
    // From now on a lock held by another process never puts the event loop to sleep: the
    // store tries again from a timer (see retryWhenFree).
    db.pragma('busy_timeout = 0');
    return new SqliteStore(
      db,
      target.description,
      target.path,
      busyTimeoutMs,
      checkpointEveryMs,
      logger,
    );
  } catch (error) {
    try {
      db?.close();
    } catch {
      // the open error is the one worth reporting
    }
    throw storeError(`open ${target.description}`, error, []);
  }
}
