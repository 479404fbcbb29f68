import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkSpf, receivedSpf } from '../../../src/checks/spf/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Clock } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

const manyMx = Array.from({ length: 11 }, (_, i) => ({ MX: [i, `mx${i}.many.example`] }));
const manyPtr = Array.from({ length: 12 }, (_, i) => ({ PTR: `host${i}.ptr.example` }));
const chain = Object.fromEntries(
  Array.from({ length: 12 }, (_, i) => [
    `c${i}.chain.example`,
    [{ TXT: `v=spf1 include:c${i + 1}.chain.example -all` }],
  ]),
);

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer({
    'mapped.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
    'six.example': [{ TXT: 'v=spf1 ip6:2001:db8::/32 a//64 -all' }, { AAAA: '2001:db8:ffff::1' }],
    'nospf.example': [{ A: '192.0.2.20' }],
    'nospf.example._spf.local.zone': [{ TXT: 'v=spf1 a -all' }],
    'slow.example': ['TIMEOUT'],
    'broken-server.example': [{ RCODE: 'SERVFAIL' }],
    'many.example': [{ TXT: 'v=spf1 mx -all' }, ...manyMx],
    'ptr.example': [{ TXT: 'v=spf1 ptr -all' }],
    '5.2.0.192.in-addr.arpa': manyPtr,
    'host11.ptr.example': [{ A: '192.0.2.5' }],
    'host3.ptr.example': [{ A: '192.0.2.99' }],
    'tenterms.example': [
      { TXT: 'v=spf1 a:a1.t.example a:a2.t.example mx:m.t.example a a a a a a a a a -all' },
      { A: '198.51.100.2' },
    ],
    'a1.t.example': [{ A: '198.51.100.1' }],
    'a2.t.example': [{ A: '198.51.100.1' }],
    'm.t.example': [{ MX: [0, 'a1.t.example'] }],
    'voids.example': [
      { TXT: 'v=spf1 a:n1.voids.example a:n2.voids.example a:n3.voids.example +all' },
    ],
    'withhelo.example': [{ TXT: 'v=spf1 a -all' }, { A: '192.0.2.77' }],
    'xn--bcher-kva.example': [{ TXT: 'v=spf1 -all' }],
    'tdot.example': [{ TXT: 'v=spf1 ptr -all' }],
    '9.2.0.192.in-addr.arpa': [{ PTR: 'mail.tdot.example' }],
    'mail.tdot.example': [{ A: '192.0.2.9' }],
    'nolocal.example': [{ TXT: 'v=spf1 -all exp=nolocal-why.example' }],
    'nolocal-why.example': [{ TXT: 'sender=%{s} local=%{l}' }],
    'emptyexp.example': [{ TXT: 'v=spf1 -all exp=empty-why.example' }],
    'empty-why.example': [{ TXT: '' }],
    'slowptr.example': [{ TXT: 'v=spf1 ptr -all' }],
    '8.2.0.192.in-addr.arpa': ['TIMEOUT'],
    'ptrfail.example': [{ TXT: 'v=spf1 a:n1.voids.example a:n2.voids.example ptr +all' }],
    '7.2.0.192.in-addr.arpa': [{ RCODE: 'SERVFAIL' }],
    'ptrvoid.example': [{ TXT: 'v=spf1 a:n1.voids.example a:n2.voids.example ptr +all' }],
    ...chain,
  });
});
after(() => server.close());

const resolver = () => createResolver({ servers: [server.address], timeout: 300, attempts: 1 });

test('an IPv4-mapped IPv6 client is checked as IPv4', async () => {
  const r = await checkSpf(
    { ip: '::ffff:192.0.2.9', sender: 'a@mapped.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'pass');
  assert.equal(r.ip, '192.0.2.9');
});

test('IPv6 clients match ip6 networks and AAAA records with their own prefix', async () => {
  const r1 = await checkSpf(
    { ip: '2001:db8:1::1', sender: 'a@six.example' },
    { resolver: resolver() },
  );
  assert.equal(r1.result, 'pass');
  assert.equal(r1.mechanism, 'ip6:2001:db8::/32');
  const r2 = await checkSpf(
    { ip: '2001:db9:0:0::7', sender: 'a@six.example' },
    { resolver: resolver() },
  );
  assert.equal(r2.result, 'fail');
});

test('the fallback zone supplies a record for a domain without one', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.20', sender: 'a@nospf.example' },
    { resolver: resolver(), fallbackZone: 'local.zone' },
  );
  assert.equal(r.result, 'pass');
  assert.equal(r.source, 'fallback');
  assert.equal(r.record, 'v=spf1 a -all');
  const plain = await checkSpf(
    { ip: '192.0.2.20', sender: 'a@nospf.example' },
    { resolver: resolver() },
  );
  assert.equal(plain.result, 'none');
});

test('best guess evaluates a/24 mx/24 ptr when there is no record', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.200', sender: 'a@nospf.example' },
    { resolver: resolver(), bestGuess: true },
  );
  assert.equal(r.result, 'none');
  assert.equal(r.guess, 'pass');
  const custom = await checkSpf(
    { ip: '192.0.2.200', sender: 'a@nospf.example' },
    { resolver: resolver(), bestGuess: 'v=spf1 a -all' },
  );
  assert.equal(custom.guess, 'fail');
});

test('a server that never answers ends in temperror within the time budget', async () => {
  const clock: Clock = { now: () => Date.now() };
  const started = Date.now();
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@slow.example' },
    {
      resolver: createResolver({ servers: [server.address], timeout: 5000, attempts: 3 }),
      clock,
      limits: { timeBudgetMs: 400 },
    },
  );
  assert.equal(r.result, 'temperror');
  assert.match(r.problem ?? '', /time budget/);
  assert.equal(r.reply.code, 451);
  assert.ok(Date.now() - started < 4000, 'the budget, not the resolver timeout, ended it');
});

test('SERVFAIL is temperror, never a silent none', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@broken-server.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'temperror');
  assert.match(r.problem ?? '', /servfail/);
  assert.match(
    receivedSpf(r),
    /^TempError \(unknown: temporary error in processing during lookup of broken-server\.example\)/,
  );
});

test('more than 10 MX names is permerror; lax mode allows up to 40', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@many.example' },
    { resolver: resolver(), lax: true },
  );
  assert.equal(r.result, 'permerror');
  assert.match(r.problem ?? '', /more than 10 MX names/);
  assert.equal(r.laxResult, 'fail');
});

test('ptr looks at the first 10 names only', async () => {
  // host11 would validate but is beyond the limit; host3 is inside it but does not validate.
  const r = await checkSpf({ ip: '192.0.2.5', sender: 'a@ptr.example' }, { resolver: resolver() });
  assert.equal(r.result, 'fail');
});

test('the eleventh DNS-querying term is permerror', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@tenterms.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'permerror');
  assert.match(r.problem ?? '', /more than 10 DNS-querying terms/);
  assert.equal(r.lookups, 11);
});

test('includes count across levels', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@c0.chain.example' },
    { resolver: resolver(), lax: true },
  );
  assert.equal(r.result, 'permerror');
  assert.equal(r.lookups, 11);
  // Lax allows 40 terms, and the chain's end has no record: lax treats that include as no match.
  assert.equal(r.laxResult, 'fail');
});

test('the third void lookup is permerror', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@voids.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'permerror');
  assert.equal(r.voidLookups, 3);
  assert.match(r.problem ?? '', /void lookups/);
});

test('a bound on total queries stops runaway work', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@tenterms.example' },
    { resolver: resolver(), limits: { queries: 3 } },
  );
  assert.equal(r.result, 'permerror');
  assert.match(r.problem ?? '', /more than 3 DNS queries/);
});

test('the HELO identity and hostile senders', async () => {
  const helo = await checkSpf(
    { ip: '192.0.2.77', sender: 'x@nospf.example', helo: 'withhelo.example', identity: 'helo' },
    { resolver: resolver() },
  );
  assert.equal(helo.result, 'pass');
  assert.equal(helo.domain, 'withhelo.example');
  const hostile = await checkSpf(
    { ip: '192.0.2.1', sender: 'x\r\ny@[192.0.2.1]', helo: 'a\nb' },
    { resolver: resolver() },
  );
  assert.equal(hostile.result, 'none');
  assert.doesNotMatch(receivedSpf(hostile), /[\r\n]/);
  await assert.rejects(
    checkSpf({ ip: 'not-an-ip', sender: 'a@b.example' }, { resolver: resolver() }),
    TypeError,
  );
});

test('an internationalised sender domain is checked in its A-label form', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@bücher.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'fail');
  assert.equal(r.domain, 'xn--bcher-kva.example');
});

test('a trailing dot on the domain is dropped', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.9', sender: 'a@tdot.example.' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'pass');
  assert.equal(r.sender, 'a@tdot.example');
});

test('a sender without local part is postmaster@domain, in %{s} too', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: '@nolocal.example' },
    { resolver: resolver() },
  );
  assert.equal(r.sender, 'postmaster@nolocal.example');
  assert.equal(r.explanation, 'sender=postmaster@nolocal.example local=postmaster');
  assert.equal(r.explanationSource, 'record');
  assert.equal(
    r.reply.text,
    'nolocal.example explains: sender=postmaster@nolocal.example local=postmaster',
  );
});

test('an empty exp= text falls back to the default explanation', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@emptyexp.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'fail');
  assert.equal(r.explanationSource, 'default');
  assert.equal(
    r.explanation,
    'SPF policy of emptyexp.example does not authorize 192.0.2.1 to send mail as a@emptyexp.example',
  );
});

test('running out of time or queries inside ptr is an error, not a silent fail', async () => {
  const timed = await checkSpf(
    { ip: '192.0.2.8', sender: 'a@slowptr.example' },
    {
      resolver: createResolver({ servers: [server.address], timeout: 5000, attempts: 1 }),
      limits: { timeBudgetMs: 300 },
    },
  );
  assert.equal(timed.result, 'temperror');
  const counted = await checkSpf(
    { ip: '192.0.2.9', sender: 'a@tdot.example' },
    { resolver: resolver(), limits: { queries: 1 } },
  );
  assert.equal(counted.result, 'permerror');
});

test('a ptr without PTR records is a void lookup', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@ptrvoid.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'permerror');
  assert.equal(r.voidLookups, 3);
});

test('a guess record may leave out v=spf1', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.200', sender: 'a@nospf.example' },
    { resolver: resolver(), bestGuess: 'a/24 -all' },
  );
  assert.equal(r.guess, 'pass');
});

test('problems name the failure, never our DNS servers', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.1', sender: 'a@broken-server.example' },
    { resolver: resolver() },
  );
  assert.doesNotMatch(`${r.problem} ${r.reply.text} ${receivedSpf(r)}`, /127\.0\.0\.1|:\d{2,5}\b/);
});

test('limits given as undefined keep their defaults; nonsense is refused', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.9', sender: 'a@mapped.example' },
    { resolver: resolver(), limits: { timeBudgetMs: undefined, terms: undefined } },
  );
  assert.equal(r.result, 'pass');
  await assert.rejects(
    checkSpf(
      { ip: '192.0.2.9', sender: 'a@mapped.example' },
      { resolver: resolver(), limits: { terms: -1 } },
    ),
    TypeError,
  );
});

test('an over-long record is permerror', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.9', sender: 'a@mapped.example' },
    { resolver: resolver(), limits: { recordLength: 10 } },
  );
  assert.equal(r.result, 'permerror');
  assert.match(r.problem ?? '', /over the limit of 10/);
});

test('a PTR lookup that fails is no match, and not a void lookup', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.7', sender: 'a@ptrfail.example' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'pass');
  assert.equal(r.voidLookups, 2);
});

test('senders may come with the angle brackets of the SMTP command', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.9', sender: '<a@mapped.example>' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'pass');
  assert.equal(r.sender, 'a@mapped.example');
  const nullSender = await checkSpf(
    { ip: '192.0.2.77', sender: '<>', helo: 'withhelo.example' },
    { resolver: resolver() },
  );
  assert.equal(nullSender.identity, 'helo');
  assert.equal(nullSender.result, 'pass');
});

test('one trailing dot is dropped, not two', async () => {
  const r = await checkSpf(
    { ip: '192.0.2.9', sender: 'a@mapped.example..' },
    { resolver: resolver() },
  );
  assert.equal(r.result, 'none');
});
