// The recorder against a real SQLite file: batching (one store call per batch), coalescing,
// its timers, and what an outage does (nothing to the request path).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ReputationEvent, ReputationRecorder } from '../../src/reputation/index.js';
import { ManualClock, RecordingLogger } from '../greylist/helpers.js';
import { TempStores } from './helpers.js';

const stores = new TempStores();
after(() => stores.cleanUp());

const DAY = 86_400_000;
const T = Date.UTC(2026, 0, 15);
const A = 'domain:example.org';
const N = 'net:192.0.2.0/24';

/** A recorder whose timer never fires by itself during a test, on a fresh store. */
async function setUp(
  options: { flushMs?: number; flushRows?: number; maxPendingRows?: number } = {},
) {
  const store = await stores.open();
  const controlled = await stores.controlled(store);
  const logger = new RecordingLogger();
  const clock = new ManualClock(T);
  const recorder = new ReputationRecorder(controlled, {
    logger,
    clock,
    halfLifeMs: 30 * DAY,
    flushMs: 60_000,
    ...options,
  });
  return { store, controlled, logger, clock, recorder };
}

async function until(condition: () => boolean, what: string, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

test('record only batches in memory; a flush is one store call for the whole batch', async () => {
  const { store, controlled, recorder } = await setUp();
  for (let i = 0; i < 100; i++) {
    recorder.record([A, N], i % 4 === 0 ? 'greylist:pass' : 'spf:pass', T);
  }
  assert.equal(controlled.adds.length, 0, 'nothing written on the request path');
  assert.deepEqual(recorder.stats(), {
    pending: 4,
    recorded: 200,
    written: 0,
    dropped: 0,
    flushes: 0,
    failedFlushes: 0,
  });
  await recorder.flush();
  assert.equal(controlled.adds.length, 1, 'one call');
  assert.equal(controlled.adds[0]?.deltas.length, 4, 'one row per subject and event');
  assert.equal(controlled.adds[0]?.halfLifeMs, 30 * DAY);
  assert.deepEqual(await store.getReputation([A, N]), [
    { subject: A, event: 'greylist:pass', amount: 25, updated: T },
    { subject: A, event: 'spf:pass', amount: 75, updated: T },
    { subject: N, event: 'greylist:pass', amount: 25, updated: T },
    { subject: N, event: 'spf:pass', amount: 75, updated: T },
  ]);
  await recorder.flush();
  assert.equal(controlled.adds.length, 1, 'an empty batch is no call');
  recorder.record([A], 'spf:pass');
  await recorder.flush();
  assert.equal(controlled.adds.length, 2);
  assert.equal(recorder.stats().written, 5);
  // A second batch adds to what the first wrote.
  assert.equal((await store.getReputation([A]))[1]?.amount, 76);
});

test('events coalesced in memory come out as the store would have added them one by one', async () => {
  const { store, recorder } = await setUp();
  const direct = await stores.open();
  const H = 30 * DAY;
  const times = [T, T + 3 * DAY, T - 2 * DAY, T + 45 * DAY, T + 45 * DAY, T + 10 * DAY];
  const event: ReputationEvent = 'cbv:accepted';
  for (const time of times) {
    recorder.record([A], event, time);
    await direct.addReputation([{ subject: A, event, amount: 1, time }], H);
  }
  await recorder.flush();
  const [batched] = await store.getReputation([A]);
  const [oneByOne] = await direct.getReputation([A]);
  assert.ok(batched && oneByOne);
  assert.equal(batched.updated, T + 45 * DAY);
  assert.equal(batched.updated, oneByOne.updated);
  assert.ok(
    Math.abs(batched.amount - oneByOne.amount) < 1e-12,
    `${batched.amount} ${oneByOne.amount}`,
  );
  // 1/2^(45/30) + 1/2^(42/30) + 1/2^(47/30) + 2 + 1/2^(35/30)
  const expected = [45, 42, 47, 0, 0, 35].reduce((sum, days) => sum + 2 ** (-days / 30), 0);
  assert.ok(Math.abs(batched.amount - expected) < 1e-12);
});

test('a batch goes after flushMs, or at once when flushRows rows wait', async () => {
  const timed = await setUp({ flushMs: 40 });
  timed.recorder.record([A], 'spf:pass', T);
  timed.recorder.record([A], 'spf:pass', T);
  await sleep(5);
  assert.equal(timed.controlled.adds.length, 0, 'not before flushMs');
  await until(() => timed.controlled.adds.length === 1, 'the timed flush');
  assert.equal(timed.controlled.adds[0]?.deltas[0]?.amount, 2);
  await sleep(60);
  assert.equal(timed.controlled.adds.length, 1, 'no timer runs without events');

  const full = await setUp({ flushRows: 3 });
  full.recorder.record([A, N], 'spf:pass', T);
  await sleep(5);
  assert.equal(full.controlled.adds.length, 0, 'two rows wait for the (minute-long) timer');
  full.recorder.record(['domain:example.net'], 'spf:pass', T);
  assert.equal(full.controlled.adds.length, 0, 'not even a full batch is written inside record');
  await until(() => full.controlled.adds.length === 1, 'the full batch');
  assert.equal(full.controlled.adds[0]?.deltas.length, 3);
  assert.equal(full.recorder.stats().pending, 0);
});

test('an outage never throws or waits in record; it is logged once and its batches are dropped', async () => {
  const { store, controlled, logger, recorder } = await setUp();
  controlled.mode = 'fail';
  recorder.record([A, N], 'spf:fail', T);
  await recorder.flush();
  recorder.record([A], 'spf:pass', T);
  recorder.record([A], 'cbv:rejected', T);
  await recorder.flush();
  assert.equal(controlled.adds.length, 2, 'each flush tried the store');
  const failed = logger.of('reputation-flush-failed');
  assert.equal(failed.length, 1, 'once per outage');
  assert.equal(failed[0]?.level, 'warn');
  assert.ok(failed[0]?.fields['err'] instanceof Error);
  assert.match(String(failed[0]?.fields['error']), /^store addReputation: sqlite:.* is closed$/);
  assert.equal(failed[0]?.fields['store'], 'controlled');
  assert.deepEqual(
    { ...recorder.stats() },
    { pending: 0, recorded: 4, written: 0, dropped: 4, flushes: 0, failedFlushes: 2 },
  );

  controlled.mode = 'pass';
  recorder.record([N], 'greylist:pass', T);
  await recorder.flush();
  const recovered = logger.of('reputation-flush-recovered');
  assert.equal(recovered.length, 1);
  assert.equal(recovered[0]?.level, 'info');
  assert.equal(recovered[0]?.fields['dropped'], 4);
  assert.deepEqual(
    (await store.getReputation([A, N])).map((r) => `${r.subject} ${r.event}`),
    [`${N} greylist:pass`],
    'the failed batches were dropped, not kept',
  );
  // A new outage is logged again.
  controlled.mode = 'fail';
  recorder.record([A], 'spf:pass', T);
  await recorder.flush();
  assert.equal(logger.of('reputation-flush-failed').length, 2);
});

test('a hanging store: record returns at once and what waits is bounded', async () => {
  const { store, controlled, logger, recorder } = await setUp({
    flushRows: 10,
    maxPendingRows: 100,
  });
  controlled.mode = 'hang';
  const subject = (i: number) => `domain:d${i}.example`;
  for (let i = 0; i < 10; i++) recorder.record([subject(i)], 'spf:pass', T);
  await until(() => controlled.adds.length === 1, 'the first write to start');
  const started = performance.now();
  for (let i = 10; i < 10_010; i++) recorder.record([subject(i)], 'spf:pass', T);
  const spent = performance.now() - started;
  assert.ok(spent < 1_000, `10 000 records took ${spent} ms`);
  assert.equal(controlled.adds.length, 1, 'no second write while the first hangs');
  const stats = recorder.stats();
  assert.equal(stats.pending, 100, 'bounded');
  assert.equal(stats.dropped, 10_000 - 100);
  assert.equal(logger.of('reputation-pending-full').length, 1, 'said once');
  // Events for rows already waiting still count: they take no more memory.
  recorder.record([subject(10)], 'spf:pass', T);
  assert.equal(recorder.stats().dropped, 10_000 - 100);

  controlled.mode = 'pass';
  controlled.release();
  await recorder.close();
  assert.equal(controlled.adds.length, 2, 'the waiting rows in one more call');
  assert.equal(controlled.adds[1]?.deltas.length, 100);
  const rows = await store.getReputation(Array.from({ length: 110 }, (_, i) => subject(i)));
  assert.equal(rows.length, 110);
  assert.equal(rows.find((r) => r.subject === subject(10))?.amount, 2);
});

test('close writes what waits; later events are dropped; close is idempotent', async () => {
  const { store, controlled, recorder } = await setUp();
  recorder.record([A], 'dmarc:pass', T);
  await recorder.close();
  assert.equal(controlled.adds.length, 1);
  recorder.record([A], 'dmarc:pass', T);
  assert.equal(recorder.stats().dropped, 1);
  await recorder.close();
  assert.equal(controlled.adds.length, 1);
  assert.deepEqual(await store.getReputation([A]), [
    { subject: A, event: 'dmarc:pass', amount: 1, updated: T },
  ]);
});

test('the time comes from the clock when none is given; bad arguments are refused', async () => {
  const { store, clock, recorder } = await setUp();
  clock.set(T + 1234);
  recorder.record([A], 'spf:none');
  await recorder.flush();
  assert.equal((await store.getReputation([A]))[0]?.updated, T + 1234);
  assert.throws(() => recorder.record([A], 'spf:maybe' as never, T), TypeError);
  assert.throws(() => recorder.record([A], 'spf:pass', 1.5), TypeError);
  assert.equal(recorder.stats().recorded, 1, 'refused calls count nothing');
  const logger = new RecordingLogger();
  for (const options of [
    { flushMs: 0 },
    { halfLifeMs: 1.5 },
    { flushRows: -1 },
    { maxPendingRows: Number.NaN },
  ]) {
    assert.throws(() => new ReputationRecorder(store, { logger, ...options }), TypeError);
  }
});

test("the recorder's timers never keep the process alive", async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./recorder-child.ts', import.meta.url))],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d;
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d;
  });
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  assert.equal(out, 'pending 1\n');
  assert.ok(Date.now() - started < 30_000, 'exited without waiting for the minute-long timer');
});
