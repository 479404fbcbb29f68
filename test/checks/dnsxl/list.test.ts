// DNS list settings, domain normalisation and replies: the parts of the check that need no DNS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DnsxlList,
  type DnsxlListResult,
  dnsxlDomain,
  dnsxlReply,
  validateDnsxlLists,
} from '../../../src/checks/dnsxl/index.js';
import { compileDnsxlList } from '../../../src/checks/dnsxl/list.js';

test('list settings compile to a normal zone and code ranges', () => {
  const list = compileDnsxlList({
    zone: 'Zen.Example.',
    kind: 'dnsbl',
    codes: ['127.0.0.2-127.0.0.11', ' 127.0.0.20 '],
  });
  assert.equal(list.zone, 'zen.example');
  assert.equal(list.weight, 1);
  assert.equal(list.txt, false);
  assert.deepEqual(list.codes, [
    { low: 0x7f000002, high: 0x7f00000b },
    { low: 0x7f000014, high: 0x7f000014 },
  ]);
  assert.deepEqual(list.unusable, [{ low: 0x7fffff00, high: 0x7fffffff }]);
  assert.equal(
    compileDnsxlList({ zone: 'bücher.example', kind: 'rhsbl' }).zone,
    'xn--bcher-kva.example',
  );
  assert.equal(compileDnsxlList({ zone: 'a.example', kind: 'dnswl' }).codes, null);
  assert.deepEqual(
    compileDnsxlList({ zone: 'a.example', kind: 'dnswl', unusableCodes: [] }).unusable,
    [],
  );
});

test('mistakes in list settings name the key and the problem', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ zone: 'a..b', kind: 'dnsbl' }, /^lists\[0\]\.zone: "a\.\.b" is not a zone$/],
    [{ kind: 'dnsbl' }, /^lists\[0\]\.zone: missing$/],
    [
      { zone: 'a.example', kind: 'dnsxl' },
      /^lists\[0\]\.kind: must be one of dnsbl, dnswl, rhsbl$/,
    ],
    [{ zone: 'a.example', kind: 'dnsbl', weight: -1 }, /^lists\[0\]\.weight: /],
    [{ zone: 'a.example', kind: 'dnsbl', weight: '2' }, /^lists\[0\]\.weight: /],
    [{ zone: 'a.example', kind: 'dnsbl', txt: 'yes' }, /^lists\[0\]\.txt: /],
    [
      { zone: 'a.example', kind: 'dnsbl', codes: '127.0.0.2' },
      /^lists\[0\]\.codes: must be a list/,
    ],
    [
      { zone: 'a.example', kind: 'dnsbl', codes: ['127.0.0.2', '127.0.0.300'] },
      /^lists\[0\]\.codes\[1\]: "127\.0\.0\.300" is not an address or a range of addresses$/,
    ],
    [
      { zone: 'a.example', kind: 'dnsbl', codes: ['127.0.0.9-127.0.0.2'] },
      /^lists\[0\]\.codes\[0\]: "127\.0\.0\.9-127\.0\.0\.2" is an empty range$/,
    ],
    [
      { zone: 'a.example', kind: 'dnsbl', codes: ['10.0.0.2'] },
      /^lists\[0\]\.codes\[0\]: "10\.0\.0\.2" is not inside 127\.0\.0\.0\/8$/,
    ],
    [
      { zone: 'a.example', kind: 'dnsbl', unusableCodes: ['::1'] },
      /^lists\[0\]\.unusableCodes\[0\]: /,
    ],
  ];
  for (const [list, message] of cases) {
    assert.throws(
      () => validateDnsxlLists([list as DnsxlList]),
      (err: unknown) => err instanceof TypeError && message.test(err.message),
      JSON.stringify(list),
    );
  }
  assert.throws(
    () =>
      validateDnsxlLists([
        { zone: 'a.example', kind: 'dnsbl' },
        { zone: 'b.example', kind: 'dnswl', codes: ['127.0.0.2-'] },
      ]),
    /^TypeError: lists\[1\]\.codes\[0\]/,
  );
  validateDnsxlLists([]);
});

test('domains are normalised for RHSBL lookups, or refused', () => {
  assert.equal(dnsxlDomain('Example.COM.'), 'example.com');
  assert.equal(dnsxlDomain('münchen.de'), 'xn--mnchen-3ya.de');
  assert.equal(dnsxlDomain('xn--mnchen-3ya.de'), 'xn--mnchen-3ya.de');
  assert.equal(dnsxlDomain('_tag.example.com'), '_tag.example.com');
  for (const bad of [
    '',
    '.',
    'com',
    'example.com..',
    '[192.0.2.1]',
    '192.0.2.1',
    'a\tb.example',
    'a\nb.example',
    'é',
    'a@b.example',
  ]) {
    assert.equal(dnsxlDomain(bad), null, JSON.stringify(bad));
  }
});

test('replies stay on one line of printable ASCII, at most 400 characters', () => {
  const listed: DnsxlListResult = {
    zone: 'bl.example',
    kind: 'dnsbl',
    result: 'listed',
    codes: ['127.0.0.2'],
    weight: 1,
    reason: `${'x'.repeat(600)}\r\n550 injected`,
  };
  const r = dnsxlReply({ result: 'listed', ip: '192.0.2.1', lists: [listed] });
  assert.equal(r.code, 554);
  assert.equal(r.xcode, '5.7.1');
  assert.ok(r.text.length <= 400, r.text);
  assert.match(r.text, /^client \[192\.0\.2\.1\] is listed at bl\.example: x+\.\.\.$/);
});
