/**
 * The store suite against SQLite files in a temp directory, and what only SQLite has: the file
 * and its directories created on first start, WAL, the URL forms, a lock held too long.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { type Decision, openStore, SCHEMA_VERSION, StoreError } from '../../src/store/index.js';
import { type SuiteBackend, storeSuite } from './store-suite.js';

let dir: string;
let serial = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailgate-store-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function rawQuery(path: string, sql: string): Record<string, unknown>[] {
  const db = new Database(path);
  try {
    const statement = db.prepare(sql);
    if (statement.reader) return statement.all() as Record<string, unknown>[];
    statement.run();
    return [];
  } finally {
    db.close();
  }
}

const backend: SuiteBackend = {
  kind: 'sqlite',
  async freshDatabase() {
    const path = join(dir, `suite-${++serial}.db`);
    const url = `sqlite:${path}`;
    return {
      url,
      open: (options) => openStore(url, options),
      query: async (sql) => rawQuery(path, sql),
    };
  },
};

describe('sqlite store', () => storeSuite(() => backend));

function decisionAt(time: number): Decision {
  return {
    time,
    host: 'mx1.example',
    client: '192.0.2.1',
    sender: `s${time}@example.com`,
    recipient: 'r@example.net',
    action: 'pass',
    reason: 'known',
  };
}

function countDecisions(path: string): unknown {
  return rawQuery(path, 'SELECT count(*) AS n FROM decision_log')[0]?.['n'];
}

describe('sqlite specifics', () => {
  test('the file and its missing directories are created on first start', async () => {
    const path = join(dir, 'fresh', 'nested', 'deeper', 'mailgate.db');
    const store = await openStore(`sqlite:${path}`);
    try {
      assert.ok(existsSync(path));
      assert.equal(store.description, `sqlite:${path}`);
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      assert.deepEqual(rawQuery(path, 'PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
    } finally {
      await store.close();
    }
  });

  test('a relative path is relative to the current directory; sqlite:/// is absolute', async () => {
    const cwd = process.cwd();
    const work = join(dir, 'relative');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(work);
    process.chdir(work);
    try {
      const store = await openStore('sqlite:./var/mailgate.db');
      await store.close();
      assert.ok(existsSync(join(work, 'var', 'mailgate.db')));
    } finally {
      process.chdir(cwd);
    }
    const absolute = join(dir, 'triple-slash.db');
    const store = await openStore(`sqlite://${absolute}`);
    await store.firstAttempt({ client: 'c', sender: 's', recipient: 'r' }, 'passed', 1);
    await store.close();
    assert.equal(rawQuery(absolute, 'SELECT count(*) AS n FROM triplets')[0]?.['n'], 1);
  });

  test('sqlite::memory: works and is private to its store', async () => {
    const a = await openStore('sqlite::memory:');
    const b = await openStore('sqlite::memory:');
    try {
      await a.firstAttempt({ client: 'c', sender: 's', recipient: 'r' }, 'greylisted', 1);
      assert.notEqual(await a.getTriplet({ client: 'c', sender: 's', recipient: 'r' }), null);
      assert.equal(await b.getTriplet({ client: 'c', sender: 's', recipient: 'r' }), null);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a lock held past the busy timeout rejects with a StoreError naming the call', async () => {
    const path = join(dir, 'locked.db');
    const store = await openStore(`sqlite:${path}`, { busyTimeoutMs: 100 });
    const holder = new Database(path);
    try {
      holder.exec('BEGIN EXCLUSIVE');
      await assert.rejects(
        store.firstAttempt({ client: 'c', sender: 's', recipient: 'r' }, 'greylisted', 1),
        (error: unknown) =>
          error instanceof StoreError &&
          /store firstAttempt failed: database is locked/.test(error.message),
      );
      holder.exec('ROLLBACK');
      assert.equal(
        (await store.firstAttempt({ client: 'c', sender: 's', recipient: 'r' }, 'greylisted', 1))
          .created,
        true,
        'the store works again once the lock is gone',
      );
    } finally {
      holder.close();
      await store.close();
    }
  });

  test('a thread moves the WAL into the database file; close commits the lines still waiting', async () => {
    const path = join(dir, 'checkpointed.db');
    const store = await openStore(`sqlite:${path}`, { checkpointEveryMs: 20 });
    const logged: Promise<void>[] = [];
    for (let t = 1; t <= 300; t++) logged.push(store.logDecision(decisionAt(t)));
    await Promise.all(logged);
    // Resolved means committed: another connection sees every line.
    assert.equal(countDecisions(path), 300);
    // The database file alone (without its WAL) holds them once a checkpoint ran. Left to
    // itself, SQLite would not checkpoint a WAL this small (under 1000 pages).
    const alone = join(dir, 'checkpointed-copy.db');
    const deadline = Date.now() + 10_000;
    for (;;) {
      copyFileSync(path, alone);
      let copied: unknown = 0;
      try {
        copied = countDecisions(alone);
      } catch {
        // not even the tables are in the file yet
      }
      if (copied === 300) break;
      assert.ok(Date.now() < deadline, `the file alone holds ${String(copied)} of 300 lines`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Lines still waiting for their group commit when the store closes are committed.
    for (let t = 301; t <= 400; t++) void store.logDecision(decisionAt(t));
    await Promise.all([store.close(), store.close()]);
    assert.equal(countDecisions(path), 400);
    const reopened = await openStore(`sqlite:${path}`);
    try {
      assert.deepEqual(
        (await reopened.recentDecisions(2)).map((d) => d.time),
        [400, 399],
      );
    } finally {
      await reopened.close();
    }
  });

  test('a checkpoint interval under 10 ms is refused', async () => {
    await assert.rejects(
      openStore(`sqlite:${join(dir, 'interval.db')}`, { checkpointEveryMs: 0 }),
      /checkpointEveryMs must be at least 10/,
    );
  });

  test('decision-log lines that cannot be committed reject with a StoreError; later ones are written', async () => {
    const path = join(dir, 'log-thread-locked.db');
    const store = await openStore(`sqlite:${path}`, { busyTimeoutMs: 100 });
    const holder = new Database(path);
    try {
      await store.logDecision(decisionAt(1));
      holder.exec('BEGIN EXCLUSIVE');
      await assert.rejects(
        store.logDecision(decisionAt(2)),
        (error: unknown) =>
          error instanceof StoreError &&
          /store logDecision failed: database is locked/.test(error.message),
      );
      holder.exec('ROLLBACK');
      await store.logDecision(decisionAt(3));
      assert.deepEqual(
        (await store.recentDecisions(10)).map((d) => d.time),
        [3, 1],
      );
    } finally {
      holder.close();
      await store.close();
    }
  });

  test("another process's lock never stops the event loop; the work is done once it is gone", async () => {
    const path = join(dir, 'locked-briefly.db');
    const store = await openStore(`sqlite:${path}`, { busyTimeoutMs: 5_000 });
    const holder = new Database(path);
    const key = { client: 'c', sender: 's', recipient: 'r' };
    try {
      holder.exec('BEGIN EXCLUSIVE');
      const started = Date.now();
      const attempt = store.firstAttempt(key, 'greylisted', 1);
      const line = store.logDecision(decisionAt(7));
      // Only a timer of this process releases the lock: a store that waited for it by
      // sleeping would keep the timer from running and fail after its 5 s.
      await new Promise((resolve) => setTimeout(resolve, 150));
      holder.exec('ROLLBACK');
      assert.equal((await attempt).created, true);
      await line;
      assert.ok(Date.now() - started < 3_000, 'done soon after the lock went');
      assert.equal(countDecisions(path), 1);
      // Lines still waiting for the lock when the store closes are committed once it goes.
      holder.exec('BEGIN EXCLUSIVE');
      const late = store.logDecision(decisionAt(8));
      const closing = store.close();
      await new Promise((resolve) => setTimeout(resolve, 150));
      holder.exec('ROLLBACK');
      await closing;
      await late;
      assert.equal(countDecisions(path), 2);
    } finally {
      holder.close();
      await store.close();
    }
  });

  test('call-back and rate-limit writes wait out a lock from a timer, then are done once', async () => {
    const path = join(dir, 'locked-cbv.db');
    const store = await openStore(`sqlite:${path}`, { busyTimeoutMs: 5_000 });
    const holder = new Database(path);
    const record = {
      sender: 'a@example.org',
      result: 'accepted' as const,
      reply: '250 ok',
      time: 1,
      host: 'mx1',
    };
    try {
      holder.exec('BEGIN EXCLUSIVE');
      const put = store.putCallback(record);
      const taken = [store.takeRate('k', 1, 1_000, 5), store.takeRate('k', 2, 1_000, 5)];
      // As for firstAttempt: only a timer of this process can release the lock.
      await new Promise((resolve) => setTimeout(resolve, 150));
      holder.exec('ROLLBACK');
      await put;
      assert.deepEqual((await Promise.all(taken)).map((t) => t.count).sort(), [1, 2]);
      assert.deepEqual(await store.getCallback('a@example.org', 0), record);
    } finally {
      holder.close();
      await store.close();
    }
  });

  test('lines held up by a lock keep their order, and reading the log waits for them', async () => {
    const path = join(dir, 'locked-lines.db');
    const store = await openStore(`sqlite:${path}`, { busyTimeoutMs: 5_000 });
    const holder = new Database(path);
    try {
      await store.logDecision(decisionAt(1));
      holder.exec('BEGIN EXCLUSIVE');
      const logged: Promise<void>[] = [];
      // More than one batch (512 lines) piles up behind the lock.
      for (let t = 2; t <= 1300; t++) logged.push(store.logDecision(decisionAt(t)));
      const recent = store.recentDecisions(2);
      await new Promise((resolve) => setTimeout(resolve, 150));
      holder.exec('ROLLBACK');
      assert.deepEqual(
        (await recent).map((d) => d.time),
        [1300, 1299],
        'the lines logged before the read are in its answer',
      );
      await Promise.all(logged);
      const times = rawQuery(path, 'SELECT time FROM decision_log ORDER BY id').map(
        (r) => r['time'],
      );
      assert.deepEqual(
        times,
        Array.from({ length: 1300 }, (_, i) => i + 1),
      );
    } finally {
      holder.close();
      await store.close();
    }
  });

  test('a path that cannot be created rejects with a StoreError naming the open', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    await assert.rejects(openStore(`sqlite:${file}/sub/mailgate.db`), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, new RegExp(`store open sqlite:${file}/sub/mailgate.db failed`));
      return true;
    });
  });

  test('a file that is not a database rejects with a StoreError', async () => {
    const file = join(dir, 'garbage.db');
    writeFileSync(file, 'x'.repeat(4096));
    await assert.rejects(openStore(`sqlite:${file}`), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, /store open .* failed: file is not a database/);
      return true;
    });
  });
});
