// The stub resolver against real servers on 127.0.0.1: the fixture zone server for ordinary DNS,
// and hand-made UDP servers for the misbehaviour a zone cannot express (spoofs, garbage, delays).
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import * as packet from 'dns-packet';
import {
  createResolver,
  type DnsResult,
  parseResolvConf,
  parseServerSpec,
  type QueryMeter,
  type RecordOf,
  type RecordType,
  type ResolverOptions,
  readResolvConf,
  type StubResolver,
} from '../../src/dns/index.js';
import { type DnsServerOptions, startDnsServer, type ZoneData } from '../support/dns-server.js';

class FakeClock {
  t = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

/** A fixture server for this test, closed when the test ends. */
async function fixture(t: TestContext, zone: ZoneData, options: DnsServerOptions = {}) {
  const server = await startDnsServer(zone, options);
  t.after(() => server.close());
  return server;
}

function resolverFor(servers: string[], options: Partial<ResolverOptions> = {}): StubResolver {
  return createResolver({ servers, timeout: 200, attempts: 1, ...options });
}

function records<T extends RecordType>(result: DnsResult<T>): RecordOf<T>[] {
  assert.equal(result.kind, 'answer', `expected an answer, got ${JSON.stringify(result)}`);
  return (result as Extract<DnsResult<T>, { kind: 'answer' }>).records;
}

const ZONE: ZoneData = {
  'example.com': [
    { A: '192.0.2.1' },
    { A: '192.0.2.2' },
    { AAAA: '2001:db8:0:0::1' },
    { MX: [10, 'mx1.example.com.'] },
    { MX: [20, 'MX2.Example.com'] },
    { TXT: 'v=spf1 -all' },
    { TXT: ['two ', 'strings'] },
    { SPF: 'v=spf1 ?all' },
    { NS: 'ns1.example.com' },
  ],
  'nullmx.example.com': [{ MX: [0, '.'] }],
  '_sip._udp.example.com': [{ SRV: [10, 60, 5060, 'sip.example.com'] }],
  '_none._tcp.example.com': [{ SRV: [0, 0, 0, '.'] }],
  '1.2.0.192.in-addr.arpa': [{ PTR: 'Host.Example.COM.' }],
  'bytes.example.com': [{ TXT: '\xEF\xBB\xBFv=spf1 \x80 -all' }],
  'www.example.com': [{ CNAME: 'web.example.com' }],
  'web.example.com': [{ CNAME: 'example.com' }],
  'dangling.example.com': [{ CNAME: 'nowhere.example.com' }],
  'loop1.example.com': [{ CNAME: 'loop2.example.com' }],
  'loop2.example.com': [{ CNAME: 'LOOP1.example.com' }],
  'deep.a.b.example.org': [{ A: '192.0.2.9' }],
};

describe('answers', () => {
  test('records of every type, decoded into the shapes of types.ts', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address]);

    const a = records(await r.query('example.com', 'A'));
    assert.deepEqual(
      a.map((x) => x.address),
      ['192.0.2.1', '192.0.2.2'],
    );
    assert.deepEqual(a[0], { type: 'A', name: 'example.com', ttl: 300, address: '192.0.2.1' });

    assert.deepEqual(
      records(await r.query('example.com', 'AAAA')).map((x) => x.address),
      ['2001:db8::1'],
    );
    assert.deepEqual(
      records(await r.query('example.com', 'MX')).map((x) => [x.preference, x.exchange]),
      [
        [10, 'mx1.example.com'],
        [20, 'MX2.Example.com'],
      ],
    );
    assert.deepEqual(
      records(await r.query('nullmx.example.com', 'MX')).map((x) => x.exchange),
      [''],
    );
    assert.deepEqual(
      records(await r.query('example.com', 'TXT')).map((x) => x.strings),
      [['v=spf1 -all'], ['two ', 'strings']],
    );
    const spf = records(await r.query('example.com', 'SPF'));
    assert.deepEqual(spf, [
      { type: 'SPF', name: 'example.com', ttl: 300, strings: ['v=spf1 ?all'] },
    ]);
    assert.deepEqual(
      records(await r.query('example.com', 'NS')).map((x) => x.target),
      ['ns1.example.com'],
    );
    assert.deepEqual(records(await r.query('1.2.0.192.in-addr.arpa', 'PTR')), [
      { type: 'PTR', name: '1.2.0.192.in-addr.arpa', ttl: 300, target: 'Host.Example.COM' },
    ]);
    assert.deepEqual(records(await r.query('_sip._udp.example.com', 'SRV')), [
      {
        type: 'SRV',
        name: '_sip._udp.example.com',
        ttl: 300,
        priority: 10,
        weight: 60,
        port: 5060,
        target: 'sip.example.com',
      },
    ]);
    assert.equal(records(await r.query('_none._tcp.example.com', 'SRV'))[0]?.target, '');
    assert.deepEqual(
      records(await r.query('www.example.com', 'CNAME')).map((x) => x.target),
      ['web.example.com'],
    );
  });

  test('TXT strings are decoded byte for byte', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address]);
    const [txt] = records(await r.query('bytes.example.com', 'TXT'));
    const codes = [...(txt?.strings[0] ?? '')].map((c) => c.charCodeAt(0));
    assert.deepEqual(codes.slice(0, 3), [0xef, 0xbb, 0xbf]);
    assert.ok(codes.includes(0x80));
  });

  test('a trailing dot and any case ask for the same name', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address], { clock: new FakeClock() });
    records(await r.query('EXAMPLE.com.', 'A'));
    const again = await r.query('example.COM', 'A');
    assert.equal(again.kind === 'answer' && again.cached, true);
    assert.equal(server.queries.length, 1);
  });

  test('a CNAME chain followed by the server comes back with its links', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address]);
    const result = await r.query('www.example.com', 'A');
    assert.deepEqual(
      records(result).map((x) => x.address),
      ['192.0.2.1', '192.0.2.2'],
    );
    assert.ok(result.kind === 'answer');
    assert.deepEqual(
      result.cnames.map((c) => [c.name, c.target]),
      [
        ['www.example.com', 'web.example.com'],
        ['web.example.com', 'example.com'],
      ],
    );
    assert.equal(server.queries.length, 1);
  });

  test('NXDOMAIN, NODATA, an empty non-terminal, and chains ending in each or in a loop', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address]);
    assert.deepEqual(await r.query('nothere.example.com', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
    assert.deepEqual(await r.query('example.com', 'SRV'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('b.example.org', 'A'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('dangling.example.com', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
    assert.deepEqual(await r.query('www.example.com', 'SRV'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('loop1.example.com', 'A'), { kind: 'nodata', cached: false });
  });

  test('query results are frozen: no caller can change what another receives', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address], { clock: new FakeClock() });
    const first = records(await r.query('example.com', 'TXT'));
    assert.throws(() => {
      first[0]!.strings[0] = 'tampered';
    }, TypeError);
    assert.throws(() => {
      first.length = 0;
    }, TypeError);
    const second = records(await r.query('example.com', 'TXT'));
    assert.deepEqual(second[0]?.strings, ['v=spf1 -all']);
  });
});

describe('cache', () => {
  test('positive entries live for the smallest TTL and report the time left', async (t) => {
    const server = await fixture(t, {
      'short.example.com': [{ TTL: 30 }, { CNAME: 'target.example.com' }],
      'target.example.com': [{ A: '192.0.2.7' }],
    });
    const clock = new FakeClock();
    const r = resolverFor([server.address], { clock });

    const fresh = await r.query('target.example.com', 'A');
    assert.equal(fresh.kind === 'answer' && fresh.cached, false);
    clock.advance(100);
    const aged = await r.query('target.example.com', 'A');
    assert.ok(aged.kind === 'answer' && aged.cached);
    assert.equal(aged.records[0]?.ttl, 200);
    clock.advance(200);
    const expired = await r.query('target.example.com', 'A');
    assert.ok(expired.kind === 'answer' && !expired.cached);
    assert.equal(expired.records[0]?.ttl, 300);
    assert.equal(server.queries.length, 2);

    // Through a CNAME with TTL 30 the whole answer is only good for 30 s.
    server.resetLog();
    await r.query('short.example.com', 'A');
    clock.advance(29);
    const held = await r.query('short.example.com', 'A');
    assert.ok(held.kind === 'answer' && held.cached);
    assert.equal(held.cnames[0]?.ttl, 1);
    clock.advance(2);
    const refetched = await r.query('short.example.com', 'A');
    assert.ok(refetched.kind === 'answer' && !refetched.cached);
    assert.equal(server.queries.length, 2);
    assert.equal(r.stats.cacheHits, 2);
  });

  test('maxTtl caps what a long TTL asks for', async (t) => {
    const server = await fixture(t, { 'example.com': [{ A: '192.0.2.1' }] });
    const clock = new FakeClock();
    const r = resolverFor([server.address], { clock, cache: { maxTtl: 10 } });
    await r.query('example.com', 'A');
    clock.advance(9);
    const held = await r.query('example.com', 'A');
    assert.ok(held.kind === 'answer' && held.cached);
    assert.equal(held.records[0]?.ttl, 1);
    clock.advance(1);
    assert.equal((await r.query('example.com', 'A')).kind === 'answer', true);
    assert.equal(server.queries.length, 2);
  });

  test('NXDOMAIN and NODATA are cached for min(SOA TTL, SOA minimum), then asked again', async (t) => {
    const server = await fixture(t, ZONE, { negativeTtl: 60 });
    const clock = new FakeClock();
    const r = resolverFor([server.address], { clock });
    assert.deepEqual(await r.query('nothere.example.com', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
    assert.deepEqual(await r.query('example.com', 'SRV'), { kind: 'nodata', cached: false });
    clock.advance(59);
    assert.deepEqual(await r.query('NotHere.example.com', 'A'), { kind: 'nxdomain', cached: true });
    assert.deepEqual(await r.query('example.com', 'SRV'), { kind: 'nodata', cached: true });
    assert.equal(server.queries.length, 2);
    clock.advance(2);
    assert.deepEqual(await r.query('nothere.example.com', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
    assert.deepEqual(await r.query('example.com', 'SRV'), { kind: 'nodata', cached: false });
    assert.equal(server.queries.length, 4);
  });

  test('maxNegativeTtl caps negative entries', async (t) => {
    const server = await fixture(t, ZONE, { negativeTtl: 86400 });
    const clock = new FakeClock();
    const r = resolverFor([server.address], { clock, cache: { maxNegativeTtl: 5 } });
    await r.query('nothere.example.com', 'A');
    clock.advance(4);
    assert.deepEqual(await r.query('nothere.example.com', 'A'), { kind: 'nxdomain', cached: true });
    clock.advance(1);
    assert.deepEqual(await r.query('nothere.example.com', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
  });

  test('the negative TTL is the smaller of the SOA TTL and its minimum', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      const name = query.questions![0]!.name.toLowerCase();
      // low-minimum: TTL 3600, minimum 20 → 20 s; low-ttl: TTL 10, minimum 900 → 10 s.
      const [ttl, minimum] = name === 'low-minimum.example' ? [3600, 20] : [10, 900];
      send(response(query, { rcode: 3, authorities: [soa('example', ttl, minimum)] }));
    });
    const clock = new FakeClock();
    const r = resolverFor([stub.address], { clock });
    await r.query('low-minimum.example', 'A');
    await r.query('low-ttl.example', 'A');
    clock.advance(9);
    assert.deepEqual(await r.query('low-minimum.example', 'A'), { kind: 'nxdomain', cached: true });
    assert.deepEqual(await r.query('low-ttl.example', 'A'), { kind: 'nxdomain', cached: true });
    clock.advance(2);
    assert.deepEqual(await r.query('low-minimum.example', 'A'), { kind: 'nxdomain', cached: true });
    assert.deepEqual(await r.query('low-ttl.example', 'A'), { kind: 'nxdomain', cached: false });
    clock.advance(10);
    assert.deepEqual(await r.query('low-minimum.example', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
    assert.equal(stub.received.length, 4);
  });

  test('a negative answer without SOA is not cached', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      send(response(query, { rcode: 3 }));
    });
    const r = resolverFor([stub.address], { clock: new FakeClock() });
    assert.deepEqual(await r.query('gone.example', 'A'), { kind: 'nxdomain', cached: false });
    assert.deepEqual(await r.query('gone.example', 'A'), { kind: 'nxdomain', cached: false });
    assert.equal(stub.received.length, 2);
  });

  test('temporary failures are not cached', async (t) => {
    const server = await fixture(t, { 'broken.example.com': [{ RCODE: 'SERVFAIL' }] });
    const r = resolverFor([server.address], { clock: new FakeClock() });
    assert.equal((await r.query('broken.example.com', 'A')).kind, 'temporary');
    assert.equal((await r.query('broken.example.com', 'A')).kind, 'temporary');
    assert.equal(server.queries.length, 2);
  });

  test('the LRU bound drops the least recently used entry', async (t) => {
    const server = await fixture(t, {
      'a.example.com': [{ A: '192.0.2.1' }],
      'b.example.com': [{ A: '192.0.2.2' }],
      'c.example.com': [{ A: '192.0.2.3' }],
    });
    const r = resolverFor([server.address], { clock: new FakeClock(), cache: { maxEntries: 2 } });
    await r.query('a.example.com', 'A');
    await r.query('b.example.com', 'A');
    await r.query('a.example.com', 'A'); // a is now the most recently used
    await r.query('c.example.com', 'A'); // evicts b
    server.resetLog();
    const a = await r.query('a.example.com', 'A');
    const c = await r.query('c.example.com', 'A');
    assert.ok(a.kind === 'answer' && a.cached);
    assert.ok(c.kind === 'answer' && c.cached);
    assert.equal(server.queries.length, 0);
    const b = await r.query('b.example.com', 'A');
    assert.ok(b.kind === 'answer' && !b.cached);
    assert.equal(server.queries.length, 1);
  });

  test('clearCache forgets, cache: false never remembers', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address], { clock: new FakeClock() });
    await r.query('example.com', 'A');
    r.clearCache();
    await r.query('example.com', 'A');
    const none = resolverFor([server.address], { cache: false });
    await none.query('example.com', 'A');
    await none.query('example.com', 'A');
    assert.equal(server.queries.length, 4);
  });
});

describe('coalescing', () => {
  test('concurrent identical queries share one exchange', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address], { cache: false });
    const [one, two, other] = await Promise.all([
      r.query('example.com', 'MX'),
      r.query('EXAMPLE.COM', 'MX'),
      r.query('example.com', 'A'),
    ]);
    assert.deepEqual(one, two);
    assert.ok(Object.isFrozen(records(one)) && Object.isFrozen(records(one)[0]));
    assert.equal(other.kind, 'answer');
    assert.deepEqual(
      server.queries.map((q) => q.type),
      ['MX', 'A'],
    );
    assert.equal(r.stats.coalesced, 1);
    assert.equal(r.stats.sent, 2);
  });

  test('each caller keeps its own deadline', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      setTimeout(() => send(response(query, { answers: [a(query, '192.0.2.5')] })), 400);
    });
    const r = resolverFor([stub.address], { timeout: 2000 });
    const started = Date.now();
    const impatient = r.query('slow.example', 'A', { deadline: Date.now() + 50 });
    const patient = r.query('slow.example', 'A');
    const first = await impatient;
    assert.equal(first.kind === 'temporary' && first.reason, 'deadline');
    assert.ok(Date.now() - started < 350, 'the impatient caller did not wait for the reply');
    assert.deepEqual(
      records(await patient).map((x) => x.address),
      ['192.0.2.5'],
    );
    assert.equal(stub.received.length, 1);
    assert.equal(r.stats.coalesced, 1);
  });
});

describe('fallbacks and failures', () => {
  test('a truncated UDP answer is fetched again over TCP', async (t) => {
    const big = Array.from({ length: 12 }, (_, i) => `${i}:${'x'.repeat(200)}`);
    const server = await fixture(t, { 'big.example.com': [{ TXT: big }] });
    const r = resolverFor([server.address]);
    const [txt] = records(await r.query('big.example.com', 'TXT'));
    assert.deepEqual(txt?.strings, big);
    assert.deepEqual(
      server.queries.map((q) => q.transport),
      ['udp', 'tcp'],
    );
    assert.equal(r.stats.sent, 2);
  });

  test('without EDNS the UDP limit is 512 bytes', async (t) => {
    const server = await fixture(t, { 'mid.example.com': [{ TXT: 'y'.repeat(600) }] });
    const plain = resolverFor([server.address], { ednsPayload: 0 });
    assert.equal(
      records(await plain.query('mid.example.com', 'TXT'))[0]?.strings.join(''),
      'y'.repeat(600),
    );
    assert.deepEqual(
      server.queries.map((q) => [q.transport, q.edns]),
      [
        ['udp', false],
        ['tcp', false],
      ],
    );
    server.resetLog();
    const edns = resolverFor([server.address]);
    records(await edns.query('mid.example.com', 'TXT'));
    assert.deepEqual(
      server.queries.map((q) => [q.transport, q.edns]),
      [['udp', true]],
    );
  });

  test('FORMERR to an EDNS query is retried without EDNS, and remembered', async (t) => {
    const server = await fixture(t, ZONE, { ednsFormerr: true });
    const r = resolverFor([server.address]);
    assert.equal(records(await r.query('example.com', 'A')).length, 2);
    assert.deepEqual(
      server.queries.map((q) => q.edns),
      [true, false],
    );
    server.resetLog();
    records(await r.query('example.com', 'MX'));
    assert.deepEqual(
      server.queries.map((q) => q.edns),
      [false],
    );
  });

  test('SERVFAIL from the first server moves on to the second', async (t) => {
    const failing = await fixture(t, { 'example.com': [{ RCODE: 'SERVFAIL' }] });
    const working = await fixture(t, ZONE);
    const r = createResolver({ servers: [failing.address, working.address], timeout: 200 });
    assert.equal(records(await r.query('example.com', 'A')).length, 2);
    assert.equal(failing.queries.length, 1);
    assert.equal(working.queries.length, 1);
  });

  test('when every attempt fails the last reason is reported', async (t) => {
    const one = await fixture(t, { 'example.com': [{ RCODE: 'SERVFAIL' }] });
    const two = await fixture(t, { 'example.com': [{ RCODE: 'REFUSED' }] });
    const r = createResolver({ servers: [one.address, two.address], timeout: 200 });
    const result = await r.query('example.com', 'A');
    assert.equal(result.kind, 'temporary');
    assert.ok(result.kind === 'temporary');
    assert.equal(result.reason, 'refused');
    assert.match(result.detail, new RegExp(`${two.port}: REFUSED`));
    // Two attempts per server by default, round-robin.
    assert.equal(one.queries.length, 2);
    assert.equal(two.queries.length, 2);
    const single = createResolver({ servers: [one.address], timeout: 200, attempts: 1 });
    const failed = await single.query('example.com', 'A');
    assert.equal(failed.kind === 'temporary' && failed.reason, 'servfail');
  });

  test('a server that never answers times out within timeout × attempts', async (t) => {
    const server = await fixture(t, { 'example.com': ['TIMEOUT'] });
    const r = createResolver({ servers: [server.address], timeout: 100, attempts: 2 });
    const started = Date.now();
    const result = await r.query('example.com', 'A');
    const elapsed = Date.now() - started;
    assert.equal(result.kind === 'temporary' && result.reason, 'timeout');
    assert.equal(server.queries.length, 2);
    assert.ok(elapsed >= 190, `gave up too early (${elapsed} ms)`);
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  });

  test('a deadline shorter than the timeout wins', async (t) => {
    const server = await fixture(t, { 'example.com': ['TIMEOUT'] });
    const clock = new FakeClock();
    const r = createResolver({ servers: [server.address], timeout: 5000, clock });
    const started = Date.now();
    const result = await r.query('example.com', 'A', { deadline: clock.now() + 150 });
    const elapsed = Date.now() - started;
    assert.equal(result.kind === 'temporary' && result.reason, 'deadline');
    assert.ok(elapsed >= 140 && elapsed < 1000, `took ${elapsed} ms`);
    const late = await r.query('example.com', 'A', { deadline: clock.now() - 1 });
    assert.equal(late.kind === 'temporary' && late.reason, 'deadline');
    const relative = await r.query('example.com', 'A', {
      timeout: 100,
      deadline: clock.now() + 4000,
    });
    assert.equal(relative.kind === 'temporary' && relative.reason, 'deadline');
    const spent = await r.query('example.com', 'A', { timeout: 0 });
    assert.equal(spent.kind === 'temporary' && spent.reason, 'deadline');
  });

  test('nothing listening is a temporary failure, never a rejection', async () => {
    const probe = createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = resolverFor([`127.0.0.1:${port}`], { timeout: 150 });
    const result = await r.query('example.com', 'A');
    assert.equal(result.kind, 'temporary');
    assert.ok(result.kind === 'temporary' && ['network', 'timeout'].includes(result.reason));
  });
});

describe('hostile replies', () => {
  test('a wrong ID and a wrong question are ignored until the real answer comes', async (t) => {
    const stub = await rawServer(t, async (query, _raw, send) => {
      send(response(query, { id: (query.id! + 1) & 0xffff, answers: [a(query, '198.51.100.1')] }));
      await pause(10);
      const other = { ...query, questions: [{ name: 'evil.example', type: 'A' as const }] };
      send(response(other, { answers: [a(other, '198.51.100.2')] }));
      await pause(10);
      send(response(query, { questionType: 'AAAA', answers: [a(query, '198.51.100.3')] }));
      await pause(10);
      send(response(query, { answers: [a(query, '192.0.2.80')] }));
    });
    const r = resolverFor([stub.address], { timeout: 1000 });
    assert.deepEqual(
      records(await r.query('victim.example', 'A')).map((x) => x.address),
      ['192.0.2.80'],
    );
    assert.equal(stub.received.length, 1);
  });

  // The resolver's UDP socket is connected, so the kernel drops these too; the test still fails if
  // neither the kernel nor our own source check does.
  test('a reply from another source port is ignored', async (t) => {
    const spoofer = createSocket('udp4');
    await new Promise<void>((resolve) => spoofer.bind(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => spoofer.close(() => resolve())));
    const stub = await rawServer(t, async (query, _raw, send, rinfo) => {
      spoofer.send(
        response(query, { answers: [a(query, '198.51.100.66')] }),
        rinfo.port,
        rinfo.address,
      );
      await pause(30);
      send(response(query, { answers: [a(query, '192.0.2.80')] }));
    });
    const r = resolverFor([stub.address], { timeout: 1000 });
    assert.deepEqual(
      records(await r.query('victim.example', 'A')).map((x) => x.address),
      ['192.0.2.80'],
    );
  });

  test('garbage replies are skipped; garbage alone ends as malformed', async (t) => {
    const stub = await rawServer(t, async (query, raw, send) => {
      send(Buffer.from([1, 2, 3]));
      // A plausible header with our ID and the response bit, then impossible counts.
      const header = Buffer.from(raw.subarray(0, 12));
      header[2] = 0x81;
      header.writeUInt16BE(0xffff, 6);
      send(header);
      if (query.questions?.[0]?.name === 'only-garbage.example') return;
      await pause(10);
      send(response(query, { answers: [a(query, '192.0.2.81')] }));
    });
    const r = resolverFor([stub.address], { timeout: 150 });
    assert.deepEqual(
      records(await r.query('mixed.example', 'A')).map((x) => x.address),
      ['192.0.2.81'],
    );
    const bad = await r.query('only-garbage.example', 'A');
    assert.equal(bad.kind === 'temporary' && bad.reason, 'malformed');
  });

  test('records off the CNAME chain are not believed', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      const name = query.questions![0]!.name;
      send(
        response(query, {
          answers: [
            { name: 'elsewhere.example', type: 'A', ttl: 60, data: '198.51.100.9' },
            { name, type: 'A', ttl: 60, data: '192.0.2.10' },
          ],
        }),
      );
    });
    const r = resolverFor([stub.address]);
    assert.deepEqual(
      records(await r.query('Victim.Example', 'A')).map((x) => x.address),
      ['192.0.2.10'],
    );
  });
});

describe('CNAME chains the server did not finish', () => {
  test('the end of the chain is asked about separately and the result cached under both', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      const name = query.questions![0]!.name.toLowerCase();
      if (name === 'alias.example') {
        send(
          response(query, {
            answers: [{ name: 'alias.example', type: 'CNAME', ttl: 50, data: 'real.example' }],
          }),
        );
      } else {
        send(response(query, { answers: [a(query, '192.0.2.20', 70)] }));
      }
    });
    const clock = new FakeClock();
    const r = resolverFor([stub.address], { clock });
    const result = await r.query('alias.example', 'A');
    assert.deepEqual(
      records(result).map((x) => x.address),
      ['192.0.2.20'],
    );
    assert.ok(result.kind === 'answer');
    assert.deepEqual(
      result.cnames.map((c) => c.target),
      ['real.example'],
    );
    assert.deepEqual(
      stub.received.map((q) => q.questions?.[0]?.name),
      ['alias.example', 'real.example'],
    );
    clock.advance(49);
    const cachedAlias = await r.query('alias.example', 'A');
    assert.ok(cachedAlias.kind === 'answer' && cachedAlias.cached);
    clock.advance(2);
    const cachedReal = await r.query('real.example', 'A');
    assert.ok(cachedReal.kind === 'answer' && cachedReal.cached);
    assert.equal(stub.received.length, 2);
  });

  test('a loop across follow-up queries ends as nodata', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      const name = query.questions![0]!.name.toLowerCase();
      const target = name === 'ping.example' ? 'pong.example' : 'ping.example';
      send(response(query, { answers: [{ name, type: 'CNAME', ttl: 50, data: target }] }));
    });
    const r = resolverFor([stub.address]);
    assert.deepEqual(await r.query('ping.example', 'A'), { kind: 'nodata', cached: false });
    assert.equal(stub.received.length, 2);
  });
});

describe('limits on what is asked', () => {
  test('the meter is charged once per call, before the cache; false refuses', async (t) => {
    const server = await fixture(t, ZONE);
    const charged: string[] = [];
    let allow = 2;
    const meter: QueryMeter = {
      charge(name, type) {
        charged.push(`${type} ${name}`);
        return allow-- > 0;
      },
    };
    const r = resolverFor([server.address], { clock: new FakeClock() });
    assert.equal((await r.query('example.com', 'A', { meter })).kind, 'answer');
    assert.equal((await r.query('example.com', 'A', { meter })).kind, 'answer');
    const refused = await r.query('example.com', 'A', { meter });
    assert.equal(refused.kind === 'temporary' && refused.reason, 'budget');
    assert.deepEqual(charged, ['A example.com', 'A example.com', 'A example.com']);
    assert.equal(server.queries.length, 1);
    const throwing: QueryMeter = {
      charge() {
        throw new Error('meter broke');
      },
    };
    const broken = await r.query('example.com', 'A', { meter: throwing });
    assert.equal(broken.kind === 'temporary' && broken.reason, 'budget');
  });

  test('names that cannot be encoded are nxdomain without traffic', async (t) => {
    const server = await fixture(t, ZONE);
    const r = resolverFor([server.address], { clock: new FakeClock() });
    const longLabel = `${'a'.repeat(64)}.example.com`;
    const longName = `${'abcdefghi.'.repeat(25)}example.com`; // 261 octets
    for (const name of [longLabel, longName, 'a..example.com', '.example.com', '']) {
      assert.deepEqual(await r.query(name, 'TXT'), { kind: 'nxdomain', cached: false }, name);
    }
    assert.deepEqual(await r.query(longLabel, 'TXT'), { kind: 'nxdomain', cached: false });
    assert.equal(server.queries.length, 0);
    assert.equal(r.stats.sent, 0);
    // The limits themselves are fine: a 63-octet label and a 253-octet name are asked.
    await r.query(`${'a'.repeat(63)}.example.com`, 'TXT');
    await r.query(`${'abcdefghi.'.repeat(24)}example.com`, 'TXT');
    assert.equal(server.queries.length, 2);
  });
});

describe('server configuration', () => {
  test('parseServerSpec reads host, host:port and [v6]:port', () => {
    assert.deepEqual(parseServerSpec('192.0.2.53'), { host: '192.0.2.53', port: 53, family: 4 });
    assert.deepEqual(parseServerSpec('127.0.0.1:5353'), {
      host: '127.0.0.1',
      port: 5353,
      family: 4,
    });
    assert.deepEqual(parseServerSpec('2001:db8::53'), {
      host: '2001:db8::53',
      port: 53,
      family: 6,
    });
    assert.deepEqual(parseServerSpec('[::1]:5300'), { host: '::1', port: 5300, family: 6 });
    assert.deepEqual(parseServerSpec('[fe80::1%eth0]'), {
      host: 'fe80::1%eth0',
      port: 53,
      family: 6,
    });
    for (const bad of [
      'dns.example',
      '127.0.0.1:0',
      '127.0.0.1:65536',
      '127.0.0.1:x',
      '[1.2.3.4]:53',
      '',
    ]) {
      assert.throws(() => parseServerSpec(bad), /DNS server/, bad);
    }
    assert.throws(() => createResolver({ servers: ['localhost:53'] }), /not an IP address/);
    assert.throws(() => createResolver({ servers: [] }), /no servers/);
    assert.throws(() => createResolver({ servers: ['127.0.0.1'], timeout: 0 }), /timeout/);
  });

  test('parseResolvConf takes nameserver lines, IPv4 and IPv6, at most three', () => {
    const text = [
      '# generated',
      'search example.com',
      'nameserver 192.0.2.1',
      '; comment',
      '  nameserver   2001:db8::2   # trailing',
      'nameserver fe80::3%eth0',
      'nameserver not-an-address',
      'nameserver 192.0.2.4',
      'options timeout:1',
    ].join('\n');
    assert.deepEqual(parseResolvConf(text), [
      { host: '192.0.2.1', port: 53, family: 4 },
      { host: '2001:db8::2', port: 53, family: 6 },
      { host: 'fe80::3%eth0', port: 53, family: 6 },
    ]);
    assert.deepEqual(parseResolvConf('nameserver\nnameserver 300.1.1.1\n'), []);
  });

  test('readResolvConf falls back to 127.0.0.1:53', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mailgate-resolv-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const empty = join(dir, 'empty.conf');
    writeFileSync(empty, 'search example.com\n');
    const one = join(dir, 'one.conf');
    writeFileSync(one, 'nameserver 192.0.2.9\n');
    const fallback = [{ host: '127.0.0.1', port: 53, family: 4 }];
    assert.deepEqual(readResolvConf(join(dir, 'missing.conf')), fallback);
    assert.deepEqual(readResolvConf(empty), fallback);
    assert.deepEqual(readResolvConf(one), [{ host: '192.0.2.9', port: 53, family: 4 }]);
    assert.deepEqual(createResolver({ resolvConf: one }).servers, [
      { host: '192.0.2.9', port: 53, family: 4 },
    ]);
  });
});

// ---- hand-made UDP servers ------------------------------------------------------------------

type Send = (bytes: Buffer) => void;
type Handler = (
  query: packet.DecodedPacket,
  raw: Buffer,
  send: Send,
  rinfo: RemoteInfo,
) => void | Promise<void>;

/** A UDP server on 127.0.0.1 that hands every decodable query to `handler`. */
async function rawServer(t: TestContext, handler: Handler) {
  const socket: Socket = createSocket('udp4');
  const received: packet.DecodedPacket[] = [];
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.on('message', (raw, rinfo) => {
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(raw);
    } catch {
      return;
    }
    received.push(query);
    const send: Send = (bytes) => socket.send(bytes, rinfo.port, rinfo.address);
    void handler(query, raw, send, rinfo);
  });
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { address: `127.0.0.1:${socket.address().port}`, received };
}

function a(query: packet.DecodedPacket, address: string, ttl = 60): packet.Answer {
  return { name: query.questions![0]!.name, type: 'A', ttl, data: address };
}

function response(
  query: packet.DecodedPacket,
  options: {
    id?: number;
    rcode?: number;
    questionType?: packet.RecordType;
    answers?: packet.Answer[];
    authorities?: packet.Answer[];
  } = {},
): Buffer {
  const question = query.questions![0]!;
  return packet.encode({
    type: 'response',
    id: options.id ?? query.id ?? 0,
    flags: 0x0100 | 0x0080 | (options.rcode ?? 0),
    questions: [{ ...question, type: options.questionType ?? question.type }],
    answers: options.answers ?? [],
    authorities: options.authorities ?? [],
  });
}

function soa(zone: string, ttl: number, minimum: number): packet.Answer {
  return {
    name: zone,
    type: 'SOA',
    ttl,
    data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, minimum },
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('UDP sockets', () => {
  test('queries share a few sockets, each retired for a new source port after its quota', async (t) => {
    const ports: number[] = [];
    const stub = await rawServer(t, (query, _raw, send, rinfo) => {
      ports.push(rinfo.port);
      send(response(query, { answers: [a(query, '192.0.2.9')] }));
    });
    const r = resolverFor([stub.address], {
      cache: false,
      udp: { sockets: 1, queriesPerSocket: 2 },
    });
    for (let i = 0; i < 6; i++) records(await r.query(`n${i}.example`, 'A'));
    assert.equal(ports.length, 6);
    assert.equal(new Set(ports).size, 3, `ports ${ports.join(',')}`);
    assert.equal(ports[0], ports[1]);
    assert.notEqual(ports[1], ports[2]);
    r.close();
  });

  test('many concurrent queries on one socket each get their own answer', async (t) => {
    const stub = await rawServer(t, (query, _raw, send) => {
      const n = Number(/^n(\d+)\./.exec(query.questions![0]!.name)![1]);
      // Answer out of order, so that matching by ID and question is what pairs them.
      setTimeout(
        () => send(response(query, { answers: [a(query, `192.0.2.${n}`)] })),
        (n * 7) % 23,
      );
    });
    // Every query is answered: a generous timeout, so that a loaded machine is no failure.
    const r = resolverFor([stub.address], {
      cache: false,
      timeout: 5_000,
      udp: { sockets: 1, queriesPerSocket: 1000 },
    });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, n) => r.query(`n${n % 250}.example`, 'A')),
    );
    results.forEach((result, n) => {
      assert.equal(records(result)[0]?.address, `192.0.2.${n % 250}`);
    });
    const ids = new Set(stub.received.map((q) => q.id));
    assert.equal(ids.size, 200, 'IDs in flight on one socket are distinct');
    r.close();
  });
});

describe('closing and options', () => {
  test('close() after a few queries on the default sockets closes them all', async (t) => {
    const server = await fixture(t, ZONE);
    for (const n of [1, 2, 3, 5]) {
      const r = createResolver({ servers: [server.address], timeout: 500, attempts: 1 });
      for (let i = 0; i < n; i++) records(await r.query('example.com', 'A'));
      assert.doesNotThrow(() => r.close());
    }
  });

  test('a query after close() fails at once and sends nothing (no socket is opened again)', async (t) => {
    const server = await fixture(t, ZONE);
    const r = createResolver({
      servers: [server.address],
      timeout: 2000,
      attempts: 1,
      cache: false,
    });
    records(await r.query('example.com', 'A'));
    const asked = server.queries.length;
    r.close();
    const late = await r.query('example.com', 'MX');
    assert.equal(late.kind, 'temporary', JSON.stringify(late));
    assert.equal(server.queries.length, asked);
  });

  test('socket options out of range fail at construction', () => {
    assert.throws(
      () => createResolver({ servers: ['127.0.0.1:53'], udp: { sockets: 0 } }),
      /udp.sockets/,
    );
    assert.throws(
      () => createResolver({ servers: ['127.0.0.1:53'], udp: { queriesPerSocket: 70000 } }),
      /udp.queriesPerSocket/,
    );
  });

  test('IPv6 servers are kept in the compressed form replies come from', () => {
    const r = createResolver({ servers: ['[0:0:0:0:0:0:0:1]:5353', '[::0001]:53'] });
    assert.deepEqual(
      r.servers.map((s) => s.host),
      ['::1', '::1'],
    );
  });
});
