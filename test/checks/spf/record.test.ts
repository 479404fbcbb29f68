import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSpfRecord, parseRecord } from '../../../src/checks/spf/record.js';

test('record selection needs v=spf1 followed by a space or the end', () => {
  assert.equal(isSpfRecord('v=spf1 -all'), true);
  assert.equal(isSpfRecord('V=SPF1'), true);
  assert.equal(isSpfRecord('v=spf10 -all'), false);
  assert.equal(isSpfRecord('v=spf1-all'), false);
  assert.equal(isSpfRecord('spf2.0/pra -all'), false);
});

test('directives keep their qualifier, kind, text and prefix lengths', () => {
  const r = parseRecord(
    'v=spf1 a/24//64 mx:mail.example.com//48 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 -all',
  );
  assert.deepEqual(
    r.directives.map((d) => [d.qualifier, d.kind, d.text, d.cidr4, d.cidr6]),
    [
      ['+', 'a', 'a/24//64', 24, 64],
      ['+', 'mx', 'mx:mail.example.com//48', 32, 48],
      ['~', 'ip4', '~ip4:192.0.2.0/24', 24, 24],
      ['?', 'ip6', '?ip6:2001:db8::/32', 32, 32],
      ['-', 'all', '-all', 32, 128],
    ],
  );
});

test('syntax errors anywhere are permerror in strict mode', () => {
  const bad = [
    'v=spf1 a/33',
    'v=spf1 a//129',
    'v=spf1 ip4:192.0.2.300',
    'v=spf1 ip4:192.0.2.0/024',
    'v=spf1 ip6:192.0.2.1',
    'v=spf1 include',
    'v=spf1 exists',
    'v=spf1 -all:foo',
    'v=spf1 moo',
    'v=spf1 a:museum',
    'v=spf1 redirect=a.example.com redirect=b.example.com',
    'v=spf1 exp=a.example.com exp=b.example.com',
    'v=spf1 exp=',
    'v=spf1 foo=%abc',
    'v=spf1 1up=foo',
    'v=spf1 a:%{c}.example.com',
    'v=spf1 a:%{d0}.example.com',
    'v=spf1 a:b\x80.example.com',
    'v=spf1 +all\tmx',
  ];
  for (const text of bad) {
    assert.throws(() => parseRecord(text), { name: 'SpfProblem' }, text);
  }
});

test('unknown modifiers are ignored; redirect and exp are kept', () => {
  const r = parseRecord('v=spf1 -all foo=bar exp=explain.%{d} redirect=other.example.com');
  assert.equal(r.directives.length, 1);
  assert.equal(r.redirect?.text, 'redirect=other.example.com');
  assert.equal(r.exp?.source, 'explain.%{d}');
});

test('lax mode forgives the usual mistakes and lists them', () => {
  const r = parseRecord(
    'v=spf1 ipv4:192.0.2.1 prt 192.0.2.0/24 a:192.0.2.9 mx, -all:x default=softfail moo',
    true,
  );
  assert.deepEqual(
    r.directives.map((d) => d.text),
    ['ip4:192.0.2.1', 'ptr', 'ip4:192.0.2.0/24', 'ip4:192.0.2.9', 'mx', '-all'],
  );
  assert.equal(r.defaultQualifier, '~');
  assert.ok(r.forgiven.length >= 7, r.forgiven.join('; '));
  // What stays fatal in lax mode too.
  assert.throws(() => parseRecord('v=spf1 ip4:192.0.2.300', true), { name: 'SpfProblem' });
  assert.throws(() => parseRecord('v=spf1 redirect=a.example.com redirect=b.example.com', true));
});

test('a cached parse error is thrown again for every caller', () => {
  assert.throws(() => parseRecord('v=spf1 bogus-mech'));
  assert.throws(() => parseRecord('v=spf1 bogus-mech'));
});
