import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createResolver } from '../../src/dns/index.js';
import { type MailHostsOptions, mailHosts } from '../../src/notify/index.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';

const many = Array.from({ length: 8 }, (_, i) => ({ MX: [10 + i, `h${i}.many.test`] }));
const manyHosts = Object.fromEntries(
  Array.from({ length: 8 }, (_, i) => [`h${i}.many.test`, [{ A: `198.51.100.${i + 1}` }]]),
);

const ZONE = {
  'ordered.test': [
    { MX: [20, 'b.ordered.test'] },
    { MX: [10, 'a.ordered.test'] },
    { MX: [20, 'c.ordered.test'] },
  ],
  'a.ordered.test': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  'b.ordered.test': [{ A: '192.0.2.2' }],
  'c.ordered.test': [{ A: '192.0.2.3' }, { A: '192.0.2.1' }],
  'nullmx.test': [{ MX: [0, '.'] }],
  'mixednull.test': [{ MX: [0, '.'] }, { MX: [10, 'a.ordered.test'] }],
  'implicit.test': [{ A: '192.0.2.10' }, { AAAA: '2001:db8::10' }],
  'txtonly.test': [{ TXT: 'v=spf1 -all' }],
  'servfail.test': [{ RCODE: 'SERVFAIL' }],
  'slowmx.test': [{ MX: 'TIMEOUT' }],
  'nowhere.test': [{ MX: [10, 'missing.nowhere.test'] }, { MX: [20, 'empty.nowhere.test'] }],
  'empty.nowhere.test': [{ TXT: 'no address here' }],
  'hostfail.test': [{ MX: [10, 'broken.hostfail.test'] }],
  'broken.hostfail.test': [{ RCODE: 'SERVFAIL' }],
  'halfslow.test': [{ MX: [10, 'half.halfslow.test'] }],
  'half.halfslow.test': [{ A: '192.0.2.20' }, { AAAA: 'TIMEOUT' }],
  'loop.test': [{ MX: [10, 'lo.loop.test'] }],
  'lo.loop.test': [{ A: '127.0.0.1' }],
  'loop6.test': [{ MX: [10, 'lo6.loop6.test'] }],
  'lo6.loop6.test': [{ AAAA: '::1' }],
  'mapped.test': [{ MX: [10, 'm.mapped.test'] }],
  'm.mapped.test': [{ AAAA: '::ffff:127.0.0.2' }],
  'zero.test': [{ MX: [10, 'z.zero.test'] }],
  'z.zero.test': [{ A: '0.1.2.3' }],
  'unspec6.test': [{ MX: [10, 'u.unspec6.test'] }],
  'u.unspec6.test': [{ AAAA: '::' }],
  'literal.test': [{ MX: [10, '127.0.0.1'] }],
  'ours.test': [{ MX: [10, 'mx.ours.test'] }],
  'mx.ours.test': [{ A: '203.0.113.25' }],
  'oursaddr.test': [{ MX: [10, 'other.oursaddr.test'] }],
  'other.oursaddr.test': [{ A: '203.0.113.77' }],
  'backuploop.test': [{ MX: [10, 'a.ordered.test'] }, { MX: [20, 'lo.loop.test'] }],
  'peerloop.test': [{ MX: [10, 'a.ordered.test'] }, { MX: [10, 'lo.loop.test'] }],
  'primaryloop.test': [{ MX: [10, 'lo.loop.test'] }, { MX: [20, 'a.ordered.test'] }],
  'implicitloop.test': [{ A: '127.0.0.5' }],
  'many.test': many,
  ...manyHosts,
};

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer(ZONE);
});
after(() => server.close());

const options = (extra: Partial<MailHostsOptions> = {}): MailHostsOptions => ({
  resolver: createResolver({ servers: [server.address], timeout: 300, attempts: 1, cache: false }),
  ourAddresses: ['203.0.113.0/28'],
  ourNames: ['mx.ours.test'],
  ...extra,
});

test('MX hosts come in preference order, stable among equals, A before AAAA', async () => {
  const r = await mailHosts('Ordered.TEST.', options({ port: 2525 }));
  assert.equal(r.kind, 'hosts');
  if (r.kind !== 'hosts') return;
  assert.equal(r.implicit, false);
  assert.deepEqual(
    r.targets.map((t) => [t.name, t.address, t.port, t.preference]),
    [
      ['a.ordered.test', '192.0.2.1', 2525, 10],
      ['a.ordered.test', '2001:db8::1', 2525, 10],
      ['b.ordered.test', '192.0.2.2', 2525, 20],
      // 192.0.2.1 is listed once, for the first host that has it.
      ['c.ordered.test', '192.0.2.3', 2525, 20],
    ],
  );
});

test('a null MX, NXDOMAIN and DNS failures have outcomes of their own', async () => {
  assert.equal((await mailHosts('nullmx.test', options())).kind, 'null-mx');
  assert.equal((await mailHosts('absent.test', options())).kind, 'no-domain');
  assert.equal((await mailHosts('servfail.test', options())).kind, 'tempfail');
  assert.equal((await mailHosts('slowmx.test', options())).kind, 'tempfail');
  assert.equal((await mailHosts('hostfail.test', options())).kind, 'tempfail');
  assert.equal((await mailHosts('bad_name!.test', options())).kind, 'no-domain');
  // A null MX among real ones is just an unusable record.
  const mixed = await mailHosts('mixednull.test', options());
  assert.equal(mixed.kind, 'hosts');
});

test('without MX the domain itself is the mail host (RFC 5321 5.1)', async () => {
  const r = await mailHosts('implicit.test', options());
  assert.equal(r.kind, 'hosts');
  if (r.kind !== 'hosts') return;
  assert.equal(r.implicit, true);
  assert.deepEqual(
    r.targets.map((t) => [t.name, t.address, t.preference]),
    [
      ['implicit.test', '192.0.2.10', 0],
      ['implicit.test', '2001:db8::10', 0],
    ],
  );
  const none = await mailHosts('txtonly.test', options());
  assert.equal(none.kind, 'no-host');
});

test('MX names without addresses leave no host; a partial answer is enough', async () => {
  const r = await mailHosts('nowhere.test', options());
  assert.equal(r.kind, 'no-host');
  assert.match(r.detail, /missing\.nowhere\.test has no address/);
  const half = await mailHosts('halfslow.test', options());
  assert.equal(half.kind, 'hosts');
  if (half.kind === 'hosts')
    assert.deepEqual(
      half.targets.map((t) => t.address),
      ['192.0.2.20'],
    );
});

test('loopback, unspecified, our addresses and our names are fraud, never targets', async () => {
  const cases: [string, string][] = [
    ['loop.test', 'loopback'],
    ['loop6.test', 'loopback'],
    ['mapped.test', 'loopback'],
    ['zero.test', 'unspecified'],
    ['unspec6.test', 'unspecified'],
    ['literal.test', 'loopback'],
    ['ours.test', 'our-name'],
    ['oursaddr.test', 'ours'],
    ['implicitloop.test', 'loopback'],
  ];
  for (const [domain, reason] of cases) {
    const r = await mailHosts(domain, options({ ourAddresses: ['203.0.113.64/26'] }));
    assert.equal(r.kind, 'fraud', domain);
    if (r.kind === 'fraud') assert.equal(r.refused[0]!.reason, reason, domain);
  }
  // ourAddresses as a single address, and ours even when listed in allowAddresses.
  const ours = await mailHosts(
    'oursaddr.test',
    options({ ourAddresses: ['203.0.113.77'], allowAddresses: ['203.0.113.77'] }),
  );
  assert.equal(ours.kind, 'fraud');
});

test('allowAddresses exempts an address from the loopback rule only', async () => {
  const r = await mailHosts('loop.test', options({ allowAddresses: ['127.0.0.1'] }));
  assert.equal(r.kind, 'hosts');
  const other = await mailHosts('loop6.test', options({ allowAddresses: ['127.0.0.1'] }));
  assert.equal(other.kind, 'fraud');
  await assert.rejects(
    mailHosts('loop.test', options({ allowAddresses: ['localhost'] })),
    RangeError,
  );
  await assert.rejects(
    mailHosts('loop.test', options({ ourAddresses: ['10.0.0.0/33'] })),
    RangeError,
  );
});

test('a forbidden host drops its preference level and all less preferred ones', async () => {
  const backup = await mailHosts('backuploop.test', options());
  assert.equal(backup.kind, 'hosts');
  if (backup.kind === 'hosts') {
    assert.deepEqual([...new Set(backup.targets.map((t) => t.name))], ['a.ordered.test']);
    assert.deepEqual(
      backup.refused.map((h) => [h.name, h.reason]),
      [['lo.loop.test', 'loopback']],
    );
  }
  assert.equal((await mailHosts('peerloop.test', options())).kind, 'fraud');
  assert.equal((await mailHosts('primaryloop.test', options())).kind, 'fraud');
});

test('at most maxHosts addresses, and the DNS work is bounded with them', async () => {
  server.resetLog();
  const r = await mailHosts('many.test', options());
  assert.equal(r.kind, 'hosts');
  if (r.kind === 'hosts') {
    assert.deepEqual(
      r.targets.map((t) => t.name),
      ['h0.many.test', 'h1.many.test', 'h2.many.test', 'h3.many.test', 'h4.many.test'],
    );
  }
  assert.equal(server.queries.length, 1 + 2 * 5);
  const two = await mailHosts('many.test', options({ maxHosts: 2 }));
  if (two.kind === 'hosts') assert.equal(two.targets.length, 2);
});

test('the DNS time budget is shared by every query', async () => {
  const started = Date.now();
  const r = await mailHosts(
    'slowmx.test',
    options({
      resolver: createResolver({ servers: [server.address], timeout: 5_000, attempts: 1 }),
      timeoutMs: 200,
    }),
  );
  assert.equal(r.kind, 'tempfail');
  assert.ok(Date.now() - started < 2_000);
});
