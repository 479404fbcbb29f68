// Expiry against a real SQLite store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DEFAULT_GREYLIST_SETTINGS,
  expireOnce,
  expiryCutoffs,
  startExpiry,
} from '../../src/greylist/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { ManualClock, RecordingLogger } from './helpers.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 21, 10, 0, 0);
const settings = DEFAULT_GREYLIST_SETTINGS;

let dir: string;
let serial = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailgate-expiry-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function freshStore(): Promise<Store> {
  return openStore(`sqlite:${join(dir, `expiry-${++serial}.db`)}`);
}

const k = (client: string) => ({ client, sender: 'jo@example.com', recipient: 'sam@example.org' });

/** Old and recent rows of every kind. */
async function fill(store: Store): Promise<void> {
  await store.firstAttempt(k('old-passed'), 'passed', NOW - 41 * DAY);
  await store.firstAttempt(k('recent-passed'), 'passed', NOW - 39 * DAY);
  await store.firstAttempt(k('old-grey'), 'greylisted', NOW - 11 * DAY);
  await store.firstAttempt(k('recent-grey'), 'greylisted', NOW - 9 * DAY);
  // Seen long ago, then seen again recently: expiry counts from the last time.
  await store.firstAttempt(k('revived'), 'greylisted', NOW - 20 * DAY);
  await store.recordEarlyRetry(k('revived'), NOW - DAY);
  await store.countClient('old-client', NOW - 41 * DAY, NOW - 41 * DAY - 60_000);
  await store.countClient('recent-client', NOW - DAY, NOW - DAY - 60_000);
  for (const [age, host] of [
    [31, 'old'],
    [29, 'recent'],
  ] as const) {
    await store.logDecision({
      time: NOW - age * DAY,
      host,
      client: '192.0.2.1',
      sender: '',
      recipient: 'sam@example.org',
      action: 'pass',
      reason: 'clean',
    });
  }
}

async function remaining(store: Store) {
  const names = ['old-passed', 'recent-passed', 'old-grey', 'recent-grey', 'revived'];
  const triplets: string[] = [];
  for (const name of names) if (await store.getTriplet(k(name))) triplets.push(name);
  const clients: string[] = [];
  for (const name of ['old-client', 'recent-client'])
    if (await store.getClient(name)) clients.push(name);
  const decisions = (await store.recentDecisions(10)).map((d) => d.host);
  return { triplets, clients, decisions };
}

test('the cut-offs follow the settings', () => {
  assert.deepEqual(expiryCutoffs(settings, NOW), {
    passedBefore: NOW - 40 * DAY,
    greylistedBefore: NOW - 10 * DAY,
    clientsBefore: NOW - 40 * DAY,
    decisionsBefore: NOW - 30 * DAY,
    ratesBefore: NOW - 2 * DAY,
  });
  assert.equal(
    expiryCutoffs({ ...settings, callbackTtlMs: 30 * DAY }, NOW).callbacksBefore,
    NOW - 30 * DAY,
  );
  assert.equal(
    expiryCutoffs({ ...settings, reputationTtlMs: 300 * DAY }, NOW).reputationBefore,
    NOW - 300 * DAY,
  );
});

test('expireOnce removes what is older than the settings allow, and only that', async () => {
  const store = await freshStore();
  try {
    await fill(store);
    const counts = await expireOnce(store, settings, new ManualClock(NOW));
    assert.deepEqual(counts, {
      passed: 1,
      greylisted: 1,
      clients: 1,
      decisions: 1,
      callbacks: 0,
      rates: 0,
      reputation: 0,
    });
    assert.deepEqual(await remaining(store), {
      triplets: ['recent-passed', 'recent-grey', 'revived'],
      clients: ['recent-client'],
      decisions: ['recent'],
    });
  } finally {
    await store.close();
  }
});

test('startExpiry runs soon after start and then on its interval, and stops', async () => {
  const store = await freshStore();
  try {
    await fill(store);
    const logger = new RecordingLogger();
    const clock = new ManualClock(NOW);
    const stop = startExpiry(store, settings, { clock, logger, firstDelayMs: 1, intervalMs: 20 });
    await waitFor(() => logger.count('info', 'greylist expiry') >= 1);
    const first = logger.of('greylist expiry')[0]!;
    assert.equal(first.fields.passed, 1);
    assert.equal(first.fields.greylisted, 1);
    // Two days later, by the injected clock, the next run takes what aged past its limit.
    clock.advance(2 * DAY);
    await waitFor(() =>
      logger
        .of('greylist expiry')
        .some((l) => l !== first && l.fields.greylisted === 1 && l.fields.passed === 1),
    );
    assert.deepEqual((await remaining(store)).triplets, ['revived']);
    stop();
    const runs = logger.count('info', 'greylist expiry');
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(logger.count('info', 'greylist expiry'), runs, 'no run after stop');
  } finally {
    await store.close();
  }
});

test('a failing run is logged, never thrown, and the next run still comes', async () => {
  const store = await freshStore();
  await store.close();
  const logger = new RecordingLogger();
  const stop = startExpiry(store, settings, { logger, firstDelayMs: 0, intervalMs: 10 });
  try {
    await waitFor(() => logger.count('error', 'greylist expiry failed') >= 2);
    const line = logger.of('greylist expiry failed')[0]!;
    assert.ok(line.fields.err instanceof Error);
    assert.equal(typeof line.fields.error, 'string');
  } finally {
    stop();
  }
});

test('the timers never keep the process alive', () => {
  const handles = () =>
    (process as unknown as { getActiveResourcesInfo(): string[] })
      .getActiveResourcesInfo()
      .filter((r) => r === 'Timeout').length;
  const before = handles();
  const stop = startExpiry({} as Store, settings, { firstDelayMs: 60_000 });
  try {
    // getActiveResourcesInfo lists only timers that keep the loop alive: an unref'd one is absent.
    assert.equal(handles(), before);
  } finally {
    stop();
  }
  assert.throws(() => startExpiry({} as Store, settings, { intervalMs: 0 }), TypeError);
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(condition(), 'condition not reached');
}
