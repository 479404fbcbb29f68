/**
 * The PostgreSQL backend, for several MX hosts sharing one greylist: a connection pool, and one
 * statement per method wherever one statement can do the whole job atomically (upserts with
 * ON CONFLICT, UPDATE ... RETURNING). Times are bigint milliseconds; pg hands bigints back as
 * strings, which the row mappers turn into numbers (milliseconds stay far below 2^53).
 */
import pg from 'pg';
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
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_POOL_SIZE,
  DEFAULT_QUERY_TIMEOUT_MS,
  type DecisionFilter,
  decisionColumns,
  decisionParams,
  greylistSummarySql,
  LOOKUP_COLUMNS,
  type OpenStoreOptions,
  type Row,
  redact,
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
import { CURRENT_VERSION_SQL, migratePostgres } from './migrations.js';
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

/** Where a PostgreSQL store lives. */
export interface PostgresTarget {
  /** The connection URL, as pg accepts it. */
  url: string;
  /** For logs: the URL without its password. */
  description: string;
  /** Strings no error message may contain (the password). */
  secrets: readonly string[];
}

const KEY = 'client = $1 AND sender = $2 AND recipient = $3';

/** The PostgreSQL type of each `dmarc_results` column, for the arrays that insert them. */
const DMARC_COLUMN_TYPES: Record<(typeof DMARC_RESULT_COLUMNS)[number], string> = {
  time: 'bigint',
  source_ip: 'text',
  header_from: 'text',
  envelope_from: 'text',
  policy_domain: 'text',
  p: 'text',
  sp: 'text',
  np: 'text',
  adkim: 'text',
  aspf: 'text',
  testing: 'smallint',
  psd: 'text',
  disposition: 'text',
  override: 'text',
  result: 'text',
  spf_aligned: 'smallint',
  dkim_aligned: 'smallint',
  dkim: 'text',
  spf: 'text',
};

const SQL = {
  getTriplet: `SELECT * FROM triplets WHERE ${KEY}`,
  insertTriplet: `INSERT INTO triplets
      (client, sender, recipient, state, first_seen, last_seen, fail_count, pass_count)
    VALUES ($1, $2, $3, $4, $5, $5, 0, $6)
    ON CONFLICT (client, sender, recipient) DO NOTHING
    RETURNING *`,
  earlyRetry: `UPDATE triplets SET
      fail_count = CASE WHEN last_seen <= $5 THEN fail_count + 1 ELSE fail_count END,
      last_seen = CASE WHEN last_seen <= $5 THEN $4 ELSE last_seen END
    WHERE ${KEY} RETURNING *`,
  pass: `UPDATE triplets SET state = 'passed', pass_count = pass_count + 1, last_seen = $4
    WHERE ${KEY} RETURNING *`,
  getClient: 'SELECT * FROM client_counters WHERE client = $1',
  // Both point reads in one round trip: the one-row subquery always gives one row, with NULL
  // columns for what is missing; rows come as arrays, in LOOKUP_COLUMNS order.
  lookup: {
    text: `SELECT ${LOOKUP_COLUMNS}
      FROM (SELECT $1::text AS client, $2::text AS sender, $3::text AS recipient) AS k
      LEFT JOIN triplets AS t
        ON t.client = k.client AND t.sender = k.sender AND t.recipient = k.recipient
      LEFT JOIN client_counters AS c ON c.client = k.client`,
    rowMode: 'array',
  },
  countClient: `INSERT INTO client_counters AS c (client, count, first_seen, last_counted, last_seen)
    VALUES ($1, 1, $2::bigint, $2::bigint, $2::bigint)
    ON CONFLICT (client) DO UPDATE SET
      count = CASE WHEN c.last_counted < $3::bigint THEN c.count + 1 ELSE c.count END,
      last_counted = CASE WHEN c.last_counted < $3::bigint THEN $2::bigint ELSE c.last_counted END,
      last_seen = $2::bigint
    RETURNING *`,
  touchClient: 'UPDATE client_counters SET last_seen = $2 WHERE client = $1',
  logDecision: `INSERT INTO decision_log (${DECISION_INSERT_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
  recentDecisions: 'SELECT * FROM decision_log ORDER BY time DESC, id DESC LIMIT $1',
  // Bigint division truncates, which is floor here: time - from is never negative. Actions are
  // ordered by code point ("C"), as SQLite orders them, whatever the database's collation.
  countDecisions: `SELECT (time - $1::bigint) / $3::bigint AS n, action, count(*) AS count
    FROM decision_log WHERE time >= $1::bigint AND time < $2::bigint
    GROUP BY n, action ORDER BY n, action COLLATE "C"`,
  greylistSummary: greylistSummarySql('$1::bigint'),
  expirePassed: "DELETE FROM triplets WHERE state = 'passed' AND last_seen < $1",
  expireGreylisted: "DELETE FROM triplets WHERE state = 'greylisted' AND last_seen < $1",
  expireClients: 'DELETE FROM client_counters WHERE last_seen < $1',
  expireDecisions: 'DELETE FROM decision_log WHERE time < $1',
  getCallback: 'SELECT * FROM callback_cache WHERE sender = $1 AND time >= $2',
  // The WHERE keeps a slower verification (an older time) from overwriting a newer result.
  putCallback: `INSERT INTO callback_cache AS c (sender, result, reply, time, host)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (sender) DO UPDATE SET
      result = EXCLUDED.result, reply = EXCLUDED.reply, time = EXCLUDED.time, host = EXCLUDED.host
    WHERE EXCLUDED.time >= c.time`,
  // ON CONFLICT DO UPDATE locks the row and works on its newest version, so MX hosts counting
  // one key at once each add one; every SET expression reads the row as it was before.
  takeRate: `INSERT INTO rate_limits AS r (key, window_start, count) VALUES ($1, $2::bigint, 1)
    ON CONFLICT (key) DO UPDATE SET
      window_start = CASE WHEN r.window_start <= $3::bigint THEN $2::bigint ELSE r.window_start END,
      count = CASE WHEN r.window_start <= $3::bigint THEN 1
                   WHEN r.count > $4::bigint THEN r.count
                   ELSE r.count + 1 END
    RETURNING count`,
  expireCallbacks: 'DELETE FROM callback_cache WHERE time < $1',
  expireRates: 'DELETE FROM rate_limits WHERE window_start < $1',
  // A whole round of deltas as five arrays: one statement text whatever the batch size. Rows
  // go in the order given (WITH ORDINALITY), which reputationRounds sorted, so concurrent
  // batches lock shared rows in the same order. ON CONFLICT DO UPDATE works on the newest
  // version of a locked row, so concurrent additions all count.
  addReputation: `INSERT INTO reputation (subject, event, amount, updated)
    SELECT d.subject, d.event, d.amount, d.updated
    FROM unnest($1::text[], $2::text[], $3::float8[], $4::bigint[])
      WITH ORDINALITY AS d (subject, event, amount, updated, n)
    ORDER BY d.n
    ON CONFLICT (subject, event) DO UPDATE SET
      ${reputationUpsertSet('reputation', '$5::float8', 'power')}`,
  getReputation: `SELECT subject, event, amount, updated FROM reputation
    WHERE subject = ANY($1::text[])`,
  expireReputation: 'DELETE FROM reputation WHERE updated < $1',
  // A batch as one array per column: one statement text whatever the batch size; WITH
  // ORDINALITY keeps the rows (and so their ids) in the order given.
  addDmarcResults: `INSERT INTO dmarc_results (${DMARC_RESULT_COLUMNS.join(', ')})
    SELECT ${DMARC_RESULT_COLUMNS.map((c) => `d.${c}`).join(', ')}
    FROM unnest(${DMARC_RESULT_COLUMNS.map((c, i) => `$${i + 1}::${DMARC_COLUMN_TYPES[c]}[]`).join(', ')})
      WITH ORDINALITY AS d (${DMARC_RESULT_COLUMNS.join(', ')}, n)
    ORDER BY d.n`,
  dmarcResultsOf: `SELECT * FROM dmarc_results
    WHERE policy_domain = $1 AND time >= $2 AND time < $3 ORDER BY time, id LIMIT $4`,
  dmarcResultsAll: `SELECT * FROM dmarc_results
    WHERE time >= $1 AND time < $2 ORDER BY time, id LIMIT $3`,
  expireDmarc: 'DELETE FROM dmarc_results WHERE time < $1',
} as const;

/**
 * Lower-cases the ASCII letters of a column and nothing else: lower() and ILIKE follow the
 * database's locale, which may fold `É` into `é` where SQLite would not.
 */
const asciiLower = (column: string) =>
  `translate(${column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`;

/**
 * The `findDecisions` statement for the conditions a filter has, and only those, with their
 * values in order; see the SQLite backend's findDecisionsSql for why paging reads the anchor's
 * time in the statement. The escape is an E'' string so that it means one backslash whatever
 * standard_conforming_strings says.
 */
function findDecisionsQuery(filter: DecisionFilter): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const param = (value: unknown, type: string) => {
    values.push(value);
    return `$${values.length}::${type}`;
  };
  const where: string[] = [];
  if (filter.from !== null) where.push(`time >= ${param(filter.from, 'bigint')}`);
  if (filter.to !== null) where.push(`time < ${param(filter.to, 'bigint')}`);
  if (filter.beforeId !== null) {
    const id = param(filter.beforeId, 'bigint');
    const anchor = `(SELECT time FROM decision_log WHERE id = ${id})`;
    where.push(`time <= ${anchor} AND (time < ${anchor} OR id < ${id})`);
  }
  if (filter.action !== null) where.push(`action = ${param(filter.action, 'text')}`);
  if (filter.pattern !== null) {
    const pattern = param(filter.pattern, 'text');
    const contains = DECISION_SEARCH_COLUMNS.map(
      (c) => `${asciiLower(c)} LIKE ${pattern} ESCAPE E'\\\\'`,
    );
    where.push(`(${contains.join(' OR ')})`);
  }
  const limit = param(filter.limit, 'bigint');
  const text = `SELECT * FROM decision_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY time DESC, id DESC LIMIT ${limit}`;
  return { text, values };
}

/** Rows of `addDmarcResults` per statement; a larger batch is several, in one transaction. */
const DMARC_ROWS_PER_STATEMENT = 1000;

/** Each column's parameters as arrays, for SQL.addDmarcResults. */
function dmarcColumnArrays(rows: readonly (string | number | null)[][]): unknown[] {
  return DMARC_RESULT_COLUMNS.map((_, column) => rows.map((row) => row[column] ?? null));
}

/** A round of deltas (see reputationRounds) as the parameters of SQL.addReputation. */
function reputationParams(round: readonly ReputationDelta[], halfLife: number): unknown[] {
  return [
    round.map((d) => d.subject),
    round.map((d) => d.event),
    round.map((d) => d.amount),
    round.map((d) => d.time),
    halfLife,
  ];
}

/** A racing expire may delete the row between the insert that found it and the read; retry. */
const FIRST_ATTEMPT_TRIES = 3;

class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly target: PostgresTarget,
    private readonly logger: NonNullable<OpenStoreOptions['logger']>,
  ) {}

  get description(): string {
    return this.target.description;
  }

  /** One statement on a pooled connection; `sql` may be a config, e.g. with `rowMode: 'array'`. */
  private async query(
    op: string,
    sql: string | pg.QueryConfig,
    params: unknown[] = [],
  ): Promise<pg.QueryResult> {
    if (this.closing) throw closedError(op, this.description);
    try {
      return await this.pool.query(sql, params);
    } catch (error) {
      throw storeError(op, error, this.target.secrets);
    }
  }

  /** Runs `work` in one transaction on one pooled connection. */
  private async transaction<T>(op: string, work: (client: pg.PoolClient) => Promise<T>) {
    if (this.closing) throw closedError(op, this.description);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw storeError(op, error, this.target.secrets);
    }
    const lost = watchCheckedOut(client, this.logger, this.target);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw storeError(op, error, this.target.secrets);
    } finally {
      lost.stop();
      client.release(broken ?? lost.error);
    }
  }

  async getTriplet(key: TripletKey): Promise<Triplet | null> {
    checkTripletKey('getTriplet', key);
    const { rows } = await this.query('getTriplet', SQL.getTriplet, [
      key.client,
      key.sender,
      key.recipient,
    ]);
    return rows[0] ? rowToTriplet(rows[0] as Row) : null;
  }

  async firstAttempt(key: TripletKey, state: TripletState, now: number): Promise<FirstAttempt> {
    checkTripletKey('firstAttempt', key);
    checkTime('firstAttempt', 'now', now);
    if (state !== 'greylisted' && state !== 'passed') {
      throw new StoreError(`store firstAttempt: unknown state ${JSON.stringify(state)}`);
    }
    const passCount = state === 'passed' ? 1 : 0;
    const keyParams = [key.client, key.sender, key.recipient];
    for (let attempt = 0; attempt < FIRST_ATTEMPT_TRIES; attempt++) {
      const inserted = await this.query('firstAttempt', SQL.insertTriplet, [
        ...keyParams,
        state,
        now,
        passCount,
      ]);
      if (inserted.rows[0])
        return { triplet: rowToTriplet(inserted.rows[0] as Row), created: true };
      // Another request (or MX host) inserted it; its transaction has committed by now, since
      // ON CONFLICT waits for it, so a fresh read sees the row.
      const existing = await this.query('firstAttempt', SQL.getTriplet, keyParams);
      if (existing.rows[0]) {
        return { triplet: rowToTriplet(existing.rows[0] as Row), created: false };
      }
    }
    throw new StoreError('store firstAttempt: the triplet kept vanishing between insert and read');
  }

  async recordEarlyRetry(
    key: TripletKey,
    now: number,
    sameAttemptAfter = Number.MAX_SAFE_INTEGER,
  ): Promise<Triplet | null> {
    checkTripletKey('recordEarlyRetry', key);
    checkTime('recordEarlyRetry', 'now', now);
    checkTime('recordEarlyRetry', 'sameAttemptAfter', sameAttemptAfter);
    const { rows } = await this.query('recordEarlyRetry', SQL.earlyRetry, [
      key.client,
      key.sender,
      key.recipient,
      now,
      sameAttemptAfter,
    ]);
    return rows[0] ? rowToTriplet(rows[0] as Row) : null;
  }

  async recordPass(key: TripletKey, now: number): Promise<Triplet | null> {
    checkTripletKey('recordPass', key);
    checkTime('recordPass', 'now', now);
    const { rows } = await this.query('recordPass', SQL.pass, [
      key.client,
      key.sender,
      key.recipient,
      now,
    ]);
    return rows[0] ? rowToTriplet(rows[0] as Row) : null;
  }

  async getClient(client: string): Promise<ClientCounter | null> {
    checkKeyText('getClient', 'client', client);
    const { rows } = await this.query('getClient', SQL.getClient, [client]);
    return rows[0] ? rowToClient(rows[0] as Row) : null;
  }

  async lookup(key: TripletKey): Promise<TripletLookup> {
    checkTripletKey('lookup', key);
    const { rows } = await this.query('lookup', SQL.lookup, [
      key.client,
      key.sender,
      key.recipient,
    ]);
    if (!rows[0]) throw new StoreError('store lookup: the query returned no row');
    return columnsToLookup(rows[0] as unknown[]);
  }

  async countClient(client: string, now: number, countAfter: number): Promise<ClientCounter> {
    checkKeyText('countClient', 'client', client);
    checkTime('countClient', 'now', now);
    checkTime('countClient', 'countAfter', countAfter);
    const { rows } = await this.query('countClient', SQL.countClient, [client, now, countAfter]);
    if (!rows[0]) throw new StoreError('store countClient: the upsert returned no row');
    return rowToClient(rows[0] as Row);
  }

  async touchClient(client: string, now: number): Promise<void> {
    checkKeyText('touchClient', 'client', client);
    checkTime('touchClient', 'now', now);
    await this.query('touchClient', SQL.touchClient, [client, now]);
  }

  async logDecision(decision: Decision): Promise<void> {
    await this.query('logDecision', SQL.logDecision, decisionParams(decisionColumns(decision)));
  }

  async recentDecisions(limit: number): Promise<StoredDecision[]> {
    const { rows } = await this.query('recentDecisions', SQL.recentDecisions, [checkLimit(limit)]);
    return rows.map((row) => rowToDecision(row as Row));
  }

  async findDecisions(query: DecisionQuery): Promise<StoredDecision[]> {
    const { text, values } = findDecisionsQuery(checkDecisionQuery(query));
    const { rows } = await this.query('findDecisions', text, values);
    return rows.map((row) => rowToDecision(row as Row));
  }

  async countDecisions(from: number, to: number, bucketMs: number): Promise<DecisionCount[]> {
    const range = checkDecisionBuckets(from, to, bucketMs);
    const { rows } = await this.query('countDecisions', SQL.countDecisions, [
      range.from,
      range.to,
      range.bucketMs,
    ]);
    return rows.map((row) => rowToDecisionCount(row as Row, range));
  }

  async greylistSummary(whitelistAt: number): Promise<GreylistSummary> {
    const { rows } = await this.query('greylistSummary', SQL.greylistSummary, [
      checkWhitelistAt(whitelistAt),
    ]);
    return rowToGreylistSummary(rows[0] as Row | undefined);
  }

  async getCallback(sender: string, notBefore: number): Promise<CallbackRecord | null> {
    checkKeyText('getCallback', 'sender', sender);
    checkTime('getCallback', 'notBefore', notBefore);
    const { rows } = await this.query('getCallback', SQL.getCallback, [sender, notBefore]);
    return rows[0] ? rowToCallback(rows[0] as Row) : null;
  }

  async putCallback(record: CallbackRecord): Promise<void> {
    await this.query('putCallback', SQL.putCallback, callbackParams(record));
  }

  async takeRate(key: string, now: number, windowMs: number, limit: number): Promise<RateTaken> {
    const p = checkRate(key, now, windowMs, limit);
    const { rows } = await this.query('takeRate', SQL.takeRate, [
      p.key,
      p.now,
      p.restartAtOrBefore,
      p.limit,
    ]);
    if (!rows[0]) throw new StoreError('store takeRate: the upsert returned no row');
    const count = Number((rows[0] as Row)['count']);
    return { allowed: count <= limit, count };
  }

  async addReputation(deltas: readonly ReputationDelta[], halfLifeMs: number): Promise<void> {
    if (this.closing) throw closedError('addReputation', this.description);
    const halfLife = checkHalfLife('addReputation', halfLifeMs);
    const rounds = reputationRounds(deltas);
    const [first] = rounds;
    if (!first) return;
    // One round is one statement, atomic on its own; repeated keys need a transaction.
    if (rounds.length === 1) {
      await this.query('addReputation', SQL.addReputation, reputationParams(first, halfLife));
      return;
    }
    await this.transaction('addReputation', async (client) => {
      for (const round of rounds) {
        await client.query(SQL.addReputation, reputationParams(round, halfLife));
      }
    });
  }

  async getReputation(subjects: readonly string[]): Promise<ReputationRow[]> {
    if (this.closing) throw closedError('getReputation', this.description);
    const wanted = reputationLookupSubjects(subjects);
    if (wanted.length === 0) return [];
    const { rows } = await this.query('getReputation', SQL.getReputation, [wanted]);
    return sortReputationRows(rows.map((row) => rowToReputation(row as Row)));
  }

  async addDmarcResults(rows: readonly DmarcResultRow[]): Promise<void> {
    if (this.closing) throw closedError('addDmarcResults', this.description);
    if (!Array.isArray(rows)) throw new StoreError('store addDmarcResults: rows must be an array');
    // Every row is checked before any is written: a bad one refuses the batch.
    const params = rows.map(dmarcResultParams);
    if (params.length === 0) return;
    if (params.length <= DMARC_ROWS_PER_STATEMENT) {
      await this.query('addDmarcResults', SQL.addDmarcResults, dmarcColumnArrays(params));
      return;
    }
    await this.transaction('addDmarcResults', async (client) => {
      for (let at = 0; at < params.length; at += DMARC_ROWS_PER_STATEMENT) {
        const chunk = params.slice(at, at + DMARC_ROWS_PER_STATEMENT);
        await client.query(SQL.addDmarcResults, dmarcColumnArrays(chunk));
      }
    });
  }

  async dmarcResults(
    policyDomain: string | null,
    from: number,
    to: number,
    limit: number,
  ): Promise<StoredDmarcResultRow[]> {
    const q = dmarcQueryParams(policyDomain, from, to, limit);
    const { rows } =
      q.policyDomain === null
        ? await this.query('dmarcResults', SQL.dmarcResultsAll, [q.from, q.to, q.limit])
        : await this.query('dmarcResults', SQL.dmarcResultsOf, [
            q.policyDomain,
            q.from,
            q.to,
            q.limit,
          ]);
    return rows.map((row) => dmarcResultFromColumns(row as Row));
  }

  async expire(cutoffs: ExpiryCutoffs): Promise<ExpiryCounts> {
    checkCutoffs(cutoffs);
    const { callbacksBefore, ratesBefore, reputationBefore, dmarcBefore } = cutoffs;
    return this.transaction('expire', async (client) => ({
      passed: (await client.query(SQL.expirePassed, [cutoffs.passedBefore])).rowCount ?? 0,
      greylisted:
        (await client.query(SQL.expireGreylisted, [cutoffs.greylistedBefore])).rowCount ?? 0,
      clients: (await client.query(SQL.expireClients, [cutoffs.clientsBefore])).rowCount ?? 0,
      decisions: (await client.query(SQL.expireDecisions, [cutoffs.decisionsBefore])).rowCount ?? 0,
      callbacks:
        callbacksBefore === undefined
          ? 0
          : ((await client.query(SQL.expireCallbacks, [callbacksBefore])).rowCount ?? 0),
      rates:
        ratesBefore === undefined
          ? 0
          : ((await client.query(SQL.expireRates, [ratesBefore])).rowCount ?? 0),
      reputation:
        reputationBefore === undefined
          ? 0
          : ((await client.query(SQL.expireReputation, [reputationBefore])).rowCount ?? 0),
      ...(dmarcBefore === undefined
        ? {}
        : { dmarc: (await client.query(SQL.expireDmarc, [dmarcBefore])).rowCount ?? 0 }),
    }));
  }

  async schemaVersion(): Promise<number> {
    const { rows } = await this.query('schemaVersion', CURRENT_VERSION_SQL);
    return Number((rows[0] as Row | undefined)?.['version'] ?? 0);
  }

  async ping(): Promise<void> {
    await this.query('ping', 'SELECT 1');
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end().catch((error: unknown) => {
      this.logger.warn(
        { err: redact(String(error), this.target.secrets), store: this.description },
        'closing the PostgreSQL pool failed',
      );
    });
    return this.closing;
  }
}

/**
 * While a connection is checked out the pool does not listen for its errors, and an `error`
 * event without a listener ends the process; this listens, logs, and keeps the error so that the
 * connection is discarded rather than pooled again.
 */
function watchCheckedOut(
  client: pg.PoolClient,
  logger: NonNullable<OpenStoreOptions['logger']>,
  target: PostgresTarget,
) {
  const state: { error: Error | undefined; stop(): void } = {
    error: undefined,
    stop: () => client.removeListener('error', onError),
  };
  function onError(error: Error) {
    state.error = error;
    logger.warn(
      { err: redact(error.message, target.secrets), store: target.description },
      'PostgreSQL connection failed while in use',
    );
  }
  client.on('error', onError);
  return state;
}

/**
 * Opens a PostgreSQL store: a pool, and the schema brought up to date under an advisory lock.
 * Rejects with a StoreError (no password in it) when the server cannot be reached within the
 * connect timeout or refuses the login.
 *
 * @example
 * const store = await openPostgres(
 *   { url: 'postgres://mailgate@db1/mailgate', description: 'postgres://mailgate@db1/mailgate', secrets: [] },
 *   { poolSize: 10 },
 * );
 */
export async function openPostgres(
  target: PostgresTarget,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const logger = options.logger ?? stderrStoreLogger;
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: target.url,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      query_timeout: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
      // The client's timeout only stops waiting; the server would run the statement on and
      // commit a write we already reported as failed. Make the server give up too.
      statement_timeout: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      application_name: 'mailgate',
    });
  } catch (error) {
    throw storeError(`open ${target.description}`, error, target.secrets);
  }
  // An idle connection that the server drops (restart, failover, idle kill) is reported here;
  // the pool discards it and opens another when one is next needed.
  pool.on('error', (error) => {
    logger.warn(
      { err: redact(error.message, target.secrets), store: target.description },
      'idle PostgreSQL connection lost; the pool will reconnect',
    );
  });
  try {
    const client = await pool.connect();
    const lost = watchCheckedOut(client, logger, target);
    let failed = false;
    try {
      await migratePostgres(client, target.description);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      lost.stop();
      // After a failure the connection may be mid-transaction; it is not pooled again.
      client.release(lost.error ?? failed);
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw storeError(`open ${target.description}`, error, target.secrets);
  }
  return new PostgresStore(pool, target, logger);
}
