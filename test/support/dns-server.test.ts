// The fixture DNS server's zone semantics (those of the openspf suite's reference driver), seen
// through the real resolver where that is convenient and through raw packets where the resolver
// would hide the detail (truncation, TCP framing, garbage).
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as packet from 'dns-packet';
import { createResolver, type DnsResult, type StubResolver } from '../../src/dns/index.js';
import {
  type FixtureDnsServer,
  fixtureBytes,
  parseSuiteZone,
  startDnsServer,
  type ZoneData,
} from './dns-server.js';
import { loadSuite } from './spf-suite.js';

async function serve(t: TestContext, zone: ZoneData, options = {}) {
  const server = await startDnsServer(zone, options);
  t.after(() => server.close());
  return server;
}

/** No cache and a short timeout: every call reaches the server, a TIMEOUT costs 100 ms. */
function resolverFor(server: FixtureDnsServer): StubResolver {
  return createResolver({ servers: [server.address], timeout: 100, attempts: 1, cache: false });
}

function strings(result: DnsResult): string[][] {
  assert.equal(result.kind, 'answer', JSON.stringify(result));
  return (result as Extract<DnsResult, { kind: 'answer' }>).records.map((r) =>
    'strings' in r ? r.strings : [],
  );
}

function addresses(result: DnsResult): string[] {
  assert.equal(result.kind, 'answer', JSON.stringify(result));
  return (result as Extract<DnsResult, { kind: 'answer' }>).records.map((r) =>
    'address' in r ? r.address : '',
  );
}

function timedOut(result: DnsResult): boolean {
  return result.kind === 'temporary' && result.reason === 'timeout';
}

describe('TIMEOUT', () => {
  const zone: ZoneData = {
    'spftimeout.example.net': [{ TXT: 'v=spf1 -all' }, 'TIMEOUT'],
    'txttimeout.example.net': [{ SPF: 'v=spf1 -all' }, { TXT: 'NONE' }, 'TIMEOUT'],
    'alltimeout.example.net': ['TIMEOUT'],
    'cut.example.net': [{ A: '192.0.2.1' }, 'TIMEOUT', { A: '192.0.2.2' }, { MX: [10, 'mx'] }],
    'typed.example.net': [{ A: 'TIMEOUT' }, { TXT: 'still here' }],
    'late.example.net': [{ SPF: 'v=spf1 -all' }, 'TIMEOUT'],
  };

  test('a bare TIMEOUT only times out types with no entry before it', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.deepEqual(strings(await r.query('spftimeout.example.net', 'TXT')), [['v=spf1 -all']]);
    assert.ok(timedOut(await r.query('spftimeout.example.net', 'SPF')));
    assert.deepEqual(strings(await r.query('txttimeout.example.net', 'SPF')), [['v=spf1 -all']]);
    assert.ok(timedOut(await r.query('txttimeout.example.net', 'TXT')));
    assert.ok(timedOut(await r.query('alltimeout.example.net', 'A')));
    assert.ok(timedOut(await r.query('alltimeout.example.net', 'TXT')));
  });

  test('entries after a bare TIMEOUT are never served', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.deepEqual(addresses(await r.query('cut.example.net', 'A')), ['192.0.2.1']);
    assert.ok(timedOut(await r.query('cut.example.net', 'MX')));
  });

  test('{TYPE: TIMEOUT} times out that type only', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.ok(timedOut(await r.query('typed.example.net', 'A')));
    assert.deepEqual(strings(await r.query('typed.example.net', 'TXT')), [['still here']]);
  });

  test('TXT copies of SPF records go after a TIMEOUT, as in the driver', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.deepEqual(strings(await r.query('late.example.net', 'SPF')), [['v=spf1 -all']]);
    assert.ok(timedOut(await r.query('late.example.net', 'TXT')));
  });
});

describe('SPF and TXT', () => {
  const zone: ZoneData = {
    'both.example.net': [{ TXT: 'v=spf1 -all' }, { SPF: 'v=spf1 +all' }],
    'spfonly.example.net': [{ SPF: 'v=spf1 -all' }, { TXT: 'NONE' }],
    'dup.example.net': [{ SPF: 'v=spf1 a' }, { SPF: ['v=spf1 ', 'mx'] }],
    'null.example.com': [{ SPF: ['v=spf1 ip4:', '192.0.2.5 -all'] }, { SPF: [] }],
    'bytes.example.com': [{ TXT: '\xEF\xBB\xBF\x80' }, { TXT: 'caf\u00e9 \u20ac' }],
    'long.example.com': [{ TXT: 'z'.repeat(300) }],
  };

  test('SPF records are served as TXT too, unless the name has TXT entries', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.deepEqual(strings(await r.query('dup.example.net', 'TXT')), [
      ['v=spf1 a'],
      ['v=spf1 ', 'mx'],
    ]);
    assert.deepEqual(strings(await r.query('dup.example.net', 'SPF')), [
      ['v=spf1 a'],
      ['v=spf1 ', 'mx'],
    ]);
    assert.deepEqual(strings(await r.query('both.example.net', 'TXT')), [['v=spf1 -all']]);
    assert.deepEqual(strings(await r.query('both.example.net', 'SPF')), [['v=spf1 +all']]);
  });

  test('TXT: NONE serves no TXT at all', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.deepEqual(await r.query('spfonly.example.net', 'TXT'), {
      kind: 'nodata',
      cached: false,
    });
    assert.deepEqual(strings(await r.query('spfonly.example.net', 'SPF')), [['v=spf1 -all']]);
  });

  test('a list is one record of several strings; an empty list a record of none', async (t) => {
    const r = resolverFor(await serve(t, zone));
    assert.deepEqual(strings(await r.query('null.example.com', 'TXT')), [
      ['v=spf1 ip4:', '192.0.2.5 -all'],
      [],
    ]);
  });

  test('characters below 256 are single bytes, others UTF-8; long strings are split', async (t) => {
    assert.deepEqual([...fixtureBytes('\xEF\u20ac')], [0xef, 0xe2, 0x82, 0xac]);
    const r = resolverFor(await serve(t, zone));
    const [first, second] = strings(await r.query('bytes.example.com', 'TXT'));
    assert.deepEqual(Buffer.from(first![0]!, 'latin1'), Buffer.from([0xef, 0xbb, 0xbf, 0x80]));
    // é is below 256 (one byte), € is not (three bytes of UTF-8).
    assert.deepEqual(
      Buffer.from(second![0]!, 'latin1'),
      Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xe2, 0x82, 0xac]),
    );
    const [long] = strings(await r.query('long.example.com', 'TXT'));
    assert.deepEqual(
      long?.map((s) => s.length),
      [255, 45],
    );
  });
});

describe('names', () => {
  const zone: ZoneData = {
    'Mixed.Example.COM': [{ A: '192.0.2.1' }],
    'deep.a.b.example.org': [{ A: '192.0.2.2' }],
    'www.example.org': [{ CNAME: 'Chain1.example.org.' }],
    'chain1.example.org': [{ CNAME: 'chain2.example.org' }],
    'chain2.example.org': [{ A: '192.0.2.3' }, { TXT: 'end' }],
    'dangling.example.org': [{ CNAME: 'missing.example.org' }],
    'loop4.example.com': [{ CNAME: 'CNAME.example.com.' }],
    'cname.example.com': [{ CNAME: 'CNAME.example.com.' }],
    'totimeout.example.org': [{ CNAME: 'slow.example.org' }],
    'slow.example.org': ['TIMEOUT'],
  };

  test('names are case-insensitive; absent is NXDOMAIN, present or non-terminal is NODATA', async (t) => {
    const server = await serve(t, zone);
    const r = resolverFor(server);
    assert.deepEqual(addresses(await r.query('mixed.example.com', 'A')), ['192.0.2.1']);
    assert.deepEqual(addresses(await r.query('MIXED.EXAMPLE.COM.', 'A')), ['192.0.2.1']);
    assert.deepEqual(await r.query('mixed.example.com', 'MX'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('a.b.example.org', 'A'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('example.org', 'A'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('other.example.org', 'A'), { kind: 'nxdomain', cached: false });
    assert.deepEqual(await r.query('x.deep.a.b.example.org', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
  });

  test('negative answers carry an SOA with the negative TTL; records the zone TTL', () => {
    const zoneObj = parseSuiteZone(zone, { ttl: 123, negativeTtl: 45 });
    const nx = zoneObj.answer('nope.a.example.org', 'A');
    assert.ok(nx.kind === 'reply');
    assert.equal(nx.rcode, 3);
    assert.equal(nx.authorities.length, 1);
    const soa = nx.authorities[0] as packet.SoaAnswer;
    assert.equal(soa.type, 'SOA');
    assert.equal(soa.name, 'example.org');
    assert.equal(soa.ttl, 45);
    assert.equal(soa.data.minimum, 45);
    const yes = zoneObj.answer('mixed.example.com', 'A');
    assert.ok(yes.kind === 'reply');
    assert.equal(yes.rcode, 0);
    assert.equal((yes.answers[0] as packet.StringAnswer | undefined)?.ttl, 123);
    assert.equal(yes.authorities.length, 0);
  });

  test('CNAMEs are chased inside the zone; the end decides the outcome', async (t) => {
    const server = await serve(t, zone);
    const r = resolverFor(server);
    const a = await r.query('www.example.org', 'A');
    assert.deepEqual(addresses(a), ['192.0.2.3']);
    assert.ok(a.kind === 'answer');
    assert.deepEqual(
      a.cnames.map((c) => `${c.name}>${c.target}`),
      ['www.example.org>Chain1.example.org', 'Chain1.example.org>chain2.example.org'],
    );
    assert.deepEqual(strings(await r.query('www.example.org', 'TXT')), [['end']]);
    assert.deepEqual(await r.query('www.example.org', 'MX'), { kind: 'nodata', cached: false });
    assert.deepEqual(await r.query('dangling.example.org', 'A'), {
      kind: 'nxdomain',
      cached: false,
    });
    assert.deepEqual(await r.query('loop4.example.com', 'A'), { kind: 'nodata', cached: false });
    assert.ok(timedOut(await r.query('totimeout.example.org', 'A')));
    // Each of those was one query: the server chased, the resolver did not have to.
    assert.equal(server.queries.length, 6);
    const cname = await r.query('www.example.org', 'CNAME');
    assert.ok(cname.kind === 'answer');
    assert.deepEqual(
      cname.records.map((c) => c.target),
      ['Chain1.example.org'],
    );
  });

  test('a CNAME loop stops the chase', () => {
    const reply = parseSuiteZone(zone).answer('loop4.example.com', 'A');
    assert.ok(reply.kind === 'reply');
    assert.equal(reply.rcode, 0);
    assert.deepEqual(
      reply.answers.map((a) => a.name),
      ['loop4.example.com', 'CNAME.example.com'],
    );
  });
});

describe('rcodes and options', () => {
  test('{RCODE: X} answers every query for the name with X', async (t) => {
    const server = await serve(t, {
      'fail.example': [{ RCODE: 'SERVFAIL' }, { A: '192.0.2.1' }],
      'refuse.example': [{ RCODE: 'REFUSED' }],
      'gone.example': [{ RCODE: 'NXDOMAIN' }],
    });
    const r = resolverFor(server);
    const fail = await r.query('fail.example', 'A');
    assert.equal(fail.kind === 'temporary' && fail.reason, 'servfail');
    const refuse = await r.query('refuse.example', 'TXT');
    assert.equal(refuse.kind === 'temporary' && refuse.reason, 'refused');
    assert.deepEqual(await r.query('gone.example', 'A'), { kind: 'nxdomain', cached: false });
  });

  test('ednsFormerr refuses EDNS queries only', async (t) => {
    const server = await serve(t, { 'example.com': [{ A: '192.0.2.1' }] }, { ednsFormerr: true });
    const reply = await udpAsk(server.port, query('example.com', 'A', 1232));
    assert.equal(reply.rcode, 'FORMERR');
    const plain = await udpAsk(server.port, query('example.com', 'A'));
    assert.equal(plain.rcode, 'NOERROR');
    assert.equal(plain.answers?.length, 1);
  });

  test('names starting with error. time out when absent, as in the driver', async (t) => {
    const server = await serve(t, {});
    const r = resolverFor(server);
    assert.ok(timedOut(await r.query('error.example.com', 'A')));
    assert.equal((await r.query('fine.example.com', 'A')).kind, 'nxdomain');
    const off = parseSuiteZone({}).answer('error.example.com', 'A', { errorPrefixTimeout: false });
    assert.ok(off.kind === 'reply' && off.rcode === 3);
  });

  test('bad zone data is refused at parse time', () => {
    assert.throws(() => parseSuiteZone({ 'x.example': [{ MX: 'no-preference' }] }), /MX/);
    assert.throws(() => parseSuiteZone({ 'x.example': [{ HINFO: 'x' }] }), /HINFO/);
    assert.throws(() => parseSuiteZone({ 'x.example': [42] }), /bad entry/);
    assert.throws(() => parseSuiteZone({ 'x.example': [{ RCODE: 'NOPE' }] }), /RCODE/);
  });
});

describe('transport', () => {
  const big = Array.from({ length: 10 }, (_, i) => `${i}${'q'.repeat(150)}`);
  const zone: ZoneData = { 'big.example': [{ TXT: big }], 'small.example': [{ A: '192.0.2.1' }] };

  test('UDP and TCP listen on the same port; setZone and the query log work', async (t) => {
    const server = await serve(t, zone);
    assert.equal(server.address, `127.0.0.1:${server.port}`);
    const r = resolverFor(server);
    assert.deepEqual(addresses(await r.query('Small.Example', 'A')), ['192.0.2.1']);
    assert.deepEqual(server.queries, [
      { name: 'Small.Example', type: 'A', transport: 'udp', edns: true },
    ]);
    server.setZone({ 'small.example': [{ A: '192.0.2.99' }] });
    assert.deepEqual(addresses(await r.query('small.example', 'A')), ['192.0.2.99']);
    server.resetLog();
    assert.deepEqual(server.queries, []);
  });

  test('a UDP answer over the size limit is truncated and empty', async (t) => {
    const server = await serve(t, zone);
    const plain = await udpAsk(server.port, query('big.example', 'TXT'));
    assert.equal(plain.flag_tc, true);
    assert.equal(plain.answers?.length, 0);
    assert.equal(plain.id, 7);
    assert.deepEqual(plain.questions, [{ name: 'big.example', type: 'TXT', class: 'IN' }]);
    // With EDNS the client's payload size is the limit: 4096 is enough here.
    const roomy = await udpAsk(server.port, query('big.example', 'TXT', 4096));
    assert.equal(roomy.flag_tc, false);
    assert.equal(roomy.answers?.length, 1);
    assert.ok(roomy.additionals?.some((x) => x.type === 'OPT'));
    const small = await udpAsk(server.port, query('small.example', 'A'));
    assert.equal(small.flag_tc, false);
    assert.equal(small.flag_aa, true);
    assert.equal(small.flag_ra, true);
    assert.equal(small.flag_rd, true);
  });

  test('TCP answers in full, several queries per connection, split across segments', async (t) => {
    const server = await serve(t, zone);
    const frames = Buffer.concat([
      packet.streamEncode({ ...query('big.example', 'TXT'), id: 1 }),
      packet.streamEncode({ ...query('small.example', 'A'), id: 2 }),
    ]);
    const replies = await new Promise<packet.Packet[]>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1');
      const out: packet.Packet[] = [];
      let pending = Buffer.alloc(0);
      socket.on('error', reject);
      socket.on('connect', async () => {
        // Byte by byte for the first frame's header, then the rest in two pieces.
        for (let i = 0; i < 3; i++) {
          socket.write(frames.subarray(i, i + 1));
          await new Promise((r) => setTimeout(r, 5));
        }
        socket.write(frames.subarray(3, 20));
        await new Promise((r) => setTimeout(r, 5));
        socket.write(frames.subarray(20));
      });
      socket.on('data', (chunk) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          const length = pending.readUInt16BE(0);
          out.push(packet.decode(pending.subarray(2, 2 + length)));
          pending = pending.subarray(2 + length);
        }
        if (out.length === 2) {
          socket.destroy();
          resolve(out);
        }
      });
    });
    assert.deepEqual(
      replies.map((p) => p.id),
      [1, 2],
    );
    const txt = replies[0]!.answers![0] as packet.TxtAnswer;
    assert.deepEqual(
      (txt.data as Buffer[]).map((b) => b.toString('latin1')),
      big,
    );
    assert.deepEqual(
      server.queries.map((q) => q.transport),
      ['tcp', 'tcp'],
    );
  });

  test('the resolver falls back to TCP on truncation', async (t) => {
    const server = await serve(t, zone);
    const r = resolverFor(server);
    assert.deepEqual(strings(await r.query('big.example', 'TXT')), [big]);
    assert.deepEqual(
      server.queries.map((q) => q.transport),
      ['udp', 'tcp'],
    );
  });

  test('garbage and responses are ignored and the server keeps serving', async (t) => {
    const server = await serve(t, zone);
    const socket = createSocket('udp4');
    t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const got: Buffer[] = [];
    socket.on('message', (m) => got.push(m));
    const response = packet.encode({
      type: 'response',
      id: 3,
      questions: [{ name: 'x', type: 'A' }],
    });
    for (const junk of [Buffer.from([0xff]), Buffer.alloc(40, 0xc0), response]) {
      socket.send(junk, server.port, '127.0.0.1');
    }
    const reply = await udpAsk(server.port, query('small.example', 'A'));
    assert.equal(reply.answers?.length, 1);
    assert.equal(got.length, 0);
    assert.equal(server.queries.length, 1);
  });
});

describe('suite loader', () => {
  test('loadSuite reads every scenario of rfc7208-tests.yml', () => {
    const path = fileURLToPath(new URL('../data/rfc7208-tests.yml', import.meta.url));
    const scenarios = loadSuite(path);
    assert.equal(scenarios.length, 16);
    assert.equal(scenarios[0]?.description, 'Initial processing');
    const tests = scenarios.flatMap((s) => Object.values(s.tests));
    assert.equal(tests.length, 203);
    for (const t of tests) {
      assert.equal(typeof t.host, 'string');
      assert.equal(typeof t.mailfrom, 'string');
      assert.ok(typeof t.result === 'string' || Array.isArray(t.result));
    }
    const hosed = scenarios[0]?.zonedata['hosed.example.com']?.[0] as { SPF: string };
    assert.deepEqual(
      [...hosed.SPF.slice(9, 12)].map((c) => c.charCodeAt(0)),
      [0xef, 0xbb, 0xbf],
    );
    // Every scenario's zone parses.
    for (const s of scenarios) parseSuiteZone(s.zonedata);
  });
});

// ---- raw packets ---------------------------------------------------------------------------

function query(name: string, type: packet.RecordType, edns = 0): packet.Packet {
  return {
    type: 'query',
    id: 7,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals: edns
      ? [
          {
            name: '.',
            type: 'OPT',
            udpPayloadSize: edns,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [],
  };
}

/** One UDP round trip to the fixture; rejects after a second without a reply. */
function udpAsk(
  port: number,
  q: packet.Packet,
): Promise<packet.DecodedPacket & { rcode?: string }> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no reply'));
    }, 1000);
    socket.on('message', (m) => {
      clearTimeout(timer);
      socket.close();
      resolve(packet.decode(m) as packet.DecodedPacket & { rcode?: string });
    });
    socket.send(packet.encode(q), port, '127.0.0.1');
  });
}
