// The Author Domain from the From fields (RFC 9989 section 5.3.1 over RFC 5322 sections 3.4 and
// 4.4): the address forms of real mail, and everything that leaves no single domain.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  authorDomains,
  MAX_FROM_ADDRESSES,
  MAX_FROM_OCTETS,
} from '../../../src/checks/dmarc/index.js';
import {
  fieldFromParts,
  fieldFromText,
  type HeaderField,
} from '../../../src/checks/message/index.js';

const from = (value: string) => fieldFromText(`From:${value}`);
const fromBytes = (value: Buffer): HeaderField => fieldFromParts(Buffer.from('From'), value, true);

function one(...fields: HeaderField[]): string {
  const found = authorDomains(fields);
  assert.equal(found.kind, 'one', `expected one domain: ${JSON.stringify(found)}`);
  return found.kind === 'one' ? found.domain : '';
}

function irregular(...fields: HeaderField[]) {
  const found = authorDomains(fields);
  assert.equal(found.kind, 'irregular', `expected no single domain: ${JSON.stringify(found)}`);
  return found.kind === 'irregular' ? found : { reason: '', domains: [] };
}

describe('address forms of real mail', () => {
  const cases: Array<[string, string]> = [
    [' jo@example.com', 'example.com'],
    [' Jo@EXAMPLE.Com', 'example.com'],
    [' Jo Doe <jo@example.com>', 'example.com'],
    [' "Doe, Jo" <jo@example.com>', 'example.com'],
    [' "Jo \\"the\\" <Doe>" <jo@example.com>', 'example.com'],
    [' jo@example.com (Jo Doe, evil@attacker.example)', 'example.com'],
    [' (comment (nested, x@attacker.example)) Jo <jo@example.com>', 'example.com'],
    [' =?utf-8?q?J=C3=B6_Doe?= <jo@example.com>', 'example.com'],
    [' =?iso-8859-1?b?Sm/rbA==?= <jo@example.com>', 'example.com'],
    [' Jo Doe\r\n <jo@example.com>', 'example.com'],
    [' "quoted local"@example.com', 'example.com'],
    [' jo.smith@mail.example.com', 'mail.example.com'],
    // Obsolete forms (RFC 5322 section 4.4).
    [' <@relay.example,@other.example:jo@example.com>', 'example.com'],
    [' jo . smith @ example (c) . com', 'example.com'],
    [' ,, jo@example.com ,', 'example.com'],
    [' Jo. Q. Doe <jo@example.com>', 'example.com'],
    // A group (RFC 6854 allows one in From).
    [' Team: jo@example.com, ann@example.com;', 'example.com'],
    // An unquoted comma in a display name, as some clients write it.
    [' Doe, Jo <jo@example.com>', 'example.com'],
    // Several addresses with one domain: one Author Domain.
    [' jo@example.com, Ann <ann@Example.com>', 'example.com'],
  ];
  for (const [value, domain] of cases) {
    test(`From:${JSON.stringify(value)}`, () => assert.equal(one(from(value)), domain));
  }

  test('an internationalized domain becomes its A-label', () => {
    assert.equal(
      one(fromBytes(Buffer.from(' Jö <jö@bücher.example>', 'utf8'))),
      'xn--bcher-kva.example',
    );
  });
});

describe('no single usable domain', () => {
  test('no From field', () => {
    assert.deepEqual(irregular(), { kind: 'irregular', reason: 'no From field', domains: [] });
  });

  test('several From fields, even with one domain', () => {
    const found = irregular(from(' jo@example.com'), from(' jo@example.com'));
    assert.match(found.reason, /^2 From fields/);
    assert.deepEqual(found.domains, ['example.com']);
  });

  test('addresses with different domains, in order of appearance', () => {
    const found = irregular(from(' jo@example.com, ann@example.net, bo@example.com'));
    assert.equal(
      found.reason,
      'several From addresses with different domains (example.com, example.net)',
    );
    assert.deepEqual(found.domains, ['example.com', 'example.net']);
  });

  test('addresses with no domain a policy can be published for', () => {
    for (const value of [
      ' jo@[192.0.2.1]',
      ' jo@192.0.2.1',
      ' jo@localhost..example',
      ' @example.com',
      ' jo@',
    ]) {
      const found = irregular(from(value));
      assert.match(found.reason, /a From address without a usable domain/, value);
      assert.deepEqual(found.domains, [], value);
    }
  });

  test('a group with no members, a bare name, an empty field', () => {
    for (const value of [
      ' undisclosed-recipients:;',
      ' Jo Doe',
      '',
      ' "unterminated <jo@example.com>',
    ]) {
      assert.equal(irregular(from(value)).reason, 'no address in the From field', value);
    }
  });

  test('a usable address beside one that cannot be read still names its domain', () => {
    const found = irregular(from(' jo@example.com, ann@x@example.net'));
    assert.match(found.reason, /a From address without a usable domain/);
    assert.deepEqual(found.domains, ['example.com']);
  });
});

describe('hostile From fields', () => {
  test('NUL and control characters make an address unusable, not an error', () => {
    const found = irregular(fromBytes(Buffer.from(' jo@exa\u0000mple.com', 'latin1')));
    assert.deepEqual(found.domains, []);
    assert.match(found.reason, /without a usable domain/);
  });

  test('8-bit bytes that are not UTF-8 are no U-label', () => {
    const found = irregular(fromBytes(Buffer.from([0x20, 0x6a, 0x40, 0xe9, 0x2e, 0x65, 0x78])));
    assert.deepEqual(found.domains, []);
    // In a display name they are only a name.
    const named = Buffer.concat([
      Buffer.from(' '),
      Buffer.from([0xe9, 0xff]),
      Buffer.from(' <jo@example.com>'),
    ]);
    assert.equal(one(fromBytes(named)), 'example.com');
  });

  test('a huge From field is not read at all', () => {
    const huge = from(` ${'a'.repeat(1_000_000)}@example.com`);
    const found = irregular(huge);
    assert.match(found.reason, new RegExp(`more than ${MAX_FROM_OCTETS}`));
    assert.deepEqual(found.domains, []);
  });

  test('a thousand addresses: reading stops at the bound', () => {
    const list = Array.from({ length: 1000 }, (_, i) => `u@d${i}.ex`).join(',');
    const found = irregular(from(` ${list}`));
    assert.match(found.reason, new RegExp(`more than ${MAX_FROM_ADDRESSES} From addresses`));
    assert.equal(found.domains.length, MAX_FROM_ADDRESSES);
    // One domain a thousand times is just as irregular.
    const same = Array.from({ length: 1000 }, (_, i) => `u${i}@x.ex`).join(',');
    assert.deepEqual(irregular(from(` ${same}`)).domains, ['x.ex']);
  });

  test('deeply nested comments and quotes are read without recursion', () => {
    assert.equal(
      one(from(` ${'('.repeat(5000)}${')'.repeat(5000)} jo@example.com`)),
      'example.com',
    );
    assert.equal(
      irregular(from(` ${'('.repeat(5000)} jo@example.com`)).reason,
      'no address in the From field',
    );
  });

  test('many From fields: only the first few are read', () => {
    const fields = Array.from({ length: 500 }, (_, i) => from(` u@d${i}.example`));
    const found = irregular(...fields);
    assert.match(found.reason, /^500 From fields/);
    assert.equal(found.domains.length, 4);
  });
});
