// The published examples: RFC 6376 appendix A (its message and the appendix C key) and
// RFC 8463 appendix A (an Ed25519 and an RSA signature of one message), through the real
// resolver and the fixture DNS server.
import assert from 'node:assert/strict';
import { createHash, createSign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  BodyHasher,
  canonicalizeHeader,
  canonicalizeSignatureField,
  type DkimSignatureResult,
  dkimAuthResults,
  loadSigningKey,
  selectSignedFields,
  signDkim,
  verifyDkim,
} from '../../../src/checks/dkim/index.js';
import { parseMessage } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';

const crlf = (text: string) => Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');

// RFC 6376 appendix C: the example key pair.
const RFC6376_PRIVATE_KEY = `-----BEGIN RSA PRIVATE KEY-----
MIICXwIBAAKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFC
jxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gb
to/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB
AoGBALmn+XwWk7akvkUlqb+dOxyLB9i5VBVfje89Teolwc9YJT36BGN/l4e0l6QX
/1//6DWUTB3KI6wFcm7TWJcxbS0tcKZX7FsJvUz1SbQnkS54DJck1EZO/BLa5ckJ
gAYIaqlA9C0ZwM6i58lLlPadX/rtHb7pWzeNcZHjKrjM461ZAkEA+itss2nRlmyO
n1/5yDyCluST4dQfO8kAB3toSEVc7DeFeDhnC1mZdjASZNvdHS4gbLIA1hUGEF9m
3hKsGUMMPwJBAPW5v/U+AWTADFCS22t72NUurgzeAbzb1HWMqO4y4+9Hpjk5wvL/
eVYizyuce3/fGke7aRYw/ADKygMJdW8H/OcCQQDz5OQb4j2QDpPZc0Nc4QlbvMsj
7p7otWRO5xRa6SzXqqV3+F0VpqvDmshEBkoCydaYwc2o6WQ5EBmExeV8124XAkEA
qZzGsIxVP+sEVRWZmW6KNFSdVUpk3qzK0Tz/WjQMe5z0UunY9Ax9/4PVhp/j61bf
eAYXunajbBSOLlx4D+TunwJBANkPI5S9iylsbLs6NkaMHV6k5ioHBBmgCak95JGX
GMot/L2x0IYyMLAz6oLWh2hm7zwtb0CgOrPo1ke44hFYnfc=
-----END RSA PRIVATE KEY-----
`;
const RFC6376_KEY_RECORD = [
  'v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkM',
  'oGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/R',
  'tdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToI',
  'MmPSPDdQPNUYckcQ2QIDAQAB',
];

// RFC 6376 appendix A.1 and A.2. The figures print "game.  Are" with two spaces and indent the
// continuation lines; the bh= and b= they print were computed over one space (the body text
// is the known mistake, not the signature), and over continuation lines indented by six
// spaces. Both bodies are tested: the printed one fails at the body hash.
const A1_HEADERS = `Received: from client1.football.example.com  [192.0.2.1]
      by submitserver.example.com with SUBMISSION;
      Fri, 11 Jul 2003 21:01:54 -0700 (PDT)
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>
`;
const A2_SIGNATURE = `DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;
      c=simple/simple; q=dns/txt; i=joe@football.example.com;
      h=Received : From : To : Subject : Date : Message-ID;
      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB
      4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut
      KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV
      4bmp/YzhwvcubU4=;
`;
const A1_BODY_SIGNED = 'Hi.\n\nWe lost the game. Are you hungry yet?\n\nJoe.\n';
const A1_BODY_PRINTED = 'Hi.\n\nWe lost the game.  Are you hungry yet?\n\nJoe.\n';

// RFC 8463 appendix A.
const RFC8463_MESSAGE = `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`;

const zone = {
  'brisbane._domainkey.example.com': [{ TXT: RFC6376_KEY_RECORD }],
  'brisbane._domainkey.football.example.com': [
    { TXT: 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=' },
  ],
  'test._domainkey.football.example.com': [
    {
      TXT: [
        'v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR',
        'iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC',
        'DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3',
        'Ip3G+2kryOTIKT+l/K4w3QIDAQAB',
      ],
    },
  ],
};

// Both examples are years old: t= is in the past, so any clock after it will do.
const clock = { now: () => Date.UTC(2024, 0, 1) };

let server: FixtureDnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer(zone);
  resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
});
after(() => server.close());

const verify = (message: Buffer) => verifyDkim(message, {}, { resolver, clock });
const words = (results: DkimSignatureResult[]) => results.map((r) => [r.result, r.reason]);

describe('RFC 6376 appendix A', () => {
  test('the simple body hash of the body as signed is the bh= printed', () => {
    const hasher = new BodyHasher('simple', 'sha256');
    hasher.update(crlf(A1_BODY_SIGNED));
    assert.equal(
      hasher.digest().hash.toString('base64'),
      '2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=',
    );
  });

  test('the message as signed verifies with the appendix C key', async () => {
    const results = await verify(crlf(`${A2_SIGNATURE}${A1_HEADERS}\n${A1_BODY_SIGNED}`));
    assert.deepEqual(words(results), [['pass', 'good signature']]);
    const [r] = results;
    assert.equal(r!.domain, 'example.com');
    assert.equal(r!.selector, 'brisbane');
    assert.equal(r!.identity, 'joe@football.example.com');
    assert.equal(r!.canonicalization, 'simple/simple');
    assert.equal(r!.keyBits, 1024);
    assert.equal(r!.headerB, 'AuUoFEfD');
    assert.deepEqual(r!.signedHeaders, ['Received', 'From', 'To', 'Subject', 'Date', 'Message-ID']);
  });

  test('the message as printed, two spaces after "game.", fails at the body hash', async () => {
    const results = await verify(crlf(`${A2_SIGNATURE}${A1_HEADERS}\n${A1_BODY_PRINTED}`));
    assert.deepEqual(words(results), [['fail', 'body hash did not verify']]);
  });

  test('a changed header under simple canonicalization fails the signature', async () => {
    const headers = A1_HEADERS.replace('Subject: Is dinner ready?', 'Subject:  Is dinner ready?');
    const results = await verify(crlf(`${A2_SIGNATURE}${headers}\n${A1_BODY_SIGNED}`));
    assert.deepEqual(words(results), [['fail', 'signature did not verify']]);
  });

  test('the appendix C key signs the A.2 header hash to the published b=', () => {
    const key = loadSigningKey('example.com', 'brisbane', RFC6376_PRIVATE_KEY);
    const { headers } = parseMessage(crlf(`${A2_SIGNATURE}${A1_HEADERS}\n${A1_BODY_SIGNED}`));
    const field = headers[0]!;
    const names = ['Received', 'From', 'To', 'Subject', 'Date', 'Message-ID'];
    const data = Buffer.concat([
      ...selectSignedFields(headers, names, new Set([field])).map((f) =>
        canonicalizeHeader(f, 'simple'),
      ),
      canonicalizeSignatureField(field, 'simple'),
    ]);
    // RSASSA-PKCS1-v1_5 is deterministic: the same input gives the same signature.
    const b = createSign('sha256').update(data).sign(key.privateKey).toString('base64');
    assert.equal(
      b,
      'AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHutKVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV4bmp/YzhwvcubU4=',
    );
  });

  test('our signer with the appendix C key and the A.2 choices gives a passing signature', async () => {
    const key = loadSigningKey('example.com', 'brisbane', RFC6376_PRIVATE_KEY);
    const signed = signDkim(crlf(`${A1_HEADERS}\n${A1_BODY_SIGNED}`), key, {
      canonicalization: 'simple/simple',
      headers: ['Received', 'From', 'To', 'Subject', 'Date', 'Message-ID'],
      oversign: [],
      timestamp: 1_057_982_519,
    });
    assert.deepEqual(words(await verify(signed)), [['pass', 'good signature']]);
  });
});

describe('RFC 8463 appendix A', () => {
  test('the Ed25519 and the RSA signature both verify', async () => {
    const results = await verify(crlf(RFC8463_MESSAGE));
    assert.deepEqual(words(results), [
      ['pass', 'good signature'],
      ['pass', 'good signature'],
    ]);
    assert.deepEqual(
      results.map((r) => [r.algorithm, r.selector, r.keyBits, r.timestamp, r.identity]),
      [
        ['ed25519-sha256', 'brisbane', 256, 1_528_637_909, '@football.example.com'],
        ['rsa-sha256', 'test', 1024, 1_528_637_909, '@football.example.com'],
      ],
    );
    assert.deepEqual(dkimAuthResults(results)[0], {
      method: 'dkim',
      result: 'pass',
      properties: [
        { ptype: 'header', property: 'd', value: 'football.example.com' },
        { ptype: 'header', property: 'i', value: '@football.example.com' },
        { ptype: 'header', property: 's', value: 'brisbane' },
        { ptype: 'header', property: 'a', value: 'ed25519-sha256' },
        { ptype: 'header', property: 'b', value: '/gCrinpc' },
      ],
    });
  });

  test('the relaxed body hash ignores the doubled space and the trailing blank line', () => {
    const body = parseMessage(crlf(RFC8463_MESSAGE)).body;
    const hasher = new BodyHasher('relaxed', 'sha256');
    hasher.update(Buffer.concat([body, Buffer.from('\r\n')]));
    assert.equal(
      hasher.digest().hash.toString('base64'),
      '2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=',
    );
    assert.notEqual(
      createHash('sha256').update(body).digest('base64'),
      '2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=',
    );
  });

  test('one changed byte of a signed header fails both', async () => {
    const tampered = RFC8463_MESSAGE.replace('Is dinner ready?', 'Is dinner ready!');
    assert.deepEqual(words(await verify(crlf(tampered))), [
      ['fail', 'signature did not verify'],
      ['fail', 'signature did not verify'],
    ]);
  });

  test('an added From is caught by the oversigned h=', async () => {
    const added = RFC8463_MESSAGE.replace(
      'From: Joe SixPack',
      'From: Mallory <m@evil.example>\nFrom: Joe SixPack',
    );
    assert.deepEqual(
      (await verify(crlf(added))).map((r) => r.result),
      ['fail', 'fail'],
    );
  });
});
