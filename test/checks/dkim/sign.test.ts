// DKIM signing: the field we write (tags, h= with oversigning, folding), key files, generated
// key pairs, and option mistakes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  DEFAULT_OVERSIGNED_HEADERS,
  DkimSigning,
  generateKeyPair,
  loadSigningKey,
  parseKeyRecord,
  parseTagList,
  signDkim,
  verifyDkim,
} from '../../../src/checks/dkim/index.js';
import { fieldValue, parseMessage, unfoldedValue } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { MESSAGE } from './support.js';

const NOW = Date.UTC(2024, 0, 5, 12, 0, 0);
const clock = { now: () => NOW };

const rsaPair = generateKeyPair('rsa', 2048);
const edPair = generateKeyPair('ed25519');
const rsaKey = loadSigningKey('Example.COM', 'rsa2024', rsaPair.privateKeyPem);
const edKey = loadSigningKey('example.com', 'ed2024', edPair.privateKeyPem);

let server: FixtureDnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer({
    'rsa2024._domainkey.example.com': [{ TXT: rsaPair.publicKeyRecord }],
    'ed2024._domainkey.example.com': [{ TXT: edPair.publicKeyRecord }],
  });
  resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
});
after(() => server.close());

function tagsOf(signed: Buffer) {
  const field = parseMessage(signed).headers[0]!;
  assert.equal(field.name, 'DKIM-Signature');
  const parsed = parseTagList(fieldValue(field));
  assert.ok(parsed.ok);
  return { field, tags: parsed.tags };
}

describe('the DKIM-Signature field', () => {
  test('tags, in order, b= last', () => {
    const { tags } = tagsOf(signDkim(MESSAGE, rsaKey, { clock }));
    assert.deepEqual([...tags.keys()], ['v', 'a', 'c', 'd', 's', 't', 'h', 'bh', 'b']);
    assert.equal(tags.get('v'), '1');
    assert.equal(tags.get('a'), 'rsa-sha256');
    assert.equal(tags.get('c'), 'relaxed/relaxed');
    assert.equal(tags.get('d'), 'example.com');
    assert.equal(tags.get('s'), 'rsa2024');
    assert.equal(tags.get('t'), String(NOW / 1000));
  });

  test('h=: the present fields, then the oversigned names once more', () => {
    const { tags } = tagsOf(signDkim(MESSAGE, edKey, { clock }));
    const names = tags.get('h')!.replace(/\s+/g, '').split(':');
    const present = ['from', 'subject', 'date', 'message-id', 'to'];
    assert.deepEqual(names, [
      ...present,
      ...DEFAULT_OVERSIGNED_HEADERS.map((n) => n.toLowerCase()),
    ]);
  });

  test('h=: a field present twice is named twice; From is always signed', () => {
    const twice = Buffer.from(
      `Received: a\r\nReceived: b\r\n${MESSAGE.toString('latin1')}`,
      'latin1',
    );
    const { tags } = tagsOf(signDkim(twice, edKey, { clock, headers: ['Received'], oversign: [] }));
    assert.deepEqual(tags.get('h')!.split(':'), ['from', 'received', 'received']);
  });

  test('options: i=, x=, l=, simple canonicalization', () => {
    const { tags } = tagsOf(
      signDkim(MESSAGE, edKey, {
        clock,
        identity: 'jo@mail.example.com',
        expiresAfter: 86_400,
        bodyLength: true,
        canonicalization: 'simple/simple',
        timestamp: 1_700_000_000,
      }),
    );
    assert.equal(tags.get('i'), 'jo@mail.example.com');
    assert.equal(tags.get('t'), '1700000000');
    assert.equal(tags.get('x'), '1700086400');
    assert.equal(tags.get('l'), String('Shall we meet at noon?\t\r\nThe usual place.\r\n'.length));
    assert.equal(tags.get('c'), 'simple/simple');
  });

  test('folded at 78 columns with CRLF and a tab', () => {
    const { field } = tagsOf(signDkim(MESSAGE, rsaKey, { clock }));
    const lines = field.raw.toString('latin1').split('\r\n');
    assert.ok(lines.length > 3);
    for (const line of lines) assert.ok(line.length <= 78, line);
    for (const line of lines.slice(1)) assert.match(line, /^\t\S/);
    assert.match(unfoldedValue(field).replace(/\s+/g, ''), /;b=[A-Za-z0-9+/]{300,}=*$/);
  });

  test('the streaming signer writes the field signDkim writes', () => {
    const { headers, body } = parseMessage(MESSAGE);
    const signing = new DkimSigning(headers, edKey, { clock });
    signing.update(body.subarray(0, 3));
    signing.update(body.subarray(3));
    const field = signing.finish();
    assert.equal(signing.finish(), field);
    assert.deepEqual(field.raw, tagsOf(signDkim(MESSAGE, edKey, { clock })).field.raw);
  });

  test('what is signed verifies, through generated key records in DNS', async () => {
    for (const key of [rsaKey, edKey]) {
      const results = await verifyDkim(signDkim(MESSAGE, key, { clock }), {}, { resolver, clock });
      assert.deepEqual(
        results.map((r) => [r.result, r.domain, r.selector]),
        [['pass', 'example.com', key.selector]],
      );
    }
  });
});

describe('loadSigningKey', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  test('RSA as PKCS#8 and PKCS#1 PEM, Ed25519 as PKCS#8', () => {
    const pkcs8 = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const pkcs1 = rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string;
    assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
    assert.equal(loadSigningKey('example.com', 's', pkcs8).algorithm, 'rsa-sha256');
    assert.equal(loadSigningKey('example.com', 's', pkcs1).algorithm, 'rsa-sha256');
    assert.equal(
      loadSigningKey('example.com', 's', edPair.privateKeyPem).algorithm,
      'ed25519-sha256',
    );
  });

  test('bad files and names throw a clear Error', () => {
    assert.throws(
      () => loadSigningKey('example.com', 'sel', 'not a key'),
      /^Error: DKIM key for sel\._domainkey\.example\.com is not a readable PEM private key/,
    );
    const short = generateKeyPairSync('rsa', { modulusLength: 512 });
    assert.throws(
      () =>
        loadSigningKey(
          'example.com',
          'sel',
          short.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
        ),
      /has 512 bits; RFC 8301 requires at least 1024/,
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(
      () =>
        loadSigningKey(
          'example.com',
          'sel',
          ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
        ),
      /is a ec key; only RSA and Ed25519 sign/,
    );
    assert.throws(
      () => loadSigningKey('example com', 'sel', edPair.privateKeyPem),
      /not a domain name/,
    );
    assert.throws(() => loadSigningKey('example.com', 'a;b', edPair.privateKeyPem), /selector/);
  });
});

describe('generateKeyPair', () => {
  test('records that parse, of the asked size', () => {
    const rsa = parseKeyRecord(rsaPair.publicKeyRecord);
    assert.ok(rsa.ok);
    assert.deepEqual([rsa.key.keyType, rsa.key.bits], ['rsa', 2048]);
    assert.match(rsaPair.publicKeyRecord, /^v=DKIM1; k=rsa; p=/);
    const ed = parseKeyRecord(edPair.publicKeyRecord);
    assert.ok(ed.ok);
    assert.equal(ed.key.keyType, 'ed25519');
    assert.match(edPair.publicKeyRecord, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    const small = parseKeyRecord(generateKeyPair('rsa', 1024).publicKeyRecord);
    assert.ok(small.ok);
    assert.equal(small.key.bits, 1024);
  });
});

describe('option mistakes throw', () => {
  const { headers } = parseMessage(MESSAGE);
  for (const [name, options, message] of [
    ['identity outside d=', { identity: 'jo@example.org' }, /not in the signing domain/],
    ['identity without @', { identity: 'jo' }, /not an address/],
    ['expiresAfter 0', { expiresAfter: 0 }, /expiresAfter/],
    ['a fractional timestamp', { timestamp: 1.5 }, /timestamp/],
    ['a bad header name', { headers: ['Sub ject'] }, /not a header field name/],
    ['a bad canonicalization', { canonicalization: 'loose/simple' }, /canonicalization/],
  ] as const) {
    test(name, () => {
      assert.throws(() => new DkimSigning(headers, edKey, options as never), message);
    });
  }
});
