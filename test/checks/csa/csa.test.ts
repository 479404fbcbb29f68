// The CSA check through the real resolver against the fixture DNS server: one server that fills
// the additional section of SRV answers with the targets' addresses, one that leaves it empty, so
// that both ways to the target's addresses are exercised. Queries are asserted as the server saw
// them, so the parent search's order and depth are checked on the wire.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type CsaOptions,
  type CsaResult,
  checkCsa,
  DEFAULT_CSA_LIMITS,
} from '../../../src/checks/csa/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Clock, Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

const V4 = '192.0.2.10';
const V6 = '2001:db8::10';

const srv = (priority: number, weight: number, port: number, target: string) => ({
  SRV: [priority, weight, port, target],
});
const csa = (name: string) => `_client._smtp.${name}`;

/** The ip6.arpa name of an IPv6 address, written out independently of src/dns. */
function ip6Reverse(ip: string): string {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const nibbles = all.map((g) => g.padStart(4, '0').toLowerCase()).join('');
  return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
}

const zone = {
  'host.example.com': [{ A: V4 }, { AAAA: V6 }],
  'other.example.com': [{ A: '192.0.2.99' }, { AAAA: '2001:db8::99' }],
  'v4only.example.com': [{ A: V4 }],
  'nothing.example.com': [{ TXT: 'no addresses here' }],
  'alias.example.com': [{ CNAME: 'host.example.com' }],
  'slowhost.example.com': ['TIMEOUT'],
  'failhost.example.com': [{ RCODE: 'SERVFAIL' }],

  [csa('pass.example.com')]: [srv(1, 2, 0, 'host.example.com')],
  [csa('versions.example.com')]: [
    srv(0, 2, 0, 'other.example.com'),
    srv(2, 1, 0, 'other.example.com'),
    srv(1, 2, 0, 'host.example.com'),
    srv(3, 0, 0, '.'),
  ],
  [csa('future.example.com')]: [srv(2, 2, 0, 'host.example.com')],
  [csa('ambiguous.example.com')]: [
    srv(1, 2, 0, 'host.example.com'),
    srv(1, 2, 0, 'other.example.com'),
  ],
  [csa('w0.example.com')]: [srv(1, 0, 0, 'host.example.com')],
  [csa('w1.example.com')]: [srv(1, 1, 0, 'host.example.com')],
  [csa('w3.example.com')]: [srv(1, 3, 0, 'host.example.com')],
  [csa('w4.example.com')]: [srv(1, 4, 0, 'host.example.com')],
  [csa('w9.example.com')]: [srv(1, 9, 1, 'host.example.com')],
  [csa('mismatch.example.com')]: [srv(1, 2, 0, 'other.example.com')],
  [csa('mixed.example.com')]: [srv(1, 2, 0, 'v4only.example.com')],
  [csa('nodata.example.com')]: [srv(1, 2, 0, 'nothing.example.com')],
  [csa('nxtarget.example.com')]: [srv(1, 2, 0, 'gone.example.com')],
  [csa('dot.example.com')]: [srv(1, 2, 0, '.')],
  [csa('cname.example.com')]: [srv(1, 2, 0, 'alias.example.com')],
  [csa('slow.example.com')]: ['TIMEOUT'],
  [csa('broken.example.com')]: [{ RCODE: 'SERVFAIL' }],
  [csa('slowaddr.example.com')]: [srv(1, 2, 0, 'slowhost.example.com')],
  [csa('failaddr.example.com')]: [srv(1, 2, 0, 'failhost.example.com')],
  [csa('xn--bcher-kva.example')]: [srv(1, 2, 0, 'host.example.com')],

  // The parent search.
  [csa('strict.example.net')]: [srv(1, 2, 1, '.')],
  [csa('ok.strict.example.net')]: [srv(1, 2, 0, 'host.example.com')],
  [csa('lax.example.net')]: [srv(1, 2, 0, 'host.example.com'), srv(2, 2, 1, '.')],
  [csa('dept.lax.example.net')]: [srv(1, 1, 3, '.')],
  [csa('tempparent.example.net')]: ['TIMEOUT'],
  [csa('c.d.e.f.g.example.org')]: [srv(1, 0, 1, '.')],
  // Public suffixes with records that would fail everything below them, were they asked.
  [csa('co.uk')]: [srv(1, 0, 1, '.')],
  [csa('uk')]: [srv(1, 0, 1, '.')],
  [csa('github.io')]: [srv(1, 0, 1, '.')],
  [csa('com')]: [srv(1, 0, 1, '.')],

  // Address literals.
  [csa('1.2.0.192.in-addr.arpa')]: [srv(1, 2, 0, 'host.example.com')],
  [csa('113.0.203.in-addr.arpa')]: [srv(1, 2, 1, '.')],
  [csa('100.51.198.in-addr.arpa')]: [srv(1, 2, 0, 'host.example.com')],
  [csa(ip6Reverse('2001:db8::1'))]: [srv(1, 2, 0, 'host.example.com')],
  [csa('c.c.c.c.8.b.d.0.1.0.0.2.ip6.arpa')]: [srv(1, 2, 1, '.')],
};

let plain: FixtureDnsServer;
let rich: FixtureDnsServer;
before(async () => {
  plain = await startDnsServer(zone);
  rich = await startDnsServer(zone, { srvAdditional: true });
});
after(async () => {
  await plain.close();
  await rich.close();
});

/** No cache, so that every check's queries reach the server; a TIMEOUT costs 200 ms. */
function resolverFor(server: FixtureDnsServer, timeout = 200): Resolver {
  return createResolver({ servers: [server.address], timeout, attempts: 1, cache: false });
}

interface Run {
  r: CsaResult;
  /** The queries the server saw, as `TYPE name`. */
  seen: string[];
}

async function run(
  server: FixtureDnsServer,
  ip: string,
  helo: string,
  options: Partial<CsaOptions> = {},
): Promise<Run> {
  server.resetLog();
  const r = await checkCsa({ ip, helo }, { resolver: resolverFor(server), ...options });
  return { r, seen: server.queries.map((q) => `${q.type} ${q.name}`) };
}

/** A resolver that must not be asked anything. */
const noDns: Resolver = {
  query() {
    throw new Error('no DNS query expected');
  },
};

function assertSafeReply(r: CsaResult): void {
  assert.match(r.reply.text, /^[\x20-\x7e]*$/, r.reply.text);
  assert.ok(r.reply.text.length <= 400, `${r.reply.text.length} characters`);
}

const bothServers = () => [
  { label: 'additional section filled', server: rich },
  { label: 'additional section empty', server: plain },
];

describe('weight 2: the target must have the client address', () => {
  for (const [family, ip, type] of [
    ['IPv4', V4, 'A'],
    ['IPv6', V6, 'AAAA'],
  ] as const) {
    test(`${family} client of an authorized target passes`, async () => {
      const { r, seen } = await run(plain, ip, 'pass.example.com');
      assert.equal(r.result, 'pass');
      assert.equal(r.reason, 'ok');
      assert.equal(r.ip, ip);
      assert.equal(r.domain, 'pass.example.com');
      assert.equal(r.record, '_client._smtp.pass.example.com');
      assert.equal(r.target, 'host.example.com');
      assert.deepEqual(r.reply, {
        code: 250,
        xcode: '2.7.0',
        text: `CSA: ${ip} is authorized by pass.example.com`,
      });
      // The additional section was empty: the target's addresses were asked for.
      assert.deepEqual(seen, ['SRV _client._smtp.pass.example.com', `${type} host.example.com`]);
      assert.equal(r.queries, 2);
    });

    test(`${family}: addresses from the additional section are used without a query`, async () => {
      const { r, seen } = await run(rich, ip, 'pass.example.com');
      assert.equal(r.result, 'pass');
      assert.deepEqual(seen, ['SRV _client._smtp.pass.example.com']);
      assert.equal(r.queries, 1);
    });

    test(`${family}: a target whose addresses do not include the client fails`, async () => {
      for (const { label, server } of bothServers()) {
        const { r } = await run(server, ip, 'mismatch.example.com');
        assert.equal(r.result, 'fail', label);
        assert.equal(r.reason, 'address-mismatch', label);
        assert.equal(r.reply.code, 550);
        assert.equal(r.reply.xcode, '5.7.1');
        assert.equal(r.reply.text, `CSA: ${ip} is not authorized by mismatch.example.com`);
      }
    });

    test(`${family}: a CNAME target is followed`, async () => {
      const viaQuery = await run(plain, ip, 'cname.example.com');
      assert.equal(viaQuery.r.result, 'pass');
      assert.equal(viaQuery.r.target, 'alias.example.com');
      assert.deepEqual(viaQuery.seen, [
        'SRV _client._smtp.cname.example.com',
        `${type} alias.example.com`,
      ]);
      // The chain and the addresses came in the additional section.
      const viaAdditional = await run(rich, ip, 'cname.example.com');
      assert.equal(viaAdditional.r.result, 'pass');
      assert.deepEqual(viaAdditional.seen, ['SRV _client._smtp.cname.example.com']);
    });

    test(`${family}: a target with no addresses fails with no-addresses`, async () => {
      for (const { label, server } of bothServers()) {
        for (const helo of ['nodata.example.com', 'nxtarget.example.com']) {
          const { r } = await run(server, ip, helo);
          assert.equal(r.result, 'fail', `${label} ${helo}`);
          assert.equal(r.reason, 'no-addresses', `${label} ${helo}`);
          assert.equal(r.reply.code, 550);
          assert.match(r.reply.text, new RegExp(`^CSA: ${ip} is not authorized by ${helo}: `));
        }
      }
    });

    test(`${family}: target '.' fails with no-addresses and no address query`, async () => {
      for (const { label, server } of bothServers()) {
        const { r, seen } = await run(server, ip, 'dot.example.com');
        assert.equal(r.result, 'fail', label);
        assert.equal(r.reason, 'no-addresses', label);
        assert.equal(r.target, '.');
        assert.deepEqual(seen, ['SRV _client._smtp.dot.example.com'], label);
        assert.match(r.reply.text, /no addresses for \.$/);
      }
    });
  }

  test('an IPv6 client of a target with only A records: the AAAA records are asked for', async () => {
    const v4 = await run(rich, V4, 'mixed.example.com');
    assert.equal(v4.r.result, 'pass');
    assert.deepEqual(v4.seen, ['SRV _client._smtp.mixed.example.com']);
    // The additional section holds the A record only; that proves nothing about AAAA.
    const v6 = await run(rich, V6, 'mixed.example.com');
    assert.equal(v6.r.result, 'fail');
    assert.equal(v6.r.reason, 'no-addresses');
    assert.deepEqual(v6.seen, ['SRV _client._smtp.mixed.example.com', 'AAAA v4only.example.com']);
  });

  test('an IPv4-mapped client is checked as IPv4', async () => {
    const { r, seen } = await run(plain, `::ffff:${V4}`, 'pass.example.com');
    assert.equal(r.result, 'pass');
    assert.equal(r.ip, V4);
    assert.deepEqual(seen, ['SRV _client._smtp.pass.example.com', 'A host.example.com']);
  });

  test('the fixture server carries the targets in the additional section only when asked', async () => {
    const asked = await resolverFor(rich).query('_client._smtp.pass.example.com', 'SRV');
    assert.equal(asked.kind, 'answer');
    const extra = asked.kind === 'answer' ? asked.additional : [];
    assert.deepEqual(
      extra.map((r) => `${r.type} ${r.name} ${'address' in r ? r.address : ''}`).sort(),
      [`A host.example.com ${V4}`, `AAAA host.example.com ${V6}`],
    );
    const bare = await resolverFor(plain).query('_client._smtp.pass.example.com', 'SRV');
    assert.equal(bare.kind, 'answer');
    assert.deepEqual(bare.kind === 'answer' ? bare.additional : null, []);
  });
});

describe('the records at the name', () => {
  for (const [family, ip] of [
    ['IPv4', V4],
    ['IPv6', V6],
  ] as const) {
    test(`${family}: records of other CSA versions are ignored`, async () => {
      const { r } = await run(plain, ip, 'versions.example.com');
      assert.equal(r.result, 'pass');
      assert.equal(r.target, 'host.example.com');
      // Only other versions: nothing we understand, and no parent search either.
      const future = await run(plain, ip, 'future.example.com');
      assert.equal(future.r.result, 'none');
      assert.equal(future.r.reason, 'no-record');
      assert.deepEqual(future.seen, ['SRV _client._smtp.future.example.com']);
    });

    test(`${family}: more than one version-1 record is ambiguous`, async () => {
      const { r, seen } = await run(plain, ip, 'ambiguous.example.com');
      assert.equal(r.result, 'fail');
      assert.equal(r.reason, 'ambiguous');
      assert.equal(r.reply.code, 550);
      assert.equal(r.reply.xcode, '5.7.1');
      assert.match(r.reply.text, new RegExp(`^CSA: ${ip} is not authorized by ambiguous`));
      assert.deepEqual(seen, ['SRV _client._smtp.ambiguous.example.com']);
    });

    test(`${family}: weights 0 and 1 are not authorized, whatever the addresses`, async () => {
      for (const helo of ['w0.example.com', 'w1.example.com']) {
        for (const { label, server } of bothServers()) {
          const { r, seen } = await run(server, ip, helo);
          assert.equal(r.result, 'fail', `${label} ${helo}`);
          assert.equal(r.reason, 'not-authorized');
          assert.deepEqual(r.reply, {
            code: 550,
            xcode: '5.7.1',
            text: `CSA: ${ip} is not authorized by ${helo}: ${helo} may not send mail`,
          });
          assert.deepEqual(seen, [`SRV _client._smtp.${helo}`]);
        }
      }
    });

    test(`${family}: weight 3 is neutral and the target's addresses are not used`, async () => {
      for (const { label, server } of bothServers()) {
        const { r, seen } = await run(server, ip, 'w3.example.com');
        assert.equal(r.result, 'neutral', label);
        assert.equal(r.reason, 'uncertain');
        assert.deepEqual(r.reply, {
          code: 250,
          xcode: '2.7.0',
          text: `CSA: ${ip} is not listed by w3.example.com; do not depend on delivery`,
        });
        assert.deepEqual(seen, ['SRV _client._smtp.w3.example.com']);
      }
    });

    test(`${family}: weights above 3 are ignored, as if there were no record`, async () => {
      for (const helo of ['w4.example.com', 'w9.example.com']) {
        const { r, seen } = await run(rich, ip, helo);
        assert.equal(r.result, 'none', helo);
        assert.equal(r.reason, 'no-record');
        assert.equal(r.record, undefined);
        assert.equal(r.target, undefined);
        assert.deepEqual(r.reply, {
          code: 250,
          xcode: '2.7.0',
          text: `CSA: no CSA record for ${helo}`,
        });
        assert.deepEqual(seen, [`SRV _client._smtp.${helo}`]);
      }
    });
  }
});

describe('the parent search', () => {
  test('no record anywhere: the parents from the registrable domain down, at most 5', async () => {
    for (const ip of [V4, V6]) {
      const { r, seen } = await run(plain, ip, 'a.b.c.d.e.f.g.example.org');
      assert.equal(r.result, 'none');
      assert.equal(r.reason, 'no-record');
      assert.equal(r.reply.code, 250);
      // c.d.e.f.g.example.org would fail the host, but it is the sixth parent: never asked.
      assert.deepEqual(seen, [
        'SRV _client._smtp.a.b.c.d.e.f.g.example.org',
        'SRV _client._smtp.example.org',
        'SRV _client._smtp.g.example.org',
        'SRV _client._smtp.f.g.example.org',
        'SRV _client._smtp.e.f.g.example.org',
        'SRV _client._smtp.d.e.f.g.example.org',
      ]);
      assert.equal(r.queries, 6);
    }
  });

  test('a parent with the explicit-authorization bit fails the hosts below it', async () => {
    for (const ip of [V4, V6]) {
      const { r, seen } = await run(rich, ip, 'mail.dept.strict.example.net');
      assert.equal(r.result, 'fail');
      assert.equal(r.reason, 'explicit-authorization-required');
      assert.equal(r.record, '_client._smtp.strict.example.net');
      assert.equal(r.target, undefined);
      assert.deepEqual(r.reply, {
        code: 550,
        xcode: '5.7.1',
        text: `CSA: ${ip} is not authorized by mail.dept.strict.example.net: strict.example.net requires a CSA record for each of its hosts`,
      });
      // The first parent decided; the search stopped there.
      assert.deepEqual(seen, [
        'SRV _client._smtp.mail.dept.strict.example.net',
        'SRV _client._smtp.example.net',
        'SRV _client._smtp.strict.example.net',
      ]);
    }
  });

  test('a host with a record of its own is judged by it, not by its parents', async () => {
    const { r, seen } = await run(plain, V4, 'ok.strict.example.net');
    assert.equal(r.result, 'pass');
    assert.deepEqual(seen, ['SRV _client._smtp.ok.strict.example.net', 'A host.example.com']);
  });

  test('the search goes on past parents without the bit (and ignores other versions)', async () => {
    const strict = await run(plain, V6, 'h.dept.lax.example.net');
    assert.equal(strict.r.result, 'fail');
    assert.equal(strict.r.reason, 'explicit-authorization-required');
    assert.equal(strict.r.record, '_client._smtp.dept.lax.example.net');
    assert.deepEqual(strict.seen, [
      'SRV _client._smtp.h.dept.lax.example.net',
      'SRV _client._smtp.example.net',
      'SRV _client._smtp.lax.example.net',
      'SRV _client._smtp.dept.lax.example.net',
    ]);
    const quiet = await run(plain, V4, 'h.quiet.lax.example.net');
    assert.equal(quiet.r.result, 'none');
    assert.equal(quiet.r.reason, 'no-record');
    assert.deepEqual(quiet.seen, [
      'SRV _client._smtp.h.quiet.lax.example.net',
      'SRV _client._smtp.example.net',
      'SRV _client._smtp.lax.example.net',
      'SRV _client._smtp.quiet.lax.example.net',
    ]);
  });

  test('public suffixes, ICANN or private, are never asked about', async () => {
    const uk = await run(plain, V4, 'h.sub.example.co.uk');
    assert.equal(uk.r.result, 'none');
    assert.deepEqual(uk.seen, [
      'SRV _client._smtp.h.sub.example.co.uk',
      'SRV _client._smtp.example.co.uk',
      'SRV _client._smtp.sub.example.co.uk',
    ]);
    const io = await run(plain, V6, 'h.user.github.io');
    assert.equal(io.r.result, 'none');
    assert.deepEqual(io.seen, [
      'SRV _client._smtp.h.user.github.io',
      'SRV _client._smtp.user.github.io',
    ]);
    // A registrable domain as HELO has no parent to ask.
    const apex = await run(plain, V4, 'example.org');
    assert.equal(apex.r.result, 'none');
    assert.deepEqual(apex.seen, ['SRV _client._smtp.example.org']);
    // A public suffix as HELO is no host name at all.
    for (const helo of ['co.uk', 'github.io', 'com', 'COM.']) {
      const { r, seen } = await run(plain, V4, helo);
      assert.equal(r.result, 'none', helo);
      assert.equal(r.reason, 'invalid-helo', helo);
      assert.deepEqual(seen, [], helo);
    }
  });

  test('a temporary failure in the parent search is a tempfail of the SRV lookup', async () => {
    const { r, seen } = await run(plain, V4, 'h.x.tempparent.example.net');
    assert.equal(r.result, 'tempfail');
    assert.equal(r.reason, 'srv-lookup-failed');
    assert.equal(r.problem, 'SRV lookup for _client._smtp.tempparent.example.net failed (timeout)');
    assert.deepEqual(r.reply, {
      code: 451,
      xcode: '4.4.3',
      text: 'CSA: SRV lookup for _client._smtp.tempparent.example.net failed (timeout); try again later',
    });
    assert.deepEqual(seen, [
      'SRV _client._smtp.h.x.tempparent.example.net',
      'SRV _client._smtp.example.net',
      'SRV _client._smtp.tempparent.example.net',
    ]);
  });
});

describe('address literals and bare addresses: the reverse name', () => {
  test('IPv4 literals and bare IPv4 addresses are checked at in-addr.arpa', async () => {
    for (const helo of ['[192.0.2.1]', '192.0.2.1', '[IPv6:::ffff:192.0.2.1]']) {
      const { r, seen } = await run(plain, V4, helo);
      assert.equal(r.result, 'pass', helo);
      assert.equal(r.domain, '1.2.0.192.in-addr.arpa');
      assert.equal(r.reply.text, `CSA: ${V4} is authorized by ${helo}`);
      assert.deepEqual(seen, ['SRV _client._smtp.1.2.0.192.in-addr.arpa', 'A host.example.com']);
    }
    const { r } = await run(plain, '192.0.2.77', '[192.0.2.1]');
    assert.equal(r.result, 'fail');
    assert.equal(r.reason, 'address-mismatch');
  });

  test('IPv6 literals of every form and bare IPv6 addresses are checked at ip6.arpa', async () => {
    const name = ip6Reverse('2001:db8::1');
    for (const helo of [
      '[IPv6:2001:db8::1]',
      '[ipv6:2001:DB8:0:0::1]',
      '[2001:db8::1]',
      '2001:db8::1',
      '2001:0db8:0000:0000:0000:0000:0000:0001',
    ]) {
      const { r, seen } = await run(plain, V6, helo);
      assert.equal(r.result, 'pass', helo);
      assert.equal(r.domain, name);
      assert.deepEqual(seen, [`SRV _client._smtp.${name}`, 'AAAA host.example.com'], helo);
    }
  });

  test('IPv4: the parent search goes 3 octets deep, top-down', async () => {
    // The /24 has a record, but without the bit: it says nothing about the hosts below it.
    const lax = await run(plain, V4, '[198.51.100.7]');
    assert.equal(lax.r.result, 'none');
    assert.equal(lax.r.reason, 'no-record');
    assert.equal(lax.seen.length, 4);
    const missing = await run(plain, V4, '[198.51.99.7]');
    assert.equal(missing.r.result, 'none');
    assert.equal(missing.r.reason, 'no-record');
    assert.deepEqual(missing.seen, [
      'SRV _client._smtp.7.99.51.198.in-addr.arpa',
      'SRV _client._smtp.198.in-addr.arpa',
      'SRV _client._smtp.51.198.in-addr.arpa',
      'SRV _client._smtp.99.51.198.in-addr.arpa',
    ]);
    const strict = await run(plain, V4, '203.0.113.5');
    assert.equal(strict.r.result, 'fail');
    assert.equal(strict.r.reason, 'explicit-authorization-required');
    assert.equal(strict.r.record, '_client._smtp.113.0.203.in-addr.arpa');
    assert.deepEqual(strict.seen, [
      'SRV _client._smtp.5.113.0.203.in-addr.arpa',
      'SRV _client._smtp.203.in-addr.arpa',
      'SRV _client._smtp.0.203.in-addr.arpa',
      'SRV _client._smtp.113.0.203.in-addr.arpa',
    ]);
  });

  test('IPv6: the parent search goes 3 steps of 16 bits deep, top-down', async () => {
    const missing = await run(plain, V6, '[IPv6:2001:db8:aaaa:bbbb::5]');
    assert.equal(missing.r.result, 'none');
    assert.deepEqual(missing.seen, [
      `SRV _client._smtp.${ip6Reverse('2001:db8:aaaa:bbbb::5')}`,
      'SRV _client._smtp.1.0.0.2.ip6.arpa',
      'SRV _client._smtp.8.b.d.0.1.0.0.2.ip6.arpa',
      'SRV _client._smtp.a.a.a.a.8.b.d.0.1.0.0.2.ip6.arpa',
    ]);
    const strict = await run(plain, V6, '[2001:db8:cccc::7]');
    assert.equal(strict.r.result, 'fail');
    assert.equal(strict.r.reason, 'explicit-authorization-required');
    assert.equal(strict.r.record, '_client._smtp.c.c.c.c.8.b.d.0.1.0.0.2.ip6.arpa');
    assert.equal(strict.seen.length, 4);
  });

  test('malformed literals are invalid HELOs, with no DNS', async () => {
    for (const helo of [
      '[192.0.2.1',
      '[IPv6:192.0.2.1]',
      '[300.1.1.1]',
      '[]',
      '[IPv6:]',
      '[foo.example.com]',
      '[IPv6:2001:db8::1%eth0]',
      '[192.0.2.1]\r\n',
      '[tag:whatever]',
    ]) {
      const r = await checkCsa({ ip: V4, helo }, { resolver: noDns });
      assert.equal(r.result, 'none', JSON.stringify(helo));
      assert.equal(r.reason, 'invalid-helo', JSON.stringify(helo));
      assert.equal(r.domain, undefined);
      assertSafeReply(r);
    }
  });
});

describe('local clients and localhost: none, without DNS', () => {
  test('loopback clients', async () => {
    for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
      const r = await checkCsa({ ip, helo: 'pass.example.com' }, { resolver: noDns });
      assert.equal(r.result, 'none', ip);
      assert.equal(r.reason, 'local', ip);
      assert.equal(r.queries, 0);
      assert.deepEqual(r.reply, {
        code: 250,
        xcode: '2.7.0',
        text: 'CSA: local client, not checked',
      });
    }
  });

  test('the HELO localhost', async () => {
    for (const ip of [V4, V6]) {
      for (const helo of ['localhost', 'LocalHost', 'localhost.']) {
        const r = await checkCsa({ ip, helo }, { resolver: noDns });
        assert.equal(r.result, 'none', helo);
        assert.equal(r.reason, 'local', helo);
      }
    }
  });
});

describe('hostile HELO strings', () => {
  const hostile = [
    '',
    ' ',
    'mail example.com',
    'evil.example.com\r\nRSET',
    'evil.example.com\n',
    'x\0.example.com',
    'a'.repeat(300),
    'a'.repeat(100_000),
    `${'a'.repeat(64)}.example.com`,
    `${'abcdefghi.'.repeat(25)}example.com`,
    'a..example.com',
    '.example.com',
    '-bad.example.com',
    'bad-.example.com',
    'a@b.example.com',
    '"quoted".example.com',
    'a/b.example.com',
    'mailhost',
    '1.2.3',
    '\u202e.example.com',
    'x\u0085.example.com',
  ];

  test('never crash, never ask DNS, give none invalid-helo with a wire-safe reply', async () => {
    for (const ip of [V4, V6]) {
      for (const helo of hostile) {
        const r = await checkCsa({ ip, helo }, { resolver: noDns });
        const shown = JSON.stringify(helo.slice(0, 40));
        assert.equal(r.result, 'none', shown);
        assert.equal(r.reason, 'invalid-helo', shown);
        assert.equal(r.helo, helo);
        assert.equal(r.reply.code, 250);
        assertSafeReply(r);
      }
    }
    const r = await checkCsa({ ip: V4, helo: 'evil.example.com\r\nRSET' }, { resolver: noDns });
    assert.equal(r.reply.text, 'CSA: evil.example.com??RSET is not a host name, not checked');
  });

  test('the longest valid name is still asked about', async () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
    assert.equal(name.length, 253);
    const { r, seen } = await run(plain, V4, name);
    assert.equal(r.result, 'none');
    assert.equal(r.reason, 'no-record');
    // The SRV name is longer than the DNS allows: the resolver refuses it as NXDOMAIN, unasked.
    assert.deepEqual(seen.slice(0, 1), [`SRV _client._smtp.${'d'.repeat(57)}.com`]);
    assertSafeReply(r);
    const tooLong = await checkCsa({ ip: V4, helo: `a${name}` }, { resolver: noDns });
    assert.equal(tooLong.reason, 'invalid-helo');
  });

  test('an internationalised name is checked in its A-label form', async () => {
    const { r, seen } = await run(plain, V4, 'Bücher.example');
    assert.equal(r.result, 'pass');
    assert.equal(r.domain, 'xn--bcher-kva.example');
    assert.equal(r.reply.text, `CSA: ${V4} is authorized by xn--bcher-kva.example`);
    assert.deepEqual(seen, ['SRV _client._smtp.xn--bcher-kva.example', 'A host.example.com']);
  });

  test('upper case and a trailing dot are the same name', async () => {
    const { r, seen } = await run(plain, V4, 'PASS.Example.COM.');
    assert.equal(r.result, 'pass');
    assert.equal(r.domain, 'pass.example.com');
    assert.equal(seen[0], 'SRV _client._smtp.pass.example.com');
  });

  test('a client address that is not one is a programming error', async () => {
    await assert.rejects(
      checkCsa({ ip: '192.0.2.300', helo: 'pass.example.com' }, { resolver: noDns }),
      TypeError,
    );
  });
});

describe('DNS trouble and the budgets', () => {
  for (const [family, ip, type] of [
    ['IPv4', V4, 'A'],
    ['IPv6', V6, 'AAAA'],
  ] as const) {
    test(`${family}: an SRV query that times out or fails is tempfail srv-lookup-failed`, async () => {
      const slow = await run(plain, ip, 'slow.example.com');
      assert.equal(slow.r.result, 'tempfail');
      assert.equal(slow.r.reason, 'srv-lookup-failed');
      assert.equal(
        slow.r.problem,
        'SRV lookup for _client._smtp.slow.example.com failed (timeout)',
      );
      assert.equal(slow.r.reply.code, 451);
      assert.equal(slow.r.reply.xcode, '4.4.3');
      assert.deepEqual(slow.seen, ['SRV _client._smtp.slow.example.com']);
      const broken = await run(plain, ip, 'broken.example.com');
      assert.equal(broken.r.result, 'tempfail');
      assert.equal(broken.r.reason, 'srv-lookup-failed');
      assert.match(broken.r.problem ?? '', /\(servfail\)$/);
    });

    test(`${family}: an address query that times out or fails is tempfail address-lookup-failed`, async () => {
      for (const { label, server } of bothServers()) {
        const slow = await run(server, ip, 'slowaddr.example.com');
        assert.equal(slow.r.result, 'tempfail', label);
        assert.equal(slow.r.reason, 'address-lookup-failed', label);
        assert.equal(slow.r.problem, `${type} lookup for slowhost.example.com failed (timeout)`);
        assert.deepEqual(slow.r.reply, {
          code: 451,
          xcode: '4.4.3',
          text: `CSA: ${type} lookup for slowhost.example.com failed (timeout); try again later`,
        });
        const failed = await run(server, ip, 'failaddr.example.com');
        assert.equal(failed.r.reason, 'address-lookup-failed', label);
        assert.match(failed.r.problem ?? '', /\(servfail\)$/);
      }
    });
  }

  test('the time budget ends the check, not the resolver timeout', async () => {
    plain.resetLog();
    const started = Date.now();
    const r = await checkCsa(
      { ip: V4, helo: 'slow.example.com' },
      { resolver: resolverFor(plain, 5000), limits: { timeBudgetMs: 300 } },
    );
    assert.equal(r.result, 'tempfail');
    assert.equal(r.reason, 'srv-lookup-failed');
    assert.match(r.problem ?? '', /\(time budget exhausted\)$/);
    assert.ok(Date.now() - started < 3000, 'the budget, not the resolver timeout, ended it');
  });

  test('the time budget is measured on the given clock', async () => {
    let now = 0;
    // Every reading is 4 s later: the third query finds the 10 s budget spent.
    const clock: Clock = { now: () => (now += 4000) };
    const { r, seen } = await run(plain, V4, 'a.b.c.d.e.f.g.example.org', { clock });
    assert.equal(DEFAULT_CSA_LIMITS.timeBudgetMs, 10_000);
    assert.equal(r.result, 'tempfail');
    assert.equal(r.reason, 'srv-lookup-failed');
    assert.equal(
      r.problem,
      'SRV lookup for _client._smtp.g.example.org failed (time budget exhausted)',
    );
    assert.equal(seen.length, 2);
  });

  test('the query budget bounds the work', async () => {
    const { r, seen } = await run(plain, V4, 'a.b.c.d.e.f.g.example.org', {
      limits: { queries: 3 },
    });
    assert.equal(r.result, 'tempfail');
    assert.equal(r.reason, 'srv-lookup-failed');
    assert.match(r.problem ?? '', /\(query budget spent\)$/);
    assert.equal(seen.length, 3);
  });

  test('invalid limits are a programming error', async () => {
    await assert.rejects(
      checkCsa({ ip: V4, helo: 'pass.example.com' }, { resolver: noDns, limits: { queries: -1 } }),
      TypeError,
    );
  });
});
