// The registry ID check through the real resolver against the fixture DNS server: checkHelo.py's
// worked examples first (the registry zone is ours; the IDs, addresses and ratings are the
// docstring's), then every branch of the check and of the record's grammar.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  checkId,
  DEFAULT_REGISTRY_SETTINGS,
  type RegistryInput,
  type RegistryResult,
  type RegistrySettings,
} from '../../../src/checks/registry/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

const ZONE = 'registry.example';
const reg = (id: string) => `${id}.${ZONE}`;
const GOOD = 'svc=S1:A,M2:A,H1:B';

const zone = {
  // checkHelo.py's examples.
  [reg('heaven.net')]: [{ TXT: `ip4=208.20.133.16/29,216.183.68.0/24 meth=SPF:10,SID:10 ${GOOD}` }],
  [reg('spammer.tld')]: [{ TXT: 'ip4=192.168.0.0/16 svc=S1:C,M2:C' }],
  [reg('wayforward.net')]: [{ TXT: `meth=SPF:10 ${GOOD}` }],
  'optsw.com': [{ TXT: 'v=spf1 ip4:69.55.226.139 -all' }],
  [reg('rr.tld')]: [{ TXT: `meth=SPF:10 ${GOOD}` }],
  'mx1.abilene.texas.rr.tld': [{ TXT: 'v=spf1 ip4:192.0.4.128/25 ~all' }],
  [reg('example.co.uk')]: [{ TXT: 'stop=all' }],
  [reg('slow.tld')]: ['TIMEOUT'],

  // Branches.
  [reg('broken.tld')]: [{ RCODE: 'SERVFAIL' }],
  [reg('twice.tld')]: [{ TXT: 'stop=all' }, { TXT: GOOD }],
  [reg('split.tld')]: [{ TXT: ['ip4=192.0.2.0/24 ', GOOD] }],
  [reg('garbled.tld')]: [{ TXT: 'ip4=192.0.2.0/24 colour=blue' }],
  [reg('empty.tld')]: [{ TXT: '' }],
  [reg('untrusted.tld')]: [{ TXT: 'ip4=192.0.2.0/24 svc=X1:A,Y2:A' }],
  [reg('noratings.tld')]: [{ TXT: 'ip4=192.0.2.0/24' }],
  [reg('dgrade.tld')]: [{ TXT: 'ip4=192.0.2.0/24 svc=S1:A,M2:D' }],
  [reg('lowavg.tld')]: [{ TXT: 'ip4=192.0.2.0/24 svc=S1:C,M2:C,H1:X' }],
  [reg('tail.tld')]: [{ TXT: 'ip4=192.0.2.0/24 svc=S1:A,M2:A,H1:A,Z9:D' }],
  [reg('sidonly.tld')]: [{ TXT: `meth=SID:10,DKIM:2 ${GOOD}` }],
  [reg('greedy.tld')]: [{ TXT: `meth=SPF:40,CSV:9 ${GOOD}` }],
  [reg('both.tld')]: [{ TXT: `ip4=198.51.100.0/24 meth=SPF:10 ${GOOD}` }],
  'both.tld': [{ TXT: 'v=spf1 ip4:203.0.113.0/24 -all' }],
  [reg('six.tld')]: [{ TXT: `ip6=2001:db8:6::/48 ip4=192.0.2.0/24 ${GOOD}` }],
  [reg('csv.tld')]: [{ TXT: `meth=CSV:4 ${GOOD}` }],
  [reg('csv1.tld')]: [{ TXT: `meth=CSV:1 ${GOOD}` }],
  '_client._smtp.pass.csv1.tld': [{ SRV: [1, 2, 0, 'host.csv.tld'] }],
  [reg('v4spf.tld')]: [{ TXT: `ip4=192.0.2.0/24 meth=SPF:10 ${GOOD}` }],
  'v6.spf.tld': [{ TXT: 'v=spf1 ip6:2001:db8:9::/48 -all' }],
  [reg('v4only.tld')]: [{ TXT: `ip4=192.0.2.0/24 ${GOOD}` }],
  '_client._smtp.pass.csv.tld': [{ SRV: [1, 2, 0, 'host.csv.tld'] }],
  '_client._smtp.fail.csv.tld': [{ SRV: [1, 1, 0, 'host.csv.tld'] }],
  '_client._smtp.neutral.csv.tld': [{ SRV: [1, 3, 0, 'host.csv.tld'] }],
  '_client._smtp.slow.csv.tld': ['TIMEOUT'],
  'host.csv.tld': [{ A: '192.0.2.25' }],
  [reg('spf.tld')]: [{ TXT: `meth=SPF:10 ${GOOD}` }],
  'fail.spf.tld': [{ TXT: 'v=spf1 -all' }],
  'neutral.spf.tld': [{ TXT: 'v=spf1 ?all' }],
  'perm.spf.tld': [{ TXT: 'v=spf1 frobnicate -all' }],
  'temp.spf.tld': ['TIMEOUT'],
  'none.spf.tld': [{ A: '192.0.2.25' }],
};

const SETTINGS: RegistrySettings = {
  ...DEFAULT_REGISTRY_SETTINGS,
  zone: ZONE,
  services: {
    S1: { grades: { A: 9, B: 7, C: 5, D: 0 }, weight: 5 },
    M2: { grades: { A: 9, B: 7, C: 5, D: 0 }, weight: 5 },
    H1: { grades: { A: 9, B: 7, C: 5, D: 0, X: 1 }, weight: 5 },
  },
  receiver: 'mxR.receiver.domain',
};

let server: FixtureDnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer(zone);
  resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
});
after(() => server.close());

function check(input: RegistryInput, settings: Partial<RegistrySettings> = {}) {
  return checkId(input, { ...SETTINGS, ...settings }, { resolver });
}

function header(r: RegistryResult, name: string): string | undefined {
  return r.headers.find((h) => h.name === name)?.value;
}

describe("checkHelo.py's worked examples", () => {
  test('an ID whose netblocks hold the client, with good ratings: ACCEPT', async () => {
    const r = await check({ ip: '208.20.133.17', helo: 'mailout17.heaven.net' });
    assert.equal(r.action, 'ACCEPT');
    assert.equal(r.id, 'heaven.net');
    assert.equal(r.method, 'QR1');
    assert.equal(r.rating, 'HIGH');
    assert.deepEqual(r.reply, { code: 250, xcode: '2.7.0', text: 'Sender OK' });
    assert.deepEqual(r.headers, [
      { name: 'Authent', value: '208.20.133.17 heaven.net QR1 PASS ratings=S1:A,M2:A,H1:B' },
    ]);
    assert.equal(
      r.authResults,
      'x-registry=pass (QR1, rating HIGH) policy.id=heaven.net policy.ratings="S1:A,M2:A,H1:B" smtp.helo=mailout17.heaven.net',
    );
  });

  test('the same ID from an address outside its netblocks: REJECT', async () => {
    const r = await check({ ip: '208.20.133.32', helo: 'mailout32.heaven.net' });
    assert.equal(r.action, 'REJECT');
    assert.equal(r.reason, 'not-authorized');
    assert.deepEqual(r.reply, {
      code: 550,
      xcode: '5.7.1',
      text: "Sending MTA '208.20.133.32' not authorized by 'heaven.net'",
    });
    assert.equal(header(r, 'Authent'), '208.20.133.32 heaven.net QR1 FAIL ratings=S1:A,M2:A,H1:B');
  });

  test('good authentication with low ratings: FILTER', async () => {
    const r = await check(
      { ip: '192.168.0.1', helo: 'mx1.spammer.tld' },
      { help: 'https://registry.example/rejects' },
    );
    assert.equal(r.action, 'FILTER');
    assert.equal(r.reason, 'low-rating');
    assert.equal(r.rating, 'LOW');
    assert.equal(r.reply.code, 250);
    assert.equal(
      r.reply.text,
      "Message will be sent to spam filter - don't depend on delivery. Your domain 'spammer.tld' has ratings S1:C,M2:C. See https://registry.example/rejects",
    );
    assert.equal(header(r, 'Authent'), '192.168.0.1 spammer.tld QR1 PASS ratings=S1:C,M2:C');
  });

  test('an SPF-only ID: ACCEPT with its Received-SPF for the sender', async () => {
    const r = await check({
      ip: '69.55.226.139',
      helo: 'mx1.wayforward.net',
      sender: 'tway@optsw.com',
    });
    assert.equal(r.action, 'ACCEPT');
    assert.equal(r.id, 'wayforward.net');
    assert.equal(r.method, 'SPF');
    assert.deepEqual(r.reply, { code: 250, xcode: '2.7.0', text: 'sender SPF verified' });
    assert.equal(
      header(r, 'Authent'),
      '69.55.226.139 wayforward.net SPF1 pass ratings=S1:A,M2:A,H1:B',
    );
    const spf = header(r, 'Received-SPF') ?? '';
    assert.match(
      spf,
      /^Pass \(mxR\.receiver\.domain: domain of optsw\.com designates 69\.55\.226\.139 as permitted sender\)/,
    );
    assert.match(spf, /client-ip=69\.55\.226\.139;/);
    assert.match(spf, /envelope-from="?tway@optsw\.com"?;/);
    assert.match(spf, /helo=mx1\.wayforward\.net;/);
    assert.deepEqual(
      r.headers.map((h) => h.name),
      ['Authent', 'Received-SPF'],
    );
  });

  test('a softfail (the HELO identity, no sender yet): FILTER', async () => {
    const r = await check({ ip: '192.0.4.1', helo: 'mx1.abilene.texas.rr.tld' });
    assert.equal(r.action, 'FILTER');
    assert.equal(r.id, 'rr.tld');
    assert.equal(r.reply.text, 'domain in transition');
    assert.equal(header(r, 'Authent'), '192.0.4.1 rr.tld SPF1 softfail ratings=S1:A,M2:A,H1:B');
    assert.match(
      header(r, 'Received-SPF') ?? '',
      /^SoftFail \(mxR\.receiver\.domain: transitioning domain of mx1\.abilene\.texas\.rr\.tld does not designate 192\.0\.4\.1 as permitted sender\)/,
    );
  });

  test('a stop=all ID: REJECT naming it', async () => {
    const r = await check({ ip: '208.20.133.17', helo: 'mx1.example.co.uk' });
    assert.equal(r.action, 'REJECT');
    assert.equal(r.id, 'example.co.uk');
    assert.equal(r.reason, 'stop');
    assert.deepEqual(r.reply, {
      code: 550,
      xcode: '5.7.1',
      text: "No mail allowed from 'example.co.uk'.",
    });
    assert.deepEqual(r.headers, []);
  });

  test('a registry timeout: TEMPFAIL, try again later', async () => {
    const r = await check({ ip: '192.0.4.1', helo: 'mx1.slow.tld' });
    assert.equal(r.action, 'TEMPFAIL');
    assert.equal(r.reason, 'timeout');
    assert.deepEqual(r.reply, {
      code: 451,
      xcode: '4.4.3',
      text: "Timeout getting Registry record 'slow.tld.registry.example'. Try again later.",
    });
    assert.equal(r.alert, undefined);
  });

  test('a HELO without a dot: REJECT, not a valid sender name', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'JUPITER' });
    assert.equal(r.action, 'REJECT');
    assert.equal(r.reason, 'invalid-id');
    assert.equal(r.id, undefined);
    assert.deepEqual(r.reply, {
      code: 550,
      xcode: '5.7.1',
      text: "'JUPITER' is not a valid sender's name.",
    });
    assert.equal(r.queries, 0);
  });
});

describe('the registered ID', () => {
  for (const helo of [
    '[192.0.2.1]',
    '192.0.2.1',
    'co.uk',
    'a..b',
    'bad name.example',
    '',
    'x.123',
  ]) {
    test(`${JSON.stringify(helo)} is no sender's name`, async () => {
      const r = await check({ ip: '192.0.2.1', helo });
      assert.equal(r.action, 'REJECT');
      assert.equal(r.reason, 'invalid-id');
    });
  }

  test('hostile HELO text never reaches the reply raw', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'evil\r\n250 OK\u0000' });
    assert.equal(r.action, 'REJECT');
    assert.doesNotMatch(r.reply.text, /[\r\n\0]/);
  });

  test('the public suffix list finds the ID below a two-label suffix, in any case', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'MX1.Example.CO.UK.' });
    assert.equal(r.id, 'example.co.uk');
    assert.equal(r.reason, 'stop');
  });
});

describe('registry records', () => {
  test('no record: REJECT, declared ID with no Registry record', async () => {
    const r = await check(
      { ip: '192.0.2.1', helo: 'mx.unlisted.tld' },
      { help: 'https://registry.example/rejects' },
    );
    assert.equal(r.action, 'REJECT');
    assert.equal(r.reason, 'no-record');
    assert.equal(
      r.reply.text,
      "Declared ID 'unlisted.tld' has no Registry record. See https://registry.example/rejects",
    );
  });

  test('a DNS error that is no timeout: TEMPFAIL with an alert for the administrator', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.broken.tld' });
    assert.equal(r.action, 'TEMPFAIL');
    assert.equal(r.reason, 'dns-error');
    assert.equal(r.reply.code, 451);
    assert.match(r.alert ?? '', /broken\.tld\.registry\.example failed: servfail/);
  });

  test('several TXT records: TEMPFAIL with an alert', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.twice.tld' });
    assert.equal(r.action, 'TEMPFAIL');
    assert.equal(r.reason, 'parse-error');
    assert.match(r.alert ?? '', /has 2 TXT records/);
  });

  test('a record split over several strings is read joined', async () => {
    const r = await check({ ip: '192.0.2.9', helo: 'mx.split.tld' });
    assert.equal(r.action, 'ACCEPT');
  });

  test('an unknown key: TEMPFAIL, and the alert names it', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.garbled.tld' });
    assert.equal(r.action, 'TEMPFAIL');
    assert.equal(r.reason, 'parse-error');
    assert.match(
      r.alert ?? '',
      /garbled\.tld\.registry\.example: registry record field 2: unknown key 'colour'/,
    );
    assert.match(r.reply.text, /unusable\. Try again later\./);
  });

  test('an empty record: TEMPFAIL, parse error', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.empty.tld' });
    assert.equal(r.reason, 'parse-error');
    assert.match(r.alert ?? '', /has no fields/);
  });
});

describe('ratings', () => {
  test('none trusted: FILTER with an UNVERIFIED Authent', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.untrusted.tld' });
    assert.equal(r.action, 'FILTER');
    assert.equal(r.reason, 'no-trusted-ratings');
    assert.deepEqual(r.reply, {
      code: 250,
      xcode: '2.7.0',
      text: "No trusted ratings for 'untrusted.tld'. Delivery uncertain.",
    });
    assert.deepEqual(r.headers, [{ name: 'Authent', value: '192.0.2.1 untrusted.tld UNVERIFIED' }]);
  });

  test('no svc= at all is the same as none trusted', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.noratings.tld' });
    assert.equal(r.reason, 'no-trusted-ratings');
  });

  test('one score under the minimum: REJECT naming the ratings', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.dgrade.tld' });
    assert.equal(r.action, 'REJECT');
    assert.equal(r.reason, 'bad-ratings');
    assert.equal(
      r.reply.text,
      "Sorry, we accept mail only from reputable domains. Your domain 'dgrade.tld' has ratings S1:A,M2:D.",
    );
  });

  test('a weighted average under the threshold: REJECT', async () => {
    // (5 + 5 + 1) / 3 = 3.67 passes the default 3; a site asking 4 refuses it.
    assert.equal((await check({ ip: '192.0.2.1', helo: 'mx.lowavg.tld' })).action, 'FILTER');
    const r = await check({ ip: '192.0.2.1', helo: 'mx.lowavg.tld' }, { rejectAverage: 4 });
    assert.equal(r.action, 'REJECT');
    assert.ok(Math.abs((r.average ?? 0) - 11 / 3) < 1e-9);
  });

  test('reading stops once the weights are enough: a later D rating is not read', async () => {
    const trusted = { ...SETTINGS.services, Z9: { grades: { D: 0 }, weight: 5 } };
    const r = await check({ ip: '192.0.2.1', helo: 'mx.tail.tld' }, { services: trusted });
    assert.equal(r.action, 'ACCEPT');
    assert.equal(r.ratings, 'S1:A,M2:A,H1:A');
    const more = await check(
      { ip: '192.0.2.1', helo: 'mx.tail.tld' },
      { services: trusted, enoughWeight: 20 },
    );
    assert.equal(more.action, 'REJECT');
    assert.equal(more.ratings, 'S1:A,M2:A,H1:A,Z9:D');
  });
});

describe('methods', () => {
  test('none the receiver runs: CONTINUE, no supported methods', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.sidonly.tld' });
    assert.equal(r.action, 'CONTINUE');
    assert.equal(r.reason, 'no-methods');
    assert.match(r.reply.text, /No supported methods in Registry for 'sidonly\.tld'/);
    assert.deepEqual(r.headers, [
      {
        name: 'Authent',
        value: '192.0.2.1 sidonly.tld UNVERIFIED (No supported methods in Registry)',
      },
    ]);
  });

  test('a method declaring more queries than the receiver allows is not run', async () => {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.greedy.tld' });
    assert.equal(r.action, 'CONTINUE');
    assert.equal(r.queries, 1);
    const generous = await check(
      { ip: '192.0.2.1', helo: 'mx.greedy.tld' },
      { methods: [{ name: 'SPF', maxQueries: 40 }] },
    );
    assert.equal(generous.method, 'SPF');
  });

  test("the receiver's order decides: QR1 before SPF by default, SPF first when configured", async () => {
    const qr1 = await check({ ip: '203.0.113.5', helo: 'mx.both.tld', sender: 'jo@both.tld' });
    assert.equal(qr1.method, 'QR1');
    assert.equal(qr1.action, 'REJECT');
    const spf = await check(
      { ip: '203.0.113.5', helo: 'mx.both.tld', sender: 'jo@both.tld' },
      {
        methods: [
          { name: 'SPF', maxQueries: 30 },
          { name: 'QR1', maxQueries: 0 },
        ],
      },
    );
    assert.equal(spf.method, 'SPF');
    assert.equal(spf.action, 'ACCEPT');
  });

  test('a receiver that does not run QR1 skips the netblocks', async () => {
    const r = await check(
      { ip: '203.0.113.5', helo: 'mx.both.tld', sender: 'jo@both.tld' },
      { methods: [{ name: 'SPF', maxQueries: 30 }] },
    );
    assert.equal(r.method, 'SPF');
  });

  test('QR1 over IPv6 netblocks, and an IPv4-mapped client as IPv4', async () => {
    assert.equal((await check({ ip: '2001:db8:6:1::25', helo: 'mx.six.tld' })).action, 'ACCEPT');
    assert.equal((await check({ ip: '2001:db8:7::25', helo: 'mx.six.tld' })).action, 'REJECT');
    assert.equal((await check({ ip: '::ffff:192.0.2.25', helo: 'mx.six.tld' })).action, 'ACCEPT');
  });

  const csv: Array<[string, string, string, string]> = [
    ['pass.csv.tld', '192.0.2.25', 'ACCEPT', 'pass'],
    ['fail.csv.tld', '192.0.2.25', 'REJECT', 'fail'],
    ['neutral.csv.tld', '192.0.2.25', 'FILTER', 'neutral'],
    ['none.csv.tld', '192.0.2.25', 'FILTER', 'none'],
    ['slow.csv.tld', '192.0.2.25', 'TEMPFAIL', 'tempfail'],
  ];
  for (const [helo, ip, action, result] of csv) {
    test(`CSV: ${result} is ${action}`, async () => {
      const r = await check({ ip, helo });
      assert.equal(r.method, 'CSV');
      assert.equal(r.action, action);
      assert.equal(header(r, 'Authent'), `${ip} csv.tld CSV1 ${result} ratings=S1:A,M2:A,H1:B`);
      if (action === 'REJECT') assert.equal(r.reply.code, 550);
      if (action === 'TEMPFAIL') assert.equal(r.reply.code, 451);
    });
  }

  test('CSV over the receiver query bound is not run; within it, its DNS work is bounded', async () => {
    const skipped = await check(
      { ip: '192.0.2.25', helo: 'pass.csv.tld' },
      { methods: [{ name: 'CSV', maxQueries: 1 }] },
    );
    // The record declares CSV:4, over a bound of 1: not run.
    assert.equal(skipped.action, 'CONTINUE');
    assert.equal(skipped.method, undefined);
    // csv1.tld declares CSV:1: run with one query, which the SRV lookup spends, so the target's
    // address cannot be asked for and CSA tempfails.
    const bounded = await check(
      { ip: '192.0.2.25', helo: 'pass.csv1.tld' },
      { methods: [{ name: 'CSV', maxQueries: 1 }] },
    );
    assert.equal(bounded.method, 'CSV');
    assert.equal(bounded.action, 'TEMPFAIL');
    // The record, the SRV, and the address query the bound refused (counted, never sent).
    assert.equal(bounded.queries, 3);
  });

  test('QR1 with netblocks of the other family only gives way to the next method', async () => {
    const r = await check({ ip: '2001:db8:9::1', helo: 'mx.v4spf.tld', sender: 'jo@v6.spf.tld' });
    assert.equal(r.method, 'SPF');
    assert.equal(r.action, 'ACCEPT');
    const none = await check({ ip: '2001:db8:9::1', helo: 'mx.v4only.tld' });
    assert.equal(none.action, 'CONTINUE');
    assert.equal(none.reason, 'no-final-result');
  });

  test("every refusal ends with the help pointer, the methods' too", async () => {
    const help = { help: 'https://registry.example/rejects' };
    const qr1 = await check({ ip: '208.20.133.32', helo: 'mailout32.heaven.net' }, help);
    assert.match(
      qr1.reply.text,
      /not authorized by 'heaven\.net' See https:\/\/registry\.example\/rejects$/,
    );
    const spf = await check(
      { ip: '192.0.2.25', helo: 'mx.spf.tld', sender: 'jo@fail.spf.tld' },
      help,
    );
    assert.match(spf.reply.text, / See https:\/\/registry\.example\/rejects$/);
    const invalid = await check({ ip: '192.0.2.1', helo: 'JUPITER' }, help);
    assert.match(invalid.reply.text, / See https:\/\/registry\.example\/rejects$/);
    const accepted = await check({ ip: '208.20.133.17', helo: 'mailout17.heaven.net' }, help);
    assert.equal(accepted.reply.text, 'Sender OK');
    const long = await check(
      { ip: '192.0.2.1', helo: `${'x'.repeat(60)}.${'y'.repeat(60)}` },
      help,
    );
    assert.ok(long.reply.text.length <= 400);
  });

  const spf: Array<[string, string, string, number]> = [
    ['fail.spf.tld', 'REJECT', 'fail', 550],
    ['perm.spf.tld', 'REJECT', 'permerror', 550],
    ['neutral.spf.tld', 'FILTER', 'neutral', 250],
    ['none.spf.tld', 'FILTER', 'none', 250],
    ['temp.spf.tld', 'TEMPFAIL', 'temperror', 451],
  ];
  for (const [domain, action, result, code] of spf) {
    test(`SPF: ${result} is ${action}`, async () => {
      const r = await check({ ip: '192.0.2.25', helo: 'mx.spf.tld', sender: `jo@${domain}` });
      assert.equal(r.method, 'SPF');
      assert.equal(r.methodResult, result);
      assert.equal(r.action, action);
      assert.equal(r.reply.code, code);
      assert.ok(header(r, 'Received-SPF'));
      assert.match(r.authResults ?? '', new RegExp(`^x-registry=${result} \\(SPF, rating HIGH\\)`));
    });
  }

  test('the time budget bounds the whole check', async () => {
    const started = Date.now();
    const r = await checkId(
      { ip: '192.0.2.25', helo: 'mx.spf.tld', sender: 'jo@temp.spf.tld' },
      SETTINGS,
      {
        resolver: createResolver({
          servers: [server.address],
          timeout: 5000,
          attempts: 1,
          cache: false,
        }),
        limits: { timeBudgetMs: 300 },
      },
    );
    assert.equal(r.action, 'TEMPFAIL');
    assert.ok(Date.now() - started < 3000, 'the budget, not the resolver timeout, ended it');
  });

  test('queries are counted: the record lookup and the method', async () => {
    const r = await check({
      ip: '69.55.226.139',
      helo: 'mx1.wayforward.net',
      sender: 'tway@optsw.com',
    });
    assert.equal(r.queries, 2);
    const q = await check({ ip: '208.20.133.17', helo: 'mailout17.heaven.net' });
    assert.equal(q.queries, 1);
  });
});
