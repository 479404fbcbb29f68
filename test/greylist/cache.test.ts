import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SpfResult } from '../../src/checks/spf/types.js';
import { SpfMemo, VerdictCache } from '../../src/greylist/index.js';
import { ManualClock } from './helpers.js';

test('a verdict is held for ttlMs by the injected clock, then gone', () => {
  const clock = new ManualClock(1000);
  const cache = new VerdictCache(60_000, 10, clock);
  cache.set('192.0.2.1', 'bad');
  cache.set('192.0.2.2', 'good');
  clock.advance(59_999);
  assert.equal(cache.get('192.0.2.1'), 'bad');
  assert.equal(cache.get('192.0.2.2'), 'good');
  clock.advance(1);
  assert.equal(cache.get('192.0.2.1'), undefined);
  assert.equal(cache.get('192.0.2.2'), undefined);
  assert.deepEqual(cache.sizes, { good: 0, bad: 0 }, 'stale entries are dropped when looked at');
});

test('a client is never both good and bad: the newer verdict wins', () => {
  const clock = new ManualClock(0);
  const cache = new VerdictCache(60_000, 10, clock);
  cache.set('c', 'bad');
  cache.set('c', 'good');
  assert.equal(cache.get('c'), 'good');
  cache.set('c', 'bad');
  assert.equal(cache.get('c'), 'bad');
  assert.deepEqual(cache.sizes, { good: 0, bad: 1 });
  cache.delete('c');
  assert.equal(cache.get('c'), undefined);
});

test('each side is bounded; the least recently used goes first', () => {
  const clock = new ManualClock(0);
  const cache = new VerdictCache(60_000, 3, clock);
  for (const c of ['a', 'b', 'c']) cache.set(c, 'good');
  assert.equal(cache.get('a'), 'good'); // a is now the most recently used
  cache.set('d', 'good');
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.get('a'), 'good');
  assert.equal(cache.get('c'), 'good');
  assert.equal(cache.get('d'), 'good');
  for (const c of ['w', 'x', 'y', 'z']) cache.set(c, 'bad');
  assert.deepEqual(cache.sizes, { good: 3, bad: 3 });
});

test('a ttl of 0 or no entries turns the cache off', () => {
  const clock = new ManualClock(0);
  for (const cache of [new VerdictCache(0, 10, clock), new VerdictCache(60_000, 0, clock)]) {
    cache.set('a', 'bad');
    assert.equal(cache.enabled, false);
    assert.equal(cache.get('a'), undefined);
  }
  assert.throws(() => new VerdictCache(-1, 10, clock), TypeError);
  assert.throws(() => new VerdictCache(10, 1.5, clock), TypeError);
});

test('a clock that went back does not make an entry live longer', () => {
  const clock = new ManualClock(100_000);
  const cache = new VerdictCache(60_000, 10, clock);
  cache.set('a', 'bad');
  clock.set(50_000);
  assert.equal(cache.get('a'), undefined);
});

describe('the SPF memo', () => {
  const result = (word: SpfResult['result']): SpfResult => ({
    result: word,
    identity: 'mailfrom',
    ip: '192.0.2.1',
    sender: 'jo@example.org',
    domain: 'example.org',
    helo: 'mx.example.org',
    lookups: 0,
    voidLookups: 0,
    queries: 1,
    reply: { code: 250, xcode: '2.7.0', text: '' },
  });

  test('keeps a result for its time, not a temperror, and the most recent entries only', () => {
    const clock = new ManualClock(1_000);
    const memo = new SpfMemo(60_000, 2, clock);
    const pass = result('pass');
    assert.equal(memo.set('a', pass), pass);
    memo.set('t', result('temperror'));
    assert.equal(memo.get('a'), pass);
    assert.equal(memo.get('t'), undefined);
    clock.advance(59_999);
    assert.equal(memo.get('a'), pass);
    clock.advance(1);
    assert.equal(memo.get('a'), undefined);
    memo.set('x', pass);
    memo.set('y', pass);
    memo.get('x');
    memo.set('z', pass);
    assert.equal(memo.get('y'), undefined, 'the least recently used went first');
    assert.equal(memo.get('x'), pass);
    const off = new SpfMemo(0, 10, clock);
    assert.equal(off.set('a', pass), pass);
    assert.equal(off.get('a'), undefined, 'a ttl of 0 keeps nothing');
  });
});
