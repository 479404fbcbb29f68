import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canonicalIp,
  clientKey,
  domainPart,
  localPart,
  MAX_ADDRESS_LENGTH,
  normaliseAddress,
  parseClientIp,
} from '../../src/greylist/index.js';

const safe = /^[\x20-\x7e]*$/;

test('addresses are lower-cased and lose their brackets', () => {
  assert.equal(normaliseAddress('<Jo.Smith@Example.COM>'), 'jo.smith@example.com');
  assert.equal(normaliseAddress('  <jo@example.com>  '), 'jo@example.com');
  assert.equal(normaliseAddress('JO@EXAMPLE.COM'), 'jo@example.com');
});

test('the null sender stays empty', () => {
  assert.equal(normaliseAddress(''), '');
  assert.equal(normaliseAddress('<>'), '');
  assert.equal(normaliseAddress(' <> '), '');
});

test('a +extension is removed from the local part only', () => {
  assert.equal(normaliseAddress('jo+lists@example.com'), 'jo@example.com');
  assert.equal(normaliseAddress('jo+a+b@example.com'), 'jo@example.com');
  // bley searched the whole address: a + in the domain (or after the @) is not an extension.
  assert.equal(normaliseAddress('jo@ex+ample.com'), 'jo@ex+ample.com');
  assert.equal(normaliseAddress('jo+x@ex+ample.com'), 'jo@ex+ample.com');
  // Nothing left of the +: that is the name itself.
  assert.equal(normaliseAddress('+tag@example.com'), '+tag@example.com');
  // VERP-style bounce addresses collapse to one key.
  assert.equal(
    normaliseAddress('bounce+sam=example.org@lists.example.com'),
    'bounce@lists.example.com',
  );
});

test('BATV tags are removed: prvs=TAG=local, prvs=local/TAG, btv1==TAG==local, msprvs1', () => {
  assert.equal(normaliseAddress('prvs=0123abcdef=bounce@example.com'), 'bounce@example.com');
  assert.equal(normaliseAddress('PRVS=4567ABCDEF=Bounce@Example.com'), 'bounce@example.com');
  assert.equal(normaliseAddress('prvs=bounce/0123abcdef@example.com'), 'bounce@example.com');
  assert.equal(normaliseAddress('btv1==0123abcdef0==bounce@example.com'), 'bounce@example.com');
  assert.equal(
    normaliseAddress('msprvs1=17abcdefgh=bounces-1@example.com'),
    'bounces-1@example.com',
  );
  // Tag and extension together.
  assert.equal(normaliseAddress('prvs=0123abcdef=jo+x@example.com'), 'jo@example.com');
  // Not a BATV form: left alone.
  assert.equal(normaliseAddress('prvs@example.com'), 'prvs@example.com');
  assert.equal(normaliseAddress('prvs=@example.com'), 'prvs=@example.com');
  assert.equal(normaliseAddress('prvs=bad tag=jo@example.com'), 'prvs=bad tag=jo@example.com');
});

test('control characters never survive, and keys are at most 254 characters', () => {
  const hostile = normaliseAddress('jo\r\nX-Evil: 1\0@example.com');
  assert.match(hostile, safe);
  assert.ok(!/[\r\n\0]/.test(hostile));
  assert.equal(hostile, 'jo\\x0d\\x0ax-evil: 1\\x00@example.com');
  const long = normaliseAddress(`${'a'.repeat(5000)}@example.com`);
  assert.equal(long.length, MAX_ADDRESS_LENGTH);
  const longHostile = normaliseAddress(`x${'\r\n'.repeat(3000)}y@example.com`);
  assert.equal(longHostile.length, MAX_ADDRESS_LENGTH);
  assert.match(longHostile, safe);
  // Non-ASCII (SMTPUTF8) addresses stay distinct, in an escaped ASCII form.
  assert.equal(normaliseAddress('J\u00f6@example.com'), 'j\\xf6@example.com');
});

test('local and domain parts', () => {
  assert.equal(localPart('postmaster@example.com'), 'postmaster');
  assert.equal(localPart('postmaster'), 'postmaster');
  assert.equal(localPart('"a@b"@example.com'), '"a@b"');
  assert.equal(domainPart('jo@example.com'), 'example.com');
  assert.equal(domainPart('jo'), '');
});

test('client addresses in canonical form', () => {
  assert.equal(canonicalIp('192.0.2.1'), '192.0.2.1');
  assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalIp('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(canonicalIp('::FFFF:c000:0201'), '192.0.2.1');
  assert.equal(canonicalIp('[192.0.2.1]'), '192.0.2.1');
  assert.equal(canonicalIp('[IPv6:2001:db8::1]'), '2001:db8::1');
  assert.equal(canonicalIp('unknown'), null);
  assert.equal(canonicalIp('192.0.2.1\r\n'), '192.0.2.1');
  assert.equal(canonicalIp('192.0.2.1\nx'), null);
  assert.equal(canonicalIp('1'.repeat(5000)), null);
});

test('client keys: the address, or its /24 or /64 network', () => {
  const v4 = parseClientIp('192.0.2.77')!;
  const v6 = parseClientIp('2001:db8:1:2:3:4:5:6')!;
  assert.equal(clientKey(v4, false), '192.0.2.77');
  assert.equal(clientKey(v4, true), '192.0.2.0/24');
  assert.equal(clientKey(v6, false), '2001:db8:1:2:3:4:5:6');
  assert.equal(clientKey(v6, true), '2001:db8:1:2::/64');
  assert.equal(clientKey(parseClientIp('::ffff:198.51.100.200')!, true), '198.51.100.0/24');
  assert.equal(clientKey(parseClientIp('2001:db8::1')!, true), '2001:db8::/64');
});
