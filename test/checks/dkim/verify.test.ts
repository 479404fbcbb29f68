// DKIM verification through the real resolver and the fixture DNS server: sign-then-verify
// round trips, tampering, time, every kind of key record, algorithm policy and key sizes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type CanonicalizationPair,
  type DkimSignatureResult,
  DkimSigning,
  type DkimSigningKey,
  type DkimSigningOptions,
  DkimVerification,
  type DkimVerifySettings,
  dkimAuthResults,
  signDkim,
  verifyDkim,
} from '../../../src/checks/dkim/index.js';
import { parseMessage } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import type { Resolver } from '../../../src/dns/types.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { crlf, edit, handSign, MESSAGE, type TestKey, testKey } from './support.js';

const NOW = Date.UTC(2024, 0, 5, 12, 0, 0);
const NOW_S = NOW / 1000;
const clock = { now: () => NOW };

const rsa = testKey('rsa', 2048);
const ed = testKey('ed25519');
const rsa512 = testKey('rsa', 512);
const rsa3072 = testKey('rsa', 3072);
const rsa4096 = testKey('rsa', 4096);

const record = (key: TestKey, extra = '', type = key === ed ? 'ed25519' : 'rsa') =>
  `v=DKIM1; k=${type}; ${extra}p=${key.p}`;

const zone = {
  'rsa._domainkey.example.com': [{ TXT: record(rsa) }],
  'ed._domainkey.example.com': [{ TXT: record(ed) }],
  'short._domainkey.example.com': [{ TXT: record(rsa512) }],
  'big3072._domainkey.example.com': [{ TXT: record(rsa3072) }],
  'big4096._domainkey.example.com': [{ TXT: record(rsa4096) }],
  'kmismatch._domainkey.example.com': [{ TXT: record(ed) }],
  'edwithrsa._domainkey.example.com': [{ TXT: record(rsa, '', 'ed25519') }],
  'sha1only._domainkey.example.com': [{ TXT: record(rsa, 'h=sha1; ') }],
  'bothhashes._domainkey.example.com': [{ TXT: record(rsa, 'h=sha1:sha256; ') }],
  'email._domainkey.example.com': [{ TXT: record(rsa, 's=email; ') }],
  'other._domainkey.example.com': [{ TXT: record(rsa, 's=other; ') }],
  'strict._domainkey.example.com': [{ TXT: record(rsa, 't=s; ') }],
  'testing._domainkey.example.com': [{ TXT: record(ed, 't=y; ') }],
  'revoked._domainkey.example.com': [{ TXT: 'v=DKIM1; k=rsa; p=' }],
  'garbage._domainkey.example.com': [{ TXT: 'this is not a key record' }],
  'two._domainkey.example.com': [{ TXT: record(rsa) }, { TXT: record(ed) }],
  'split._domainkey.example.com': [
    { TXT: [`v=DKIM1; k=rsa; p=${rsa.p.slice(0, 100)}`, rsa.p.slice(100, 250), rsa.p.slice(250)] },
  ],
  'nodata._domainkey.example.com': [{ A: '192.0.2.1' }],
  'broken._domainkey.example.com': [{ RCODE: 'SERVFAIL' }],
  'slow._domainkey.example.com': ['TIMEOUT'],
};

let server: FixtureDnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer(zone);
  resolver = createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
});
after(() => server.close());

function signingKey(selector: string, key: TestKey = rsa): DkimSigningKey {
  return {
    domain: 'example.com',
    selector,
    privateKey: key.privateKey,
    algorithm: key === ed ? 'ed25519-sha256' : 'rsa-sha256',
  };
}

function sign(
  selector: string,
  key: TestKey = rsa,
  options: DkimSigningOptions = {},
  message = MESSAGE,
) {
  return signDkim(message, signingKey(selector, key), { clock, ...options });
}

function verify(message: Buffer, settings: Partial<DkimVerifySettings> = {}) {
  return verifyDkim(message, settings, { resolver, clock });
}

async function verdicts(message: Buffer, settings: Partial<DkimVerifySettings> = {}) {
  return (await verify(message, settings)).map((r) => [r.result, r.reason]);
}

const PASS = [['pass', 'good signature']];
const BODY_FAIL = [['fail', 'body hash did not verify']];
const SIG_FAIL = [['fail', 'signature did not verify']];

describe('sign then verify', () => {
  const canonicalizations: CanonicalizationPair[] = [
    'relaxed/relaxed',
    'relaxed/simple',
    'simple/relaxed',
    'simple/simple',
  ];
  for (const [selector, key] of [
    ['rsa', rsa],
    ['ed', ed],
  ] as const) {
    for (const canonicalization of canonicalizations) {
      test(`${selector} ${canonicalization}`, async () => {
        const results = await verify(sign(selector, key, { canonicalization }));
        assert.deepEqual(
          results.map((r) => [r.result, r.reason, r.canonicalization, r.algorithm]),
          [
            [
              'pass',
              'good signature',
              canonicalization,
              key === ed ? 'ed25519-sha256' : 'rsa-sha256',
            ],
          ],
        );
        assert.equal(results[0]!.keyBits, key === ed ? 256 : 2048);
        assert.equal(results[0]!.timestamp, NOW_S);
        assert.equal(results[0]!.identity, '@example.com');
        assert.equal(results[0]!.testing, false);
      });
    }
  }

  test('the streaming verifier gives the same result, body in odd chunks', async () => {
    const signed = sign('ed', ed);
    const { headers, body } = parseMessage(signed);
    const verification = new DkimVerification(headers, {}, { resolver, clock });
    for (let at = 0; at < body.length; at += 7) verification.update(body.subarray(at, at + 7));
    const results = await verification.finish();
    assert.deepEqual(
      results.map((r) => r.result),
      ['pass'],
    );
    assert.equal(await verification.finish(), results);
  });

  test('an unsigned message gives no results and dkim=none', async () => {
    const results = await verify(MESSAGE);
    assert.deepEqual(results, []);
    assert.deepEqual(dkimAuthResults(results), [
      { method: 'dkim', result: 'none', properties: [] },
    ]);
  });

  test('two signatures with one key share one lookup', async () => {
    const once = sign('rsa', rsa, { canonicalization: 'simple/simple' });
    const twice = sign('rsa', rsa, { canonicalization: 'relaxed/relaxed' }, once);
    server.resetLog();
    assert.deepEqual(await verdicts(twice), [...PASS, ...PASS]);
    assert.deepEqual(
      server.queries.map((q) => `${q.name} ${q.type}`),
      ['rsa._domainkey.example.com TXT'],
    );
  });

  test('3072- and 4096-bit keys verify', async () => {
    const results = [
      ...(await verify(sign('big3072', rsa3072))),
      ...(await verify(sign('big4096', rsa4096))),
    ];
    assert.deepEqual(
      results.map((r) => [r.result, r.keyBits]),
      [
        ['pass', 3072],
        ['pass', 4096],
      ],
    );
  });
});

describe('l=', () => {
  test('the whole body signed: not short', async () => {
    const [r] = await verify(sign('rsa', rsa, { bodyLength: true }));
    assert.equal(r!.result, 'pass');
    assert.equal(r!.bodyLength, 'Shall we meet at noon?\r\nThe usual place.\r\n'.length);
    assert.equal(r!.bodyLengthShort, false);
  });

  test('text appended after signing still passes, and is reported', async () => {
    const signed = sign('rsa', rsa, { bodyLength: true });
    const [r] = await verify(Buffer.concat([signed, crlf('Buy cheap watches!\n')]));
    assert.equal(r!.result, 'pass');
    assert.equal(r!.bodyLengthShort, true);
  });

  test('a change inside the signed length fails', async () => {
    const signed = sign('rsa', rsa, { bodyLength: true });
    assert.deepEqual(await verdicts(edit(signed, (t) => t.replace('noon', 'nine'))), BODY_FAIL);
  });

  test('an l= longer than the body: the whole body is hashed', async () => {
    const signed = handSign(MESSAGE, {
      algorithm: 'rsa-sha256',
      key: rsa.privateKey,
      selector: 'rsa',
      extra: 'l=99999;',
    });
    // The hand signer hashed the whole body, as a signer that lies about l= would.
    const [r] = await verify(signed);
    assert.equal(r!.result, 'pass');
    assert.equal(r!.bodyLengthShort, false);
    const cut = edit(signed, (t) => t.replace('The usual place.\r\n', ''));
    assert.deepEqual(await verdicts(cut), BODY_FAIL);
  });
});

describe('tampering', () => {
  test('one body byte', async () => {
    assert.deepEqual(
      await verdicts(edit(sign('rsa'), (t) => t.replace('noon?', 'noon!'))),
      BODY_FAIL,
    );
  });

  test('one header value', async () => {
    assert.deepEqual(
      await verdicts(edit(sign('rsa'), (t) => t.replace('sam@example.org', 'sal@example.org'))),
      SIG_FAIL,
    );
  });

  test('an unsigned header may be added', async () => {
    assert.deepEqual(await verdicts(edit(sign('rsa'), (t) => `X-Spam: no\r\n${t}`)), PASS);
  });

  test('a From added after signing fails: From is oversigned', async () => {
    const added = edit(sign('rsa'), (t) => `From: Mallory <m@evil.example>\r\n${t}`);
    assert.deepEqual(await verdicts(added), SIG_FAIL);
    // Without oversigning, the added From is not what was signed, and goes unnoticed.
    const plain = edit(
      sign('rsa', rsa, { oversign: [] }),
      (t) => `From: Mallory <m@evil.example>\r\n${t}`,
    );
    assert.deepEqual(await verdicts(plain), PASS);
  });

  test('header whitespace: relaxed tolerates it, simple does not', async () => {
    const respace = (t: string) =>
      t.replace('Subject: Lunch on   Friday?', 'Subject:Lunch  on\r\n\t Friday?  ');
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'relaxed/simple' }), respace)),
      PASS,
    );
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'simple/simple' }), respace)),
      SIG_FAIL,
    );
  });

  test('header name case: relaxed tolerates it, simple does not', async () => {
    const recase = (t: string) => t.replace('To: Sam', 'TO: Sam');
    assert.deepEqual(await verdicts(edit(sign('rsa', rsa), recase)), PASS);
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'simple/simple' }), recase)),
      SIG_FAIL,
    );
  });

  test('body whitespace: relaxed tolerates it, simple does not', async () => {
    const respace = (t: string) => t.replace('meet at noon?\t', 'meet  at noon? ');
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'simple/relaxed' }), respace)),
      PASS,
    );
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'simple/simple' }), respace)),
      BODY_FAIL,
    );
  });

  test('an extra trailing empty line: both tolerate it', async () => {
    const more = (t: string) => `${t}\r\n\r\n`;
    assert.deepEqual(await verdicts(edit(sign('rsa'), more)), PASS);
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'simple/simple' }), more)),
      PASS,
    );
  });

  test('an extra trailing line of spaces: relaxed tolerates it, simple does not', async () => {
    const more = (t: string) => `${t}   \r\n`;
    assert.deepEqual(await verdicts(edit(sign('rsa'), more)), PASS);
    assert.deepEqual(
      await verdicts(edit(sign('rsa', rsa, { canonicalization: 'simple/simple' }), more)),
      BODY_FAIL,
    );
  });

  test('an empty line added inside the body fails both', async () => {
    const inner = (t: string) => t.replace('The usual', '\r\nThe usual');
    assert.deepEqual(await verdicts(edit(sign('rsa'), inner)), BODY_FAIL);
  });

  test('a forged b= of the right length fails', async () => {
    const forged = handSign(MESSAGE, {
      algorithm: 'ed25519-sha256',
      key: ed.privateKey,
      selector: 'ed',
      forgedB: Buffer.alloc(64, 7).toString('base64'),
    });
    assert.deepEqual(await verdicts(forged), SIG_FAIL);
  });
});

describe('time', () => {
  test('x= in the past is expired; within the skew it is not', async () => {
    const old = sign('rsa', rsa, { timestamp: NOW_S - 3600, expiresAfter: 600 });
    assert.deepEqual(await verdicts(old), [['fail', 'signature expired']]);
    const recent = sign('rsa', rsa, { timestamp: NOW_S - 700, expiresAfter: 600 });
    assert.deepEqual(await verdicts(recent), PASS);
    assert.deepEqual(await verdicts(recent, { clockSkewSeconds: 0 }), [
      ['fail', 'signature expired'],
    ]);
    const [r] = await verify(recent);
    assert.equal(r!.expiration, NOW_S - 100);
  });

  test('t= in the future beyond the skew', async () => {
    assert.deepEqual(await verdicts(sign('rsa', rsa, { timestamp: NOW_S + 3600 })), [
      ['fail', 'signature timestamp in the future'],
    ]);
    assert.deepEqual(await verdicts(sign('rsa', rsa, { timestamp: NOW_S + 200 })), PASS);
  });

  test('x= not after t= is a bad signature', async () => {
    const signed = handSign(MESSAGE, {
      algorithm: 'rsa-sha256',
      key: rsa.privateKey,
      selector: 'rsa',
      extra: `t=${NOW_S}; x=${NOW_S};`,
    });
    assert.deepEqual(await verdicts(signed), [['permerror', 'x= is not after t=']]);
  });
});

describe('key records', () => {
  const cases: Array<[string, TestKey, DkimSignatureResult['result'], string]> = [
    ['kmismatch', rsa, 'permerror', 'key type k=ed25519 does not fit a=rsa-sha256'],
    ['edwithrsa', rsa, 'permerror', 'key record p= is no ed25519 public key'],
    ['sha1only', rsa, 'permerror', 'key h= does not allow sha256'],
    ['bothhashes', rsa, 'pass', 'good signature'],
    ['email', rsa, 'pass', 'good signature'],
    ['other', rsa, 'permerror', 'key s= does not allow email'],
    ['revoked', rsa, 'permerror', 'key revoked (empty p=)'],
    ['garbage', rsa, 'permerror', "bad key record: tag 'this is not a key record' has no '='"],
    ['two', rsa, 'permerror', '2 key records at two._domainkey.example.com'],
    ['split', rsa, 'pass', 'good signature'],
    ['absent', rsa, 'permerror', 'no key record at absent._domainkey.example.com'],
    ['nodata', rsa, 'permerror', 'no key record at nodata._domainkey.example.com'],
    ['broken', rsa, 'temperror', 'key lookup at broken._domainkey.example.com failed: servfail'],
    ['slow', rsa, 'temperror', 'key lookup at slow._domainkey.example.com failed: timeout'],
  ];
  for (const [selector, key, word, reason] of cases) {
    test(`${selector}: ${word} (${reason})`, async () => {
      assert.deepEqual(await verdicts(sign(selector, key)), [[word, reason]]);
    });
  }

  test('an ed25519 key for an rsa record name is refused by k=', async () => {
    assert.deepEqual(await verdicts(sign('rsa', ed)), [
      ['permerror', 'key type k=rsa does not fit a=ed25519-sha256'],
    ]);
  });

  test('t=s: i= must be d= itself', async () => {
    assert.deepEqual(await verdicts(sign('strict', rsa, { identity: 'jo@example.com' })), PASS);
    assert.deepEqual(await verdicts(sign('strict', rsa, { identity: '@mail.example.com' })), [
      ['permerror', 'key t=s does not allow an i= subdomain'],
    ]);
    // Without t=s a subdomain is fine.
    assert.deepEqual(await verdicts(sign('rsa', rsa, { identity: '@mail.example.com' })), PASS);
  });

  test('t=y: a pass says testing, and so does a fail', async () => {
    const [r] = await verify(sign('testing', ed));
    assert.deepEqual([r!.result, r!.reason, r!.testing], ['pass', 'key in testing mode', true]);
    assert.equal(dkimAuthResults([r!])[0]!.reason, 'key in testing mode');
    const [bad] = await verify(edit(sign('testing', ed), (t) => t.replace('noon', 'one')));
    assert.deepEqual([bad!.result, bad!.testing], ['fail', true]);
  });

  test('a spent time budget is a temperror without a query', async () => {
    server.resetLog();
    assert.deepEqual(await verdicts(sign('rsa'), { limits: { timeBudgetMs: 0 } }), [
      ['temperror', 'DNS time budget spent'],
    ]);
    assert.deepEqual(server.queries, []);
  });

  test('no resolver: a temperror', async () => {
    assert.deepEqual(
      (await verifyDkim(sign('rsa'))).map((r) => [r.result, r.reason]),
      [['temperror', 'no DNS resolver given']],
    );
  });
});

describe('algorithms and key sizes (RFC 8301)', () => {
  const sha1 = () =>
    handSign(MESSAGE, { algorithm: 'rsa-sha1', key: rsa.privateKey, selector: 'rsa' });

  test('rsa-sha1 is refused by default', async () => {
    server.resetLog();
    assert.deepEqual(await verdicts(sha1()), [['policy', 'rsa-sha1 not accepted']]);
    assert.deepEqual(server.queries, []);
  });

  test('rsa-sha1 verifies when accepted, and fails when tampered', async () => {
    assert.deepEqual(await verdicts(sha1(), { acceptRsaSha1: true }), PASS);
    assert.deepEqual(
      await verdicts(
        edit(sha1(), (t) => t.replace('noon', 'none')),
        { acceptRsaSha1: true },
      ),
      BODY_FAIL,
    );
  });

  test('rsa-sha1 against a key that allows only sha256', async () => {
    const signed = handSign(MESSAGE, {
      algorithm: 'rsa-sha1',
      key: rsa.privateKey,
      selector: 'email',
    });
    assert.deepEqual(await verdicts(signed, { acceptRsaSha1: true }), PASS);
  });

  test('a 512-bit key is refused, even with a good signature', async () => {
    const signed = handSign(MESSAGE, {
      algorithm: 'rsa-sha256',
      key: rsa512.privateKey,
      selector: 'short',
    });
    assert.deepEqual(await verdicts(signed), [['policy', 'key too short: 512 bits']]);
    assert.deepEqual(await verdicts(signed, { minRsaBits: 512 }), PASS);
  });

  test('minRsaBits above the key', async () => {
    assert.deepEqual(await verdicts(sign('rsa'), { minRsaBits: 3072 }), [
      ['policy', 'key too short: 2048 bits'],
    ]);
  });
});

describe('Authentication-Results clauses', () => {
  test('one clause per signature, with its reason unless a plain pass', async () => {
    const signed = sign('ed', ed, {}, sign('rsa'));
    const broken = edit(signed, (t) => t.replace('noon', 'moon'));
    const clauses = dkimAuthResults(await verify(broken));
    assert.deepEqual(
      clauses.map((c) => [c.result, c.reason, c.properties.map((p) => `${p.property}=${p.value}`)]),
      (await verify(broken)).map((r) => [
        'fail',
        'body hash did not verify',
        [
          'd=example.com',
          'i=@example.com',
          `s=${r.selector}`,
          `a=${r.algorithm}`,
          `b=${r.headerB}`,
        ],
      ]),
    );
    assert.deepEqual(
      dkimAuthResults(await verify(signed)).map((c) => [c.result, c.reason]),
      [
        ['pass', undefined],
        ['pass', undefined],
      ],
    );
  });
});

describe('DkimSigning and DkimVerification together, streaming', () => {
  test('fields and chunks as a milter sees them', async () => {
    const { headers, body } = parseMessage(MESSAGE);
    const signing = new DkimSigning(headers, signingKey('ed', ed), { clock });
    for (const byte of body) signing.update(Buffer.from([byte]));
    const field = signing.finish();
    const verification = new DkimVerification([field, ...headers], {}, { resolver, clock });
    verification.update(body.subarray(0, 5));
    verification.update(body.subarray(5));
    assert.deepEqual(
      (await verification.finish()).map((r) => r.result),
      ['pass'],
    );
  });
});
