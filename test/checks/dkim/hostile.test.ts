// Hostile messages: huge headers, many signatures, oversized and malformed DKIM-Signature
// fields, 8-bit bytes, bodies in one-byte chunks. Every one gives results; none throws.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BodyHashes,
  type DkimSignatureResult,
  type DkimSigningKey,
  DkimVerification,
  dkimAuthResults,
  signDkim,
  verifyDkim,
} from '../../../src/checks/dkim/index.js';
import { fieldFromText, parseMessage } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { crlf, edit, MESSAGE, testKey, withField } from './support.js';

const NOW = Date.UTC(2024, 0, 5, 12, 0, 0);
const clock = { now: () => NOW };
const ed = testKey('ed25519');
const key: DkimSigningKey = {
  domain: 'example.com',
  selector: 'ed',
  privateKey: ed.privateKey,
  algorithm: 'ed25519-sha256',
};

let server: FixtureDnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer({
    'ed._domainkey.example.com': [{ TXT: `v=DKIM1; k=ed25519; p=${ed.p}` }],
  });
  resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
});
after(() => server.close());

const verify = (message: Buffer, limits = {}) =>
  verifyDkim(message, { limits }, { resolver, clock });
const pairs = (results: DkimSignatureResult[]) => results.map((r) => [r.result, r.reason]);

describe('size and count bounds', () => {
  test('thousands of header fields: the signature still verifies', async () => {
    const many = Array.from(
      { length: 5000 },
      (_, i) => `Received: from hop${i}.example.net\r\n`,
    ).join('');
    const message = edit(MESSAGE, (t) => many + t);
    const signed = signDkim(message, key, { clock });
    assert.deepEqual(pairs(await verify(signed)), [['pass', 'good signature']]);
  });

  test('a header over maxHeaderBytes: its signatures are not verified', async () => {
    const signed = signDkim(MESSAGE, key, { clock });
    server.resetLog();
    assert.deepEqual(pairs(await verify(signed, { maxHeaderBytes: 200 })), [
      ['policy', 'not verified: header larger than 200 bytes'],
    ]);
    assert.deepEqual(server.queries, []);
  });

  test('20 signatures: 10 verified, the rest policy', async () => {
    let message = MESSAGE;
    for (let i = 0; i < 20; i++)
      message = signDkim(message, key, { clock, timestamp: 1_704_400_000 + i });
    server.resetLog();
    const results = await verify(message);
    assert.equal(results.length, 20);
    assert.deepEqual(
      results.slice(0, 10).map((r) => r.result),
      Array(10).fill('pass'),
    );
    assert.deepEqual(
      pairs(results.slice(10)),
      Array(10).fill(['policy', 'not verified: more than 10 signatures']),
    );
    assert.equal(server.queries.length, 1);
    // Every header.b is distinct, as RFC 6008 wants.
    assert.equal(new Set(results.map((r) => r.headerB)).size, 20);
    assert.equal(dkimAuthResults(results).length, 20);
  });

  test('the signatures limit can be lowered', async () => {
    const twice = signDkim(signDkim(MESSAGE, key, { clock }), key, { clock });
    assert.deepEqual(
      (await verify(twice, { signatures: 1 })).map((r) => r.result),
      ['pass', 'policy'],
    );
  });

  test('a DKIM-Signature field over maxFieldBytes is a permerror', async () => {
    const signed = signDkim(MESSAGE, key, { clock });
    const huge = `DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=ed; z=${'A'.repeat(70_000)}`;
    assert.deepEqual(pairs(await verify(withField(signed, huge))), [
      ['permerror', 'signature field larger than 65536 bytes'],
      ['pass', 'good signature'],
    ]);
  });

  test('distinct body hashes beyond maxBodyHashes are not computed', async () => {
    let message = MESSAGE;
    for (const canonicalization of ['relaxed/relaxed', 'relaxed/simple'] as const) {
      message = signDkim(message, key, { clock, canonicalization });
    }
    const results = await verify(message, { maxBodyHashes: 1 });
    assert.deepEqual(pairs(results), [
      ['pass', 'good signature'],
      ['policy', 'not verified: more than 1 body hashes'],
    ]);
  });

  test('a body fed one byte at a time hashes as one chunk', () => {
    const body = parseMessage(MESSAGE).body;
    const whole = new BodyHashes();
    const bytewise = new BodyHashes();
    const wanted = (['simple', 'relaxed'] as const).flatMap((how) => [
      [whole.want(how, 'sha256'), bytewise.want(how, 'sha256')],
      [whole.want(how, 'sha1', 10), bytewise.want(how, 'sha1', 10)],
    ]);
    whole.update(body);
    for (const byte of body) bytewise.update(Buffer.from([byte]));
    whole.finish();
    bytewise.finish();
    for (const [a, b] of wanted) assert.deepEqual(a!.result(), b!.result());
  });
});

describe('malformed DKIM-Signature fields', () => {
  const base = {
    v: '1',
    a: 'ed25519-sha256',
    d: 'example.com',
    s: 'ed',
    h: 'from:to',
    bh: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    b: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  };
  const field = (tags: Record<string, string | undefined>) =>
    `DKIM-Signature: ${Object.entries({ ...base, ...tags })
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join('; ')}`;
  const cases: Array<[string, string]> = [
    [field({ v: undefined }), 'no v= tag'],
    [field({ v: '2' }), 'v= is not 1'],
    [field({ a: undefined }), 'no a= tag'],
    [field({ b: undefined }), 'no b= tag'],
    [field({ bh: undefined }), 'no bh= tag'],
    [field({ d: undefined }), 'no d= tag'],
    [field({ h: undefined }), 'no h= tag'],
    [field({ s: undefined }), 'no s= tag'],
    [field({ a: 'rsa-md5' }), 'unknown algorithm a=rsa-md5'],
    [field({ b: 'not*base64' }), 'b= is not base64'],
    [field({ bh: '' }), 'bh= is not base64'],
    [field({ c: 'fancy/simple' }), 'unknown canonicalization c=fancy/simple'],
    [field({ c: 'simple/simple/simple' }), 'unknown canonicalization c=simple/simple/simple'],
    [field({ d: 'exa mple.com' }), 'd= is not a domain name'],
    [field({ d: 'com' }), 'd= is not a domain name'],
    [field({ s: '-bad-.' }), 's= is not a selector'],
    [field({ h: 'to:subject' }), 'h= does not include From'],
    [field({ h: 'from:x y' }), 'h= holds something that is no field name'],
    [field({ i: 'jo@example.org' }), 'i= is not in the d= domain'],
    [field({ i: 'nobody' }), 'i= has no @'],
    [field({ i: 'jo@notexample.com' }), 'i= is not in the d= domain'],
    [field({ l: 'ten' }), 'l= is not a length'],
    [field({ t: '-5' }), 't= is not a timestamp'],
    [field({ x: '1234567890123' }), 'x= is not a timestamp'],
    [field({ t: '200', x: '100' }), 'x= is not after t='],
    [field({ q: 'http/well-known' }), 'unsupported query method q=http/well-known'],
    ['DKIM-Signature: v=1; v=1; a=x', "bad tag list: tag 'v' appears twice"],
    ['DKIM-Signature: just words', "bad tag list: tag 'just words' has no '='"],
    ['DKIM-Signature:', 'bad tag list: empty tag list'],
    ['DKIM-Signature: v=1;; a=x', 'bad tag list: empty tag at part 2'],
    ['DKIM-Signature: v=1; a=x\x01y', "bad tag list: tag 'a' has a malformed value"],
    ['DKIM-Signature: v=1; a=\u00e9\u00e8', 'no b= tag'],
  ];
  for (const [text, reason] of cases) {
    test(reason, async () => {
      const message = withField(MESSAGE, fieldFromText(text));
      assert.deepEqual(pairs(await verify(message)), [['permerror', reason]]);
    });
  }

  test('what could be read is reported, made printable', async () => {
    const message = withField(
      MESSAGE,
      fieldFromText(field({ d: 'EXAMPLE.com', a: 'rsa-sha512', i: '@ex\u00e9mple.com' })),
    );
    const [r] = await verify(message);
    assert.deepEqual(
      [r!.result, r!.domain, r!.selector, r!.algorithm, r!.identity, r!.headerB],
      ['permerror', 'example.com', 'ed', 'rsa-sha512', '@ex??mple.com', 'AAAAAAAA'],
    );
  });

  test('header.b grows until it tells two signatures apart', async () => {
    const one = field({ b: 'AAAAAAAAAAB=', v: '9' });
    const two = field({ b: 'AAAAAAAAAAC=', v: '9' });
    const results = await verify(withField(withField(MESSAGE, one), two));
    assert.deepEqual(
      results.map((r) => r.headerB),
      ['AAAAAAAAAAC', 'AAAAAAAAAAB'],
    );
  });

  test('folded tags, an empty trailing part, unknown tags: still a signature', async () => {
    const signed = signDkim(MESSAGE, key, { clock });
    const refolded = edit(signed, (t) => t.replace('v=1;', 'v = 1 ;\r\n\tzz=extra ; '));
    // The field changed, so the signature no longer verifies, but it was read.
    assert.deepEqual(pairs(await verify(refolded)), [['fail', 'signature did not verify']]);
  });
});

describe('8-bit and odd bytes', () => {
  test('8-bit header values are signed and verified byte for byte', async () => {
    for (const canonicalization of ['simple/simple', 'relaxed/relaxed'] as const) {
      const raw = edit(MESSAGE, (t) =>
        t.replace('Subject: Lunch on   Friday?', 'Subject: D\xe9jeuner \xc3\xa0 midi?\xff'),
      );
      const signed = signDkim(raw, key, { clock, canonicalization });
      assert.deepEqual(pairs(await verify(signed)), [['pass', 'good signature']], canonicalization);
      const changed = edit(signed, (t) => t.replace('\xff', '\xfe'));
      assert.deepEqual(pairs(await verify(changed)), [['fail', 'signature did not verify']]);
    }
  });

  test('NUL, bare CR and bare LF in the body', async () => {
    const raw = Buffer.concat([
      crlf('From: jo@example.com\nSubject: x\n\n'),
      Buffer.from('a\x00b\rc\r\n\r\n\x00\r\n'),
    ]);
    const signed = signDkim(raw, key, { clock });
    assert.deepEqual(pairs(await verify(signed)), [['pass', 'good signature']]);
  });

  test('random bytes in fields and body never throw', async () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 200; round++) {
      const bytes = Buffer.alloc(50 + (random() % 400));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random() % 256;
      const tagsy = Buffer.from(
        `DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=${bytes.toString('latin1', 0, 20)}; b=${bytes.toString('latin1', 20, 40)}\r\n`,
        'latin1',
      );
      const message = Buffer.concat([tagsy, bytes]);
      const results = await verifyDkim(message, {}, { resolver, clock });
      assert.ok(Array.isArray(results));
      for (const r of results) {
        assert.ok(
          ['pass', 'fail', 'neutral', 'policy', 'temperror', 'permerror'].includes(r.result),
        );
        assert.doesNotMatch(
          r.reason + r.domain + r.selector + r.algorithm + r.identity + r.headerB,
          /[\r\n\0]/,
        );
      }
    }
  });

  test('headers with no signature and no resolver give []', async () => {
    const verification = new DkimVerification(parseMessage(MESSAGE).headers);
    verification.update(Buffer.from('x'));
    assert.deepEqual(await verification.finish(), []);
  });
});
