// The reader against a real SQLite file, seeded through the recorder: standings, the cache, and
// what a failing or silent store gives (unknown, never an exception, never a long wait).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  DEFAULT_REPUTATION_SETTINGS,
  lookupReputation,
  type Reputation,
  ReputationReader,
  ReputationRecorder,
  type ReputationStanding,
  readReputation,
} from '../../src/reputation/index.js';
import { StoreError } from '../../src/store/index.js';
import { ManualClock, RecordingLogger } from '../greylist/helpers.js';
import { TempStores } from './helpers.js';

const stores = new TempStores();
after(() => stores.cleanUp());

const DAY = 86_400_000;
const T = Date.UTC(2026, 0, 15);
const S = DEFAULT_REPUTATION_SETTINGS;
const GOOD = 'domain:good.example';
const BAD = 'net:198.51.100.0/24';

/** A store seeded through the recorder: a sender with a long good record, a bad network. */
async function seeded() {
  const store = await stores.open();
  const recorder = new ReputationRecorder(store, {
    logger: new RecordingLogger(),
    flushMs: 60_000,
  });
  for (let i = 0; i < 20; i++) recorder.record([GOOD], 'spf:pass', T - i * DAY);
  for (let i = 0; i < 5; i++) recorder.record([GOOD], 'greylist:pass', T - i * DAY);
  recorder.record([GOOD], 'spf:softfail', T - DAY);
  for (let i = 0; i < 6; i++) recorder.record([BAD], 'cbv:rejected', T);
  recorder.record([BAD], 'spf:pass', T);
  await recorder.close();
  return store;
}

function known(r: Reputation | undefined): ReputationStanding {
  assert.ok(r?.known, `not known: ${JSON.stringify(r)}`);
  return r;
}

test('readReputation: one query, standings in the order asked', async () => {
  const store = await seeded();
  const controlled = await stores.controlled(store);
  const [bad, good, nobody] = await readReputation(
    controlled,
    [BAD, GOOD, 'domain:nobody.example'],
    S,
    T,
  );
  assert.equal(controlled.gets.length, 1);
  const g = known(good);
  // Good: 20 passes over 19 days, 5 greylist passes over 4, one softfail a day ago.
  const passes = Array.from({ length: 20 }, (_, i) => 2 ** (-i / 30)).reduce((a, b) => a + b);
  const retries = Array.from({ length: 5 }, (_, i) => 2 ** (-i / 30)).reduce((a, b) => a + b);
  const softfail = 2 ** (-1 / 30);
  assert.ok(Math.abs((g.counts['spf:pass'] ?? 0) - passes) < 1e-9);
  assert.ok(Math.abs(g.observations - (passes + retries + softfail)) < 1e-9);
  const score = (passes + retries - softfail) / (passes + retries + softfail + 1);
  assert.ok(Math.abs(g.score - score) < 1e-9, `${g.score} ${score}`);
  assert.equal(g.goodStanding, true);
  assert.equal(g.lastSeen, T);
  const b = known(bad);
  // B = 6 × 2, G = 1: (1 - 12) / (1 + 12 + 1)
  assert.ok(Math.abs(b.score - -11 / 14) < 1e-12);
  assert.equal(b.observations, 7);
  assert.equal(b.goodStanding, false);
  assert.deepEqual(known(nobody).counts, {});
  assert.equal(known(nobody).goodStanding, false);
  // Half a year (six half-lives) later the good record has faded: a sixty-fourth of it is left,
  // too little to be sure of, and the prior pulls the score towards 0.
  const [faded] = await readReputation(store, [GOOD], S, T + 180 * DAY);
  assert.ok(Math.abs(known(faded).observations - g.observations / 64) < 1e-9);
  assert.ok(known(faded).score > 0 && known(faded).score < S.minScore);
  assert.equal(known(faded).goodStanding, false);

  controlled.mode = 'fail';
  await assert.rejects(readReputation(controlled, [GOOD], S, T), StoreError);
});

test('lookupReputation: a failing store gives unknown, never an exception', async () => {
  const controlled = await stores.controlled(await seeded());
  const [ok] = await lookupReputation(controlled, [GOOD], S, T);
  assert.equal(ok?.goodStanding, true);
  controlled.mode = 'fail';
  const answers = await lookupReputation(controlled, [GOOD, 'domain:evil\r\n.example'], S, T);
  const closed = /^store getReputation: sqlite:.* is closed$/;
  assert.deepEqual(
    answers.map((a) => ({ ...a, error: closed.test((a as { error: string }).error) })),
    [
      { subject: GOOD, known: false, goodStanding: false, error: true },
      {
        subject: 'domain:evil\uFFFD\uFFFD.example',
        known: false,
        goodStanding: false,
        error: true,
      },
    ],
  );
});

test('the reader caches rows for a minute, decayed to the time asked, in one query per miss', async () => {
  const controlled = await stores.controlled(await seeded());
  const clock = new ManualClock(T);
  const reader = new ReputationReader(controlled, S, { clock });
  const first = await reader.lookup([GOOD, BAD]);
  assert.equal(controlled.gets.length, 1);
  assert.deepEqual(controlled.gets[0], [GOOD, BAD]);
  // Every recipient of the session asks again: answered from the cache.
  for (let i = 0; i < 10; i++) assert.deepEqual(await reader.lookup([GOOD, BAD]), first);
  assert.equal(controlled.gets.length, 1);
  // A subject not cached yet is asked about alone.
  await reader.lookup([GOOD, 'domain:new.example']);
  assert.deepEqual(controlled.gets[1], ['domain:new.example']);
  // A lookup at a later time decays the cached rows to it.
  const later = known((await reader.lookup([GOOD], T + 30 * DAY))[0]);
  assert.ok(Math.abs(later.observations - known(first[0]).observations / 2) < 1e-9);
  assert.equal(controlled.gets.length, 2);
  // After the minute the store is asked again.
  clock.advance(60_001);
  await reader.lookup([GOOD, BAD]);
  assert.equal(controlled.gets.length, 3);
  // Concurrent lookups of one subject share one query.
  clock.advance(60_001);
  const together = await Promise.all(Array.from({ length: 5 }, () => reader.lookup([BAD], T)));
  assert.equal(controlled.gets.length, 4);
  for (const answer of together) assert.equal(known(answer[0]).observations, 7);
  reader.clear();
  await reader.lookup([BAD]);
  assert.equal(controlled.gets.length, 5);
});

test('the cache holds at most cacheEntries subjects, and 0 turns it off', async () => {
  const controlled = await stores.controlled(await seeded());
  const clock = new ManualClock(T);
  const small = new ReputationReader(controlled, S, { clock, cacheEntries: 2 });
  await small.lookup(['domain:a.example', 'domain:b.example', 'domain:c.example']);
  assert.equal(controlled.gets.length, 1);
  await small.lookup(['domain:c.example']);
  assert.equal(controlled.gets.length, 1, 'the newest are kept');
  await small.lookup(['domain:a.example']);
  assert.equal(controlled.gets.length, 2, 'the oldest went');
  const none = new ReputationReader(controlled, S, { clock, cacheTtlMs: 0 });
  await none.lookup([GOOD]);
  await none.lookup([GOOD]);
  assert.equal(controlled.gets.length, 4);
});

test('a failing store: unknown, logged once, not asked again for retryAfterMs', async () => {
  const controlled = await stores.controlled(await seeded());
  const clock = new ManualClock(T);
  const logger = new RecordingLogger();
  const reader = new ReputationReader(controlled, S, { clock, logger, retryAfterMs: 5_000 });
  await reader.lookup([BAD]);
  controlled.mode = 'fail';
  const [failed, cached] = await reader.lookup([GOOD, BAD]);
  assert.deepEqual(
    { ...failed, error: undefined },
    {
      subject: GOOD,
      known: false,
      goodStanding: false,
      error: undefined,
    },
  );
  assert.match(String((failed as { error: string }).error), /getReputation: .* is closed/);
  assert.equal(cached?.known, true, 'a cached subject is still answered');
  assert.equal(controlled.gets.length, 2);
  const [again] = await reader.lookup([GOOD]);
  assert.equal(again?.known, false);
  assert.match(String((again as { error: string }).error), /failed less than 5000 ms ago/);
  assert.equal(controlled.gets.length, 2, 'not asked while it rests');
  assert.equal(logger.of('reputation-lookup-failed').length, 1);
  clock.advance(5_001);
  controlled.mode = 'pass';
  const [back] = await reader.lookup([GOOD]);
  assert.equal(back?.goodStanding, true);
  assert.equal(controlled.gets.length, 3);
});

test('a silent store: unknown after timeoutMs, and the late answer fills the cache', async () => {
  const controlled = await stores.controlled(await seeded());
  const clock = new ManualClock(T);
  const reader = new ReputationReader(controlled, S, { clock, timeoutMs: 50 });
  controlled.mode = 'hang';
  const started = performance.now();
  const [slow] = await reader.lookup([GOOD]);
  const waited = performance.now() - started;
  assert.equal(slow?.known, false);
  assert.match(String((slow as { error: string }).error), /no answer from the store within 50 ms/);
  assert.ok(waited >= 45 && waited < 1_000, `waited ${waited} ms`);
  controlled.mode = 'pass';
  controlled.release();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const [late] = await reader.lookup([GOOD]);
  assert.equal(late?.goodStanding, true);
  assert.equal(controlled.gets.length, 1, 'answered by the query that was late');
  assert.throws(() => new ReputationReader(controlled, S, { timeoutMs: -1 }), TypeError);
});

test('more subjects than one query may hold are read in several', async () => {
  const controlled = await stores.controlled(await seeded());
  const reader = new ReputationReader(controlled, S, { clock: new ManualClock(T) });
  const many = [GOOD, ...Array.from({ length: 1_500 }, (_, i) => `domain:d${i}.example`)];
  const answers = await reader.lookup(many);
  assert.deepEqual(
    controlled.gets.map((g) => g.length),
    [1_000, 501],
  );
  assert.ok(answers.every((a) => a.known));
  assert.equal(answers[0]?.goodStanding, true);
});
