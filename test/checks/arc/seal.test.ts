// Sealing on its own: what the new fields look like, what reaches them from our own
// Authentication-Results, the `arc=` clause, and the options that are programming errors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ArcSealing,
  arcAuthResults,
  DEFAULT_SEALED_HEADERS,
  gatherAuthResults,
  sealArc,
} from '../../../src/checks/arc/index.js';
import { BodyHashes } from '../../../src/checks/dkim/body-hash.js';
import { parseTagList } from '../../../src/checks/dkim/tags.js';
import { fieldFromText, fieldValue, parseMessage } from '../../../src/checks/message/index.js';
import { resultClause } from '../../../src/policy/auth-results.js';
import { makeKey, ORIGINAL } from './support.js';

const rsa = makeKey('rsa', 's1', 'list.example');
const ed = makeKey('ed25519', 'e1', 'list.example');
const { headers, body } = parseMessage(ORIGINAL);

function seal(options: Partial<ConstructorParameters<typeof ArcSealing>[2]> = {}, key = ed) {
  const sealing = new ArcSealing(headers, key.seal, {
    authservId: 'mx.list.example',
    authResults: 'mx.list.example; spf=pass smtp.mailfrom=author.example',
    cv: 'none',
    timestamp: 1_800_000_000,
    ...options,
  });
  sealing.update(body);
  return sealing.finish();
}

function tagsOf(text: string): Map<string, string> {
  const parsed = parseTagList(text);
  assert.ok(parsed.ok);
  return new Map(parsed.tags);
}

describe('the new set', () => {
  test('AS, AMS and AAR of instance 1, tags as RFC 8617 names them', () => {
    const [as, ams, aar] = seal();
    assert.equal(as!.name, 'ARC-Seal');
    assert.deepEqual([...tagsOf(fieldValue(as!)).keys()], ['a', 'b', 'cv', 'd', 'i', 's', 't']);
    const sig = tagsOf(fieldValue(ams!));
    assert.equal(sig.get('i'), '1');
    assert.equal(sig.get('c'), 'relaxed/relaxed');
    assert.equal(sig.get('a'), 'ed25519-sha256');
    assert.equal(sig.get('t'), '1800000000');
    assert.equal(
      fieldValue(aar!).replace(/\s+/g, ' ').trim(),
      'i=1; mx.list.example; spf=pass smtp.mailfrom=author.example',
    );
  });

  test('h= defaults to the usual fields the message has, each as often as it has them', () => {
    const doubled = [fieldFromText('To: second@list.example'), ...headers];
    const sealing = new ArcSealing(doubled, rsa.seal, {
      authservId: 'mx.list.example',
      authResults: 'mx.list.example; none',
      cv: 'none',
      timestamp: 1,
    });
    const [, ams] = sealing.finish();
    assert.equal(
      tagsOf(fieldValue(ams!)).get('h'),
      'from:subject:date:message-id:to:to:mime-version:content-type',
    );
    assert.ok(DEFAULT_SEALED_HEADERS.every((name) => name === name.toLowerCase()));
  });

  test('lines are folded at 78, but for the signatures, which keep a line each', () => {
    for (const key of [rsa, ed]) {
      for (const field of seal({}, key)) {
        const lines = field.raw.toString('latin1').split('\r\n');
        for (const [index, line] of lines.entries()) {
          if (index > 0) assert.match(line, /^ \S/);
          if (!/^ b=/.test(line)) assert.ok(line.length <= 78, line);
          assert.ok(line.length <= 998);
        }
      }
    }
  });

  test('nothing of our Authentication-Results breaks the AAR out of its field', () => {
    const [, , aar] = seal({
      authResults: 'mx.list.example; spf=pass\r\nX-Evil: 1\u0000;\n dkim=none\r',
    });
    const text = aar!.raw.toString('latin1');
    assert.doesNotMatch(text, /\u0000/);
    assert.doesNotMatch(text, /\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n/);
    assert.equal(
      fieldValue(aar!).replace(/\s+/g, ' ').trim(),
      'i=1; mx.list.example; spf=pass X-Evil: 1 ; dkim=none',
    );
  });

  test('results that do not begin with the authserv-id get it put first', () => {
    const [, , aar] = seal({ authResults: 'spf=pass smtp.mailfrom=author.example' });
    assert.equal(
      fieldValue(aar!).replace(/\s+/g, ' ').trim(),
      'i=1; mx.list.example; spf=pass smtp.mailfrom=author.example',
    );
  });

  test('without a timestamp the clock gives t=', () => {
    const sealing = new ArcSealing(headers, ed.seal, {
      authservId: 'mx.list.example',
      authResults: 'mx.list.example; none',
      cv: 'none',
      clock: { now: () => 1_700_000_000_999 },
    });
    assert.equal(tagsOf(fieldValue(sealing.finish()[0]!)).get('t'), '1700000000');
  });

  test('a body hash already computed seals the same as the body fed', () => {
    const hashes = new BodyHashes();
    const handle = hashes.want('relaxed', 'sha256');
    hashes.update(body);
    hashes.finish();
    const given = new ArcSealing(headers, rsa.seal, {
      authservId: 'mx.list.example',
      authResults: 'mx.list.example; none',
      cv: 'none',
      timestamp: 7,
      bodyHash: handle.result().hash,
    });
    given.update(Buffer.from('ignored: the hash was given'));
    const fed = new ArcSealing(headers, rsa.seal, {
      authservId: 'mx.list.example',
      authResults: 'mx.list.example; none',
      cv: 'none',
      timestamp: 7,
    });
    fed.update(body);
    assert.deepEqual(
      given.finish().map((f) => f.raw.toString()),
      fed.finish().map((f) => f.raw.toString()),
    );
  });

  test('sealArc puts the set on top of the message', () => {
    const sealed = parseMessage(
      sealArc(ORIGINAL, ed.seal, {
        authservId: 'mx.list.example',
        authResults: 'mx.list.example; none',
        cv: 'none',
      }),
    );
    assert.deepEqual(
      sealed.headers.slice(0, 4).map((h) => h.key),
      ['arc-seal', 'arc-message-signature', 'arc-authentication-results', 'from'],
    );
    assert.deepEqual(sealed.body, body);
  });
});

describe('options that cannot be right', () => {
  const chained = parseMessage(
    sealArc(ORIGINAL, ed.seal, {
      authservId: 'mx.list.example',
      authResults: 'mx.list.example; none',
      cv: 'none',
    }),
  ).headers;

  test('a cv that does not fit the chain seals nothing, and says why', () => {
    const cases = [
      [headers, 'pass', 'cv=pass given for a message with no ARC chain'],
      [chained, 'none', 'cv=none given for a message with an ARC chain'],
      [
        chained.slice(1),
        'pass',
        'cv=pass given for a chain that is not whole (i=1 has no ARC-Seal)',
      ],
    ] as const;
    for (const [fields, cv, why] of cases) {
      const sealing = new ArcSealing(fields, ed.seal, {
        authservId: 'a.example',
        authResults: 'a.example; none',
        cv,
      });
      assert.equal(sealing.instance, 0);
      assert.equal(sealing.skipped, why);
      assert.deepEqual(sealing.finish(), []);
    }
  });

  for (const [what, make] of [
    ['an authserv-id that is no token', () => seal({ authservId: 'mx.example; evil' })],
    ['h= naming ARC-Seal', () => seal({ headers: ['from', 'ARC-Seal'] })],
    ['h= with a malformed name', () => seal({ headers: ['from', 'sub ject'] })],
    ['a timestamp that is no whole number', () => seal({ timestamp: 1.5 })],
    ['a body hash that is no sha256', () => seal({ bodyHash: Buffer.alloc(20) })],
    [
      'an RSA key for ed25519-sha256',
      () => seal({}, { ...rsa, seal: { ...rsa.seal, algorithm: 'ed25519-sha256' } }),
    ],
    ['a public key', () => seal({}, { ...ed, seal: { ...ed.seal, privateKey: ed.publicKey } })],
    ['a domain that is no domain', () => seal({}, { ...ed, seal: { ...ed.seal, domain: 'a b' } })],
  ] as const) {
    test(`${what} is a TypeError`, () => {
      assert.throws(make, TypeError);
    });
  }
});

describe('Authentication-Results', () => {
  test('the arc= clause of a pass names oldest-pass and the client', () => {
    const clause = arcAuthResults(
      { cv: 'pass', reason: 'chain of 2 sets verified', oldestPass: 0 },
      { remoteIp: '192.0.2.1' },
    );
    assert.equal(resultClause(clause), 'arc=pass header.oldest-pass=0 smtp.remote-ip=192.0.2.1');
  });

  test('a failure gives its reason, and says when DNS was the trouble', () => {
    assert.equal(
      resultClause(arcAuthResults({ cv: 'fail', reason: 'i=2 seal did not verify' })),
      'arc=fail reason="i=2 seal did not verify"',
    );
    assert.equal(
      resultClause(
        arcAuthResults({ cv: 'fail', reason: 'i=1 seal key: temporary: timeout', temporary: true }),
      ),
      'arc=fail (temporary DNS failure) reason="i=1 seal key: temporary: timeout"',
    );
    assert.equal(
      resultClause(
        arcAuthResults({ cv: 'none', reason: 'no ARC sets' }, { remoteIp: '192.0.2.1' }),
      ),
      'arc=none',
    );
  });

  test('our Authentication-Results fields are gathered, others left out', () => {
    const fields = [
      fieldFromText(
        'Authentication-Results: MX.list.example; arc=none;\r\n  spf=pass smtp.mailfrom=a.example  ',
      ),
      fieldFromText('Authentication-Results: other.example; dkim=pass'),
      fieldFromText('Authentication-Results: mx.list.example 1; dkim=pass header.d=a.example;'),
      fieldFromText('Authentication-Results: mx.list.example; none'),
      fieldFromText('Authentication-Results: mx.list.example.evil; dmarc=pass'),
    ];
    assert.equal(
      gatherAuthResults(fields, 'mx.list.example'),
      'mx.list.example; arc=none; spf=pass smtp.mailfrom=a.example; dkim=pass header.d=a.example',
    );
    assert.equal(gatherAuthResults(fields, 'absent.example'), undefined);
    assert.equal(
      gatherAuthResults([fieldFromText('Authentication-Results: a.example; none')], 'a.example'),
      'a.example; none',
    );
  });
});
