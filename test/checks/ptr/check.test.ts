import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkPtr } from '../../../src/checks/ptr/index.js';
import { createResolver, parseIp, reverseName } from '../../../src/dns/index.js';
import type { Clock } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

const rev = (ip: string) => reverseName(parseIp(ip)!);
const many = (prefix: string) =>
  Array.from({ length: 12 }, (_, i) => ({ PTR: `${prefix}${i}.many.example.com` }));

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer({
    [rev('192.0.2.1')]: [{ PTR: 'mail.example.com' }],
    [rev('2001:db8::1')]: [{ PTR: 'mail.example.com' }],
    'mail.example.com': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
    [rev('192.0.2.2')]: [{ PTR: 'forged.example.com' }],
    [rev('2001:db8::2')]: [{ PTR: 'forged.example.com' }],
    'forged.example.com': [{ A: '198.51.100.1' }, { AAAA: '2001:db8:ffff::1' }],
    [rev('192.0.2.3')]: [{ TXT: 'no PTR here' }],
    [rev('192.0.2.4')]: ['TIMEOUT'],
    [rev('2001:db8::4')]: ['TIMEOUT'],
    [rev('192.0.2.5')]: [{ PTR: 'slowname.example.com' }],
    'slowname.example.com': [{ A: 'TIMEOUT' }],
    [rev('192.0.2.6')]: [{ PTR: 'slowname.example.com' }, { PTR: 'mail6.example.com' }],
    'mail6.example.com': [{ A: '192.0.2.6' }],
    [rev('192.0.2.7')]: many('h'),
    'h11.many.example.com': [{ A: '192.0.2.7' }],
    [rev('192.0.2.8')]: many('n'),
    'n3.many.example.com': [{ A: '192.0.2.8' }],
    'n7.many.example.com': [{ A: '192.0.2.8' }],
    [rev('192.0.2.9')]: [{ PTR: 'alias.example.com' }],
    'alias.example.com': [{ CNAME: 'mail9.example.com' }],
    'mail9.example.com': [{ A: '192.0.2.9' }],
    [rev('192.0.2.10')]: [{ RCODE: 'SERVFAIL' }],
    [rev('203.0.113.5')]: [{ PTR: 'localhost' }],
    [rev('2001:db8::5')]: [{ PTR: 'localhost.localdomain' }],
    [rev('127.0.0.1')]: [{ PTR: 'localhost' }],
    [rev('::1')]: [{ PTR: 'localhost' }],
    localhost: [{ A: '127.0.0.1' }, { AAAA: '::1' }],
    [rev('203.0.113.6')]: [{ PTR: '.' }],
    [rev('2001:db8::6')]: [{ PTR: '.' }],
    [rev('203.0.113.7')]: [{ PTR: 'ppp-203-0-113-7.dyn.example.net' }],
    'ppp-203-0-113-7.dyn.example.net': [{ A: '203.0.113.7' }],
    [rev('203.0.113.8')]: [{ PTR: 'mail-203-0-113-8.example.net' }],
    'mail-203-0-113-8.example.net': [{ A: '203.0.113.8' }],
    [rev('203.0.113.9')]: [{ PTR: 'ppp-203-0-113-9.dyn.example.net' }],
    [rev('2001:db8:1:2::7')]: [{ PTR: '2001-db8-1-2-0-0-0-7.dyn.example.net' }],
    '2001-db8-1-2-0-0-0-7.dyn.example.net': [{ AAAA: '2001:db8:1:2::7' }],
    [rev('203.0.113.10')]: [{ PTR: 'evil\r\nname.example.com' }],
  });
});
after(() => server.close());

const resolver = () => createResolver({ servers: [server.address], timeout: 200, attempts: 1 });
const printable = /^[\x20-\x7e]*$/;

test('a PTR name that resolves back to the client is verified, IPv4 and IPv6', async () => {
  for (const ip of ['192.0.2.1', '2001:db8::1']) {
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.result, 'verified', ip);
    assert.equal(r.name, 'mail.example.com');
    assert.deepEqual(r.names, ['mail.example.com']);
    assert.deepEqual(r.verifiedNames, ['mail.example.com']);
    assert.equal(r.dynamic, false);
    assert.deepEqual(r.flags, { localhost: false, root: false, truncated: false });
    assert.equal(r.queries, 2);
    assert.deepEqual(r.reply, { code: 250, xcode: '2.0.0', text: `${ip} is mail.example.com` });
  }
});

test('an IPv4-mapped client is checked as IPv4, in in-addr.arpa', async () => {
  server.resetLog();
  const r = await checkPtr({ ip: '::ffff:192.0.2.1' }, { resolver: resolver() });
  assert.equal(r.ip, '192.0.2.1');
  assert.equal(r.result, 'verified');
  assert.deepEqual(
    server.queries.map((q) => `${q.type} ${q.name}`),
    ['PTR 1.2.0.192.in-addr.arpa', 'A mail.example.com'],
  );
});

test('a PTR name that resolves elsewhere is unverified, IPv4 and IPv6', async () => {
  for (const ip of ['192.0.2.2', '2001:db8::2']) {
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.result, 'unverified', ip);
    assert.equal(r.name, undefined);
    assert.deepEqual(r.names, ['forged.example.com']);
    assert.deepEqual(r.verifiedNames, []);
    assert.equal(r.reply.code, 250);
  }
});

test('no PTR record (NODATA or NXDOMAIN) is none, IPv4 and IPv6', async () => {
  for (const ip of ['192.0.2.3', '192.0.2.99', '2001:db8::3']) {
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.result, 'none', ip);
    assert.deepEqual(r.names, []);
    assert.equal(r.dynamic, false);
    assert.deepEqual(r.reasons, []);
    assert.equal(r.queries, 1);
    assert.equal(r.reply.text, `no PTR record for ${ip}`);
  }
});

test('a PTR lookup that times out or fails is tempfail, never none, IPv4 and IPv6', async () => {
  for (const [ip, why] of [
    ['192.0.2.4', 'timeout'],
    ['2001:db8::4', 'timeout'],
    ['192.0.2.10', 'servfail'],
  ] as const) {
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.result, 'tempfail', ip);
    assert.equal(r.problem, `PTR lookup failed (${why})`);
    assert.equal(r.reply.code, 451);
    assert.equal(r.reply.xcode, '4.4.3');
    assert.doesNotMatch(r.reply.text, /127\.0\.0\.1/, 'our DNS server stays out of the reply');
  }
});

test('a forward lookup that times out is tempfail unless another name verifies', async () => {
  const slow = await checkPtr({ ip: '192.0.2.5' }, { resolver: resolver() });
  assert.equal(slow.result, 'tempfail');
  assert.equal(slow.problem, 'forward lookup of a PTR name failed (timeout)');
  assert.deepEqual(slow.names, ['slowname.example.com']);
  const mixed = await checkPtr({ ip: '192.0.2.6' }, { resolver: resolver() });
  assert.equal(mixed.result, 'verified');
  assert.equal(mixed.name, 'mail6.example.com');
});

test('at most 10 PTR names are forward-confirmed; the rest are ignored', async () => {
  const r = await checkPtr({ ip: '192.0.2.7' }, { resolver: resolver() });
  assert.equal(r.result, 'unverified');
  assert.equal(r.names.length, 10);
  assert.equal(r.flags.truncated, true);
  assert.equal(r.queries, 11);
  assert.ok(!r.names.includes('h11.many.example.com'));
  const more = await checkPtr({ ip: '192.0.2.7' }, { resolver: resolver(), limits: { names: 12 } });
  assert.equal(more.result, 'verified');
  assert.equal(more.name, 'h11.many.example.com');
  assert.equal(more.queries, 13);
});

test('the first verified name in answer order is the name; all verified ones are listed', async () => {
  const r = await checkPtr({ ip: '192.0.2.8' }, { resolver: resolver() });
  assert.equal(r.result, 'verified');
  assert.equal(r.name, 'n3.many.example.com');
  assert.deepEqual(r.verifiedNames, ['n3.many.example.com', 'n7.many.example.com']);
  assert.equal(r.flags.truncated, true);
});

test('a PTR name that is a CNAME is verified through it', async () => {
  const r = await checkPtr({ ip: '192.0.2.9' }, { resolver: resolver() });
  assert.equal(r.result, 'verified');
  assert.equal(r.name, 'alias.example.com');
});

test('a PTR of localhost from a remote client is flagged and rejected, IPv4 and IPv6', async () => {
  for (const ip of ['203.0.113.5', '2001:db8::5']) {
    server.resetLog();
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.flags.localhost, true, ip);
    assert.equal(r.result, 'unverified');
    assert.equal(r.dynamic, false);
    assert.deepEqual(r.reply, {
      code: 550,
      xcode: '5.7.1',
      text: `the PTR name of ${ip} is localhost`,
    });
    assert.equal(server.queries.length, 1, 'localhost is not looked up for a remote client');
  }
});

test('a PTR of localhost from a loopback client is fine, IPv4 and IPv6', async () => {
  for (const ip of ['127.0.0.1', '::1']) {
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.flags.localhost, false, ip);
    assert.equal(r.result, 'verified');
    assert.equal(r.name, 'localhost');
    assert.equal(r.reply.code, 250);
  }
});

test('a PTR of the root "." is flagged and rejected, IPv4 and IPv6', async () => {
  for (const ip of ['203.0.113.6', '2001:db8::6']) {
    const r = await checkPtr({ ip }, { resolver: resolver() });
    assert.equal(r.flags.root, true, ip);
    assert.deepEqual(r.names, ['.']);
    assert.equal(r.result, 'unverified');
    assert.equal(r.queries, 1);
    assert.equal(r.reply.code, 550);
    assert.equal(r.reply.text, `the PTR name of ${ip} is the root (.)`);
  }
});

test('dynamic-looking names are reported, verified or not; static words override', async () => {
  const dyn = await checkPtr({ ip: '203.0.113.7' }, { resolver: resolver() });
  assert.equal(dyn.result, 'verified');
  assert.equal(dyn.dynamic, true);
  assert.deepEqual(dyn.reasons, ['ip-octets', 'keyword:ppp', 'keyword:dyn']);
  const unverified = await checkPtr({ ip: '203.0.113.9' }, { resolver: resolver() });
  assert.equal(unverified.result, 'unverified');
  assert.equal(unverified.dynamic, true);
  const mail = await checkPtr({ ip: '203.0.113.8' }, { resolver: resolver() });
  assert.equal(mail.result, 'verified');
  assert.equal(mail.dynamic, false);
  assert.deepEqual(mail.reasons, ['ip-octets', 'static:mail']);
  const six = await checkPtr({ ip: '2001:db8:1:2::7' }, { resolver: resolver() });
  assert.equal(six.result, 'verified');
  assert.equal(six.dynamic, true);
  assert.ok(six.reasons.includes('ip6-groups'));
});

test('a PTR name with control characters is never looked up nor put in the reply', async () => {
  server.resetLog();
  const r = await checkPtr({ ip: '203.0.113.10' }, { resolver: resolver() });
  assert.equal(r.result, 'unverified');
  assert.equal(server.queries.length, 1);
  assert.match(r.reply.text, printable);
});

test('the time budget bounds the check; time comes from the given clock', async () => {
  const started = Date.now();
  const slow = await checkPtr(
    { ip: '192.0.2.4' },
    {
      resolver: createResolver({ servers: [server.address], timeout: 5000, attempts: 1 }),
      limits: { timeBudgetMs: 300 },
    },
  );
  assert.equal(slow.result, 'tempfail');
  assert.equal(slow.problem, 'PTR lookup failed (time budget exhausted)');
  assert.ok(Date.now() - started < 3000, 'the budget, not the resolver timeout, ended it');

  // A clock that jumps a second per reading: the budget is spent before the forward lookups.
  let t = 0;
  const clock: Clock = { now: () => (t += 1000) };
  const r = await checkPtr(
    { ip: '192.0.2.1' },
    { resolver: resolver(), clock, limits: { timeBudgetMs: 1500 } },
  );
  assert.equal(r.result, 'tempfail');
  assert.equal(r.problem, 'forward lookup of a PTR name failed (time budget exhausted)');
});

test('bad input is a programming error', async () => {
  await assert.rejects(checkPtr({ ip: 'mail.example.com' }, { resolver: resolver() }), TypeError);
  await assert.rejects(
    checkPtr({ ip: '192.0.2.1' }, { resolver: resolver(), limits: { names: -1 } }),
    TypeError,
  );
});
