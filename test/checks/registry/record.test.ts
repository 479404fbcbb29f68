// The registry record grammar (docs/registry.md): what parses, and the message for each error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRegistryRecord, weighRatings } from '../../../src/checks/registry/index.js';

test('every field, in any order, with extra spaces', () => {
  const r = parseRegistryRecord(
    '  svc=S1:A,m2:b  ip6=2001:db8::/32 meth=spf:10,CSV:4 ip4=192.0.2.7/24,198.51.100.1 ',
  );
  assert.ok(r.ok);
  assert.deepEqual(r.record.ratings, [
    { service: 'S1', grade: 'A' },
    { service: 'M2', grade: 'B' },
  ]);
  assert.deepEqual(r.record.methods, [
    { name: 'SPF', queries: 10 },
    { name: 'CSV', queries: 4 },
  ]);
  assert.deepEqual(
    r.record.ip4.map((n) => n.prefix),
    [24, 32],
  );
  assert.equal(r.record.ip6[0]?.prefix, 32);
  assert.equal(r.record.stop, false);
});

test('stop=all', () => {
  const r = parseRegistryRecord('stop=ALL');
  assert.ok(r.ok);
  assert.equal(r.record.stop, true);
});

const errors: Array<[string, RegExp]> = [
  ['', /has no fields/],
  ['   ', /has no fields/],
  ['ip4', /field 1 'ip4' is not key=value/],
  ['ip4=', /field 1 'ip4=' is not key=value/],
  ['IP4=192.0.2.1', /is not key=value/],
  ['ip4=192.0.2.1 ip4=192.0.2.2', /field 2: ip4= given twice/],
  ['v=reg1', /unknown key 'v' \(known: ip4, ip6, meth, svc, stop\)/],
  ['ip4=2001:db8::1', /field 1 ip4: '2001:db8::1' is not an IPv4 address or CIDR block/],
  ['ip6=192.0.2.1', /is not an IPv6 address/],
  ['ip4=192.0.2.0/33', /is not an IPv4 address or CIDR block/],
  ['ip4=192.0.2.0/24,', /'' is not an IPv4/],
  ['meth=SPF', /'SPF' is not METHOD:QUERIES/],
  ['meth=SPF:1000', /is not METHOD:QUERIES/],
  ['meth=SPF:1,spf:2', /method SPF offered twice/],
  ['meth=QR1:0', /offers QR1, but the record has no ip4= or ip6= netblocks/],
  ['svc=S1', /'S1' is not SERVICE:GRADE/],
  ['svc=S1:A,S1:B', /service S1 rated twice/],
  ['svc=1S:A', /is not SERVICE:GRADE/],
  ['stop=some', /field 1 stop: 'some' is not 'all'/],
  ['ip4=192.0.2.1\tsvc=S1:A', /not printable ASCII/],
  ['stop=all \u00e9', /not printable ASCII/],
  [`ip4=${Array(65).fill('192.0.2.1').join(',')}`, /more than 64 netblocks/],
  [`svc=${Array.from({ length: 33 }, (_, i) => `S${i}:A`).join(',')}`, /more than 32 ratings/],
  [`meth=${Array.from({ length: 17 }, (_, i) => `M${i}:1`).join(',')}`, /more than 16 methods/],
  ['x'.repeat(2049), /longer than 2048 characters/],
];
for (const [text, message] of errors) {
  test(`parse error: ${JSON.stringify(text.slice(0, 50))}`, () => {
    const r = parseRegistryRecord(text);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.match(r.error, message);
      assert.match(r.error, /^registry record /);
      assert.ok(r.error.length < 200, 'a long field is quoted short');
    }
  });
}

test('weighing: unknown services and grades are ignored; HIGH needs a high minimum and maximum', () => {
  const services = {
    S1: { grades: { A: 9, B: 7, C: 5 }, weight: 5 },
    M2: { grades: { A: 9, B: 7, C: 5 }, weight: 10 },
  };
  const settings = { services, enoughWeight: 15, highMinimum: 4, highMaximum: 8 };
  assert.equal(weighRatings([{ service: 'X1', grade: 'A' }], settings), null);
  assert.equal(weighRatings([{ service: 'S1', grade: 'Q' }], settings), null);
  const w = weighRatings(
    [
      { service: 'S1', grade: 'C' },
      { service: 'M2', grade: 'A' },
    ],
    settings,
  );
  assert.deepEqual(w, {
    ratings: 'S1:C,M2:A',
    average: (25 + 90) / 15,
    minimum: 5,
    maximum: 9,
    rating: 'HIGH',
  });
  const low = weighRatings([{ service: 'S1', grade: 'B' }], settings);
  assert.equal(low?.rating, 'LOW');
});
