// The TTL cache on its own, with an injected clock: lifetimes, caps, LRU order and copies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerTtl, DnsCache, negativeTtl } from '../../src/dns/cache.js';
import type { DnsResult, SoaRecord } from '../../src/dns/types.js';

function clock(start = 0) {
  const c = {
    t: start,
    now: () => c.t,
    advance: (s: number) => {
      c.t += s * 1000;
    },
  };
  return c;
}

function txtAnswer(ttl: number, text = 'v=spf1 -all'): DnsResult {
  return {
    kind: 'answer',
    records: [{ type: 'TXT', name: 'example.com', ttl, strings: [text] }],
    cnames: [{ type: 'CNAME', name: 'alias.example.com', ttl: ttl + 100, target: 'example.com' }],
    additional: [],
    cached: false,
  };
}

const soa = (ttl: number, minimum: number): SoaRecord => ({
  type: 'SOA',
  name: 'example.com',
  ttl,
  mname: 'ns.example.com',
  rname: 'hostmaster.example.com',
  serial: 1,
  minimum,
});

test('answerTtl is the smallest TTL of records and CNAMEs', () => {
  const r = txtAnswer(300);
  assert.ok(r.kind === 'answer');
  assert.equal(answerTtl(r.records, r.cnames), 300);
  assert.equal(answerTtl(r.records, [{ ...r.cnames[0]!, ttl: 5 }]), 5);
});

test('negativeTtl follows RFC 2308: min(SOA TTL, SOA minimum), none without SOA', () => {
  assert.equal(negativeTtl([soa(3600, 60)]), 60);
  assert.equal(negativeTtl([soa(30, 900)]), 30);
  assert.equal(negativeTtl([]), undefined);
});

test('entries age, report the time left, and die at their TTL', () => {
  const c = clock();
  const cache = new DnsCache(c);
  cache.set('Example.COM', 'TXT', txtAnswer(300), 300);
  c.advance(120);
  const hit = cache.get('example.com', 'TXT');
  assert.ok(hit?.kind === 'answer' && hit.cached);
  assert.equal(hit.records[0]?.ttl, 180);
  assert.equal(hit.cnames[0]?.ttl, 180, 'no record outlives its entry');
  assert.equal(cache.lookup('example.com', 'TXT')?.ttl, 180);
  assert.equal(cache.get('example.com', 'SPF'), undefined, 'the type is part of the key');
  c.advance(180);
  assert.equal(cache.get('example.com', 'TXT'), undefined);
  assert.equal(cache.size, 0);
});

test('caps, zero TTLs and temporary failures', () => {
  const c = clock();
  const cache = new DnsCache(c, { maxTtl: 60, maxNegativeTtl: 10 });
  cache.set('a.example', 'A', txtAnswer(3600), 3600);
  cache.set('b.example', 'A', { kind: 'nxdomain', cached: false }, 3600);
  cache.set('c.example', 'A', txtAnswer(0), 0);
  cache.set('d.example', 'A', { kind: 'temporary', reason: 'servfail', detail: 'x' }, 300);
  assert.equal(cache.size, 2);
  c.advance(10);
  assert.ok(cache.get('a.example', 'A'));
  assert.equal(cache.get('b.example', 'A'), undefined);
  c.advance(50);
  assert.equal(cache.get('a.example', 'A'), undefined);
  const off = new DnsCache(c, { maxEntries: 0 });
  off.set('a.example', 'A', txtAnswer(300), 300);
  assert.equal(off.size, 0);
});

test('the least recently used entry goes first', () => {
  const cache = new DnsCache(clock(), { maxEntries: 2 });
  cache.set('one', 'A', { kind: 'nodata', cached: false }, 60);
  cache.set('two', 'A', { kind: 'nodata', cached: false }, 60);
  assert.ok(cache.get('one', 'A'));
  cache.set('three', 'A', { kind: 'nodata', cached: false }, 60);
  assert.ok(cache.get('one', 'A'));
  assert.equal(cache.get('two', 'A'), undefined);
  assert.ok(cache.get('three', 'A'));
  // Storing an existing key again refreshes it instead of growing the cache.
  cache.set('one', 'A', { kind: 'nxdomain', cached: false }, 60);
  assert.equal(cache.size, 2);
  assert.deepEqual(cache.get('one', 'A'), { kind: 'nxdomain', cached: true });
});

test('what goes in is copied; what comes out is frozen and shared', () => {
  const cache = new DnsCache(clock());
  const original = txtAnswer(300);
  cache.set('example.com', 'TXT', original, 300);
  strings(original)[0] = 'changed after set';
  const first = cache.get('example.com', 'TXT');
  assert.deepEqual(strings(first), ['v=spf1 -all']);
  assert.throws(() => strings(first).push('changed after get'), TypeError);
  assert.throws(() => {
    strings(first)[0] = 'changed after get';
  }, TypeError);
  assert.equal(cache.get('example.com', 'TXT'), first, 'readers in the same second share one copy');
  assert.deepEqual(strings(cache.get('example.com', 'TXT')), ['v=spf1 -all']);
});

/** The strings of the first record of a TXT answer. */
function strings(result: DnsResult | undefined): string[] {
  assert.ok(result?.kind === 'answer');
  const record = result.records[0];
  assert.ok(record?.type === 'TXT');
  return record.strings;
}

test('answers over the size bound are not kept', () => {
  const cache = new DnsCache(clock(), { maxEntryBytes: 1000 });
  cache.set('big.example', 'TXT', txtAnswer(300, 'x'.repeat(2000)), 300);
  assert.equal(cache.get('big.example', 'TXT'), undefined);
  cache.set('small.example', 'TXT', txtAnswer(300), 300);
  assert.equal(cache.get('small.example', 'TXT')?.kind, 'answer');
  assert.throws(() => new DnsCache(clock(), { maxEntries: Number.NaN }), /maxEntries/);
});
