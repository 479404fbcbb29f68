import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  checkHelo,
  HELO_RULES,
  type HeloInput,
  type HeloOptions,
} from '../../../src/checks/helo/index.js';
import { createResolver } from '../../../src/dns/index.js';
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
// Rules that need no DNS, for tests about the others.
const offline: HeloOptions['rules'] = { resolves: false, matches: false };

test('a good HELO passes every rule, IPv4 and IPv6', async () => {
  for (const ip of ['192.0.2.1', '2001:db8::1']) {
    const r = await check({ ip, helo: 'mail.example.com' });
    assert.equal(r.result, 'pass', ip);
    assert.deepEqual(r.failed, []);
    assert.equal(r.rule, undefined);
    assert.deepEqual(
      r.outcomes.map((o) => o.rule),
      [...HELO_RULES],
    );
    assert.equal(said(r, 'resolves'), 'pass address');
    assert.equal(said(r, 'matches'), 'pass exact');
    assert.equal(said(r, 'changed'), 'skip no-previous');
    assert.equal(said(r, 'literal'), 'skip not-a-literal');
    assert.equal(r.form, 'name');
    assert.equal(r.name, 'mail.example.com');
    assert.deepEqual(r.reply, {
      code: 250,
      xcode: '2.0.0',
      text: 'HELO name mail.example.com accepted',
    });
  }
});

test('no HELO fails `missing` and is rejected; the other rules do not apply', async () => {
  for (const helo of [undefined, null, '', '  \t ']) {
    const r = await check({ ip: '192.0.2.1', helo });
    assert.equal(r.form, 'missing');
    assert.equal(said(r, 'missing'), 'fail missing');
    assert.equal(r.result, 'reject');
    assert.equal(r.rule, 'missing');
    assert.equal(r.reply.code, 550);
    assert.equal(r.reply.xcode, '5.7.1');
    for (const o of r.outcomes.slice(1)) assert.equal(o.result, 'skip', o.rule);
    assert.equal(r.queries, 0);
  }
});

test('a bare IP instead of a literal fails `bare-ip` and is rejected, IPv4 and IPv6', async () => {
  for (const [ip, helo, literal] of [
    ['192.0.2.1', '192.0.2.1', '[192.0.2.1]'],
    ['198.51.100.7', '80.191.244.69', '[198.51.100.7]'],
    ['2001:db8::1', '2001:db8::1', '[IPv6:2001:db8::1]'],
    ['192.0.2.1', '999.1.1.1', '[192.0.2.1]'],
  ] as const) {
    const r = await check({ ip, helo });
    assert.equal(r.form, 'bare-ip');
    assert.equal(said(r, 'bare-ip'), 'fail bare-ip', helo);
    assert.equal(said(r, 'syntax'), 'skip not-a-name');
    assert.equal(r.result, 'reject');
    assert.equal(r.rule, 'bare-ip');
    assert.equal(r.reply.code, 550);
    assert.equal(
      r.reply.text,
      `HELO name ${helo} is a bare IP address; use an address literal such as ${literal}`,
    );
    assert.equal(r.queries, 0);
  }
});

test('address literals of every form are matched against the client', async () => {
  const cases = [
    // ip, helo, literalMatch, expected outcome, tagged
    ['192.0.2.1', '[192.0.2.1]', 'exact', 'pass exact', undefined],
    ['192.0.2.1', '[192.0.2.9]', 'exact', 'fail mismatch', undefined],
    ['192.0.2.1', '[192.0.2.9]', 'prefix', 'pass prefix', undefined],
    ['192.0.2.1', '[192.0.3.1]', 'prefix', 'fail mismatch', undefined],
    ['192.0.2.1', '[IPv6:::ffff:192.0.2.1]', 'exact', 'pass exact', true],
    ['::ffff:192.0.2.1', '[192.0.2.1]', 'exact', 'pass exact', undefined],
    ['2001:db8::1', '[IPv6:2001:db8::1]', 'exact', 'pass exact', true],
    ['2001:db8::1', '[ipv6:2001:DB8:0:0:0:0:0:1]', 'exact', 'pass exact', true],
    ['2001:db8::1', '[2001:db8::1]', 'exact', 'pass exact', false],
    ['2001:db8::1', '[IPv6:2001:db8::ffff]', 'exact', 'fail mismatch', true],
    ['2001:db8::1', '[IPv6:2001:db8::ffff]', 'prefix', 'pass prefix', true],
    ['2001:db8::1', '[2001:db8::ffff:1]', 'prefix', 'pass prefix', false],
    ['2001:db8::1', '[IPv6:2001:db8:0:1::1]', 'prefix', 'fail mismatch', true],
    ['2001:db8::1', '[192.0.2.1]', 'prefix', 'fail mismatch', undefined],
    ['192.0.2.1', '[IPv6:2001:db8::1]', 'prefix', 'fail mismatch', true],
    ['192.0.2.1', '[IPv6:192.0.2.1]', 'exact', 'fail malformed', true],
    ['192.0.2.1', '[300.1.1.1]', 'exact', 'fail malformed', undefined],
    ['192.0.2.1', '[mail.example.com]', 'exact', 'fail malformed', undefined],
    ['192.0.2.1', '[]', 'exact', 'fail malformed', undefined],
  ] as const;
  for (const [ip, helo, literalMatch, expected, tagged] of cases) {
    const r = await check({ ip, helo }, { literalMatch, rules: offline });
    assert.equal(r.form, 'literal');
    assert.equal(said(r, 'literal'), expected, `${ip} ${helo} ${literalMatch}`);
    assert.equal(r.tagged, tagged, helo);
    assert.equal(said(r, 'syntax'), 'skip not-a-name');
    assert.equal(said(r, 'fqdn'), 'skip not-a-name');
    // A literal mismatch is suspect by default, not rejected.
    assert.equal(r.result, expected.startsWith('pass') ? 'pass' : 'suspect', helo);
  }
});

test('a literal mismatch rejects when told to; a malformed literal is a syntax reply', async () => {
  const reject = { literal: true };
  const mismatch = await check({ ip: '192.0.2.1', helo: '[192.0.2.9]' }, { reject });
  assert.equal(mismatch.result, 'reject');
  assert.deepEqual(mismatch.reply, {
    code: 550,
    xcode: '5.7.1',
    text: 'HELO address literal [192.0.2.9] is not the address of this client (192.0.2.1)',
  });
  const malformed = await check({ ip: '192.0.2.1', helo: '[300.1.1.1]' }, { reject });
  assert.equal(malformed.reply.code, 501);
  assert.equal(malformed.reply.xcode, '5.5.2');
});

test('names with bad syntax fail `syntax`', async () => {
  for (const [helo, reason] of [
    ['mail_server.example.com', 'bad-characters'],
    ['mail server.example.com', 'bad-characters'],
    ['mail..example.com', 'empty-label'],
    ['.', 'empty-label'],
    ['-mail.example.com', 'hyphen'],
    ['mail-.example.com', 'hyphen'],
    [`${'a'.repeat(64)}.example.com`, 'label-too-long'],
    [`${'abcdefghi.'.repeat(26)}com`, 'too-long'],
    ['[192.0.2.1', 'bad-characters'],
  ] as const) {
    const r = await check({ ip: '192.0.2.1', helo });
    assert.equal(said(r, 'syntax'), `fail ${reason}`, helo);
    assert.equal(said(r, 'fqdn'), 'skip invalid-name');
    assert.equal(said(r, 'public-suffix'), 'skip invalid-name');
    assert.equal(said(r, 'resolves'), 'skip invalid-name');
    assert.equal(r.name, undefined);
    assert.equal(r.result, 'suspect');
    assert.equal(r.queries, 0);
  }
  const rejected = await check(
    { ip: '192.0.2.1', helo: 'mail_server.example.com' },
    { reject: { syntax: true } },
  );
  assert.equal(rejected.result, 'reject');
  assert.equal(rejected.reply.code, 501);
  assert.equal(rejected.reply.text, 'HELO name mail_server.example.com is not a valid host name');
});

test('names are compared without case and trailing dot, in A-labels', async () => {
  const r = await check({ ip: '192.0.2.1', helo: 'Mail.Example.COM.' });
  assert.equal(r.name, 'mail.example.com');
  assert.equal(r.result, 'pass');
  const idn = await check({ ip: '192.0.2.1', helo: 'bücher.example.com' }, { rules: offline });
  assert.equal(said(idn, 'syntax'), 'pass ok');
  assert.equal(idn.name, 'xn--bcher-kva.example.com');
});

test('names that are not fully qualified fail `fqdn`', async () => {
  for (const [helo, reason] of [
    ['windowsxp', 'single-label'],
    ['1.2.3.4.5', 'numeric-tld'],
    ['mail.123', 'numeric-tld'],
  ] as const) {
    const r = await check({ ip: '192.0.2.1', helo });
    assert.equal(said(r, 'fqdn'), `fail ${reason}`, helo);
    assert.equal(said(r, 'resolves'), 'skip not-fqdn');
    assert.equal(said(r, 'matches'), 'skip not-fqdn');
    assert.equal(r.queries, 0, 'an unqualified name is not asked about');
  }
  const rejected = await check({ ip: '192.0.2.1', helo: 'windowsxp' }, { reject: { fqdn: true } });
  assert.equal(rejected.result, 'reject');
  assert.deepEqual(rejected.reply, {
    code: 504,
    xcode: '5.5.2',
    text: 'HELO name windowsxp is not a fully qualified domain name',
  });
});

test('names need a public suffix from the list, or a configured one', async () => {
  const cases = [
    ['windowsxp.local', undefined, 'fail unknown-suffix'],
    ['mail.example', undefined, 'fail unknown-suffix'],
    ['co.uk', undefined, 'fail is-suffix'],
    ['blogspot.com', undefined, 'fail is-suffix'],
    ['mail.example.co.uk', undefined, 'pass ok'],
    ['foo.blogspot.com', undefined, 'pass ok'],
    ['mail.example', ['example'], 'pass ok'],
    ['host.corp', ['.corp'], 'pass ok'],
    ['corp.internal', ['corp.internal'], 'fail is-suffix'],
    ['mail.example.com', ['corp'], 'pass ok'],
  ] as const;
  for (const [helo, extraSuffixes, expected] of cases) {
    const r = await check(
      { ip: '192.0.2.1', helo },
      { rules: offline, extraSuffixes: extraSuffixes ? [...extraSuffixes] : undefined },
    );
    assert.equal(said(r, 'public-suffix'), expected, helo);
  }
});

test('our own names and addresses from outside fail `own-name` and are rejected', async () => {
  const options: HeloOptions = {
    ourNames: ['mx.example.org', '.corp.example.org', 'Example.NET.'],
    ourAddresses: ['192.0.2.53', '2001:db8::53'],
    rules: offline,
  };
  for (const [ip, helo, reason] of [
    ['198.51.100.7', 'MX.Example.ORG.', 'our-name'],
    ['198.51.100.7', 'example.net', 'our-name'],
    ['198.51.100.7', 'host.corp.example.org', 'our-name'],
    ['2001:db8:9::7', 'mx.example.org', 'our-name'],
    ['198.51.100.7', '[192.0.2.53]', 'our-address'],
    ['2001:db8:9::7', '[IPv6:2001:db8::53]', 'our-address'],
    ['2001:db8:9::7', '[2001:db8:0::53]', 'our-address'],
  ] as const) {
    const r = await check({ ip, helo }, options);
    assert.equal(said(r, 'own-name'), `fail ${reason}`, helo);
    assert.equal(r.result, 'reject');
    assert.equal(r.rule, 'own-name');
    assert.equal(r.reply.code, 550);
    assert.equal(r.reply.xcode, '5.7.1');
  }
  const notOurs = await check({ ip: '198.51.100.7', helo: 'corp.example.org' }, options);
  assert.equal(said(notOurs, 'own-name'), 'pass ok', 'a dotted entry matches only names under it');
  const bare = await check({ ip: '198.51.100.7', helo: '2001:db8::53' }, options);
  assert.equal(said(bare, 'own-name'), 'fail our-address');
  assert.equal(bare.rule, 'bare-ip', 'the first rejecting rule gives the reply');
});

test('internal and authenticated clients may use our names', async () => {
  const options: HeloOptions = { ourNames: ['mx.example.org'], rules: offline };
  for (const who of [{ internal: true }, { authenticated: true }]) {
    const r = await check({ ip: '192.0.2.1', helo: 'mx.example.org', ...who }, options);
    assert.equal(said(r, 'own-name'), 'skip trusted');
    assert.equal(r.result, 'pass');
  }
});

test('localhost from a remote client fails `localhost`; from loopback it passes', async () => {
  for (const [ip, helo, expected] of [
    ['192.0.2.1', 'localhost', 'fail localhost'],
    ['192.0.2.1', 'LOCALHOST.localdomain', 'fail localhost'],
    ['192.0.2.1', 'box.localhost', 'fail localhost'],
    ['2001:db8::1', 'localhost', 'fail localhost'],
    ['192.0.2.1', '[127.0.0.1]', 'fail localhost'],
    ['2001:db8::1', '[IPv6:::1]', 'fail localhost'],
    ['127.0.0.1', 'localhost', 'pass loopback-client'],
    ['127.0.0.2', '[127.0.0.1]', 'pass loopback-client'],
    ['::1', 'localhost.localdomain', 'pass loopback-client'],
    ['::ffff:127.0.0.1', 'localhost', 'pass loopback-client'],
    ['192.0.2.1', 'localhost.example.com', 'pass ok'],
  ] as const) {
    const r = await check({ ip, helo }, { rules: offline });
    assert.equal(said(r, 'localhost'), expected, `${ip} ${helo}`);
  }
  const rejected = await check(
    { ip: '192.0.2.1', helo: 'localhost' },
    { reject: { localhost: true }, rules: offline },
  );
  assert.equal(rejected.result, 'reject');
  assert.equal(rejected.rule, 'localhost');
  assert.equal(
    rejected.reply.text,
    'HELO name localhost names a loopback host, and 192.0.2.1 is not one',
  );
});

test('a HELO that changes within a session fails `changed`', async () => {
  for (const [previousHelo, helo, expected] of [
    ['mail.example.com', 'MAIL.example.com.', 'pass same'],
    ['mail.example.com', 'other.example.com', 'fail changed'],
    ['[192.0.2.1]', '[IPv6:::ffff:192.0.2.1]', 'pass same'],
    ['[IPv6:2001:db8::1]', '[2001:DB8:0::1]', 'pass same'],
    ['[192.0.2.1]', '192.0.2.1', 'fail changed'],
    ['windowsxp', 'WindowsXP', 'pass same'],
    ['', 'mail.example.com', 'skip no-previous'],
  ] as const) {
    const r = await check({ ip: '192.0.2.1', helo, previousHelo }, { rules: offline });
    assert.equal(said(r, 'changed'), expected, `${previousHelo} -> ${helo}`);
  }
  const rejected = await check(
    { ip: '192.0.2.1', helo: 'other.example.com', previousHelo: 'mail.example.com' },
    { reject: { changed: true }, rules: offline },
  );
  assert.equal(rejected.result, 'reject');
  assert.equal(
    rejected.reply.text,
    'HELO name changed from mail.example.com to other.example.com in one session',
  );
});

test('switched-off rules are skipped, and switched-off rejects only make it suspect', async () => {
  const off = await check(
    { ip: '192.0.2.1', helo: '192.0.2.1' },
    { rules: { 'bare-ip': false, ...offline } },
  );
  assert.equal(said(off, 'bare-ip'), 'skip disabled');
  assert.equal(said(off, 'resolves'), 'skip disabled');
  assert.equal(off.result, 'pass');
  const noReject = await check(
    { ip: '192.0.2.1', helo: '192.0.2.1' },
    { reject: { 'bare-ip': false }, rules: offline },
  );
  assert.equal(noReject.result, 'suspect');
  assert.deepEqual(noReject.failed, ['bare-ip']);
  assert.equal(noReject.reply.code, 250);
});

test('bad options and input are programming errors', async () => {
  await assert.rejects(check({ ip: 'nope', helo: 'mail.example.com' }), TypeError);
  await assert.rejects(
    check({ ip: '192.0.2.1', helo: 'x.example.com' }, { ourAddresses: ['mx.example.org'] }),
    TypeError,
  );
  await assert.rejects(
    checkHelo(
      { ip: '192.0.2.1', helo: 'x.example.com' },
      { resolver: resolver(), limits: { mxNames: 1.5 } },
    ),
    TypeError,
  );
});

test('every outcome carries a rule, a result, a reason and printable detail', async () => {
  const r = await check({ ip: '192.0.2.1', helo: 'far.example.com' });
  for (const o of r.outcomes) {
    assert.ok(['pass', 'fail', 'tempfail', 'skip'].includes(o.result));
    assert.match(o.reason, /^[a-z0-9-]+$/);
    assert.match(o.detail, /^[\x20-\x7e]+$/);
  }
  assert.equal(
    outcome(r, 'matches').detail,
    'no address of far.example.com or its MX hosts matches 192.0.2.1',
  );
});
