/**
 * The schema, as an ordered list of versioned migrations with SQL for each dialect, and the code
 * that brings a database up to date when a store opens. Applied versions are recorded in
 * `mailgate_schema`; a database at a version this code does not know (written by a newer
 * mailgate) is refused rather than used, since its tables may mean something else by now.
 *
 * A new migration is appended with the next version and never edits an earlier one: databases
 * out there have run the earlier ones already.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { ClientBase } from 'pg';
import { StoreError } from './types.js';

/** One schema step. Each dialect's statements run in order, in one transaction with the rest. */
export interface Migration {
  version: number;
  description: string;
  sqlite: readonly string[];
  postgres: readonly string[];
}

/**
 * Times are bigint milliseconds in both dialects (SQLite's INTEGER is 64-bit). The triplet key is
 * the primary key, which is what makes concurrent first attempts create one row. Scores (and,
 * from version 2, tags) are JSON text rather than jsonb so that both dialects store the same
 * bytes.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'greylist triplets, client counters, decision log',
    sqlite: [
      `CREATE TABLE triplets (
        client TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('greylisted', 'passed')),
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        fail_count INTEGER NOT NULL DEFAULT 0,
        pass_count INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (client, sender, recipient)
      ) WITHOUT ROWID`,
      'CREATE INDEX triplets_last_seen ON triplets (last_seen)',
      `CREATE TABLE client_counters (
        client TEXT PRIMARY KEY NOT NULL,
        count INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_counted INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
      ) WITHOUT ROWID`,
      'CREATE INDEX client_counters_last_seen ON client_counters (last_seen)',
      `CREATE TABLE decision_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        host TEXT NOT NULL,
        client TEXT NOT NULL,
        client_name TEXT,
        helo TEXT,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        delay REAL,
        scores TEXT
      )`,
      'CREATE INDEX decision_log_time ON decision_log (time)',
    ],
    postgres: [
      `CREATE TABLE triplets (
        client TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('greylisted', 'passed')),
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        fail_count INTEGER NOT NULL DEFAULT 0,
        pass_count INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (client, sender, recipient)
      )`,
      'CREATE INDEX triplets_last_seen ON triplets (last_seen)',
      `CREATE TABLE client_counters (
        client TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        first_seen BIGINT NOT NULL,
        last_counted BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
      )`,
      'CREATE INDEX client_counters_last_seen ON client_counters (last_seen)',
      `CREATE TABLE decision_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time BIGINT NOT NULL,
        host TEXT NOT NULL,
        client TEXT NOT NULL,
        client_name TEXT,
        helo TEXT,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        delay DOUBLE PRECISION,
        scores TEXT
      )`,
      'CREATE INDEX decision_log_time ON decision_log (time)',
    ],
  },
  // The sender is the call-back cache's primary key, so a result is kept once per sender and
  // upserts replace it. A rate window is one row per key, counted by an upsert; its count is a
  // bigint because the limit it is compared with comes from the configuration. The decision
  // log's new columns are nullable: lines written before stay as they were.
  {
    version: 2,
    description: 'call-back verification cache, shared rate limits, decision stage and tags',
    sqlite: [
      `CREATE TABLE callback_cache (
        sender TEXT PRIMARY KEY NOT NULL,
        result TEXT NOT NULL
          CHECK (result IN ('accepted', 'rejected', 'dsn-accepted', 'dsn-rejected')),
        reply TEXT NOT NULL,
        time INTEGER NOT NULL,
        host TEXT NOT NULL
      ) WITHOUT ROWID`,
      'CREATE INDEX callback_cache_time ON callback_cache (time)',
      `CREATE TABLE rate_limits (
        key TEXT PRIMARY KEY NOT NULL,
        window_start INTEGER NOT NULL,
        count INTEGER NOT NULL
      ) WITHOUT ROWID`,
      'CREATE INDEX rate_limits_window_start ON rate_limits (window_start)',
      'ALTER TABLE decision_log ADD COLUMN stage TEXT',
      'ALTER TABLE decision_log ADD COLUMN tags TEXT',
    ],
    postgres: [
      `CREATE TABLE callback_cache (
        sender TEXT PRIMARY KEY,
        result TEXT NOT NULL
          CHECK (result IN ('accepted', 'rejected', 'dsn-accepted', 'dsn-rejected')),
        reply TEXT NOT NULL,
        time BIGINT NOT NULL,
        host TEXT NOT NULL
      )`,
      'CREATE INDEX callback_cache_time ON callback_cache (time)',
      `CREATE TABLE rate_limits (
        key TEXT PRIMARY KEY,
        window_start BIGINT NOT NULL,
        count BIGINT NOT NULL
      )`,
      'CREATE INDEX rate_limits_window_start ON rate_limits (window_start)',
      'ALTER TABLE decision_log ADD COLUMN stage TEXT',
      'ALTER TABLE decision_log ADD COLUMN tags TEXT',
    ],
  },
  // One decaying counter per (subject, event): the amount as it was at `updated`, which the
  // upsert decays and adds to in one statement (see Store.addReputation). A double, not an
  // integer, because decayed amounts are fractions. Expiry goes by `updated`, hence its index.
  {
    version: 3,
    description: 'reputation counters',
    sqlite: [
      `CREATE TABLE reputation (
        subject TEXT NOT NULL,
        event TEXT NOT NULL,
        amount REAL NOT NULL CHECK (amount >= 0),
        updated INTEGER NOT NULL,
        PRIMARY KEY (subject, event)
      ) WITHOUT ROWID`,
      'CREATE INDEX reputation_updated ON reputation (updated)',
    ],
    postgres: [
      `CREATE TABLE reputation (
        subject TEXT NOT NULL,
        event TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL CHECK (amount >= 0),
        updated BIGINT NOT NULL,
        PRIMARY KEY (subject, event)
      )`,
      'CREATE INDEX reputation_updated ON reputation (updated)',
    ],
  },
  // One row per message DMARC evaluated, for aggregate reports (RFC 9990): reports are built
  // per policy domain and period, hence the (policy_domain, time) index; expiry goes by time.
  // The published policy's columns are NULL when no record applied. Flags are 0/1 integers and
  // the DKIM and SPF results JSON text, so that both dialects store the same values.
  {
    version: 4,
    description: 'DMARC results for aggregate reports',
    sqlite: [
      `CREATE TABLE dmarc_results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        source_ip TEXT NOT NULL,
        header_from TEXT NOT NULL,
        envelope_from TEXT,
        policy_domain TEXT,
        p TEXT CHECK (p IN ('none', 'quarantine', 'reject')),
        sp TEXT CHECK (sp IN ('none', 'quarantine', 'reject')),
        np TEXT CHECK (np IN ('none', 'quarantine', 'reject')),
        adkim TEXT CHECK (adkim IN ('r', 's')),
        aspf TEXT CHECK (aspf IN ('r', 's')),
        testing INTEGER CHECK (testing IN (0, 1)),
        psd TEXT CHECK (psd IN ('y', 'n', 'u')),
        disposition TEXT NOT NULL CHECK (disposition IN ('none', 'quarantine', 'reject')),
        override TEXT,
        result TEXT NOT NULL
          CHECK (result IN ('pass', 'fail', 'none', 'temperror', 'permerror')),
        spf_aligned INTEGER NOT NULL CHECK (spf_aligned IN (0, 1)),
        dkim_aligned INTEGER NOT NULL CHECK (dkim_aligned IN (0, 1)),
        dkim TEXT NOT NULL,
        spf TEXT
      )`,
      'CREATE INDEX dmarc_results_policy_domain_time ON dmarc_results (policy_domain, time)',
      'CREATE INDEX dmarc_results_time ON dmarc_results (time)',
    ],
    postgres: [
      `CREATE TABLE dmarc_results (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time BIGINT NOT NULL,
        source_ip TEXT NOT NULL,
        header_from TEXT NOT NULL,
        envelope_from TEXT,
        policy_domain TEXT,
        p TEXT CHECK (p IN ('none', 'quarantine', 'reject')),
        sp TEXT CHECK (sp IN ('none', 'quarantine', 'reject')),
        np TEXT CHECK (np IN ('none', 'quarantine', 'reject')),
        adkim TEXT CHECK (adkim IN ('r', 's')),
        aspf TEXT CHECK (aspf IN ('r', 's')),
        testing SMALLINT CHECK (testing IN (0, 1)),
        psd TEXT CHECK (psd IN ('y', 'n', 'u')),
        disposition TEXT NOT NULL CHECK (disposition IN ('none', 'quarantine', 'reject')),
        override TEXT,
        result TEXT NOT NULL
          CHECK (result IN ('pass', 'fail', 'none', 'temperror', 'permerror')),
        spf_aligned SMALLINT NOT NULL CHECK (spf_aligned IN (0, 1)),
        dkim_aligned SMALLINT NOT NULL CHECK (dkim_aligned IN (0, 1)),
        dkim TEXT NOT NULL,
        spf TEXT
      )`,
      'CREATE INDEX dmarc_results_policy_domain_time ON dmarc_results (policy_domain, time)',
      'CREATE INDEX dmarc_results_time ON dmarc_results (time)',
    ],
  },
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Any key works as long as every mailgate uses the same one; this is "mailgate" in ASCII, so it
 * is recognisable in pg_locks.
 */
export const POSTGRES_MIGRATION_LOCK = '7881694341520761957';

/** The table of applied versions, per dialect; tests build older databases with it. */
export const SCHEMA_TABLE_SQLITE = `CREATE TABLE IF NOT EXISTS mailgate_schema (
  version INTEGER PRIMARY KEY NOT NULL,
  description TEXT NOT NULL,
  applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)`;

/** See SCHEMA_TABLE_SQLITE. */
export const SCHEMA_TABLE_POSTGRES = `CREATE TABLE IF NOT EXISTS mailgate_schema (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

export const CURRENT_VERSION_SQL =
  'SELECT coalesce(max(version), 0) AS version FROM mailgate_schema';

/**
 * The migrations a database at `current` still needs, in order; throws when the database is
 * newer than this code.
 *
 * @example
 * pendingMigrations(0).map((m) => m.version)  // [1, 2, 3, 4]
 * pendingMigrations(1).map((m) => m.version)  // [2, 3, 4]
 */
export function pendingMigrations(current: number, where = 'the database'): Migration[] {
  if (current > SCHEMA_VERSION) {
    throw new StoreError(
      `${where} is at schema version ${current}, newer than this mailgate knows (${SCHEMA_VERSION}); ` +
        'refusing to use it: upgrade mailgate, or point it at another database',
    );
  }
  return MIGRATIONS.filter((m) => m.version > current);
}

/**
 * Brings an SQLite database up to date in one IMMEDIATE transaction, which takes the write lock
 * at once: a second process opening the same file waits (busy timeout) and then finds the work
 * done. Returns the version the database is at.
 *
 * @example
 * const version = migrateSqlite(new Database('./var/mailgate.db'), 'sqlite:./var/mailgate.db');
 */
export function migrateSqlite(db: BetterSqlite3.Database, where: string): number {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(SCHEMA_TABLE_SQLITE);
    const row = db.prepare(CURRENT_VERSION_SQL).get() as { version: number };
    const record = db.prepare('INSERT INTO mailgate_schema (version, description) VALUES (?, ?)');
    let version = Number(row.version);
    for (const migration of pendingMigrations(version, where)) {
      for (const sql of migration.sqlite) db.exec(sql);
      record.run(migration.version, migration.description);
      version = migration.version;
    }
    db.exec('COMMIT');
    return version;
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/**
 * Brings a PostgreSQL database up to date in one transaction under a transaction-level advisory
 * lock, so that several MX hosts starting at once apply each migration once: the others wait on
 * the lock and then find the work done. Returns the version the database is at. The caller owns
 * the connection (and its release).
 *
 * @example
 * const version = await migratePostgres(await pool.connect(), 'postgres://mailgate@db/mailgate');
 */
export async function migratePostgres(client: ClientBase, where: string): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [POSTGRES_MIGRATION_LOCK]);
    await client.query(SCHEMA_TABLE_POSTGRES);
    const { rows } = await client.query<{ version: number | string }>(CURRENT_VERSION_SQL);
    let version = Number(rows[0]?.version ?? 0);
    for (const migration of pendingMigrations(version, where)) {
      for (const sql of migration.postgres) await client.query(sql);
      await client.query('INSERT INTO mailgate_schema (version, description) VALUES ($1, $2)', [
        migration.version,
        migration.description,
      ]);
      version = migration.version;
    }
    await client.query('COMMIT');
    return version;
  } catch (error) {
    // A failed ROLLBACK means the connection is gone; the first error is the one to report.
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
