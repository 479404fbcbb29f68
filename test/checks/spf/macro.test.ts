import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  expandMacroString,
  type MacroValues,
  parseMacroString,
} from '../../../src/checks/spf/macro.js';
import { parseIp } from '../../../src/dns/address.js';

const values = (ip: string): MacroValues => ({
  sender: 'strong-bad@email.example.com',
  local: 'strong-bad',
  senderDomain: 'email.example.com',
  domain: 'email.example.com',
  ip: parseIp(ip)!,
  helo: 'mx.example.org',
  receiver: 'mx.example.net',
  timestamp: 1700000000,
});

const expand = (text: string, ip = '192.0.2.3', kind: 'domain' | 'explanation' = 'domain') =>
  expandMacroString(parseMacroString(text, kind), values(ip));

// The examples of RFC 7208 section 7.4.
test('RFC 7208 7.4 examples', () => {
  assert.equal(expand('%{s}'), 'strong-bad@email.example.com');
  assert.equal(expand('%{o}'), 'email.example.com');
  assert.equal(expand('%{d}'), 'email.example.com');
  assert.equal(expand('%{d4}'), 'email.example.com');
  assert.equal(expand('%{d3}'), 'email.example.com');
  assert.equal(expand('%{d2}'), 'example.com');
  assert.equal(expand('%{d1}'), 'com');
  assert.equal(expand('%{dr}'), 'com.example.email');
  assert.equal(expand('%{d2r}'), 'example.email');
  assert.equal(expand('%{l}'), 'strong-bad');
  assert.equal(expand('%{l-}'), 'strong.bad');
  assert.equal(expand('%{lr}'), 'strong-bad');
  assert.equal(expand('%{lr-}'), 'bad.strong');
  assert.equal(expand('%{l1r-}'), 'strong');
  assert.equal(expand('%{ir}.%{v}._spf.%{d2}'), '3.2.0.192.in-addr._spf.example.com');
  assert.equal(expand('%{lr-}.lp._spf.%{d2}'), 'bad.strong.lp._spf.example.com');
  assert.equal(
    expand('%{lr-}.lp.%{ir}.%{v}._spf.%{d2}'),
    'bad.strong.lp.3.2.0.192.in-addr._spf.example.com',
  );
  assert.equal(
    expand('%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}'),
    '3.2.0.192.in-addr.strong.lp._spf.example.com',
  );
  assert.equal(
    expand('%{d2}.trusted-domains.example.net'),
    'example.com.trusted-domains.example.net',
  );
  assert.equal(
    expand('%{ir}.%{v}._spf.%{d2}', '2001:db8::cb01'),
    '1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com',
  );
});

test('escapes and exp-only letters', () => {
  assert.equal(expand('%%%_%-x.example.com'), '% %20x.example.com');
  assert.equal(expand('%{S}', undefined, 'explanation'), 'strong-bad%40email.example.com');
  assert.equal(
    expand('%{c} %{r} %{t}', '2001:db8::1', 'explanation'),
    '2001:db8::1 mx.example.net 1700000000',
  );
  assert.throws(() => parseMacroString('%{c}.example.com', 'domain'));
  assert.throws(() => parseMacroString('%{x}.example.com', 'domain'));
  assert.throws(() => parseMacroString('100%.example.com', 'domain'));
  assert.throws(() => parseMacroString('%{d', 'domain'));
});

test('URL escaping covers everything outside the unreserved set', () => {
  const v = { ...values('192.0.2.3'), local: "~jack&jill=up-a_b3.c (x)!*'" };
  assert.equal(
    expandMacroString(parseMacroString('%{L}', 'explanation'), v),
    '~jack%26jill%3Dup-a_b3.c%20%28x%29%21%2A%27',
  );
});

test('a domain-spec must end in a macro or a top label', () => {
  assert.doesNotThrow(() => parseMacroString('%{d}', 'domain'));
  assert.doesNotThrow(() => parseMacroString('foo.example.com.', 'domain'));
  assert.doesNotThrow(() => parseMacroString('foo.x-1', 'domain'));
  assert.throws(() => parseMacroString('museum', 'domain'));
  assert.throws(() => parseMacroString('foo.123', 'domain'));
  assert.throws(() => parseMacroString('foo.-bar', 'domain'));
});
