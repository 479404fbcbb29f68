// checkDnsxl against the real fixture DNS server, for an IPv4 and an IPv6 client each.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkDnsxl, type DnsxlList, type DnsxlOptions } from '../../../src/checks/dnsxl/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { ZoneData } from '../../support/dns-server.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

// The examples of RFC 5782 sections 2.1 and 2.4, spelt out by hand rather than computed.
const V4 = { ip: '192.0.2.99', reversed: '99.2.0.192' };
const V6 = {
  ip: '2001:db8:1:2:3:4:567:89ab',
  reversed: 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2',
};
const CLIENTS = [
  { family: 'IPv4', ...V4 },
  { family: 'IPv6', ...V6 },
];

const HOSTILE_TXT = 'Listed\r\n554 5.7.1 fake\x00 \xe9t\xe9 \x1b[31m see https://bl.example/?q';

/** The same entries under each client's reversed name in each zone. */
function perClient(zones: Record<string, unknown[]>): ZoneData {
  const out: ZoneData = {};
  for (const { reversed } of CLIENTS) {
    for (const [zone, entries] of Object.entries(zones)) out[`${reversed}.${zone}`] = entries;
  }
  return out;
}

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer({
    ...perClient({
      'listed.bl': [{ A: '127.0.0.2' }],
      'two.bl': [{ A: '127.0.0.3' }],
      'nodata.bl': [{ TXT: 'a name with no address' }],
      'multi.bl': [{ A: '127.0.0.2' }, { A: '127.0.0.4' }, { A: '127.0.0.10' }],
      'wl.example': [{ A: '127.0.10.2' }],
      'txt.bl': [
        { A: '127.0.0.2' },
        { TXT: HOSTILE_TXT },
        { TXT: ['see ', 'https://bl.example/'] },
      ],
      'txtslow.bl': [{ A: '127.0.0.2' }, { TXT: 'TIMEOUT' }],
      'refuse.bl': [{ A: '127.255.255.254' }],
      'custom-refuse.bl': [{ A: '127.0.0.255' }],
      'bad.bl': [{ A: '10.0.0.2' }, { A: '192.0.2.1' }],
      'half-bad.bl': [{ A: '10.0.0.2' }, { A: '127.0.0.2' }],
      'sf.bl': [{ RCODE: 'SERVFAIL' }],
      'slow.bl': ['TIMEOUT'],
      'slow2.bl': ['TIMEOUT'],
      'slow.wl': ['TIMEOUT'],
    }),
    // Zones exist, so names under them that are absent are NXDOMAIN.
    'nx.bl': [{ TXT: 'zone apex' }],
    'xn--bcher-kva.example.rhs.bl': [{ A: '127.0.1.2' }, { TXT: 'domain reason' }],
    'spam.example.rhs.bl': [{ A: '127.0.1.3' }],
  });
});
after(() => server.close());

const resolver = () => createResolver({ servers: [server.address], timeout: 300, attempts: 1 });

function check(ip: string, lists: DnsxlList[], more: Partial<DnsxlOptions> = {}) {
  return checkDnsxl({ ip }, { resolver: resolver(), lists, ...more });
}

const sorted = (codes: string[]) => [...codes].sort();

for (const client of CLIENTS) {
  const { ip, reversed } = client;
  describe(`${client.family} client ${ip}`, () => {
    test('a listing is reported with its code, weight and the name asked', async () => {
      const r = await check(ip, [{ zone: 'Listed.BL.', kind: 'dnsbl' }]);
      assert.deepEqual(r.lists, [
        {
          zone: 'listed.bl',
          kind: 'dnsbl',
          result: 'listed',
          query: `${reversed}.listed.bl`,
          codes: ['127.0.0.2'],
          weight: 1,
        },
      ]);
      assert.equal(r.result, 'listed');
      assert.equal(r.ip, ip);
      assert.equal(r.hits, 1);
      assert.equal(r.score, 1);
      assert.equal(r.whitelisted, false);
      assert.equal(r.tempfails, 0);
      assert.deepEqual(r.reply, {
        code: 554,
        xcode: '5.7.1',
        text: `client [${ip}] is listed at listed.bl`,
      });
    });

    test('NXDOMAIN and NODATA mean not listed', async () => {
      const r = await check(ip, [
        { zone: 'nx.bl', kind: 'dnsbl' },
        { zone: 'nodata.bl', kind: 'dnsbl' },
      ]);
      assert.deepEqual(
        r.lists.map((l) => [l.zone, l.result, l.codes, l.detail]),
        [
          ['nx.bl', 'not-listed', [], undefined],
          ['nodata.bl', 'not-listed', [], undefined],
        ],
      );
      assert.equal(r.result, 'not-listed');
      assert.equal(r.hits, 0);
      assert.equal(r.score, 0);
      assert.deepEqual(r.reply, {
        code: 250,
        xcode: '2.7.0',
        text: 'not listed at the DNS block lists consulted',
      });
    });

    test('return codes restrict listings, by address and by range', async () => {
      const r = await check(ip, [
        { zone: 'multi.bl', kind: 'dnsbl', codes: ['127.0.0.4'] },
        { zone: 'multi.bl', kind: 'dnsbl', codes: ['127.0.0.5-127.0.0.9'] },
        { zone: 'multi.bl', kind: 'dnsbl', codes: ['127.0.0.3-127.0.0.11'] },
        { zone: 'multi.bl', kind: 'dnsbl' },
        { zone: 'multi.bl', kind: 'dnsbl', codes: ['127.0.0.9', '127.0.0.2'] },
      ]);
      const [one, none, range, any, list] = r.lists;
      assert.equal(one?.result, 'listed');
      assert.deepEqual(one?.codes, ['127.0.0.4']);
      assert.equal(one?.detail, 'other codes: 127.0.0.2, 127.0.0.10');
      assert.equal(none?.result, 'not-listed');
      assert.deepEqual(none?.codes, []);
      assert.deepEqual(sorted(none!.detail!.replace('other codes: ', '').split(', ')), [
        '127.0.0.10',
        '127.0.0.2',
        '127.0.0.4',
      ]);
      assert.equal(range?.result, 'listed');
      assert.deepEqual(sorted(range!.codes), ['127.0.0.10', '127.0.0.4']);
      assert.equal(any?.result, 'listed');
      assert.deepEqual(sorted(any!.codes), ['127.0.0.10', '127.0.0.2', '127.0.0.4']);
      assert.equal(any?.detail, undefined);
      assert.deepEqual(list?.codes, ['127.0.0.2']);
      assert.equal(r.hits, 4);
    });

    test('weights add up to the score, and the threshold decides', async () => {
      const lists: DnsxlList[] = [
        { zone: 'listed.bl', kind: 'dnsbl', weight: 2 },
        { zone: 'two.bl', kind: 'dnsbl', weight: 0.5 },
        { zone: 'nx.bl', kind: 'dnsbl', weight: 10 },
      ];
      const r = await check(ip, lists, { threshold: 3 });
      assert.equal(r.hits, 2);
      assert.equal(r.score, 2.5);
      assert.equal(r.result, 'not-listed');
      const lower = await check(ip, lists, { threshold: 2.5 });
      assert.equal(lower.result, 'listed');
      // The heaviest listing is the one the reply names.
      assert.equal(lower.reply.text, `client [${ip}] is listed at listed.bl`);
      const zero = await check(ip, [{ zone: 'listed.bl', kind: 'dnsbl', weight: 0 }]);
      assert.equal(zero.hits, 1);
      assert.equal(zero.score, 0);
      assert.equal(zero.result, 'not-listed');
    });

    test('a DNSWL listing whitelists, and does not count in the score', async () => {
      const r = await check(ip, [
        { zone: 'listed.bl', kind: 'dnsbl' },
        { zone: 'wl.example', kind: 'dnswl', weight: 3 },
      ]);
      assert.equal(r.lists[1]?.result, 'listed');
      assert.deepEqual(r.lists[1]?.codes, ['127.0.10.2']);
      assert.equal(r.whitelisted, true);
      assert.equal(r.whitelistScore, 3);
      assert.equal(r.hits, 1);
      assert.equal(r.score, 1);
      assert.equal(r.result, 'whitelisted');
      assert.deepEqual(r.reply, {
        code: 250,
        xcode: '2.7.0',
        text: `client [${ip}] is vouched for by wl.example`,
      });
      const notOnIt = await check(ip, [{ zone: 'nx.bl', kind: 'dnswl' }]);
      assert.equal(notOnIt.whitelisted, false);
      assert.equal(notOnIt.result, 'not-listed');
    });

    test('TXT reasons are fetched when asked for, and made safe', async () => {
      server.resetLog();
      const r = await check(ip, [
        { zone: 'txt.bl', kind: 'dnsbl', txt: true },
        { zone: 'nx.bl', kind: 'dnsbl', txt: true },
        { zone: 'listed.bl', kind: 'dnsbl' },
      ]);
      const reason = r.lists[0]?.reason;
      assert.ok(reason !== undefined, 'a reason');
      assert.match(reason, /^[\x20-\x7e]+$/);
      const texts = reason.split('; ').sort();
      assert.deepEqual(texts, [
        'Listed??554 5.7.1 fake? ?t? ?[31m see https://bl.example/?q',
        'see https://bl.example/',
      ]);
      assert.equal(r.lists[1]?.reason, undefined);
      assert.equal(r.lists[2]?.reason, undefined);
      assert.match(r.reply.text, /^client \[[^\]]+\] is listed at txt\.bl: Listed\?\?554/);
      assert.match(r.reply.text, /^[\x20-\x7e]+$/);
      assert.ok(r.reply.text.length <= 400, r.reply.text);
      // TXT is asked only of the list that lists the client and wants a reason.
      const txtQueries = server.queries.filter((q) => q.type === 'TXT').map((q) => q.name);
      assert.deepEqual(txtQueries, [`${reversed}.txt.bl`]);
    });

    test('a reason that cannot be fetched leaves the listing standing', async () => {
      const r = await check(ip, [{ zone: 'txtslow.bl', kind: 'dnsbl', txt: true }]);
      assert.equal(r.lists[0]?.result, 'listed');
      assert.equal(r.lists[0]?.reason, undefined);
      assert.equal(r.lists[0]?.detail, 'no reason (timeout)');
      assert.equal(r.result, 'listed');
      assert.equal(r.reply.text, `client [${ip}] is listed at txtslow.bl`);
    });

    test('127.255.255.254 marks the list unusable, never a hit', async () => {
      const r = await check(ip, [
        { zone: 'refuse.bl', kind: 'dnsbl', weight: 5 },
        { zone: 'refuse.bl', kind: 'dnswl' },
      ]);
      for (const l of r.lists) {
        assert.equal(l.result, 'unusable');
        assert.deepEqual(l.codes, ['127.255.255.254']);
        assert.equal(l.detail, 'query refused');
      }
      assert.equal(r.unusable, 2);
      assert.equal(r.hits, 0);
      assert.equal(r.score, 0);
      assert.equal(r.whitelisted, false);
      assert.equal(r.tempfails, 0);
      assert.equal(r.result, 'not-listed');
    });

    test('the refusal codes are set per list', async () => {
      const custom = await check(ip, [
        { zone: 'custom-refuse.bl', kind: 'dnsbl', unusableCodes: ['127.0.0.255'] },
        { zone: 'custom-refuse.bl', kind: 'dnsbl' },
        { zone: 'refuse.bl', kind: 'dnsbl', unusableCodes: [] },
      ]);
      assert.deepEqual(
        custom.lists.map((l) => [l.result, l.codes]),
        [
          ['unusable', ['127.0.0.255']],
          ['listed', ['127.0.0.255']],
          ['listed', ['127.255.255.254']],
        ],
      );
    });

    test('answers outside 127.0.0.0/8 are ignored and reported', async () => {
      const r = await check(ip, [
        { zone: 'bad.bl', kind: 'dnsbl' },
        { zone: 'half-bad.bl', kind: 'dnsbl' },
      ]);
      const [bad, half] = r.lists;
      assert.equal(bad?.result, 'not-listed');
      assert.deepEqual(bad?.codes, []);
      assert.match(bad!.detail!, /^bad answer: /);
      assert.deepEqual(sorted(bad!.detail!.replace('bad answer: ', '').split(', ')), [
        '10.0.0.2',
        '192.0.2.1',
      ]);
      assert.equal(half?.result, 'listed');
      assert.deepEqual(half?.codes, ['127.0.0.2']);
      assert.equal(half?.detail, 'bad answer: 10.0.0.2');
      assert.equal(r.hits, 1);
    });

    test('SERVFAIL and TIMEOUT give tempfail, never not-listed', async () => {
      const r = await check(ip, [
        { zone: 'sf.bl', kind: 'dnsbl' },
        { zone: 'slow.bl', kind: 'dnsbl' },
        { zone: 'nx.bl', kind: 'dnsbl' },
      ]);
      assert.deepEqual(
        r.lists.map((l) => [l.zone, l.result, l.detail]),
        [
          ['sf.bl', 'tempfail', 'servfail'],
          ['slow.bl', 'tempfail', 'timeout'],
          ['nx.bl', 'not-listed', undefined],
        ],
      );
      assert.equal(r.tempfails, 2);
      assert.equal(r.result, 'tempfail');
      assert.deepEqual(r.reply, {
        code: 451,
        xcode: '4.4.3',
        text: 'DNS list lookup failed temporarily: sf.bl, slow.bl',
      });
    });

    test('a failure that cannot change the verdict does not make it a tempfail', async () => {
      const weightless = await check(ip, [{ zone: 'sf.bl', kind: 'dnsbl', weight: 0 }]);
      assert.equal(weightless.tempfails, 1);
      assert.equal(weightless.result, 'not-listed');
      const short = await check(
        ip,
        [
          { zone: 'sf.bl', kind: 'dnsbl' },
          { zone: 'nx.bl', kind: 'dnsbl' },
        ],
        { threshold: 2 },
      );
      assert.equal(short.result, 'not-listed');
      const already = await check(ip, [
        { zone: 'listed.bl', kind: 'dnsbl' },
        { zone: 'sf.bl', kind: 'dnsbl' },
      ]);
      assert.equal(already.result, 'listed');
      // A DNSWL that failed might have vouched for a listed client.
      const doubt = await check(ip, [
        { zone: 'listed.bl', kind: 'dnsbl' },
        { zone: 'sf.bl', kind: 'dnswl' },
      ]);
      assert.equal(doubt.result, 'tempfail');
      assert.equal(doubt.reply.code, 451);
    });

    test('all lists are asked at once, within one time budget', async () => {
      server.resetLog();
      // A resolver that would wait 5 s for the silent lists: the budget must end them first.
      const patient = createResolver({ servers: [server.address], timeout: 5000, attempts: 1 });
      const lists: DnsxlList[] = [
        { zone: 'slow.bl', kind: 'dnsbl' },
        { zone: 'slow2.bl', kind: 'dnsbl' },
        { zone: 'slow.wl', kind: 'dnswl' },
        { zone: 'listed.bl', kind: 'dnsbl' },
        { zone: 'nx.bl', kind: 'dnsbl' },
        { zone: 'wl.example', kind: 'dnswl' },
      ];
      const started = Date.now();
      const r = await checkDnsxl({ ip }, { resolver: patient, lists, timeBudgetMs: 1000 });
      const elapsed = Date.now() - started;
      patient.close();
      // Asked one after another, the second silent list would have found the budget spent and
      // never been asked, and the lists after it would have failed too.
      assert.deepEqual(
        server.queries.map((q) => `${q.type} ${q.name}`).sort(),
        lists.map((l) => `A ${reversed}.${l.zone}`).sort(),
      );
      assert.deepEqual(
        r.lists.map((l) => [l.zone, l.result, l.detail]),
        [
          ['slow.bl', 'tempfail', 'time budget exhausted'],
          ['slow2.bl', 'tempfail', 'time budget exhausted'],
          ['slow.wl', 'tempfail', 'time budget exhausted'],
          ['listed.bl', 'listed', undefined],
          ['nx.bl', 'not-listed', undefined],
          ['wl.example', 'listed', undefined],
        ],
      );
      assert.equal(r.tempfails, 3);
      assert.equal(r.result, 'whitelisted');
      assert.ok(
        elapsed < 4000,
        `the budget, not the resolver's 5 s timeout, ended it (${elapsed} ms)`,
      );
    });

    test('the reversed name is exactly that of RFC 5782', async () => {
      server.resetLog();
      await check(ip, [{ zone: 'nx.bl', kind: 'dnsbl' }]);
      assert.deepEqual(
        server.queries.map((q) => [q.type, q.name]),
        [['A', `${reversed}.nx.bl`]],
      );
    });
  });
}

test('IPv6 names are 32 reversed nibbles, zeros written out', async () => {
  server.resetLog();
  const r = await check('2001:DB8::1', [{ zone: 'nx.bl', kind: 'dnsbl' }]);
  const name = `1.0.0.0.${'0.'.repeat(20)}8.b.d.0.1.0.0.2.nx.bl`;
  assert.equal(r.lists[0]?.query, name);
  assert.equal(r.ip, '2001:db8::1');
  assert.deepEqual(
    server.queries.map((q) => q.name),
    [name],
  );
});

test('an IPv4-mapped IPv6 client is looked up as IPv4', async () => {
  server.resetLog();
  const r = await check(`::ffff:${V4.ip}`, [{ zone: 'listed.bl', kind: 'dnsbl' }]);
  assert.equal(r.ip, V4.ip);
  assert.equal(r.result, 'listed');
  assert.deepEqual(
    server.queries.map((q) => q.name),
    [`${V4.reversed}.listed.bl`],
  );
});

describe('RHSBL', () => {
  const rhsbl = (domain: string, lists?: DnsxlList[]) =>
    checkDnsxl(
      { domain },
      { resolver: resolver(), lists: lists ?? [{ zone: 'rhs.bl', kind: 'rhsbl', txt: true }] },
    );

  test('a domain is asked as <domain>.<zone>, IDNs as A-labels, without the trailing dot', async () => {
    server.resetLog();
    const r = await rhsbl('Bücher.Example.');
    assert.equal(r.domain, 'xn--bcher-kva.example');
    assert.deepEqual(r.lists, [
      {
        zone: 'rhs.bl',
        kind: 'rhsbl',
        result: 'listed',
        query: 'xn--bcher-kva.example.rhs.bl',
        codes: ['127.0.1.2'],
        weight: 1,
        reason: 'domain reason',
      },
    ]);
    assert.equal(r.result, 'listed');
    assert.deepEqual(r.reply, {
      code: 554,
      xcode: '5.7.1',
      text: 'domain xn--bcher-kva.example is listed at rhs.bl: domain reason',
    });
    assert.deepEqual(
      server.queries.map((q) => `${q.type} ${q.name}`),
      ['A xn--bcher-kva.example.rhs.bl', 'TXT xn--bcher-kva.example.rhs.bl'],
    );
  });

  test('upper case and a trailing dot ask the same name', async () => {
    const r = await rhsbl('SPAM.Example.', [
      { zone: 'RHS.bl.', kind: 'rhsbl', codes: ['127.0.1.3'] },
      { zone: 'rhs.bl', kind: 'rhsbl', codes: ['127.0.1.2'] },
    ]);
    assert.equal(r.lists[0]?.query, 'spam.example.rhs.bl');
    assert.equal(r.lists[0]?.result, 'listed');
    assert.equal(r.lists[1]?.result, 'not-listed');
    assert.equal(r.lists[1]?.detail, 'other codes: 127.0.1.3');
    const clean = await rhsbl('ham.example');
    assert.equal(clean.lists[0]?.result, 'not-listed');
  });

  test('a domain that cannot be valid is not asked about', async () => {
    for (const domain of [
      '',
      '.',
      '[192.0.2.1]',
      '192.0.2.1',
      'localhost',
      'a..example',
      'a\r\nb.example',
      'bad domain.example',
      'semi;colon.example',
      `${'x'.repeat(64)}.example`,
      `${'abcdefghi.'.repeat(26)}example`,
      'xn--zz.example',
    ]) {
      server.resetLog();
      const r = await rhsbl(domain);
      assert.deepEqual(
        r.lists,
        [
          {
            zone: 'rhs.bl',
            kind: 'rhsbl',
            result: 'not-listed',
            codes: [],
            weight: 1,
            detail: 'invalid-domain',
          },
        ],
        JSON.stringify(domain),
      );
      assert.equal(r.result, 'not-listed');
      assert.match(r.domain!, /^[\x20-\x7e]*$/);
      assert.deepEqual(server.queries, [], JSON.stringify(domain));
    }
  });

  test('a name longer than DNS allows is not asked', async () => {
    server.resetLog();
    const domain = `${'abcdefghi.'.repeat(24)}example`; // 247 octets: valid, but not with a zone
    const r = await rhsbl(domain);
    assert.equal(r.lists[0]?.result, 'not-listed');
    assert.equal(r.lists[0]?.detail, 'name-too-long');
    assert.deepEqual(server.queries, []);
  });

  test('address lists and domain lists in one check', async () => {
    const r = await checkDnsxl(
      { ip: V4.ip, domain: 'spam.example' },
      {
        resolver: resolver(),
        lists: [
          { zone: 'rhs.bl', kind: 'rhsbl', weight: 2 },
          { zone: 'listed.bl', kind: 'dnsbl' },
        ],
      },
    );
    assert.equal(r.hits, 2);
    assert.equal(r.score, 3);
    assert.equal(r.reply.text, 'domain spam.example is listed at rhs.bl');
  });
});

test('mistakes of the caller are errors, not results', async () => {
  const options = { resolver: resolver() };
  await assert.rejects(
    checkDnsxl({ ip: '192.0.2.300' }, { ...options, lists: [{ zone: 'b.l', kind: 'dnsbl' }] }),
    /not an IP address/,
  );
  await assert.rejects(
    checkDnsxl({ domain: 'x.example' }, { ...options, lists: [{ zone: 'b.l', kind: 'dnsbl' }] }),
    /need the client address/,
  );
  await assert.rejects(
    checkDnsxl({ ip: V4.ip }, { ...options, lists: [{ zone: 'b.l', kind: 'rhsbl' }] }),
    /need a domain/,
  );
  await assert.rejects(
    checkDnsxl(
      { ip: V4.ip },
      { ...options, lists: [{ zone: 'b.l', kind: 'dnsbl', codes: ['1'] }] },
    ),
    /lists\[0\]\.codes\[0\]/,
  );
  await assert.rejects(
    checkDnsxl({ ip: V4.ip }, { ...options, lists: [], threshold: 0 }),
    /threshold/,
  );
});
