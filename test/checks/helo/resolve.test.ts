import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkHelo, type HeloInput, type HeloOptions } from '../../../src/checks/helo/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Clock } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { HELO_ZONE, outcome, said } from './support.js';

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer(HELO_ZONE);
});
after(() => server.close());

const resolver = () => createResolver({ servers: [server.address], timeout: 200, attempts: 1 });
const check = (input: HeloInput, options?: HeloOptions) =>
  checkHelo(input, { resolver: resolver(), options });

test('address records of the HELO name match the client exactly or by /24 and /64', async () => {
  const cases = [
    // ip, helo, resolveMatch, resolves, matches
    ['192.0.2.1', 'mail.example.com', 'exact', 'pass address', 'pass exact'],
    ['2001:db8::1', 'mail.example.com', 'exact', 'pass address', 'pass exact'],
    ['192.0.2.1', 'near.example.com', 'exact', 'pass address', 'fail mismatch'],
    ['192.0.2.1', 'near.example.com', 'prefix', 'pass address', 'pass prefix'],
    ['2001:db8::1', 'near.example.com', 'exact', 'pass address', 'fail mismatch'],
    ['2001:db8::1', 'near.example.com', 'prefix', 'pass address', 'pass prefix'],
    ['192.0.2.1', 'far.example.com', 'prefix', 'pass address', 'fail mismatch'],
    ['2001:db8::1', 'far.example.com', 'prefix', 'pass address', 'fail mismatch'],
    // An IPv6 client and a name with only an A record: it resolves, but cannot match.
    ['2001:db8::1', 'v4only.example.com', 'prefix', 'pass address', 'fail no-address'],
    ['::ffff:192.0.2.1', 'v4only.example.com', 'exact', 'pass address', 'pass exact'],
  ] as const;
  for (const [ip, helo, resolveMatch, resolves, matches] of cases) {
    const r = await check({ ip, helo }, { resolveMatch });
    assert.equal(said(r, 'resolves'), resolves, `${ip} ${helo} ${resolveMatch}`);
    assert.equal(said(r, 'matches'), matches, `${ip} ${helo} ${resolveMatch}`);
  }
});

test('the default match is the /24 or /64 of the client, as bms.py validates HELO', async () => {
  const r = await check({ ip: '192.0.2.1', helo: 'near.example.com' });
  assert.equal(said(r, 'matches'), 'pass prefix');
  assert.equal(
    outcome(r, 'matches').detail,
    'near.example.com has 192.0.2.200, in the network of 192.0.2.1',
  );
});

test('a name with only MX records resolves, and its MX hosts can match, IPv4 and IPv6', async () => {
  for (const ip of ['192.0.2.1', '2001:db8::1']) {
    const r = await check({ ip, helo: 'mxonly.example.net' }, { resolveMatch: 'exact' });
    assert.equal(said(r, 'resolves'), 'pass mx', ip);
    assert.equal(said(r, 'matches'), 'pass exact', ip);
    assert.equal(outcome(r, 'matches').detail, `MX host mx1.example.net has ${ip}`);
    assert.equal(r.queries, 4, 'A, AAAA, MX, and the MX host');
  }
  const near = await check({ ip: '192.0.2.1', helo: 'mxnear.example.net' });
  assert.equal(said(near, 'matches'), 'pass prefix');
  const nearExact = await check(
    { ip: '192.0.2.1', helo: 'mxnear.example.net' },
    { resolveMatch: 'exact' },
  );
  assert.equal(said(nearExact, 'matches'), 'fail mismatch');
  const far = await check({ ip: '2001:db8::1', helo: 'mxfar.example.net' });
  assert.equal(said(far, 'matches'), 'fail mismatch');
});

test('MX hosts are not asked about when an address already matched', async () => {
  server.resetLog();
  const r = await check({ ip: '192.0.2.1', helo: 'mail.example.com' });
  assert.equal(said(r, 'matches'), 'pass exact');
  assert.deepEqual(server.queries.map((q) => q.type).sort(), ['A', 'AAAA']);
});

test('CNAMEs are followed, for the name and for MX hosts', async () => {
  for (const ip of ['192.0.2.1', '2001:db8::1']) {
    const alias = await check({ ip, helo: 'alias.example.com' }, { resolveMatch: 'exact' });
    assert.equal(said(alias, 'resolves'), 'pass address', ip);
    assert.equal(said(alias, 'matches'), 'pass exact', ip);
    const mx = await check({ ip, helo: 'mxalias.example.net' }, { resolveMatch: 'exact' });
    assert.equal(said(mx, 'matches'), 'pass exact', ip);
  }
});

test('names that do not exist or have no address or MX fail `resolves`', async () => {
  for (const ip of ['192.0.2.1', '2001:db8::1']) {
    const nx = await check({ ip, helo: 'nonexistent.example.com' });
    assert.equal(said(nx, 'resolves'), 'fail nxdomain', ip);
    assert.equal(said(nx, 'matches'), 'fail no-address');
    assert.equal(nx.result, 'suspect');
    assert.equal(nx.queries, 2, 'NXDOMAIN spares the MX query');
    const txt = await check({ ip, helo: 'txtonly.example.org' });
    assert.equal(said(txt, 'resolves'), 'fail no-records', ip);
    assert.equal(said(txt, 'matches'), 'fail no-address');
    const nullMx = await check({ ip, helo: 'nullmx.example.org' });
    assert.equal(said(nullMx, 'resolves'), 'fail no-records', ip);
  }
  const rejected = await check(
    { ip: '192.0.2.1', helo: 'nonexistent.example.com' },
    { reject: { resolves: true } },
  );
  assert.equal(rejected.result, 'reject');
  assert.equal(rejected.rule, 'resolves');
  assert.equal(
    rejected.reply.text,
    'HELO name nonexistent.example.com has no address or MX record',
  );
  const mismatch = await check(
    { ip: '192.0.2.1', helo: 'far.example.com' },
    { reject: { matches: true } },
  );
  assert.equal(mismatch.result, 'reject');
  assert.equal(
    mismatch.reply.text,
    "no address of HELO name far.example.com is this client's (192.0.2.1)",
  );
});

test('timeouts and server failures are tempfail, never a pass or a fail, IPv4 and IPv6', async () => {
  for (const ip of ['192.0.2.1', '2001:db8::1']) {
    const slow = await check({ ip, helo: 'slow.example.com' });
    assert.equal(said(slow, 'resolves'), 'tempfail timeout', ip);
    assert.equal(said(slow, 'matches'), 'tempfail timeout', ip);
    assert.equal(slow.result, 'suspect', 'not set to reject, so it does not defer mail');
    assert.doesNotMatch(outcome(slow, 'resolves').detail, /127\.0\.0\.1/);
    const broken = await check({ ip, helo: 'broken.example.com' });
    assert.equal(said(broken, 'resolves'), 'tempfail servfail', ip);
    const slowMx = await check({ ip, helo: 'slowmx.example.net' });
    assert.equal(said(slowMx, 'resolves'), 'tempfail timeout', ip);
    assert.equal(said(slowMx, 'matches'), 'tempfail timeout', ip);
  }
});

test('a failure of the other address family does not stop a match or a resolution', async () => {
  const v4 = await check({ ip: '192.0.2.1', helo: 'slowaaaa.example.com' });
  assert.equal(said(v4, 'resolves'), 'pass address');
  assert.equal(said(v4, 'matches'), 'pass exact');
  // For an IPv6 client the AAAA lookup is the one that matters: no match, and it failed.
  const v6 = await check({ ip: '2001:db8::1', helo: 'slowaaaa.example.com' });
  assert.equal(said(v6, 'resolves'), 'pass address');
  assert.equal(said(v6, 'matches'), 'tempfail timeout');
});

test('an MX host that matches wins over one that times out; without a match it is tempfail', async () => {
  const ok = await check({ ip: '192.0.2.1', helo: 'mxslowok.example.net' });
  assert.equal(said(ok, 'matches'), 'pass exact');
  const failed = await check({ ip: '192.0.2.1', helo: 'mxslowhost.example.net' });
  assert.equal(said(failed, 'resolves'), 'pass mx');
  assert.equal(said(failed, 'matches'), 'tempfail timeout');
});

test('a tempfail rejects nothing, but defers when its rule is set to reject', async () => {
  const r = await check(
    { ip: '192.0.2.1', helo: 'slow.example.com' },
    { reject: { resolves: true } },
  );
  assert.equal(r.result, 'tempfail');
  assert.equal(r.rule, 'resolves');
  assert.deepEqual(r.reply, {
    code: 451,
    xcode: '4.4.3',
    text: 'HELO name slow.example.com cannot be checked now (timeout); try again later',
  });
  // A reject by another rule wins over a tempfail.
  const both = await check(
    { ip: '192.0.2.1', helo: 'slow.example.com', previousHelo: 'mail.example.com' },
    { reject: { resolves: true, changed: true } },
  );
  assert.equal(both.result, 'reject');
  assert.equal(both.rule, 'changed');
});

test('at most mxNames MX hosts are compared', async () => {
  server.resetLog();
  const r = await check({ ip: '192.0.2.1', helo: 'many.example.net' }, { resolveMatch: 'exact' });
  assert.equal(said(r, 'matches'), 'fail mismatch', 'the matching 11th host is not looked at');
  assert.equal(r.queries, 13);
  assert.ok(!server.queries.some((q) => q.name === 'mx10.many.example.net'));
  const more = await checkHelo(
    { ip: '192.0.2.1', helo: 'many.example.net' },
    { resolver: resolver(), limits: { mxNames: 11 }, options: { resolveMatch: 'exact' } },
  );
  assert.equal(said(more, 'matches'), 'pass exact');
});

test('only the rules switched on cause lookups', async () => {
  server.resetLog();
  const matchesOnly = await check(
    { ip: '192.0.2.1', helo: 'mxonly.example.net' },
    { rules: { resolves: false } },
  );
  assert.equal(said(matchesOnly, 'matches'), 'pass exact');
  assert.deepEqual(
    server.queries.map((q) => q.type),
    ['A', 'MX', 'A'],
  );
  server.resetLog();
  const resolvesOnly = await check(
    { ip: '192.0.2.1', helo: 'far.example.com' },
    { rules: { matches: false } },
  );
  assert.equal(said(resolvesOnly, 'resolves'), 'pass address');
  assert.equal(said(resolvesOnly, 'matches'), 'skip disabled');
  assert.equal(server.queries.length, 2, 'an address answered: no MX lookup');
  const none = await check(
    { ip: '192.0.2.1', helo: 'far.example.com' },
    { rules: { matches: false, resolves: false } },
  );
  assert.equal(none.queries, 0);
});

test('the time budget bounds the DNS rules; time comes from the given clock', async () => {
  const started = Date.now();
  const r = await checkHelo(
    { ip: '192.0.2.1', helo: 'slow.example.com' },
    {
      resolver: createResolver({ servers: [server.address], timeout: 5000, attempts: 1 }),
      limits: { timeBudgetMs: 300 },
    },
  );
  assert.equal(said(r, 'resolves'), 'tempfail deadline');
  assert.equal(
    outcome(r, 'resolves').detail,
    'a lookup for slow.example.com failed (time budget exhausted)',
  );
  assert.ok(Date.now() - started < 3000, 'the budget, not the resolver timeout, ended it');

  server.resetLog();
  let t = 0;
  const clock: Clock = { now: () => (t += 1000) };
  const spent = await checkHelo(
    { ip: '192.0.2.1', helo: 'mail.example.com' },
    { resolver: resolver(), clock, limits: { timeBudgetMs: 500 } },
  );
  assert.equal(said(spent, 'resolves'), 'tempfail deadline');
  assert.equal(server.queries.length, 0, 'nothing is asked once the budget is spent');
});
