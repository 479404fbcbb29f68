// Subjects: one spelling per sender domain and client network, whatever the MTA wrote.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  domainSubject,
  networkSubject,
  reputationSubjects,
  subjectOf,
} from '../../src/reputation/index.js';

test('a client address gives its /24 or /64, in one spelling', () => {
  assert.equal(networkSubject('192.0.2.77'), 'net:192.0.2.0/24');
  assert.equal(networkSubject(' 192.0.2.0 '), 'net:192.0.2.0/24');
  assert.equal(networkSubject('[192.0.2.77]'), 'net:192.0.2.0/24');
  assert.equal(networkSubject('::ffff:192.0.2.77'), 'net:192.0.2.0/24');
  assert.equal(networkSubject('2001:db8:1:2:3:4:5:6'), 'net:2001:db8:1:2::/64');
  assert.equal(networkSubject('2001:0DB8:0001:0002::0009'), 'net:2001:db8:1:2::/64');
  assert.equal(networkSubject('[IPv6:2001:db8:1:2::9]'), 'net:2001:db8:1:2::/64');
  assert.equal(networkSubject('2001:db8::1'), 'net:2001:db8::/64');
  for (const bad of [
    '',
    'example.org',
    '192.0.2',
    '192.0.2.256',
    'fe80::1%eth0',
    '1'.repeat(100),
  ]) {
    assert.equal(networkSubject(bad), null, bad);
  }
});

test('a sender domain is lower case, without its final dot, international names in ASCII', () => {
  assert.equal(domainSubject('Example.ORG'), 'domain:example.org');
  assert.equal(domainSubject('mail.example.org.'), 'domain:mail.example.org');
  assert.equal(domainSubject('bücher.example'), 'domain:xn--bcher-kva.example');
  assert.equal(domainSubject('BÜCHER.example'), 'domain:xn--bcher-kva.example');
  assert.equal(domainSubject('_spf.example.org'), 'domain:_spf.example.org');
  for (const bad of [
    '',
    '.',
    'localhost',
    '[192.0.2.1]',
    'exa mple.org',
    'evil.example\r\nX-Injected: yes',
    'a..example',
    '-a.example',
    'a-.example',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(127)}example`,
    'a@example.org',
    'ex\u0000ample.org',
    'ünï\u0085.example',
  ]) {
    assert.equal(domainSubject(bad), null, JSON.stringify(bad));
  }
  assert.equal(domainSubject(`${'a'.repeat(63)}.example`), `domain:${'a'.repeat(63)}.example`);
});

test('a session gives the subjects it can: domain first, then network', () => {
  assert.deepEqual(reputationSubjects({ ip: '192.0.2.77', senderDomain: 'Example.org' }), [
    'domain:example.org',
    'net:192.0.2.0/24',
  ]);
  assert.deepEqual(reputationSubjects({ ip: '2001:db8::1', senderDomain: '' }), [
    'net:2001:db8::/64',
  ]);
  assert.deepEqual(reputationSubjects({ senderDomain: 'example.org' }), ['domain:example.org']);
  assert.deepEqual(reputationSubjects({ ip: 'unknown', senderDomain: '[192.0.2.1]' }), []);
  assert.deepEqual(reputationSubjects({ ip: null, senderDomain: null }), []);
});

test('the CLI argument: an address means its network, anything else a domain', () => {
  assert.equal(subjectOf('192.0.2.77'), 'net:192.0.2.0/24');
  assert.equal(subjectOf('2001:db8::1'), 'net:2001:db8::/64');
  assert.equal(subjectOf('Example.org'), 'domain:example.org');
  assert.equal(subjectOf('not a domain'), null);
  assert.equal(subjectOf('192.0.2.0/24'), null);
});
