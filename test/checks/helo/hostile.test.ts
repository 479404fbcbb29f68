import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkHelo, HELO_RULES, type HeloRule } from '../../../src/checks/helo/index.js';
import { createResolver } from '../../../src/dns/index.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { HELO_ZONE, said } from './support.js';

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer(HELO_ZONE);
});
after(() => server.close());

const hostile = [
  'evil.example.com\r\nMAIL FROM:<x@example.com>',
  'evil.example.com\n250 OK',
  'a\u0000b.example.com',
  'x'.repeat(100_000),
  'a.'.repeat(5000),
  '\u202emoc.elpmaxe',
  'ex ample.com',
  `[IPv6:${'f'.repeat(10_000)}]`,
  '[192.0.2.1]\r\n',
  '[192.0.2.1\u0000]',
  '%s%n%x.example.com',
  '\u00e9\u00e9\u00e9',
  '\ud83d\udca9.example.com',
  '\ud800.example.com',
  '\\.example.com',
  '"quoted".example.com',
  '<mail.example.com>',
  `a${' '.repeat(100_000)}b`,
  `${'\t '.repeat(50_000)}mail.example.com${' \t'.repeat(50_000)}`,
];

const printable = /^[\x20-\x7e]*$/;
// Every rule rejects here, so that every rule's reply text is exercised.
const rejectAll = Object.fromEntries(HELO_RULES.map((r) => [r, true])) as Record<HeloRule, boolean>;

test('hostile HELO strings never crash and never reach a reply or detail unescaped', async () => {
  const resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1 });
  for (const helo of hostile) {
    for (const ip of ['192.0.2.1', '2001:db8::1']) {
      const r = await checkHelo(
        { ip, helo, previousHelo: `${helo}\r\nprevious` },
        { resolver, options: { reject: rejectAll } },
      );
      const label = JSON.stringify(helo.slice(0, 40));
      assert.match(r.reply.text, printable, label);
      assert.ok(r.reply.text.length <= 400, label);
      assert.ok([250, 451, 501, 504, 550].includes(r.reply.code), label);
      for (const o of r.outcomes) {
        assert.match(o.detail, printable, `${label} ${o.rule}`);
        assert.ok(o.detail.length <= 600, `${label} ${o.rule}`);
      }
      assert.equal(r.helo, helo, 'the result keeps the argument as given');
      if (r.name !== undefined) assert.match(r.name, /^[a-z0-9.-]+$/, label);
    }
  }
});

test('invalid names are never put on the wire', async () => {
  const resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1 });
  server.resetLog();
  for (const helo of hostile) {
    const r = await checkHelo({ ip: '192.0.2.1', helo }, { resolver });
    if (r.form !== 'name' || r.name === undefined) assert.equal(r.queries, 0, JSON.stringify(helo));
  }
  for (const q of server.queries) assert.match(q.name, /^[a-z0-9.-]+$/);
});

test('control characters and oversized names fail `syntax`; the reply shows them escaped', async () => {
  const resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1 });
  const crlf = await checkHelo(
    { ip: '192.0.2.1', helo: 'evil.example.com\r\n250 OK' },
    { resolver, options: { reject: { syntax: true } } },
  );
  assert.equal(said(crlf, 'syntax'), 'fail bad-characters');
  assert.equal(crlf.result, 'reject');
  assert.equal(
    crlf.reply.text,
    'HELO name evil.example.com\\x0d\\x0a250 OK is not a valid host name',
  );
  const long = await checkHelo({ ip: '192.0.2.1', helo: 'x'.repeat(100_000) }, { resolver });
  assert.equal(said(long, 'syntax'), 'fail too-long');
  const nul = await checkHelo({ ip: '192.0.2.1', helo: 'a\u0000b.example.com' }, { resolver });
  assert.equal(said(nul, 'syntax'), 'fail bad-characters');
  const bidi = await checkHelo({ ip: '192.0.2.1', helo: '\u202emoc.elpmaxe' }, { resolver });
  assert.equal(said(bidi, 'syntax'), 'fail bad-characters');
  const literal = await checkHelo({ ip: '192.0.2.1', helo: '[192.0.2.1]\r\n' }, { resolver });
  assert.equal(literal.form, 'name', 'a literal with a line ending is no literal');
  assert.equal(said(literal, 'syntax'), 'fail bad-characters');
});
