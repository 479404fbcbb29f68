import assert from 'node:assert/strict';
import { test } from 'node:test';
import { looksDynamic } from '../../../src/checks/ptr/index.js';

// [PTR name, client address, expected dynamic, reasons that must be among those given]
type Row = [string, string, boolean, string[]];

const dynamicNames: Row[] = [
  ['p50863492.dip0.t-ipconnect.de', '80.134.52.146', true, ['ip-hex', 'keyword:dip']],
  ['p5DDB8B7A.dip.t-dialin.net', '93.219.139.122', true, ['ip-hex', 'keyword:dip']],
  [
    'adsl-69-208-201-177.dsl.emhril.ameritech.net',
    '69.208.201.177',
    true,
    ['ip-octets', 'keyword:dsl'],
  ],
  ['c-67-180-23-45.hsd1.ca.comcast.net', '67.180.23.45', true, ['ip-octets']],
  ['cpe-98-76-54-32.nc.res.rr.com', '98.76.54.32', true, ['ip-octets']],
  [
    'pool-71-245-12-34.bstnma.fios.verizon.net',
    '71.245.12.34',
    true,
    ['ip-octets', 'keyword:pool'],
  ],
  ['45.23.180.67.dynamic.example.net', '67.180.23.45', true, ['ip-octets', 'keyword:dyn']],
  ['dslb-092-074-198-123.092.074.pools.arcor-ip.net', '92.74.198.123', true, ['ip-octets']],
  ['host192000002001.example.net', '192.0.2.1', true, ['ip-octets']],
  ['h203000113007.example.net', '203.0.113.7', true, ['ip-octets']],
  ['198-51-100.cust.example.net', '198.51.100.9', true, ['ip-octets']],
  ['x-2-0-192.example.net', '192.0.2.1', true, ['ip-octets']],
  ['c0000201.example.net', '192.0.2.1', true, ['ip-hex']],
  ['ip-c0-00-02-01.example.net', '192.0.2.1', true, ['ip-hex']],
  ['dialup-12.example.net', '192.0.2.1', true, ['keyword:dial']],
  ['user.broadband.example.co.uk', '192.0.2.1', true, ['keyword:broadband']],
  ['m12.gprs.example.net', '192.0.2.1', true, ['keyword:gprs']],
  ['x.umts.example.de', '192.0.2.1', true, ['keyword:umts']],
  ['cust7.wimax.example.net', '192.0.2.1', true, ['keyword:wimax']],
  ['wwan-4.example.net', '192.0.2.1', true, ['keyword:wwan']],
  ['h1.bb.example.net', '192.0.2.1', true, ['keyword:bb']],
  ['cablemodem-7.example.net', '192.0.2.1', true, ['keyword:cable']],
  ['dhcp-44.example.edu', '192.0.2.1', true, ['keyword:dhcp']],
  ['pppoe-1.example.net', '192.0.2.1', true, ['keyword:ppp']],
  ['vdsl-provider.net', '192.0.2.1', false, []], // only the registrable domain says dsl
  ['host.vdsl.example.net', '192.0.2.1', true, ['keyword:dsl']],
  ['dynip-5.example.org', '192.0.2.1', true, ['keyword:dyn']],
  // IPv6: hex groups, contiguous nibbles, reversed nibble names
  ['2001-db8-1-2-0-0-0-7.dyn.example.net', '2001:db8:1:2::7', true, ['ip6-groups']],
  ['2a02-8108-1c0-9e00.example.net', '2a02:8108:1c0:9e00::5', true, ['ip6-groups']],
  ['p200300c5a71c2a00.dip0.t-ipconnect.de', '2003:c5:a71c:2a00::1', true, ['ip6-nibbles']],
  [
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.pool.example.net',
    '2001:db8::1',
    true,
    ['ip6-nibbles', 'keyword:pool'],
  ],
  ['host-2001-0db8-0000-0000.example.net', '2001:db8::1', true, ['ip6-groups', 'ip6-nibbles']],
  ['cust.dsl.example.net', '2001:db8::1', true, ['keyword:dsl']],
];

const staticNames: Row[] = [
  ['mail.example.com', '192.0.2.1', false, []],
  ['post3.fabulousdealz.com', '69.60.99.112', false, []],
  ['mail-192-0-2-1.example.net', '192.0.2.1', false, ['ip-octets', 'static:mail']],
  ['mx1.example.net', '192.0.2.1', false, ['static:mx']],
  ['smtp-out-203-0-113-5.example.net', '203.0.113.5', false, ['static:smtp']],
  ['static-198-51-100-23.dsl.example.net', '198.51.100.23', false, ['static:static']],
  ['colo-1-2.example.net', '192.0.2.1', false, ['static:colo']],
  ['dedicated-198-51-100-9.example.net', '198.51.100.9', false, ['static:dedi']],
  ['vps1.webhosting.example.com', '192.0.2.1', false, ['static:hosting']],
  ['www.diplomatic.example.org', '192.0.2.1', false, []],
  ['www.liverpool.ac.uk', '192.0.2.1', false, []],
  ['mail.dyn.example.net', '192.0.2.1', false, ['keyword:dyn', 'static:mail']],
  ['host-10-2-3-4.example.net', '192.0.2.1', false, []], // another address's octets
  ['mx-2001-db8-0-0.example.net', '2001:db8::25', false, ['ip6-groups', 'static:mx']],
  ['mail.example.com', '2001:db8::1', false, []],
  ['lb-0-0-0-0.example.net', '2001:db8::1', false, []], // zero groups say nothing
];

for (const [name, ip, dynamic, reasons] of [...dynamicNames, ...staticNames]) {
  test(`${name} from ${ip} ${dynamic ? 'looks dynamic' : 'does not look dynamic'}`, () => {
    const verdict = looksDynamic(name, ip);
    assert.equal(verdict.dynamic, dynamic, JSON.stringify(verdict));
    for (const reason of reasons)
      assert.ok(verdict.reasons.includes(reason), JSON.stringify(verdict));
    if (reasons.length === 0 && !dynamic) {
      assert.ok(!verdict.reasons.some((r) => !r.startsWith('static:')), JSON.stringify(verdict));
    }
  });
}

test('IPv4-mapped clients are judged as IPv4', () => {
  assert.deepEqual(looksDynamic('ppp-192-0-2-1.example.net', '::ffff:192.0.2.1'), {
    dynamic: true,
    reasons: ['ip-octets', 'keyword:ppp'],
  });
});

test('names are compared without case and trailing dot, and hostile names do not throw', () => {
  assert.equal(looksDynamic('ADSL-192-0-2-1.EXAMPLE.NET.', '192.0.2.1').dynamic, true);
  for (const name of ['', '.', 'x'.repeat(100_000), 'a\r\n\u0000b.example.com', '\u00e9.example']) {
    const verdict = looksDynamic(name, '192.0.2.1');
    assert.equal(typeof verdict.dynamic, 'boolean');
  }
  assert.equal(looksDynamic('host-192-0-2-1.example.net', 'not an address').dynamic, false);
});
