/**
 * The store suite against a real, throwaway PostgreSQL, and what only PostgreSQL has: a server
 * that is down or silent, passwords that must not reach a message, connections the server
 * drops, queries that hang.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  describeStoreUrl,
  openStore,
  SCHEMA_VERSION,
  type Store,
  StoreError,
  type StoreLogger,
} from '../../src/store/index.js';
import {
  freePort,
  postgresAvailable,
  skipUnlessPostgres,
  startPostgres,
  type TestPostgres,
} from '../support/postgres.js';
import { type SuiteBackend, storeSuite } from './store-suite.js';

const missing = postgresAvailable();
let postgres: TestPostgres | undefined;
let serial = 0;

const KEY = { client: '192.0.2.1', sender: 'a@example.org', recipient: 'b@example.net' };

/** A logger that keeps what it is told, for assertions. */
function recordingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const logger: StoreLogger = {
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
  };
  return { logger, lines };
}

async function rejectsStore(promise: Promise<unknown>, check: (error: StoreError) => void) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StoreError, `not a StoreError: ${error}`);
    check(error);
    return true;
  });
}

if (missing) {
  test('postgres store', (t) => {
    skipUnlessPostgres(t);
  });
} else {
  before(async () => {
    postgres = await startPostgres();
  });
  after(async () => {
    await postgres?.stop();
  });

  const cluster = () => {
    if (!postgres) throw new Error('the test PostgreSQL did not start');
    return postgres;
  };

  const backend: SuiteBackend = {
    kind: 'postgres',
    async freshDatabase() {
      const name = `suite_${++serial}`;
      const url = await cluster().createDatabase(name);
      return {
        url,
        open: (options) => openStore(url, { connectTimeoutMs: 5_000, ...options }),
        query: async (sql) => (await cluster().sql(name, sql)).rows,
      };
    },
  };

  describe('postgres store', () => storeSuite(() => backend));

  describe('postgres specifics', () => {
    test("docs/store.md's SQL sets up a role and database mailgate can migrate and use", async () => {
      const c = cluster();
      const guide = await readFile(new URL('../../docs/store.md', import.meta.url), 'utf8');
      const section = guide.slice(guide.indexOf('## PostgreSQL for several MX hosts'));
      const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
      assert.ok(block, 'docs/store.md has the SQL block');
      // The guide's names, made unique on this shared test cluster.
      const name = 'docs_setup';
      let database = 'postgres';
      for (const raw of block.split('\n')) {
        const line = raw.replace(/--.*$/, '').trim().replaceAll('mailgate', name);
        if (line === '') continue;
        const connect = /^\\c (\w+)$/.exec(line);
        if (connect) database = connect[1]!;
        else await c.sql(database, line.replace(/;$/, ''));
      }
      const store = await openStore(
        `postgres://${name}:choose-a-long-random-password@127.0.0.1:${c.port}/${name}`,
      );
      try {
        assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
        await store.firstAttempt({ client: 'c', sender: 's', recipient: 'r' }, 'greylisted', 1);
        const owner = await c.sql(
          name,
          "SELECT tableowner FROM pg_tables WHERE tablename = 'triplets'",
        );
        assert.equal(owner.rows[0]?.tableowner, name);
      } finally {
        await store.close();
      }
    });

    test('postgresql:// is accepted and the description has no password', async () => {
      const c = cluster();
      await c.createDatabase('scheme_alias');
      const url = `postgresql://mailgate:Sup3r%20Secret@127.0.0.1:${c.port}/scheme_alias`;
      const store = await openStore(url);
      try {
        assert.equal(store.kind, 'postgres');
        assert.equal(store.description, `postgresql://mailgate@127.0.0.1:${c.port}/scheme_alias`);
        await store.ping();
      } finally {
        await store.close();
      }
    });

    test('a closed port rejects with a StoreError, at once, and nothing crashes', async () => {
      const port = await freePort();
      const started = Date.now();
      await rejectsStore(
        openStore(`postgres://mailgate:hunter2pw@127.0.0.1:${port}/mailgate`, {
          connectTimeoutMs: 2_000,
        }),
        (error) => {
          assert.match(
            error.message,
            /^store open postgres:\/\/mailgate@127\.0\.0\.1:\d+\/mailgate failed: /,
          );
          assert.match(error.message, /ECONNREFUSED/);
          assert.doesNotMatch(error.message, /hunter2pw/);
        },
      );
      assert.ok(Date.now() - started < 2_000, 'refused connections do not wait for the timeout');
      await sleep(100); // a stray error event would end the process here
    });

    test('a server that never answers rejects within the connect timeout', async () => {
      const sockets = new Set<Socket>();
      const silent = createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const address = silent.address();
      assert.ok(address && typeof address === 'object');
      try {
        const started = Date.now();
        await rejectsStore(
          openStore(`postgres://mailgate:s3cr3t-word@127.0.0.1:${address.port}/mailgate`, {
            connectTimeoutMs: 300,
          }),
          (error) => {
            assert.match(error.message, /store open .* failed: .*timeout/i);
            assert.doesNotMatch(error.message, /s3cr3t-word/);
          },
        );
        const took = Date.now() - started;
        assert.ok(took >= 250 && took < 3_000, `rejected after ${took} ms`);
        await sleep(100);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    test('a refused login or missing database never shows the password', async () => {
      const c = cluster();
      const password = 'pa55-w0rd_that/must?not&leak';
      const url = `postgres://mailgate:${encodeURIComponent(password)}@127.0.0.1:${c.port}/no_such_db`;
      await rejectsStore(openStore(url), (error) => {
        assert.match(
          error.message,
          /store open postgres:\/\/mailgate@127\.0\.0\.1:\d+\/no_such_db failed: .*no_such_db.*does not exist/,
        );
        assert.ok(!error.message.includes(password));
        assert.ok(!error.message.includes(encodeURIComponent(password)));
      });
      assert.ok(!describeStoreUrl(url).includes('pa55'));
    });

    test('dropped idle connections are logged, not fatal, and the pool reconnects', async () => {
      const c = cluster();
      const url = await c.createDatabase('dropped');
      const { logger, lines } = recordingLogger();
      const store = await openStore(url, { logger, poolSize: 4 });
      try {
        // Fill the pool with idle connections, then have the server kill them all.
        await Promise.all(
          Array.from({ length: 4 }, () => store.firstAttempt(KEY, 'greylisted', 1)),
        );
        const killed = await c.sql(
          'postgres',
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = 'dropped' AND pid <> pg_backend_pid()`,
        );
        assert.ok(killed.rowCount !== null && killed.rowCount > 0);
        // Every killed connection is noticed (and logged) before the next query, or that query
        // could still be handed a connection the pool has not yet seen die.
        const deadline = Date.now() + 5_000;
        while (lines.length < (killed.rowCount ?? 0) && Date.now() < deadline) await sleep(20);
        assert.equal(lines.length, killed.rowCount, 'each lost connection is logged');
        assert.match(lines[0]?.message ?? '', /idle PostgreSQL connection lost/);
        assert.equal((await store.getTriplet(KEY))?.firstSeen, 1);
      } finally {
        await store.close();
      }
    });

    test('a query that hangs rejects after the query timeout', async () => {
      const c = cluster();
      const url = await c.createDatabase('hanging');
      const store: Store = await openStore(url, { queryTimeoutMs: 300 });
      const holder = new pg.Client({ connectionString: url });
      holder.on('error', () => {});
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE triplets IN ACCESS EXCLUSIVE MODE');
        const started = Date.now();
        await rejectsStore(store.getTriplet(KEY), (error) => {
          assert.match(error.message, /store getTriplet failed: .*timeout/i);
        });
        assert.ok(Date.now() - started < 3_000);
        await holder.query('ROLLBACK');
        assert.equal((await store.firstAttempt(KEY, 'greylisted', 1)).created, true);
      } finally {
        await holder.end();
        await store.close();
      }
    });
  });
}
