import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bleyScore, checkHelo } from '../../../src/checks/helo/index.js';
import { createResolver } from '../../../src/dns/index.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { HELO_ZONE } from './support.js';

// Client names of the kind bley's own tests use: dynamic and static.
const hosts = [
  'p5DDB8B7A.dip.t-dialin.net',
  'dslb-092-074-198-123.pools.arcor-ip.net',
  'c-67-180-23-45.hsd1.ca.comcast.net',
  'mail.example.com',
  'smtp1.example.co.uk',
];
const exploded = '2001:0db8:0000:0000:0000:0000:0000:0001';

test('0 when the HELO is the verified PTR name, without case or trailing dot', () => {
  assert.equal(bleyScore('mail.example.com', '192.0.2.1', 'mail.example.com'), 0);
  assert.equal(bleyScore('Mail.Example.COM.', '192.0.2.1', 'mail.example.com.'), 0);
  assert.equal(bleyScore('mail.example.com', '2001:db8::1', 'MAIL.EXAMPLE.COM'), 0);
});

test('1 when HELO and PTR name share a registrable domain', () => {
  for (const host of hosts) {
    assert.equal(bleyScore(`mail.${host}`, '192.0.2.1', host), 1, host);
    assert.equal(bleyScore(`mail.${host}`, '2001:db8::1', host), 1, host);
  }
  assert.equal(bleyScore('a.example.co.uk', '192.0.2.1', 'b.example.co.uk'), 1);
  assert.equal(bleyScore('a.example.co.uk', '192.0.2.1', 'b.other.co.uk'), 2, 'co.uk is a suffix');
  assert.equal(bleyScore('a.blogspot.com', '192.0.2.1', 'b.blogspot.com'), 2, 'a private suffix');
});

test('1 when the HELO is the client address literal, IPv6 spellings normalised', () => {
  assert.equal(bleyScore('[192.0.2.1]', '192.0.2.1'), 1);
  assert.equal(bleyScore('[192.0.2.1]', '::ffff:192.0.2.1'), 1);
  assert.equal(bleyScore('[IPv6:2001:DB8::1]', exploded), 1);
  assert.equal(bleyScore('[2001:db8::1]', exploded), 1);
  assert.equal(bleyScore(`[IPv6:${exploded}]`, '2001:db8::1'), 1);
  assert.equal(bleyScore('[ipv6:2001:db8:0:0::1]', '2001:db8::1', 'x.dyn.example.com'), 1);
});

test('2 otherwise', () => {
  for (const ip of ['192.0.2.1', exploded]) {
    assert.equal(bleyScore('windowsxp.local', ip, '1-2-3-4.dyn.example.com'), 2);
    assert.equal(bleyScore('mail.example.com', ip), 2, 'no PTR name');
    assert.equal(bleyScore('mail.example.com', ip, null), 2);
    assert.equal(bleyScore('', ip, 'mail.example.com'), 2, 'no HELO');
    assert.equal(bleyScore(undefined, ip), 2);
  }
  assert.equal(bleyScore('[192.0.2.9]', '192.0.2.1'), 2);
  assert.equal(bleyScore('[IPv6:2001:db8::2]', exploded), 2);
  assert.equal(bleyScore('192.0.2.1', '192.0.2.1'), 2, 'a bare IP is not a literal');
  assert.equal(bleyScore('[bogus]', '192.0.2.1'), 2);
  assert.equal(bleyScore('evil\r\n.example.com', '192.0.2.1', 'mail.example.com'), 2);
});

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer(HELO_ZONE);
});
after(() => server.close());

test('checkHelo reports the same score', async () => {
  const resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1 });
  const options = { rules: { resolves: false, matches: false } };
  const cases = [
    ['192.0.2.1', 'mail.example.com', 'mail.example.com', 0],
    ['192.0.2.1', 'smtp.example.com', 'mail.example.com', 1],
    ['192.0.2.1', '[192.0.2.1]', undefined, 1],
    [exploded, '[IPv6:2001:db8::1]', undefined, 1],
    [exploded, '[2001:db8::1]', undefined, 1],
    ['192.0.2.1', 'windowsxp.local', 'mail.example.com', 2],
    ['192.0.2.1', undefined, 'mail.example.com', 2],
  ] as const;
  for (const [ip, helo, ptrName, score] of cases) {
    const r = await checkHelo({ ip, helo, ptrName }, { resolver, options });
    assert.equal(r.score, score, `${ip} ${helo} ${ptrName}`);
    assert.equal(r.score, bleyScore(helo, ip, ptrName));
  }
});

test('a bad client address is a programming error', () => {
  assert.throws(() => bleyScore('mail.example.com', 'nope'), TypeError);
});
