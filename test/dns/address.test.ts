import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatIp,
  inNetworks,
  isLoopback,
  parseIp,
  parseNetwork,
  reverseName,
  unmapIpv4,
} from '../../src/dns/address.js';

test('addresses parse, print canonically and unmap', () => {
  assert.equal(formatIp(parseIp('2001:0DB8:0:0:0:0:0:0001')!), '2001:db8::1');
  assert.equal(formatIp(parseIp('2001:db8:0:1:0:0:1:1')!), '2001:db8:0:1::1:1');
  assert.equal(formatIp(unmapIpv4(parseIp('::ffff:192.0.2.1')!)), '192.0.2.1');
  assert.equal(parseIp('192.0.2.256'), null);
  assert.equal(parseIp('fe80::1%eth0'), null);
  assert.equal(reverseName(parseIp('192.0.2.1')!), '1.2.0.192.in-addr.arpa');
  assert.equal(
    reverseName(parseIp('2001:db8::1')!),
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
  );
});

test('networks: CIDRs and single hosts, both families', () => {
  assert.deepEqual(parseNetwork('10.0.0.0/8')?.prefix, 8);
  assert.deepEqual(parseNetwork('2001:db8::1')?.prefix, 128);
  assert.equal(parseNetwork('10.0.0.0/33'), null);
  assert.equal(parseNetwork('10.0.0.0/8x'), null);
  assert.equal(parseNetwork('example.com'), null);
  const nets = [parseNetwork('192.0.2.7/24')!, parseNetwork('2001:db8:1::/48')!];
  assert.equal(inNetworks(parseIp('192.0.2.200')!, nets), true);
  assert.equal(inNetworks(parseIp('::ffff:192.0.2.200')!, nets), true);
  assert.equal(inNetworks(parseIp('192.0.3.1')!, nets), false);
  assert.equal(inNetworks(parseIp('2001:db8:1:ffff::9')!, nets), true);
  assert.equal(inNetworks(parseIp('2001:db8:2::9')!, nets), false);
});

test('loopback addresses', () => {
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) {
    assert.equal(isLoopback(parseIp(a)!), true, a);
  }
  for (const a of ['128.0.0.1', '::2', '2001:db8::1', '::']) {
    assert.equal(isLoopback(parseIp(a)!), false, a);
  }
});
