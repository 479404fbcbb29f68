/**
 * The behaviour every store backend must have, written once and run against SQLite and
 * PostgreSQL (sqlite.test.ts, postgres.test.ts). Each test takes a fresh database from the
 * backend, so tests neither see nor disturb each other's rows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type CallbackRecord,
  type Decision,
  type DecisionQuery,
  type DmarcResultRow,
  MAX_DMARC_DKIM_RESULTS,
  MAX_DMARC_TEXT,
  MIGRATIONS,
  type OpenStoreOptions,
  type ReputationDelta,
  SCHEMA_VERSION,
  type Store,
  StoreError,
  type TripletKey,
} from '../../src/store/index.js';
import { SCHEMA_TABLE_POSTGRES, SCHEMA_TABLE_SQLITE } from '../../src/store/migrations.js';

/** A fresh, empty database of the backend under test. */
export interface SuiteDatabase {
  url: string;
  open(options?: OpenStoreOptions): Promise<Store>;
  /** Raw SQL against the database, bypassing the store (to inspect or tamper). */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

export interface SuiteBackend {
  kind: 'sqlite' | 'postgres';
  freshDatabase(): Promise<SuiteDatabase>;
}

const KEY: TripletKey = {
  client: '192.0.2.1',
  sender: 'alice@example.org',
  recipient: 'bob@example.net',
};

const CALLBACK: CallbackRecord = {
  sender: 'alice@example.org',
  result: 'accepted',
  reply: '250 2.1.5 Ok',
  time: 1_000,
  host: 'mx1.example.net',
};

/** A DMARC result with every field given. */
const DMARC_FULL: DmarcResultRow = {
  time: 5_000,
  sourceIp: '192.0.2.25',
  headerFrom: 'news.example.org',
  envelopeFrom: 'bounce.example.org',
  policyDomain: 'example.org',
  published: {
    p: 'reject',
    sp: 'quarantine',
    np: 'reject',
    adkim: 's',
    aspf: 'r',
    testing: true,
    psd: 'n',
  },
  disposition: 'quarantine',
  override: 'local_policy',
  result: 'fail',
  spfAligned: false,
  dkimAligned: true,
  dkim: [
    { domain: 'example.org', selector: 's2026', result: 'pass' },
    { domain: 'esp.example', result: 'fail' },
  ],
  spf: { domain: 'bounce.example.org', scope: 'mfrom', result: 'softfail' },
};

/** A DMARC result with only what every row has. */
const DMARC_BARE: DmarcResultRow = {
  time: 6_000,
  sourceIp: '2001:db8::25',
  headerFrom: 'nowhere.example',
  disposition: 'none',
  result: 'none',
  spfAligned: false,
  dkimAligned: false,
  dkim: [],
};

/** A DMARC result for a policy domain (or none) at a time. */
function dmarcAt(policyDomain: string | undefined, time: number): DmarcResultRow {
  const { policyDomain: _full, ...rest } = DMARC_FULL;
  const row: DmarcResultRow = { ...rest, time, headerFrom: `t${time}.example` };
  if (policyDomain !== undefined) row.policyDomain = policyDomain;
  return row;
}

/** Rows as read back, without their ids. */
const withoutIds = <T extends { id: number }>(rows: T[]) =>
  rows.map(({ id: _id, ...rest }) => rest);

/** A reputation delta. */
const REP = (subject: string, event: string, amount: number, time: number): ReputationDelta => ({
  subject,
  event,
  amount,
  time,
});

const count = async (db: SuiteDatabase, table: string) =>
  Number((await db.query(`SELECT count(*) AS n FROM ${table}`))[0]?.['n']);

/** A decision-log line: a plain greylisting one, with `fields` over it. */
const line = (fields: Partial<Decision>): Decision => ({
  time: 1_000,
  host: 'mx1.example.net',
  client: '203.0.113.9',
  sender: 'someone@example.org',
  recipient: 'postmaster@example.net',
  action: 'greylist',
  reason: 'new-clean',
  ...fields,
});

/** Asserts that a promise rejects with a StoreError whose message matches. */
async function rejectsStore(promise: Promise<unknown>, message: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StoreError, `not a StoreError: ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

/**
 * Registers the shared tests. `backend` is called inside each test, so the caller may set it up
 * in `before`.
 *
 * @example
 * describe('sqlite store', () => storeSuite(() => sqliteBackend));
 */
export function storeSuite(backend: () => SuiteBackend): void {
  /** Opens a fresh database, runs `body`, closes every store it opened. */
  async function withDatabase(body: (db: SuiteDatabase, open: SuiteDatabase['open']) => unknown) {
    const db = await backend().freshDatabase();
    const opened: Store[] = [];
    const open = async (options?: OpenStoreOptions) => {
      const store = await db.open(options);
      opened.push(store);
      return store;
    };
    try {
      await body(db, open);
    } finally {
      await Promise.all(opened.map((store) => store.close()));
    }
  }

  test('migrations create the schema and record every version', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      assert.equal(store.kind, backend().kind);
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      const versions = await db.query('SELECT version FROM mailgate_schema ORDER BY version');
      assert.deepEqual(
        versions.map((row) => Number(row['version'])),
        MIGRATIONS.map((m) => m.version),
      );
      for (const table of [
        'triplets',
        'client_counters',
        'decision_log',
        'callback_cache',
        'rate_limits',
        'reputation',
        'dmarc_results',
      ]) {
        assert.equal(await count(db, table), 0, table);
      }
      await store.ping();
    }));

  test('reopening is idempotent and keeps the data', () =>
    withDatabase(async (db, open) => {
      const first = await open();
      await first.firstAttempt(KEY, 'greylisted', 1_000);
      await first.close();
      const again = await open();
      assert.equal(await again.schemaVersion(), SCHEMA_VERSION);
      assert.equal(await count(db, 'mailgate_schema'), MIGRATIONS.length);
      assert.equal((await again.getTriplet(KEY))?.firstSeen, 1_000);
    }));

  test('stores opening a new database at once migrate it once', () =>
    withDatabase(async (db, open) => {
      const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
      for (const store of stores) assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      assert.equal(await count(db, 'mailgate_schema'), MIGRATIONS.length);
    }));

  test('a database at a newer schema version is refused', () =>
    withDatabase(async (db, open) => {
      await (await open()).close();
      const newer = SCHEMA_VERSION + 1;
      await db.query(
        `INSERT INTO mailgate_schema (version, description) VALUES (${newer}, 'from the future')`,
      );
      await rejectsStore(
        db.open(),
        new RegExp(
          `schema version ${newer}, newer than this mailgate knows \\(${SCHEMA_VERSION}\\)`,
        ),
      );
    }));

  test('a version-1 database is migrated to the current version with its rows intact', () =>
    withDatabase(async (db, open) => {
      // Built by hand as mailgate 1 left it: the schema table, migration 1, a row in each table.
      const kind = backend().kind;
      const first = MIGRATIONS[0];
      assert.ok(first && first.version === 1);
      await db.query(kind === 'sqlite' ? SCHEMA_TABLE_SQLITE : SCHEMA_TABLE_POSTGRES);
      for (const sql of first[kind]) await db.query(sql);
      await db.query(
        `INSERT INTO mailgate_schema (version, description) VALUES (1, '${first.description}')`,
      );
      await db.query(
        `INSERT INTO triplets VALUES
           ('192.0.2.1', 'alice@example.org', 'bob@example.net', 'passed', 1000, 2000, 1, 3)`,
      );
      await db.query(`INSERT INTO client_counters VALUES ('192.0.2.1', 4, 1000, 1500, 2000)`);
      await db.query(
        `INSERT INTO decision_log
           (time, host, client, client_name, helo, sender, recipient, action, reason, delay, scores)
         VALUES (2000, 'mx1', '192.0.2.1', NULL, 'mail.example.org', 'alice@example.org',
                 'bob@example.net', 'pass', 'waited', 12.5, '{"dnsbl":1}')`,
      );

      const store = await open();
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      assert.ok(SCHEMA_VERSION >= 2);
      const versions = await db.query('SELECT version FROM mailgate_schema ORDER BY version');
      assert.deepEqual(
        versions.map((row) => Number(row['version'])),
        MIGRATIONS.map((m) => m.version),
      );
      assert.deepEqual(await store.getTriplet(KEY), {
        ...KEY,
        state: 'passed',
        firstSeen: 1_000,
        lastSeen: 2_000,
        failCount: 1,
        passCount: 3,
      });
      assert.deepEqual(await store.getClient('192.0.2.1'), {
        client: '192.0.2.1',
        count: 4,
        firstSeen: 1_000,
        lastCounted: 1_500,
        lastSeen: 2_000,
      });
      const [old] = await store.recentDecisions(1);
      assert.ok(old);
      const { id, ...rest } = old;
      assert.equal(typeof id, 'number');
      assert.deepEqual(rest, {
        time: 2_000,
        host: 'mx1',
        client: '192.0.2.1',
        helo: 'mail.example.org',
        sender: 'alice@example.org',
        recipient: 'bob@example.net',
        action: 'pass',
        reason: 'waited',
        delay: 12.5,
        scores: { dnsbl: 1 },
      });
      // What version 2 added works on the migrated database, beside the old rows.
      await store.logDecision({ ...rest, time: 3_000, stage: 'rcpt', tags: ['REJECT'] });
      assert.deepEqual(
        (await store.recentDecisions(5)).map((d) => [d.time, d.stage, d.tags]),
        [
          [3_000, 'rcpt', ['REJECT']],
          [2_000, undefined, undefined],
        ],
      );
      await store.putCallback(CALLBACK);
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 0), CALLBACK);
      assert.deepEqual(await store.takeRate('k', 1_000, 1_000, 5), { allowed: true, count: 1 });
      // And what version 3 added.
      await store.addReputation([REP('domain:example.org', 'spf:pass', 1, 1_000)], 1_000);
      assert.deepEqual(await store.getReputation(['domain:example.org']), [
        { subject: 'domain:example.org', event: 'spf:pass', amount: 1, updated: 1_000 },
      ]);
      await store.close();
      assert.equal(await (await open()).schemaVersion(), SCHEMA_VERSION, 'reopening is a no-op');
      assert.equal(await count(db, 'mailgate_schema'), MIGRATIONS.length);
    }));

  test('a version-2 database gains the reputation table and keeps its rows', () =>
    withDatabase(async (db, open) => {
      const kind = backend().kind;
      await db.query(kind === 'sqlite' ? SCHEMA_TABLE_SQLITE : SCHEMA_TABLE_POSTGRES);
      for (const migration of MIGRATIONS.filter((m) => m.version <= 2)) {
        for (const sql of migration[kind]) await db.query(sql);
        await db.query(
          `INSERT INTO mailgate_schema (version, description)
           VALUES (${migration.version}, '${migration.description}')`,
        );
      }
      await db.query(
        `INSERT INTO callback_cache VALUES ('alice@example.org', 'accepted', '250 2.1.5 Ok', 1000, 'mx1.example.net')`,
      );
      const store = await open();
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      assert.ok(SCHEMA_VERSION >= 3);
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 0), CALLBACK);
      assert.equal(await count(db, 'reputation'), 0);
      await store.addReputation([REP('net:192.0.2.0/24', 'greylist:pass', 1, 5_000)], 1_000);
      assert.equal(await count(db, 'reputation'), 1);
    }));

  test('firstAttempt creates once and then returns the stored triplet', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      assert.equal(await store.getTriplet(KEY), null);
      const first = await store.firstAttempt(KEY, 'greylisted', 1_000);
      assert.equal(first.created, true);
      assert.deepEqual(first.triplet, {
        ...KEY,
        state: 'greylisted',
        firstSeen: 1_000,
        lastSeen: 1_000,
        failCount: 0,
        passCount: 0,
      });
      const second = await store.firstAttempt(KEY, 'passed', 5_000);
      assert.equal(second.created, false);
      assert.deepEqual(second.triplet, first.triplet);
      assert.deepEqual(await store.getTriplet(KEY), first.triplet);

      const passedKey = { ...KEY, recipient: 'carol@example.net' };
      const passed = await store.firstAttempt(passedKey, 'passed', 2_000);
      assert.equal(passed.created, true);
      assert.equal(passed.triplet.state, 'passed');
      assert.equal(passed.triplet.passCount, 1);
      await rejectsStore(
        store.firstAttempt(KEY, 'whitelisted' as never, 1),
        /firstAttempt: unknown state/,
      );
    }));

  test('keys match exactly: case, null sender and each part count', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const keys: TripletKey[] = [
        KEY,
        { ...KEY, sender: 'Alice@example.org' },
        { ...KEY, sender: '' },
        { ...KEY, client: '192.0.2.0/24' },
        { ...KEY, recipient: 'bob@example.net ' },
        { client: KEY.sender, sender: KEY.client, recipient: KEY.recipient },
      ];
      for (const key of keys)
        assert.equal((await store.firstAttempt(key, 'greylisted', 1)).created, true);
      for (const key of keys) assert.deepEqual((await store.getTriplet(key))?.sender, key.sender);
    }));

  test('fifty concurrent first attempts through two stores create one row per key', () =>
    withDatabase(async (db, open) => {
      const poolSize = 25;
      const [a, b] = [await open({ poolSize }), await open({ poolSize })];
      // Open every pooled connection first, so the attempts below really run side by side
      // rather than queueing behind connection set-up.
      await Promise.all(Array.from({ length: poolSize * 2 }, (_, i) => (i % 2 ? a : b).ping()));
      const keys = Array.from({ length: 20 }, (_, k) => ({ ...KEY, sender: `s${k}@example.org` }));
      const attempts = await Promise.all(
        keys.map((key) =>
          Promise.all(
            Array.from({ length: 50 }, (_, i) =>
              (i % 2 === 0 ? a : b).firstAttempt(key, 'greylisted', 10_000 + i),
            ),
          ),
        ),
      );
      for (const perKey of attempts) {
        assert.equal(perKey.filter((x) => x.created).length, 1);
        const firstSeen = new Set(perKey.map((x) => x.triplet.firstSeen));
        assert.equal(firstSeen.size, 1, 'every caller sees the one stored row');
      }
      assert.equal(await count(db, 'triplets'), keys.length);
    }));

  /**
   * Runs `children` hammer.ts processes against the database (migrated first, so that they only
   * race on rows), starts them together, and returns what each printed.
   */
  async function runHammers(db: SuiteDatabase, args: string[], children = 3) {
    const hammer = fileURLToPath(new URL('./hammer.ts', import.meta.url));
    const processes = Array.from({ length: children }, () =>
      spawn(process.execPath, ['--import', 'tsx', hammer, db.url, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        // `--import tsx` resolves from the working directory: the repository's.
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
      }),
    );
    const outputs = processes.map((child) => {
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d;
      });
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.startsWith('ready\n')) resolve();
        });
      });
      const done = new Promise<number[]>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => {
          if (code === 0) resolve(JSON.parse(out.slice('ready\n'.length)) as number[]);
          else reject(new Error(`hammer exited ${code}: ${err}`));
        });
      });
      return { ready, done };
    });
    // A child that dies before it is ready fails the test through `done`, not a hang.
    await Promise.race([
      Promise.all(outputs.map((o) => o.ready)),
      Promise.all(outputs.map((o) => o.done)),
    ]);
    for (const child of processes) child.stdin.write('go\n');
    return Promise.all(outputs.map((o) => o.done));
  }

  test('first attempts from several processes at once create one row per key', () =>
    withDatabase(async (db, open) => {
      await (await open()).close();
      const keys = 20;
      const runs = await runHammers(db, [String(keys)]);
      const created = runs.flat().sort((x, y) => x - y);
      assert.deepEqual(
        created,
        Array.from({ length: keys }, (_, i) => i),
        'each key created exactly once across processes',
      );
      assert.equal(await count(db, 'triplets'), keys);
    }));

  test('early retries and passes update counters; unknown triplets give null', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const unknown = { ...KEY, sender: 'nobody@example.org' };
      assert.equal(await store.recordEarlyRetry(unknown, 2_000), null);
      assert.equal(await store.recordPass(unknown, 2_000), null);
      assert.equal(await store.getTriplet(unknown), null, 'no row appears for an unknown key');

      await store.firstAttempt(KEY, 'greylisted', 1_000);
      await store.recordEarlyRetry(KEY, 2_000);
      const retried = await store.recordEarlyRetry(KEY, 3_000);
      assert.deepEqual(retried, {
        ...KEY,
        state: 'greylisted',
        firstSeen: 1_000,
        lastSeen: 3_000,
        failCount: 2,
        passCount: 0,
      });
      const passed = await store.recordPass(KEY, 4_000);
      assert.deepEqual(passed, { ...retried, state: 'passed', lastSeen: 4_000, passCount: 1 });
      const again = await store.recordPass(KEY, 5_000);
      assert.equal(again?.passCount, 2);
      assert.equal(again?.lastSeen, 5_000);
      assert.deepEqual(await store.getTriplet(KEY), again);
    }));

  test('an early retry seen by two MX hosts at once is counted once', () =>
    withDatabase(async (_db, open) => {
      const [mx1, mx2] = [await open(), await open()];
      await mx1.firstAttempt(KEY, 'greylisted', 1_000);
      // Both read the triplet (last seen at 1 000) and both take this for a new attempt; the
      // store, checking the minute again, counts it once.
      const [a, b] = await Promise.all([
        mx1.recordEarlyRetry(KEY, 70_000, 70_000 - 60_000),
        mx2.recordEarlyRetry(KEY, 70_001, 70_001 - 60_000),
      ]);
      assert.deepEqual([a?.failCount, b?.failCount], [1, 1]);
      const stored = await mx1.getTriplet(KEY);
      assert.equal(stored?.failCount, 1);
      assert.ok(stored?.lastSeen === 70_000 || stored?.lastSeen === 70_001);
      // Within the minute: the row as it is, nothing written.
      const same = await mx2.recordEarlyRetry(KEY, 100_000, 100_000 - 60_000);
      assert.deepEqual(same, stored);
      // A minute later: counted.
      const later = await mx2.recordEarlyRetry(KEY, 140_000, 140_000 - 60_000);
      assert.equal(later?.failCount, 2);
      assert.equal(later?.lastSeen, 140_000);
      await rejectsStore(
        mx1.recordEarlyRetry(KEY, 150_000, 1.5),
        /recordEarlyRetry: sameAttemptAfter must be integral milliseconds/,
      );
    }));

  test('client counters count only when last counted before countAfter', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const client = '203.0.113.9';
      assert.equal(await store.getClient(client), null);
      await store.touchClient(client, 500);
      assert.equal(await store.getClient(client), null, 'touching an unknown client adds nothing');

      const first = await store.countClient(client, 1_000, 0);
      assert.deepEqual(first, {
        client,
        count: 1,
        firstSeen: 1_000,
        lastCounted: 1_000,
        lastSeen: 1_000,
      });
      // Counted at 1000; a countAfter of 1000 is not after it, so this delivery is not counted.
      const same = await store.countClient(client, 2_000, 1_000);
      assert.deepEqual(same, { ...first, lastSeen: 2_000 });
      const counted = await store.countClient(client, 3_000, 1_001);
      assert.deepEqual(counted, {
        client,
        count: 2,
        firstSeen: 1_000,
        lastCounted: 3_000,
        lastSeen: 3_000,
      });
      await store.touchClient(client, 4_000);
      assert.deepEqual(await store.getClient(client), { ...counted, lastSeen: 4_000 });
      assert.equal(await store.getClient('203.0.113.10'), null);
    }));

  test('lookup reads a triplet and its client counter together', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      // Times past 2^32 ms: PostgreSQL's bigints must come back as numbers, as from getTriplet.
      const t = 1_700_000_000_000;
      const other = { ...KEY, client: '192.0.2.2' };
      assert.deepEqual(await store.lookup(KEY), { triplet: null, counter: null }, 'neither');

      const counter = await store.countClient(KEY.client, t, 0);
      assert.deepEqual(await store.lookup(KEY), { triplet: null, counter }, 'counter only');
      const { triplet: otherTriplet } = await store.firstAttempt(other, 'greylisted', t + 1);
      assert.deepEqual(
        await store.lookup(other),
        { triplet: otherTriplet, counter: null },
        'triplet only: the counter of another client is not its own',
      );
      const { triplet } = await store.firstAttempt(KEY, 'passed', t + 2);
      assert.deepEqual(await store.lookup(KEY), { triplet, counter }, 'both');
      assert.deepEqual(
        await store.lookup({ ...KEY, sender: 'carol@example.org' }),
        { triplet: null, counter },
        'the counter goes by client alone, the triplet by the whole key',
      );

      /** What lookup gives equals getTriplet and getClient, read one after the other. */
      const agrees = async (key: TripletKey, after: string) =>
        assert.deepEqual(
          await store.lookup(key),
          { triplet: await store.getTriplet(key), counter: await store.getClient(key.client) },
          after,
        );
      await store.recordEarlyRetry(other, t + 10);
      await agrees(other, 'recordEarlyRetry');
      await store.recordPass(other, t + 20);
      await agrees(other, 'recordPass');
      await store.countClient(other.client, t + 30, 0);
      await agrees(other, 'countClient');
      await store.countClient(KEY.client, t + 40, t + 1);
      await agrees(KEY, 'countClient again');
      await store.touchClient(KEY.client, t + 50);
      await agrees(KEY, 'touchClient');
      await store.recordPass(KEY, t + 60);
      await agrees(KEY, 'recordPass of a passed triplet');
      const both = await store.lookup(KEY);
      assert.equal(both.triplet?.passCount, 2);
      assert.equal(both.triplet?.lastSeen, t + 60);
      assert.equal(both.counter?.count, 2);
      assert.equal(both.counter?.lastSeen, t + 50);

      await rejectsStore(
        store.lookup({ ...KEY, recipient: 'b\0b' }),
        /lookup: recipient contains NUL/,
      );
      await rejectsStore(
        store.lookup({ ...KEY, client: 1 as never }),
        /lookup: client is not a string/,
      );
      await rejectsStore(store.lookup(null as never), /lookup: client is not a string/);
    }));

  test('concurrent counts of one client through two stores count once per window', () =>
    withDatabase(async (_db, open) => {
      const [a, b] = [await open(), await open()];
      const client = '2001:db8:1:2::/64';
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).countClient(client, 1_000 + i, 0)),
      );
      const counter = await a.getClient(client);
      assert.equal(counter?.count, 1, 'the first count moves lastCounted past countAfter');
    }));

  test('the decision log round-trips every field, newest first, up to the limit', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const full = {
        time: 3_000,
        host: 'mx1.example.net',
        client: '192.0.2.1',
        clientName: 'mail.example.org',
        helo: 'mail.example.org',
        sender: 'alice@example.org',
        recipient: 'bob@example.net',
        action: 'pass',
        reason: 'waited',
        delay: 1_800.5,
        scores: { dnsbl: 0, dnswl: -1, helo: 0.25, spf: 1 },
      };
      const bare = {
        time: 1_000,
        host: 'mx2.example.net',
        client: '192.0.2.2',
        sender: '',
        recipient: 'bob@example.net',
        action: 'greylist',
        reason: 'new-clean',
      };
      await store.logDecision(bare);
      await store.logDecision(full);
      await store.logDecision({ ...bare, time: 2_000, reason: 'early-retry', scores: {} });
      await store.logDecision({ ...bare, time: 2_000, reason: 'same-time-later' });

      const all = await store.recentDecisions(10);
      assert.deepEqual(
        all.map((d) => [d.time, d.reason]),
        [
          [3_000, 'waited'],
          [2_000, 'same-time-later'],
          [2_000, 'early-retry'],
          [1_000, 'new-clean'],
        ],
      );
      const [newest, , empty, oldest] = all;
      assert.ok(newest && empty && oldest);
      const { id: newestId, ...newestRest } = newest;
      assert.deepEqual(newestRest, full);
      assert.equal(typeof newestId, 'number');
      const { id: oldestId, ...oldestRest } = oldest;
      assert.deepEqual(oldestRest, bare, 'absent optional fields stay absent');
      assert.ok(oldestId < newestId);
      assert.deepEqual(empty.scores, {});
      assert.equal(new Set(all.map((d) => d.id)).size, 4);

      assert.deepEqual(
        (await store.recentDecisions(2)).map((d) => d.reason),
        ['waited', 'same-time-later'],
      );
      assert.deepEqual(await store.recentDecisions(0), []);
      await rejectsStore(store.recentDecisions(-1), /recentDecisions: limit/);
    }));

  test('a decision with a score that JSON cannot hold is refused, and nothing is written', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const decision = {
        time: 1,
        host: 'h',
        client: 'c',
        sender: 's',
        recipient: 'r',
        action: 'pass',
        reason: 'x',
      };
      await rejectsStore(
        store.logDecision({ ...decision, scores: { dnsbl: Number.NaN } }),
        /logDecision: score "dnsbl" must be a finite number/,
      );
      await rejectsStore(
        store.logDecision({ ...decision, delay: Number.POSITIVE_INFINITY }),
        /logDecision: delay/,
      );
      assert.equal(await count(db, 'decision_log'), 0);
    }));

  test('the call-back cache: miss, hit, notBefore, and the newest record wins', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      assert.equal(await store.getCallback(CALLBACK.sender, 0), null, 'miss');
      await store.putCallback(CALLBACK);
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 0), CALLBACK, 'hit');
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 1_000), CALLBACK, 'at notBefore');
      assert.equal(await store.getCallback(CALLBACK.sender, 1_001), null, 'older counts as absent');
      assert.equal(await store.getCallback('Alice@example.org', 0), null, 'the key is exact');
      assert.equal(await store.getCallback('bob@example.org', 0), null);

      // Verified later (on another MX host, say): replaces the record.
      const rejected: CallbackRecord = {
        sender: CALLBACK.sender,
        result: 'rejected',
        reply: '550 5.1.1 <alice@example.org>: User unknown',
        time: 5_000,
        host: 'mx2.example.net',
      };
      await store.putCallback(rejected);
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 0), rejected);
      // A slow verification that started earlier finishes now: the newer result stays.
      await store.putCallback({ ...CALLBACK, time: 4_999 });
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 0), rejected, 'older is dropped');
      // At the same time, the later write wins.
      const dsn: CallbackRecord = { ...rejected, result: 'dsn-rejected', host: 'mx3' };
      await store.putCallback(dsn);
      assert.deepEqual(await store.getCallback(CALLBACK.sender, 0), dsn);
      await store.putCallback({ ...CALLBACK, sender: '', result: 'dsn-accepted' });
      assert.equal((await store.getCallback('', 0))?.result, 'dsn-accepted', 'null sender');
      assert.equal(await count(db, 'callback_cache'), 2, 'one row per sender');

      // Time past 2^32 ms: PostgreSQL's bigints come back as numbers.
      const t = 1_700_000_000_000;
      await store.putCallback({ ...CALLBACK, sender: 'late@example.org', time: t });
      assert.equal((await store.getCallback('late@example.org', t))?.time, t);
    }));

  test('call-back records are checked; the hostile reply is kept as one printable line', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const hostile = 'evil\r\n250 ok\0\t\u00e9\u{1F600}';
      await store.putCallback({
        ...CALLBACK,
        reply: `550 ${hostile}${'x'.repeat(600)}`,
        host: 'mx\0one',
      });
      const stored = await store.getCallback(CALLBACK.sender, 0);
      assert.ok(stored);
      assert.match(stored.reply, /^550 evil\?\?250 ok\?\?\?\?x+$/);
      assert.ok(/^[\x20-\x7e]*$/.test(stored.reply), 'printable ASCII only');
      assert.equal(stored.reply.length, 512, 'cut to one SMTP reply line');
      assert.equal(stored.host, 'mx\uFFFDone');

      await rejectsStore(
        store.putCallback({ ...CALLBACK, result: 'maybe' as never }),
        /putCallback: unknown result "maybe"/,
      );
      await rejectsStore(
        store.putCallback({ ...CALLBACK, sender: 'a\0b@example.org' }),
        /putCallback: sender contains NUL/,
      );
      await rejectsStore(store.putCallback(null as never), /putCallback: the record is not/);
      await rejectsStore(store.getCallback('a\0b', 0), /getCallback: sender contains NUL/);
      assert.equal(await count(db, 'callback_cache'), 1);
    }));

  test('takeRate counts in a fixed window, restarts it, and stops counting past the limit', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const take = (now: number, limit = 3, key = 'cbv:example.org') =>
        store.takeRate(key, now, 1_000, limit);
      assert.deepEqual(await take(10_000), { allowed: true, count: 1 }, 'a new key');
      assert.deepEqual(await take(10_500), { allowed: true, count: 2 });
      assert.deepEqual(await take(10_999), { allowed: true, count: 3 }, 'at the limit');
      assert.deepEqual(await take(10_999), { allowed: false, count: 4 }, 'over it');
      assert.deepEqual(await take(10_999), { allowed: false, count: 4 }, 'stops at limit + 1');
      assert.deepEqual(await take(10_999, 3, 'other'), { allowed: true, count: 1 }, 'per key');
      // The window started at 10 000, which is at or before 11 000 - 1000: it restarts.
      assert.deepEqual(await take(11_000), { allowed: true, count: 1 }, 'restarted');
      assert.deepEqual(await take(11_999), { allowed: true, count: 2 }, 'the new window');
      // A clock behind the window's start (another MX host's) counts in the same window.
      assert.deepEqual(await take(10_900), { allowed: true, count: 3 });
      // A limit raised mid-window counts on; a lowered one holds the count where it is.
      assert.deepEqual(await take(11_100, 10), { allowed: true, count: 4 });
      assert.deepEqual(await take(11_100, 10), { allowed: true, count: 5 });
      assert.deepEqual(await take(11_100, 2), { allowed: false, count: 5 });
      assert.deepEqual(await take(20_000, 0), { allowed: false, count: 1 }, 'limit 0');
      assert.deepEqual(await take(20_001, 0), { allowed: false, count: 1 });
      assert.equal(await count(db, 'rate_limits'), 2);
      const big = 1_700_000_000_000;
      assert.deepEqual(await take(big, Number.MAX_SAFE_INTEGER, 'big'), {
        allowed: true,
        count: 1,
      });
      assert.deepEqual(await take(big + 1, Number.MAX_SAFE_INTEGER, 'big'), {
        allowed: true,
        count: 2,
      });

      await rejectsStore(store.takeRate('k', 1, 0, 1), /takeRate: windowMs must be whole/);
      await rejectsStore(store.takeRate('k', 1, 1.5, 1), /takeRate: windowMs must be whole/);
      await rejectsStore(store.takeRate('k', 1, 1_000, -1), /takeRate: limit must be/);
      await rejectsStore(store.takeRate('k', 1, 1_000, 0.5), /takeRate: limit must be/);
      await rejectsStore(store.takeRate('k\0', 1, 1_000, 1), /takeRate: key contains NUL/);
      assert.equal(await count(db, 'rate_limits'), 3, 'refused calls write nothing');
    }));

  test('takeRate through two stores at once counts every call exactly once', () =>
    withDatabase(async (db, open) => {
      const poolSize = 25;
      const [a, b] = [await open({ poolSize }), await open({ poolSize })];
      await Promise.all(Array.from({ length: poolSize * 2 }, (_, i) => (i % 2 ? a : b).ping()));
      const calls = 100;
      const counted = await Promise.all(
        Array.from({ length: calls }, (_, i) =>
          (i % 2 ? a : b).takeRate('shared', 50_000 + i, 60_000, 1_000),
        ),
      );
      assert.deepEqual(
        counted.map((t) => t.count).sort((x, y) => x - y),
        Array.from({ length: calls }, (_, i) => i + 1),
        'the counts are 1..N: none lost, none twice',
      );
      assert.ok(counted.every((t) => t.allowed));

      // A flood past the limit: exactly `limit` calls are allowed, the rest see limit + 1.
      const limit = 10;
      const flood = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          (i % 2 ? a : b).takeRate('flood', 50_000, 60_000, limit),
        ),
      );
      assert.equal(flood.filter((t) => t.allowed).length, limit);
      assert.deepEqual(
        flood.map((t) => t.count).sort((x, y) => x - y),
        [...Array.from({ length: limit }, (_, i) => i + 1), ...Array(50).fill(limit + 1)],
      );
      const rows = await db.query("SELECT count FROM rate_limits WHERE key = 'flood'");
      assert.equal(Number(rows[0]?.['count']), limit + 1);
    }));

  test('takeRate from several processes at once counts every call once', () =>
    withDatabase(async (db, open) => {
      await (await open()).close();
      const runs = await runHammers(db, ['20', 'rate']);
      assert.deepEqual(
        runs.flat().sort((x, y) => x - y),
        Array.from({ length: 3 * 200 }, (_, i) => i + 1),
      );
    }));

  test('the decision log keeps stage and tags; hostile tags are made safe and bounded', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const line: Decision = {
        time: 1_000,
        host: 'mx1',
        client: '192.0.2.1',
        sender: 'a@example.org',
        recipient: 'b@example.net',
        action: 'reject',
        reason: 'helo',
      };
      await store.logDecision({ ...line, stage: 'helo', tags: ['REJECT', 'numeric hello name'] });
      await store.logDecision({ ...line, time: 2_000, stage: 'connect', tags: [] });
      await store.logDecision({ ...line, time: 3_000 });
      const tags = [
        'REJECT',
        'bad\r\nX-Injected: yes\0\t\x7f\u0085\u2028end',
        'x'.repeat(300),
        '😀'.repeat(250),
        'ünïcødé',
        ...Array.from({ length: 20 }, (_, i) => `t${i}`),
      ];
      await store.logDecision({ ...line, time: 4_000, stage: 'rc\0pt', tags });

      const [hostile, bare, empty, plain] = await store.recentDecisions(10);
      assert.ok(hostile && bare && empty && plain);
      const { id: _id, ...plainRest } = plain;
      assert.deepEqual(plainRest, {
        ...line,
        stage: 'helo',
        tags: ['REJECT', 'numeric hello name'],
      });
      assert.equal(empty.stage, 'connect');
      assert.deepEqual(empty.tags, []);
      assert.equal('stage' in bare, false, 'absent stays absent');
      assert.equal('tags' in bare, false);

      assert.equal(hostile.stage, 'rc\uFFFDpt');
      assert.equal(hostile.tags?.length, 16, 'at most 16 tags');
      assert.deepEqual(hostile.tags?.slice(0, 5), [
        'REJECT',
        'bad\uFFFD\uFFFDX-Injected: yes\uFFFD\uFFFD\uFFFD\uFFFD\uFFFDend',
        'x'.repeat(200),
        '😀'.repeat(200),
        'ünïcødé',
      ]);
      assert.deepEqual(
        hostile.tags?.slice(5),
        Array.from({ length: 11 }, (_, i) => `t${i}`),
      );

      await rejectsStore(
        store.logDecision({ ...line, tags: 'REJECT' as never }),
        /logDecision: tags must be an array of strings/,
      );
      await rejectsStore(
        store.logDecision({ ...line, tags: ['ok', 7 as never] }),
        /logDecision: tags must be an array of strings, got number/,
      );
      assert.equal((await store.recentDecisions(10)).length, 4, 'refused lines are not written');
    }));

  test('expire removes old call-back results and rate windows, only when asked', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      for (const [sender, time] of [
        ['old@example.org', 100],
        ['edge@example.org', 500],
        ['new@example.org', 900],
      ] as const) {
        await store.putCallback({ ...CALLBACK, sender, time });
      }
      await store.takeRate('old', 100, 1_000, 5);
      await store.takeRate('edge', 500, 1_000, 5);
      await store.takeRate('new', 900, 1_000, 5);
      // Counted late in its window: a window goes by when it started, not when last counted.
      await store.takeRate('old', 1_050, 1_000, 5);
      const v1 = {
        passedBefore: 500,
        greylistedBefore: 500,
        clientsBefore: 500,
        decisionsBefore: 500,
      };
      const none = { passed: 0, greylisted: 0, clients: 0, decisions: 0, reputation: 0 };
      assert.deepEqual(await store.expire(v1), { ...none, callbacks: 0, rates: 0 }, 'not asked');
      assert.equal(await count(db, 'callback_cache'), 3);
      assert.deepEqual(await store.expire({ ...v1, callbacksBefore: 500 }), {
        ...none,
        callbacks: 1,
        rates: 0,
      });
      assert.equal(await store.getCallback('old@example.org', 0), null);
      assert.notEqual(await store.getCallback('edge@example.org', 0), null, 'at the cut-off stays');
      assert.equal(await count(db, 'rate_limits'), 3);
      assert.deepEqual(await store.expire({ ...v1, ratesBefore: 600 }), {
        ...none,
        callbacks: 0,
        rates: 2,
      });
      const left = await db.query('SELECT key FROM rate_limits');
      assert.deepEqual(
        left.map((row) => row['key']),
        ['new'],
      );
      assert.deepEqual(
        await store.expire({ ...v1, callbacksBefore: 10_000, ratesBefore: 10_000 }),
        {
          ...none,
          callbacks: 2,
          rates: 1,
        },
      );
      // An expired window starts afresh.
      assert.deepEqual(await store.takeRate('old', 1_100, 1_000, 5), { allowed: true, count: 1 });
    }));

  test('expire removes what is older than each cut-off and counts it', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const key = (name: string) => ({ ...KEY, sender: `${name}@example.org` });
      await store.firstAttempt(key('passed-old'), 'passed', 100);
      await store.firstAttempt(key('passed-new'), 'passed', 100);
      await store.recordPass(key('passed-new'), 900);
      await store.firstAttempt(key('grey-old'), 'greylisted', 100);
      await store.firstAttempt(key('grey-edge'), 'greylisted', 500);
      await store.countClient('old', 100, 0);
      await store.countClient('new', 100, 0);
      await store.touchClient('new', 800);
      for (const time of [100, 200, 600]) {
        await store.logDecision({
          time,
          host: 'h',
          client: 'c',
          sender: 's',
          recipient: 'r',
          action: 'pass',
          reason: `t${time}`,
        });
      }
      const cutoffs = {
        passedBefore: 500,
        greylistedBefore: 500,
        clientsBefore: 500,
        decisionsBefore: 500,
      };
      assert.deepEqual(await store.expire(cutoffs), {
        passed: 1,
        greylisted: 1,
        clients: 1,
        decisions: 2,
        callbacks: 0,
        rates: 0,
        reputation: 0,
      });
      assert.equal(await store.getTriplet(key('passed-old')), null);
      assert.equal((await store.getTriplet(key('passed-new')))?.lastSeen, 900);
      assert.equal(await store.getTriplet(key('grey-old')), null);
      assert.notEqual(
        await store.getTriplet(key('grey-edge')),
        null,
        'exactly at the cut-off stays',
      );
      assert.equal(await store.getClient('old'), null);
      assert.notEqual(await store.getClient('new'), null);
      assert.deepEqual(
        (await store.recentDecisions(10)).map((d) => d.reason),
        ['t600'],
      );
      assert.deepEqual(await store.expire(cutoffs), {
        passed: 0,
        greylisted: 0,
        clients: 0,
        decisions: 0,
        callbacks: 0,
        rates: 0,
        reputation: 0,
      });
      // The state decides which cut-off applies: a greylisted row only goes by greylistedBefore.
      assert.deepEqual(await store.expire({ ...cutoffs, passedBefore: 10_000 }), {
        passed: 1,
        greylisted: 0,
        clients: 0,
        decisions: 0,
        callbacks: 0,
        rates: 0,
        reputation: 0,
      });
      assert.equal(await count(db, 'triplets'), 1);
    }));

  test('hostile and long strings are stored as they are', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const nasty = [
        "o'brien@example.org",
        'x"; DROP TABLE triplets; --@example.org',
        "'); DELETE FROM triplets; --",
        'back\\slash%_wild*card@example.org',
        'ünïcødé@exämple.org',
        '😀@example.org',
        '\r\n\t\x01\x7f',
        `${'a'.repeat(64)}@${'b'.repeat(189)}`,
        'é'.repeat(254),
        '😀'.repeat(127),
      ];
      for (const text of nasty) {
        const key = { client: text, sender: text, recipient: text };
        const { created, triplet } = await store.firstAttempt(key, 'greylisted', 1);
        assert.equal(created, true, text);
        assert.deepEqual(
          { client: triplet.client, sender: triplet.sender, recipient: triplet.recipient },
          key,
        );
        assert.equal((await store.countClient(text, 1, 0)).client, text);
        await store.logDecision({
          time: 1,
          host: text,
          client: text,
          clientName: text,
          helo: text,
          sender: text,
          recipient: text,
          action: 'greylist',
          reason: text,
          scores: { [text]: 1 },
        });
        const [logged] = await store.recentDecisions(1);
        assert.equal(logged?.helo, text);
        assert.deepEqual(logged?.scores, { [text]: 1 });
        await store.putCallback({ ...CALLBACK, sender: text });
        assert.equal((await store.getCallback(text, 0))?.sender, text);
        assert.deepEqual(await store.takeRate(text, 1, 1_000, 1), { allowed: true, count: 1 });
      }
      for (const text of nasty) {
        const key = { client: text, sender: text, recipient: text };
        const found = await store.lookup(key);
        assert.notEqual(found.triplet, null, text);
        assert.notEqual(found.counter, null, text);
        assert.deepEqual(found, {
          triplet: await store.getTriplet(key),
          counter: await store.getClient(text),
        });
      }
    }));

  test('NUL: refused in keys, replaced in decision-log text, and the store carries on', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const bad = { ...KEY, sender: 'a\0b@example.org' };
      await rejectsStore(
        store.firstAttempt(bad, 'greylisted', 1),
        /firstAttempt: sender contains NUL/,
      );
      await rejectsStore(store.getTriplet(bad), /getTriplet: sender contains NUL/);
      await rejectsStore(store.lookup(bad), /lookup: sender contains NUL/);
      await rejectsStore(store.recordPass(bad, 1), /recordPass: sender contains NUL/);
      await rejectsStore(store.countClient('1.2.3.4\0', 1, 0), /countClient: client contains NUL/);
      assert.equal(await count(db, 'triplets'), 0);

      await store.logDecision({
        time: 1,
        host: 'mx',
        client: '192.0.2.1',
        helo: 'evil\0helo',
        sender: 'a\0b',
        recipient: 'r',
        action: 'greylist',
        reason: 'new-clean',
      });
      const [logged] = await store.recentDecisions(1);
      assert.equal(logged?.helo, 'evil\uFFFDhelo');
      assert.equal(logged?.sender, 'a\uFFFDb');
      assert.equal((await store.firstAttempt(KEY, 'greylisted', 1)).created, true);
    }));

  test('times that are not integral milliseconds are refused', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await rejectsStore(store.firstAttempt(KEY, 'greylisted', 1.5), /firstAttempt: now/);
      await rejectsStore(store.firstAttempt(KEY, 'greylisted', Number.NaN), /firstAttempt: now/);
      await rejectsStore(store.countClient('c', 1, Number.NaN), /countClient: countAfter/);
      await rejectsStore(
        store.expire({
          passedBefore: 1,
          greylistedBefore: 1,
          clientsBefore: 1,
          decisionsBefore: Number.POSITIVE_INFINITY,
        }),
        /expire: decisionsBefore/,
      );
      const cutoffs = {
        passedBefore: 1,
        greylistedBefore: 1,
        clientsBefore: 1,
        decisionsBefore: 1,
      };
      await rejectsStore(
        store.expire({ ...cutoffs, callbacksBefore: 1.5 }),
        /expire: callbacksBefore/,
      );
      await rejectsStore(
        store.expire({ ...cutoffs, ratesBefore: Number.NaN }),
        /expire: ratesBefore/,
      );
      await rejectsStore(store.getCallback('a@example.org', 1.5), /getCallback: notBefore/);
      await rejectsStore(
        store.putCallback({ ...CALLBACK, time: Number.NaN }),
        /putCallback: time must be integral/,
      );
      await rejectsStore(store.takeRate('k', 1.5, 1_000, 1), /takeRate: now/);
      assert.equal(await store.getTriplet(KEY), null);
    }));

  test('two stores on one database see each other’s writes (several MX hosts)', () =>
    withDatabase(async (_db, open) => {
      const [mx1, mx2] = [await open(), await open()];
      await mx1.firstAttempt(KEY, 'greylisted', 1_000);
      assert.equal((await mx2.getTriplet(KEY))?.state, 'greylisted');
      assert.equal((await mx2.firstAttempt(KEY, 'greylisted', 1_500)).created, false);
      await mx2.recordEarlyRetry(KEY, 2_000);
      await mx2.recordPass(KEY, 3_000);
      assert.deepEqual(await mx1.getTriplet(KEY), {
        ...KEY,
        state: 'passed',
        firstSeen: 1_000,
        lastSeen: 3_000,
        failCount: 1,
        passCount: 1,
      });
      await mx1.countClient('192.0.2.1', 1_000, 0);
      await mx2.countClient('192.0.2.1', 5_000, 2_000);
      assert.equal((await mx1.getClient('192.0.2.1'))?.count, 2);
      const line = {
        client: '192.0.2.1',
        sender: 's',
        recipient: 'r',
        action: 'pass',
        reason: 'x',
      };
      await mx1.logDecision({ ...line, time: 1, host: 'mx1' });
      await mx2.logDecision({ ...line, time: 2, host: 'mx2' });
      for (const store of [mx1, mx2]) {
        assert.deepEqual(
          (await store.recentDecisions(5)).map((d) => d.host),
          ['mx2', 'mx1'],
        );
      }
      assert.deepEqual(
        await mx2.expire({
          passedBefore: 3_001,
          greylistedBefore: 0,
          clientsBefore: 0,
          decisionsBefore: 0,
        }),
        {
          passed: 1,
          greylisted: 0,
          clients: 0,
          decisions: 0,
          callbacks: 0,
          rates: 0,
          reputation: 0,
        },
      );
      assert.equal(await mx1.getTriplet(KEY), null);
    }));

  test('reputation: additions accumulate and decay by the half-life, in any order', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      // Times past 2^32 ms: PostgreSQL's bigints come back as numbers. Powers of two keep
      // every sum below exact in binary floating point.
      const t = 1_700_000_000_000;
      const H = 1_000;
      const A = 'domain:example.org';
      assert.deepEqual(await store.getReputation([A]), [], 'nothing yet');
      await store.addReputation([REP(A, 'spf:pass', 1, t)], H);
      await store.addReputation([REP(A, 'spf:pass', 1, t)], H);
      assert.deepEqual(await store.getReputation([A]), [
        { subject: A, event: 'spf:pass', amount: 2, updated: t },
      ]);
      // One half-life later the 2 stored are worth 1; the new 1 adds to that.
      await store.addReputation([REP(A, 'spf:pass', 1, t + H)], H);
      assert.deepEqual(await store.getReputation([A]), [
        { subject: A, event: 'spf:pass', amount: 2, updated: t + H },
      ]);
      // A late addition from the past (another host's slow batch) is decayed to the row's time
      // and the row keeps its time: the same result as if it had come first.
      await store.addReputation([REP(A, 'spf:pass', 4, t - H)], H);
      assert.deepEqual(await store.getReputation([A]), [
        { subject: A, event: 'spf:pass', amount: 3, updated: t + H },
      ]);
      // A half-life is whatever the caller says, per call.
      await store.addReputation([REP(A, 'spf:pass', 1, t + 3 * H)], 2 * H);
      assert.deepEqual(await store.getReputation([A]), [
        { subject: A, event: 'spf:pass', amount: 2.5, updated: t + 3 * H },
      ]);
      // 64 half-lives on, what was stored counts as nothing at all.
      await store.addReputation([REP(A, 'spf:pass', 0.5, t + 67 * H)], H);
      assert.deepEqual(await store.getReputation([A]), [
        { subject: A, event: 'spf:pass', amount: 0.5, updated: t + 67 * H },
      ]);

      // One batch: several subjects and events, a key twice (added in turn), fractions.
      const B = 'net:2001:db8:1:2::/64';
      await store.addReputation(
        [
          REP(B, 'spf:fail', 1, t),
          REP(A, 'cbv:accepted', 1, t),
          REP(B, 'greylist:refused', 0.25, t),
          REP(B, 'spf:fail', 1, t + H),
          REP('net:192.0.2.0/24', 'spf:pass', 1, t),
        ],
        H,
      );
      assert.deepEqual(await store.getReputation([B, A, B]), [
        { subject: A, event: 'cbv:accepted', amount: 1, updated: t },
        { subject: A, event: 'spf:pass', amount: 0.5, updated: t + 67 * H },
        { subject: B, event: 'greylist:refused', amount: 0.25, updated: t },
        { subject: B, event: 'spf:fail', amount: 1.5, updated: t + H },
      ]);
      assert.deepEqual(
        (await store.getReputation(['net:192.0.2.0/24'])).map((r) => r.event),
        ['spf:pass'],
        'only the subjects asked for',
      );
      assert.deepEqual(await store.getReputation(['net:192.0.2.0/25', 'domain:']), []);
      assert.deepEqual(await store.getReputation([]), []);
      await store.addReputation([], H);
      assert.equal(await count(db, 'reputation'), 5);
    }));

  test('reputation: two stores on one database add to the same counters', () =>
    withDatabase(async (_db, open) => {
      const [mx1, mx2] = [await open(), await open()];
      const S = 'domain:example.net';
      await mx1.addReputation([REP(S, 'greylist:pass', 1, 10_000)], 60_000);
      await mx2.addReputation([REP(S, 'greylist:pass', 2, 10_000)], 60_000);
      await mx1.addReputation([REP(S, 'spf:pass', 1, 10_000)], 60_000);
      for (const store of [mx1, mx2]) {
        assert.deepEqual(await store.getReputation([S]), [
          { subject: S, event: 'greylist:pass', amount: 3, updated: 10_000 },
          { subject: S, event: 'spf:pass', amount: 1, updated: 10_000 },
        ]);
      }
    }));

  test('reputation: concurrent batches from two stores lose nothing and do not deadlock', () =>
    withDatabase(async (db, open) => {
      const poolSize = 10;
      const [a, b] = [await open({ poolSize }), await open({ poolSize })];
      await Promise.all(Array.from({ length: poolSize * 2 }, (_, i) => (i % 2 ? a : b).ping()));
      const subjects = Array.from({ length: 8 }, (_, i) => `domain:d${i}.example`);
      const events = ['spf:pass', 'spf:fail', 'greylist:pass'];
      const keys = subjects.flatMap((subject) => events.map((event) => ({ subject, event })));
      const batches = 60;
      // Each batch touches every key once, in its own order, and one key a second time: what
      // two hosts flushing at once send. All at one time, so the sums are whole numbers.
      await Promise.all(
        Array.from({ length: batches }, (_, i) => {
          const order = keys.map((_, k) => keys[(k * 7 + i) % keys.length]!);
          const deltas = [...order, keys[i % keys.length]!].map((k) =>
            REP(k.subject, k.event, 1, 5_000),
          );
          return (i % 2 ? a : b).addReputation(deltas, 86_400_000);
        }),
      );
      const rows = await a.getReputation(subjects);
      assert.equal(rows.length, keys.length);
      const total = rows.reduce((sum, row) => sum + row.amount, 0);
      assert.equal(total, batches * (keys.length + 1), 'every addition counted once');
      for (const row of rows) {
        const extra = Array.from({ length: batches }, (_, i) => keys[i % keys.length]!).filter(
          (k) => k.subject === row.subject && k.event === row.event,
        ).length;
        assert.equal(row.amount, batches + extra, `${row.subject} ${row.event}`);
        assert.equal(row.updated, 5_000);
      }
      assert.equal(await count(db, 'reputation'), keys.length);
    }));

  test('reputation: hostile subjects and events are stored printable and bounded', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const H = 1_000;
      const cases: [string, string][] = [
        [
          'domain:evil.example\r\nX-Injected: yes\0\t\x7f\u0085\u2028end',
          'domain:evil.example\uFFFD\uFFFDX-Injected: yes\uFFFD\uFFFD\uFFFD\uFFFD\uFFFDend',
        ],
        [`domain:${'x'.repeat(1_000)}`, `domain:${'x'.repeat(293)}`],
        [`domain:${'😀'.repeat(400)}`, `domain:${'😀'.repeat(293)}`],
        ['domain:lone\uD800surrogate', 'domain:lone\uFFFDsurrogate'],
        [
          'domain:o\'brien"; DROP TABLE reputation; --',
          'domain:o\'brien"; DROP TABLE reputation; --',
        ],
        ['domain:ünïcødé.example', 'domain:ünïcødé.example'],
      ];
      for (const [given, stored] of cases) {
        await store.addReputation([REP(given, `spf:pass\r\n${'e'.repeat(100)}`, 1, 1_000)], H);
        const rows = await store.getReputation([given]);
        assert.deepEqual(
          rows,
          [
            {
              subject: stored,
              event: `spf:pass\uFFFD\uFFFD${'e'.repeat(54)}`,
              amount: 1,
              updated: 1_000,
            },
          ],
          given.slice(0, 40),
        );
        assert.deepEqual(await store.getReputation([stored]), rows, 'found by its stored form too');
      }
      assert.equal(await count(db, 'reputation'), cases.length);

      // A bad delta refuses its whole batch: nothing of it is written.
      const good = REP('domain:good.example', 'spf:pass', 1, 1_000);
      for (const amount of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2e9, 1e-9]) {
        await rejectsStore(
          store.addReputation([good, { ...good, amount }], H),
          /addReputation: amount must be a number from/,
        );
      }
      await rejectsStore(
        store.addReputation([good, { ...good, amount: '1' as never }], H),
        /addReputation: amount/,
      );
      await rejectsStore(
        store.addReputation([good, { ...good, time: 1.5 }], H),
        /addReputation: time/,
      );
      await rejectsStore(
        store.addReputation([good, { ...good, subject: 7 as never }], H),
        /addReputation: subject is not a string/,
      );
      await rejectsStore(
        store.addReputation([good, { ...good, event: null as never }], H),
        /addReputation: event is not a string/,
      );
      await rejectsStore(store.addReputation([good, null as never], H), /addReputation: a delta/);
      await rejectsStore(store.addReputation('x' as never, H), /addReputation: deltas must be/);
      for (const halfLife of [0, -1, 1.5, Number.NaN]) {
        await rejectsStore(store.addReputation([good], halfLife), /addReputation: halfLifeMs/);
      }
      assert.deepEqual(
        await store.getReputation([good.subject]),
        [],
        'refused batches wrote nothing',
      );
      await rejectsStore(
        store.getReputation(Array.from({ length: 1_001 }, (_, i) => `domain:d${i}.example`)),
        /getReputation: at most 1000 subjects/,
      );
      await rejectsStore(
        store.getReputation([1 as never]),
        /getReputation: subject is not a string/,
      );
    }));

  test('expire removes reputation counters last updated before the cut-off, only when asked', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const H = 1_000;
      await store.addReputation(
        [
          REP('domain:old.example', 'spf:pass', 1, 100),
          REP('domain:edge.example', 'spf:pass', 1, 500),
          REP('domain:revived.example', 'spf:pass', 1, 100),
          REP('domain:new.example', 'spf:pass', 1, 900),
        ],
        H,
      );
      // Updated again lately: expiry goes by the last update.
      await store.addReputation([REP('domain:revived.example', 'spf:fail', 1, 100)], H);
      await store.addReputation([REP('domain:revived.example', 'spf:fail', 1, 800)], H);
      const v1 = { passedBefore: 0, greylistedBefore: 0, clientsBefore: 0, decisionsBefore: 0 };
      const none = { passed: 0, greylisted: 0, clients: 0, decisions: 0, callbacks: 0, rates: 0 };
      assert.deepEqual(await store.expire(v1), { ...none, reputation: 0 }, 'not asked');
      assert.equal(await count(db, 'reputation'), 5);
      assert.deepEqual(await store.expire({ ...v1, reputationBefore: 500 }), {
        ...none,
        reputation: 2,
      });
      const left = await store.getReputation([
        'domain:old.example',
        'domain:edge.example',
        'domain:revived.example',
        'domain:new.example',
      ]);
      assert.deepEqual(
        left.map((row) => `${row.subject} ${row.event}`),
        [
          'domain:edge.example spf:pass',
          'domain:new.example spf:pass',
          'domain:revived.example spf:fail',
        ],
        'at the cut-off stays',
      );
      await rejectsStore(
        store.expire({ ...v1, reputationBefore: Number.NaN }),
        /expire: reputationBefore/,
      );
    }));

  test('a version-3 database gains the DMARC results table and keeps its rows', () =>
    withDatabase(async (db, open) => {
      const kind = backend().kind;
      await db.query(kind === 'sqlite' ? SCHEMA_TABLE_SQLITE : SCHEMA_TABLE_POSTGRES);
      for (const migration of MIGRATIONS.filter((m) => m.version <= 3)) {
        for (const sql of migration[kind]) await db.query(sql);
        await db.query(
          `INSERT INTO mailgate_schema (version, description)
           VALUES (${migration.version}, '${migration.description}')`,
        );
      }
      await db.query(`INSERT INTO reputation VALUES ('domain:example.org', 'spf:pass', 2, 1000)`);
      const store = await open();
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      assert.ok(SCHEMA_VERSION >= 4);
      assert.deepEqual(await store.getReputation(['domain:example.org']), [
        { subject: 'domain:example.org', event: 'spf:pass', amount: 2, updated: 1_000 },
      ]);
      assert.equal(await count(db, 'dmarc_results'), 0);
      await store.addDmarcResults([DMARC_FULL]);
      assert.equal(await count(db, 'dmarc_results'), 1);
    }));

  test('DMARC results round-trip every field, and what is absent stays absent', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await store.addDmarcResults([DMARC_FULL, DMARC_BARE]);
      await store.addDmarcResults([]);
      const rows = await store.dmarcResults(null, 0, 10_000, 10);
      assert.deepEqual(withoutIds(rows), [DMARC_FULL, DMARC_BARE]);
      const [first, second] = rows;
      assert.ok(first && second && typeof first.id === 'number' && second.id > first.id);
      // A record without sp=, np= or psd=, not in testing mode; SPF of the HELO identity.
      const plain: DmarcResultRow = {
        ...DMARC_BARE,
        time: 7_000,
        policyDomain: 'plain.example',
        published: { p: 'none', adkim: 'r', aspf: 'r', testing: false },
        spf: { domain: 'mx.plain.example', scope: 'helo', result: 'pass' },
        spfAligned: true,
        result: 'pass',
      };
      await store.addDmarcResults([plain]);
      assert.deepEqual(withoutIds(await store.dmarcResults('plain.example', 0, 10_000, 10)), [
        plain,
      ]);
    }));

  test('the report query: one policy domain, a half-open time range, oldest first, a limit', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await store.addDmarcResults([
        dmarcAt('example.org', 3_000),
        dmarcAt('example.org', 1_000),
        dmarcAt('other.example', 1_500),
        dmarcAt('example.org', 2_000),
        dmarcAt(undefined, 2_500),
        dmarcAt('example.org', 4_000),
        dmarcAt('Example.org', 2_000),
      ]);
      const times = async (domain: string | null, from: number, to: number, limit = 100) =>
        (await store.dmarcResults(domain, from, to, limit)).map((r) => r.time);
      assert.deepEqual(await times('example.org', 0, 10_000), [1_000, 2_000, 3_000, 4_000]);
      assert.deepEqual(
        await times('example.org', 1_000, 4_000),
        [1_000, 2_000, 3_000],
        'from included, to excluded',
      );
      assert.deepEqual(await times('example.org', 1_001, 4_001), [2_000, 3_000, 4_000]);
      assert.deepEqual(await times('example.org', 0, 10_000, 2), [1_000, 2_000]);
      assert.deepEqual(await times('example.org', 0, 10_000, 0), []);
      assert.deepEqual(await times('Example.org', 0, 10_000), [2_000], 'compared as stored');
      assert.deepEqual(await times('nobody.example', 0, 10_000), []);
      assert.deepEqual(
        await times(null, 0, 10_000),
        [1_000, 1_500, 2_000, 2_000, 2_500, 3_000, 4_000],
        'null: every row, with a policy domain or without',
      );
      // Rows of one time come back in the order they were added.
      assert.deepEqual(
        (await store.dmarcResults(null, 2_000, 2_001, 10)).map((r) => r.policyDomain),
        ['example.org', 'Example.org'],
      );
      await rejectsStore(store.dmarcResults('example.org', 0, 1.5, 1), /dmarcResults: to/);
      await rejectsStore(store.dmarcResults('example.org', 0, 1, -1), /dmarcResults: limit/);
    }));

  test('a DMARC result with a bad word refuses the whole batch', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const published = DMARC_FULL.published!;
      const spf = DMARC_FULL.spf!;
      const bad: [string, DmarcResultRow, RegExp][] = [
        ['disposition', { ...DMARC_FULL, disposition: 'drop' as 'none' }, /disposition must be/],
        ['result', { ...DMARC_FULL, result: 'PASS' as 'pass' }, /result must be/],
        ['p', { ...DMARC_FULL, published: { ...published, p: 'x' as 'none' } }, /p must be/],
        [
          'adkim',
          { ...DMARC_FULL, published: { ...published, adkim: 'x' as 'r' } },
          /adkim must be/,
        ],
        ['psd', { ...DMARC_FULL, published: { ...published, psd: 'x' as 'u' } }, /psd must be/],
        ['scope', { ...DMARC_FULL, spf: { ...spf, scope: 'pra' as 'mfrom' } }, /spf scope must be/],
        ['time', { ...DMARC_FULL, time: 1.5 }, /time must be integral/],
        ['flag', { ...DMARC_FULL, spfAligned: 1 as unknown as boolean }, /spfAligned must be/],
        [
          'string',
          { ...DMARC_FULL, sourceIp: 42 as unknown as string },
          /sourceIp is not a string/,
        ],
        [
          'dkim',
          { ...DMARC_FULL, dkim: [{ domain: 'x' } as never] },
          /dkim result is not a string/,
        ],
      ];
      for (const [name, row, message] of bad) {
        await rejectsStore(store.addDmarcResults([DMARC_BARE, row]), message);
        assert.equal(await count(db, 'dmarc_results'), 0, name);
      }
    }));

  test('hostile strings in DMARC results are stored as they are, bounded', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const hostile = [
        "x'); DROP TABLE dmarc_results; --",
        'a\r\nX-Injected: yes',
        '{"braces", "and", commas}\\ "quotes" \\\\ back\\slash NULL',
        'Ünïcödé 😀 \u2028 \u200b \u00ff',
        'tab\there',
      ];
      const rows: DmarcResultRow[] = hostile.map((text, i) => ({
        ...DMARC_FULL,
        time: 10_000 + i,
        sourceIp: text,
        headerFrom: text,
        envelopeFrom: text,
        policyDomain: text,
        override: text,
        dkim: [{ domain: text, selector: `${text}\u0000\ud800`, result: text }],
        spf: { domain: text, scope: 'mfrom', result: text },
      }));
      await store.addDmarcResults(rows);
      for (const [i, text] of hostile.entries()) {
        const found = await store.dmarcResults(text, 0, 20_000, 10);
        assert.deepEqual(withoutIds(found), [rows[i]], JSON.stringify(text));
      }
      // NUL and lone surrogates in plain columns become U+FFFD (the JSON columns keep them).
      await store.addDmarcResults([
        { ...DMARC_BARE, time: 30_000, sourceIp: '192.0.2.1\u0000', headerFrom: 'a\ud800b' },
      ]);
      const [odd] = await store.dmarcResults(null, 30_000, 30_001, 1);
      assert.equal(odd?.sourceIp, '192.0.2.1\uFFFD');
      assert.equal(odd?.headerFrom, 'a\uFFFDb');
      // Long strings and long DKIM lists are cut.
      await store.addDmarcResults([
        {
          ...DMARC_BARE,
          time: 40_000,
          headerFrom: 'd'.repeat(MAX_DMARC_TEXT + 500),
          dkim: Array.from({ length: MAX_DMARC_DKIM_RESULTS + 8 }, (_, i) => ({
            domain: `d${i}.example`,
            result: 'pass',
          })),
        },
      ]);
      const [cut] = await store.dmarcResults(null, 40_000, 40_001, 1);
      assert.equal(cut?.headerFrom.length, MAX_DMARC_TEXT);
      assert.equal(cut?.dkim.length, MAX_DMARC_DKIM_RESULTS);
      assert.equal(cut?.dkim.at(-1)?.domain, `d${MAX_DMARC_DKIM_RESULTS - 1}.example`);
    }));

  test('a large batch of DMARC results goes in whole and in order', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      const rows = Array.from({ length: 2_500 }, (_, i) => ({
        ...DMARC_BARE,
        time: 100_000 + (i % 7),
        headerFrom: `n${i}.example`,
      }));
      await store.addDmarcResults(rows);
      assert.equal(await count(db, 'dmarc_results'), 2_500);
      const back = await store.dmarcResults(null, 0, 200_000, 10_000);
      const order = [...rows.keys()].sort((a, b) => rows[a]!.time - rows[b]!.time || a - b);
      assert.deepEqual(
        back.map((r) => r.headerFrom),
        order.map((i) => `n${i}.example`),
      );
    }));

  test('expire removes DMARC results evaluated before the cut-off, only when asked', () =>
    withDatabase(async (db, open) => {
      const store = await open();
      await store.addDmarcResults([
        dmarcAt('example.org', 100),
        dmarcAt('example.org', 500),
        dmarcAt(undefined, 200),
        dmarcAt('example.org', 900),
      ]);
      const v1 = { passedBefore: 0, greylistedBefore: 0, clientsBefore: 0, decisionsBefore: 0 };
      const none = {
        passed: 0,
        greylisted: 0,
        clients: 0,
        decisions: 0,
        callbacks: 0,
        rates: 0,
        reputation: 0,
      };
      assert.deepEqual(await store.expire(v1), none, 'not asked: no dmarc count');
      assert.equal(await count(db, 'dmarc_results'), 4);
      assert.deepEqual(await store.expire({ ...v1, dmarcBefore: 500 }), { ...none, dmarc: 2 });
      assert.deepEqual(
        (await store.dmarcResults(null, 0, 1_000, 10)).map((r) => r.time),
        [500, 900],
        'at the cut-off stays',
      );
      await rejectsStore(store.expire({ ...v1, dmarcBefore: Number.NaN }), /expire: dmarcBefore/);
      assert.equal(await count(db, 'dmarc_results'), 2);
    }));

  test('findDecisions: a search looks in five columns, ignores ASCII case; %, _ and the escape are plain', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await store.logDecision(
        line({
          reason: 'client',
          client: '192.0.2.10',
          clientName: 'Mail.Example.ORG',
          helo: 'helo-one.example',
          sender: 'alice@example.org',
        }),
      );
      await store.logDecision(
        line({ reason: 'percent', helo: 'HELO_two', sender: 'carol%x@example.com' }),
      );
      await store.logDecision(line({ reason: 'wildcards', sender: 'carolyx@boxtop.example' }));
      await store.logDecision(
        line({ reason: 'underscore', recipient: 'frank_100@example.net', helo: 'a\\b.example' }),
      );
      await store.logDecision(line({ reason: 'accent', clientName: 'Café.example' }));
      const found = async (search: string) =>
        (await store.findDecisions({ search, limit: 100 })).map((d) => d.reason).sort();

      assert.deepEqual(await found('192.0.2.10'), ['client'], 'client');
      assert.deepEqual(await found('mail.EXAMPLE.org'), ['client'], 'client name, any case');
      assert.deepEqual(await found('HELO-ONE'), ['client'], 'HELO, any case');
      assert.deepEqual(await found('ALICE@'), ['client'], 'sender');
      assert.deepEqual(await found('Frank_100@'), ['underscore'], 'recipient');
      assert.deepEqual(await found('%'), ['percent'], '% is no wildcard');
      assert.deepEqual(await found('carol%'), ['percent']);
      assert.deepEqual(await found('_'), ['percent', 'underscore'], '_ is no wildcard');
      assert.deepEqual(await found('o_t'), ['percent'], 'o_t is not boxtop');
      assert.deepEqual(await found('\\'), ['underscore'], 'the escape character is plain too');
      assert.deepEqual(await found('a\\b'), ['underscore']);
      assert.deepEqual(await found('CAFé'), ['accent'], 'ASCII case is ignored');
      assert.deepEqual(await found('CAFÉ'), [], 'other case is not');
      assert.deepEqual(await found('nowhere'), []);
      assert.equal((await found('')).length, 5, 'every line contains the empty text');
      assert.deepEqual(
        await found('203.0.113.9'),
        ['accent', 'percent', 'underscore', 'wildcards'],
        'every line but the one with a client of its own',
      );
      // Only the five columns: host, action and reason are not searched.
      assert.deepEqual(await found('mx1.example.net'), []);
      assert.deepEqual(await found('new-clean'), []);
    }));

  test('findDecisions: from, to, action and beforeId combine; pages follow on across equal times', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      // Logged out of time order, so that id order and time order differ.
      const logged: [number, string][] = [
        [3_000, 'pass'],
        [2_000, 'greylist'],
        [2_000, 'pass'],
        [2_000, 'greylist'],
        [1_000, 'pass'],
        [4_000, 'greylist'],
      ];
      for (const [time, action] of logged) {
        await store.logDecision(line({ time, action, sender: `s${time}@example.org` }));
      }
      const all = await store.findDecisions({ limit: 100 });
      assert.deepEqual(all, await store.recentDecisions(100), 'no condition: the newest lines');
      const ids = all.map((d) => d.id);
      assert.deepEqual(
        all.map((d) => d.time),
        [4_000, 3_000, 2_000, 2_000, 2_000, 1_000],
      );
      for (let i = 1; i < all.length; i++) {
        const [a, b] = [all[i - 1]!, all[i]!];
        assert.ok(a.time > b.time || (a.time === b.time && a.id > b.id), 'time, then id, newest');
      }

      // Pages of two, and of one, each from the last line of the one before, end to end.
      for (const limit of [1, 2, 4]) {
        const pages: number[] = [];
        let page = await store.findDecisions({ limit });
        while (page.length > 0) {
          pages.push(...page.map((d) => d.id));
          page = await store.findDecisions({ beforeId: page.at(-1)!.id, limit });
        }
        assert.deepEqual(pages, ids, `pages of ${limit}`);
      }
      const at = (i: number) => ids[i]!;
      assert.deepEqual(
        (await store.findDecisions({ beforeId: at(2), limit: 100 })).map((d) => d.id),
        [at(3), at(4), at(5)],
        'after a line: the same time with smaller ids, then older times',
      );
      assert.deepEqual(
        (await store.findDecisions({ beforeId: at(5), limit: 100 })).map((d) => d.id),
        [],
        'nothing after the oldest',
      );
      assert.deepEqual(
        await store.findDecisions({ beforeId: Math.max(...ids) + 1, limit: 100 }),
        [],
        'an id that is not there has nothing after it',
      );

      const times = async (query: Omit<DecisionQuery, 'limit'>) =>
        (await store.findDecisions({ ...query, limit: 100 })).map((d) => [d.time, d.action]);
      assert.deepEqual(await times({ from: 2_000, to: 3_000 }), [
        [2_000, 'greylist'],
        [2_000, 'pass'],
        [2_000, 'greylist'],
      ]);
      assert.deepEqual(
        await times({ from: 3_000 }),
        [
          [4_000, 'greylist'],
          [3_000, 'pass'],
        ],
        'from is inclusive',
      );
      assert.deepEqual(await times({ to: 2_000 }), [[1_000, 'pass']], 'to is exclusive');
      assert.deepEqual(await times({ from: 2_000, to: 2_000 }), []);
      assert.deepEqual(await times({ from: 3_000, to: 2_000 }), []);
      assert.deepEqual(await times({ action: 'pass' }), [
        [3_000, 'pass'],
        [2_000, 'pass'],
        [1_000, 'pass'],
      ]);
      assert.deepEqual(await times({ action: 'PASS' }), [], 'the action compares exactly');
      assert.deepEqual(await times({ action: 'greylist', to: 4_000, beforeId: at(2) }), [
        [2_000, 'greylist'],
      ]);
      assert.deepEqual(await times({ search: 'S2000@', action: 'pass', from: 1_000 }), [
        [2_000, 'pass'],
      ]);
      assert.deepEqual(
        (await store.findDecisions({ from: 1_000, limit: 2 })).map((d) => d.id),
        [at(0), at(1)],
        'the limit applies after the conditions',
      );
      assert.deepEqual(await store.findDecisions({ limit: 0 }), []);
    }));

  test('findDecisions: bad queries are refused, naming the method', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await store.logDecision(line({}));
      const find = (query: unknown) => store.findDecisions(query as DecisionQuery);
      await rejectsStore(find(null), /findDecisions: the query is not an object/);
      await rejectsStore(find({}), /findDecisions: limit/);
      await rejectsStore(find({ limit: -1 }), /findDecisions: limit/);
      await rejectsStore(find({ limit: 1.5 }), /findDecisions: limit/);
      await rejectsStore(find({ limit: 10_001 }), /findDecisions: limit .* from 0 to 10000/);
      assert.equal((await find({ limit: 10_000 })).length, 1);
      await rejectsStore(find({ limit: 1, from: 1.5 }), /findDecisions: from must be integral/);
      await rejectsStore(find({ limit: 1, to: Number.NaN }), /findDecisions: to must be integral/);
      await rejectsStore(find({ limit: 1, beforeId: 1.5 }), /findDecisions: beforeId/);
      await rejectsStore(find({ limit: 1, beforeId: 0 }), /findDecisions: beforeId/);
      await rejectsStore(find({ limit: 1, beforeId: '3' }), /findDecisions: beforeId/);
      await rejectsStore(find({ limit: 1, action: 7 }), /findDecisions: action is not a string/);
      await rejectsStore(
        find({ limit: 1, action: 'pa\0ss' }),
        /findDecisions: action contains NUL/,
      );
      await rejectsStore(find({ limit: 1, search: 42 }), /findDecisions: search is not a string/);
      await rejectsStore(find({ limit: 1, search: 'a\0b' }), /findDecisions: search contains NUL/);
      await rejectsStore(
        find({ limit: 1, search: 'x'.repeat(255) }),
        /findDecisions: search must be at most 254 characters/,
      );
      assert.deepEqual(await find({ limit: 1, search: 'x'.repeat(254) }), []);
      // Characters, not UTF-16 units: 254 astral characters are 508 units.
      assert.deepEqual(await find({ limit: 1, search: '\u{1F4E7}'.repeat(254) }), []);
      await rejectsStore(
        find({ limit: 1, search: '\u{1F4E7}'.repeat(255) }),
        /findDecisions: search must be at most/,
      );
    }));

  test('findDecisions and countDecisions answer with the lines logged before the call', async (t) => {
    if (backend().kind !== 'sqlite') {
      t.skip('only SQLite holds lines back to commit them together');
      return;
    }
    await withDatabase(async (_db, open) => {
      const store = await open();
      // Not awaited: these lines are still waiting for their group commit.
      const logged = [1_000, 2_000, 3_000].map((time) => store.logDecision(line({ time })));
      const found = store.findDecisions({ from: 2_000, limit: 10 });
      const counted = store.countDecisions(0, 10_000, 10_000);
      assert.deepEqual(
        (await found).map((d) => d.time),
        [3_000, 2_000],
      );
      assert.deepEqual(await counted, [{ bucket: 0, action: 'greylist', count: 3 }]);
      await Promise.all(logged);
    });
  });

  test('countDecisions: buckets from `from` on, [from, to), empty ones absent, in order', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      const from = 10_250;
      const to = 15_250;
      const lines: [number, string][] = [
        [from - 1, 'pass'],
        [to, 'pass'],
        [14_000, 'tempfail'],
        [from, 'pass'],
        [11_249, 'greylist'],
        [11_250, 'pass'],
        [13_300, 'pass'],
        [13_301, 'REJECT'],
        [13_302, 'pass'],
        [15_249, 'greylist'],
        [14_300, 'greylist'],
      ];
      for (const [time, action] of lines) await store.logDecision(line({ time, action }));
      assert.deepEqual(await store.countDecisions(from, to, 1_000), [
        { bucket: 10_250, action: 'greylist', count: 1 },
        { bucket: 10_250, action: 'pass', count: 1 },
        { bucket: 11_250, action: 'pass', count: 1 },
        // 12_250 had nothing.
        { bucket: 13_250, action: 'REJECT', count: 1 },
        { bucket: 13_250, action: 'pass', count: 2 },
        { bucket: 13_250, action: 'tempfail', count: 1 },
        { bucket: 14_250, action: 'greylist', count: 2 },
      ]);
      assert.deepEqual(
        await store.countDecisions(from, to, 60_000),
        [
          { bucket: from, action: 'REJECT', count: 1 },
          { bucket: from, action: 'greylist', count: 3 },
          { bucket: from, action: 'pass', count: 4 },
          { bucket: from, action: 'tempfail', count: 1 },
        ],
        'a bucket longer than the range: one, cut at to',
      );
      assert.deepEqual(
        await store.countDecisions(to, to + 1_000, 1_000),
        [{ bucket: to, action: 'pass', count: 1 }],
        'the line at to belongs to the next range',
      );
      assert.deepEqual(await store.countDecisions(from, from, 1_000), []);
      assert.deepEqual(await store.countDecisions(20_000, 30_000, 1_000), []);
      const counted = await store.countDecisions(0, 10_000_000, 1_000);
      assert.equal(
        counted.reduce((sum, c) => sum + c.count, 0),
        lines.length,
        'exactly 10000 buckets are allowed',
      );
    }));

  test('countDecisions: bad ranges and buckets are refused, naming the method', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await rejectsStore(store.countDecisions(1.5, 2_000, 1_000), /countDecisions: from/);
      await rejectsStore(store.countDecisions(0, Number.NaN, 1_000), /countDecisions: to/);
      await rejectsStore(store.countDecisions(0, 1_000, 999), /countDecisions: bucketMs/);
      await rejectsStore(store.countDecisions(0, 1_000, 1_000.5), /countDecisions: bucketMs/);
      await rejectsStore(store.countDecisions(0, 1_000, Number.NaN), /countDecisions: bucketMs/);
      await rejectsStore(store.countDecisions(2_000, 1_000, 1_000), /countDecisions: to .* before/);
      await rejectsStore(
        store.countDecisions(0, 10_000_001, 1_000),
        /countDecisions: at most 10000 buckets per call, got 10001/,
      );
      await rejectsStore(
        store.countDecisions(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1_000),
        /countDecisions: to - from/,
      );
    }));

  test('greylistSummary counts waiting and passed triplets and whitelisted clients', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      assert.deepEqual(await store.greylistSummary(5), { waiting: 0, passed: 0, whitelisted: 0 });
      const key = (i: number): TripletKey => ({ ...KEY, sender: `s${i}@example.org` });
      for (let i = 0; i < 4; i++) await store.firstAttempt(key(i), 'greylisted', 1_000);
      for (let i = 4; i < 6; i++) await store.firstAttempt(key(i), 'passed', 1_000);
      await store.recordPass(key(0), 2_000);
      // Counters of 1, 2 and 3: each count needs the last one to be before countAfter.
      for (const [client, times] of [
        ['192.0.2.1', 1],
        ['192.0.2.2', 2],
        ['192.0.2.0/24', 3],
      ] as const) {
        for (let n = 1; n <= times; n++) await store.countClient(client, n, n);
      }
      assert.equal((await store.getClient('192.0.2.0/24'))?.count, 3);
      assert.deepEqual(await store.greylistSummary(2), { waiting: 3, passed: 3, whitelisted: 2 });
      assert.equal((await store.greylistSummary(1)).whitelisted, 3);
      assert.equal((await store.greylistSummary(3)).whitelisted, 1, 'at the threshold counts');
      assert.equal((await store.greylistSummary(4)).whitelisted, 0);
      assert.deepEqual(
        await store.greylistSummary(0),
        { waiting: 3, passed: 3, whitelisted: 0 },
        '0: auto-whitelisting is off',
      );
      await rejectsStore(store.greylistSummary(-1), /greylistSummary: whitelistAt/);
      await rejectsStore(store.greylistSummary(1.5), /greylistSummary: whitelistAt/);
      await rejectsStore(store.greylistSummary(Number.NaN), /greylistSummary: whitelistAt/);
      await rejectsStore(
        store.greylistSummary('2' as unknown as number),
        /greylistSummary: whitelistAt/,
      );
    }));

  test('a closed store rejects every call; close is idempotent', () =>
    withDatabase(async (_db, open) => {
      const store = await open();
      await store.close();
      await store.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['getTriplet', () => store.getTriplet(KEY)],
        ['firstAttempt', () => store.firstAttempt(KEY, 'greylisted', 1)],
        ['recordEarlyRetry', () => store.recordEarlyRetry(KEY, 1)],
        ['recordPass', () => store.recordPass(KEY, 1)],
        ['getClient', () => store.getClient('c')],
        ['lookup', () => store.lookup(KEY)],
        ['countClient', () => store.countClient('c', 1, 0)],
        ['touchClient', () => store.touchClient('c', 1)],
        [
          'logDecision',
          () =>
            store.logDecision({
              time: 1,
              host: 'h',
              client: 'c',
              sender: 's',
              recipient: 'r',
              action: 'a',
              reason: 'r',
            }),
        ],
        ['recentDecisions', () => store.recentDecisions(1)],
        ['findDecisions', () => store.findDecisions({ search: 'x', limit: 1 })],
        ['countDecisions', () => store.countDecisions(0, 1_000, 1_000)],
        ['greylistSummary', () => store.greylistSummary(5)],
        [
          'expire',
          () =>
            store.expire({
              passedBefore: 1,
              greylistedBefore: 1,
              clientsBefore: 1,
              decisionsBefore: 1,
            }),
        ],
        ['schemaVersion', () => store.schemaVersion()],
        ['getCallback', () => store.getCallback('a@example.org', 0)],
        ['putCallback', () => store.putCallback(CALLBACK)],
        ['takeRate', () => store.takeRate('k', 1, 1_000, 1)],
        ['addReputation', () => store.addReputation([REP('domain:a.example', 'e', 1, 1)], 1)],
        ['addReputation', () => store.addReputation([], 1)],
        ['getReputation', () => store.getReputation(['domain:a.example'])],
        ['addDmarcResults', () => store.addDmarcResults([DMARC_FULL])],
        ['addDmarcResults', () => store.addDmarcResults([])],
        ['dmarcResults', () => store.dmarcResults(null, 0, 1, 1)],
        ['ping', () => store.ping()],
      ];
      for (const [name, call] of calls) {
        await rejectsStore(call(), new RegExp(`store ${name}: .* is closed`));
      }
    }));
}
