// The DKIM building blocks on their own: tag lists, header and body canonicalization (RFC 6376
// section 3.4.5's examples among them), the choice of signed fields, key records and the
// signing algorithms.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { BodyHasher, BodyHashes } from '../../../src/checks/dkim/body-hash.js';
import {
  canonicalizeHeader,
  canonicalizeSignatureField,
  selectSignedFields,
} from '../../../src/checks/dkim/canonicalize.js';
import { signData, verifySignature } from '../../../src/checks/dkim/crypto.js';
import { parseKeyRecord } from '../../../src/checks/dkim/key.js';
import { decodeBase64Tag, parseTagList } from '../../../src/checks/dkim/tags.js';
import { fieldFromText } from '../../../src/checks/message/index.js';

/** The expected canonical body, hashed: what the hasher gives is compared with it. */
function sha256(text: string): string {
  return createHash('sha256').update(Buffer.from(text, 'latin1')).digest('base64');
}

function bodyHash(how: 'simple' | 'relaxed', chunks: string[], limit?: number) {
  const hasher = new BodyHasher(how, 'sha256', limit);
  for (const chunk of chunks) hasher.update(Buffer.from(chunk, 'latin1'));
  const d = hasher.digest();
  return { hash: d.hash.toString('base64'), hashed: d.hashedLength, length: d.canonicalLength };
}

/**
 * RFC 6376 sections 3.4.3 and 3.4.4 read plainly, on the whole body as text: lines are what
 * CRLF ends (a last line without one gets it), relaxed reduces whitespace runs to one space and
 * drops it at line ends, both drop the empty lines at the end, and simple makes an empty body
 * one CRLF.
 */
function plainCanonical(how: 'simple' | 'relaxed', body: string): string {
  const lines = body.split('\r\n');
  const last = lines.pop()!;
  if (last !== '') lines.push(last);
  const canonical =
    how === 'relaxed' ? lines.map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, '')) : lines;
  while (canonical.length > 0 && canonical[canonical.length - 1] === '') canonical.pop();
  if (canonical.length === 0) return how === 'simple' ? '\r\n' : '';
  return canonical.map((line) => `${line}\r\n`).join('');
}

describe('parseTagList', () => {
  test('reads tags with folding whitespace around them, inner whitespace kept', () => {
    const r = parseTagList(' v=1;\r\n\ta = rsa-sha256 ; h=from :\r\n to;');
    assert.ok(r.ok);
    assert.deepEqual(
      [...r.tags],
      [
        ['v', '1'],
        ['a', 'rsa-sha256'],
        ['h', 'from :\r\n to'],
      ],
    );
  });

  test('an empty value is a value', () => {
    const r = parseTagList('p=; t=y');
    assert.ok(r.ok);
    assert.equal(r.tags.get('p'), '');
  });

  for (const [text, reason] of [
    ['v=1; v=2', "tag 'v' appears twice"],
    ['v=1; 1x=2', "bad tag name '1x'"],
    ['v=1; novalue', "tag 'novalue' has no '='"],
    ['v=1;; a=b', 'empty tag at part 2'],
    ['', 'empty tag list'],
    ['a=b c\rd', "tag 'a' has a malformed value"],
    ['a=b\r\nc', "tag 'a' has a malformed value"],
    ['a=b\x00', "tag 'a' has a malformed value"],
  ] as const) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseTagList(text), { ok: false, reason });
    });
  }
});

describe('decodeBase64Tag', () => {
  test('removes folding whitespace anywhere', () => {
    assert.equal(decodeBase64Tag(' aGVs\r\n\tbG8 =')?.toString(), 'hello');
  });
  test('an empty value is an empty buffer', () => {
    assert.equal(decodeBase64Tag('')?.length, 0);
  });
  for (const bad of ['aGVsbG8', 'aGVs!G8=', 'aG=sbG8=', '====']) {
    test(`refuses ${bad}`, () => assert.equal(decodeBase64Tag(bad), null));
  }
});

describe('header canonicalization (RFC 6376 section 3.4.5)', () => {
  const a = fieldFromText('A: X');
  const b = fieldFromText('B : Y\t\r\n\tZ  ');
  test('relaxed', () => {
    assert.equal(canonicalizeHeader(a, 'relaxed').toString(), 'a:X\r\n');
    assert.equal(canonicalizeHeader(b, 'relaxed').toString(), 'b:Y Z\r\n');
  });
  test('simple', () => {
    assert.equal(canonicalizeHeader(a, 'simple').toString(), 'A: X\r\n');
    assert.equal(canonicalizeHeader(b, 'simple').toString(), 'B : Y\t\r\n\tZ  \r\n');
  });
  test('relaxed lowercases ASCII names only and keeps 8-bit value bytes', () => {
    const field = fieldFromText('X-\u00c9T\u00c9: caf\u00e9  au lait');
    const out = canonicalizeHeader(field, 'relaxed');
    assert.equal(out.toString('utf8'), 'x-\u00c9t\u00c9:caf\u00e9 au lait\r\n');
  });
  test('an empty value', () => {
    assert.equal(
      canonicalizeHeader(fieldFromText('Subject:   '), 'relaxed').toString(),
      'subject:\r\n',
    );
  });
});

describe('canonicalizeSignatureField', () => {
  const field = fieldFromText('DKIM-Signature: v=1; bh=abc=; b=Zm9v\r\n\tYmFy ; d=example.com');
  test('empties b= but not bh=, relaxed', () => {
    assert.equal(
      canonicalizeSignatureField(field, 'relaxed').toString(),
      'dkim-signature:v=1; bh=abc=; b=; d=example.com',
    );
  });
  test('simple keeps every other byte', () => {
    assert.equal(
      canonicalizeSignatureField(field, 'simple').toString(),
      'DKIM-Signature: v=1; bh=abc=; b=; d=example.com',
    );
  });
  test('b= last, with folding whitespace around its name', () => {
    const last = fieldFromText('ARC-Seal: i=1; a=rsa-sha256;\r\n b =\r\n xyz==');
    assert.equal(
      canonicalizeSignatureField(last, 'simple').toString(),
      'ARC-Seal: i=1; a=rsa-sha256;\r\n b =',
    );
  });
  test('a field without b= is only canonicalized', () => {
    const none = fieldFromText('DKIM-Signature: v=1; bh=x');
    assert.equal(
      canonicalizeSignatureField(none, 'relaxed').toString(),
      'dkim-signature:v=1; bh=x',
    );
  });
});

describe('selectSignedFields', () => {
  const received = fieldFromText('Received: x');
  const from1 = fieldFromText('From: one@example.com');
  const to = fieldFromText('To: b@example.org');
  const from2 = fieldFromText('FROM: two@example.com');
  const headers = [received, from1, to, from2];
  test('bottom-most first, names case-insensitive, spent names pick nothing', () => {
    assert.deepEqual(selectSignedFields(headers, ['From', 'from', 'from', 'to', 'cc']), [
      from2,
      from1,
      to,
    ]);
  });
  test('excluded fields are never picked', () => {
    assert.deepEqual(selectSignedFields(headers, ['from', 'from'], new Set([from2])), [from1]);
  });
});

describe('body canonicalization (RFC 6376 section 3.4.5)', () => {
  const body = ' C \r\nD \t E\r\n\r\n\r\n';
  test('relaxed', () => {
    assert.deepEqual(bodyHash('relaxed', [body]), {
      hash: sha256(' C\r\nD E\r\n'),
      hashed: 9,
      length: 9,
    });
  });
  test('simple', () => {
    assert.deepEqual(bodyHash('simple', [body]), {
      hash: sha256(' C \r\nD \t E\r\n'),
      hashed: 12,
      length: 12,
    });
  });
  test('empty bodies: CRLF for simple, nothing for relaxed', () => {
    assert.equal(bodyHash('simple', []).hash, sha256('\r\n'));
    assert.equal(bodyHash('simple', ['\r\n\r\n']).hash, sha256('\r\n'));
    assert.equal(bodyHash('relaxed', []).hash, sha256(''));
    assert.equal(bodyHash('relaxed', [' \r\n\t\r\n']).hash, sha256(''));
  });
  test('a missing final CRLF is added', () => {
    assert.equal(bodyHash('simple', ['abc']).hash, sha256('abc\r\n'));
    assert.equal(bodyHash('relaxed', ['abc  ']).hash, sha256('abc\r\n'));
  });
  test('bare CR and LF are content', () => {
    assert.equal(bodyHash('simple', ['a\rb\nc\r']).hash, sha256('a\rb\nc\r\r\n'));
    assert.equal(bodyHash('relaxed', ['a \r b\n \r\n']).hash, sha256('a \r b\n\r\n'));
  });
  test('inner empty lines stay, whitespace-only lines become empty', () => {
    assert.equal(bodyHash('relaxed', ['a\r\n  \r\n\r\nb\r\n']).hash, sha256('a\r\n\r\n\r\nb\r\n'));
    assert.equal(bodyHash('simple', ['a\r\n  \r\n\r\nb\r\n']).hash, sha256('a\r\n  \r\n\r\nb\r\n'));
  });
  test('l= hashes a prefix and reports the whole length', () => {
    assert.deepEqual(bodyHash('relaxed', ['hello  world\r\n'], 5), {
      hash: sha256('hello'),
      hashed: 5,
      length: 13,
    });
    assert.equal(bodyHash('simple', ['x'], 100).hashed, 3);
  });
  test('any split of the body gives the same result as one chunk', () => {
    const samples = [
      ' C \r\nD \t E\r\n\r\n\r\n',
      'a  b\t\tc \r\n\r\n \r\nd\r\r\n\r\ne \r',
      '\r\n\r\n\r\nx\r\n \r\n',
      'word word  word\r\nline\r\n\tindent\r\n\r\n',
      'end with cr\r',
    ];
    for (const how of ['simple', 'relaxed'] as const) {
      for (const sample of samples) {
        const whole = bodyHash(how, [sample]);
        assert.deepEqual(
          bodyHash(how, [...sample]),
          whole,
          `${how} bytewise ${JSON.stringify(sample)}`,
        );
        for (let cut = 0; cut <= sample.length; cut++) {
          for (let cut2 = cut; cut2 <= sample.length; cut2++) {
            const parts = [sample.slice(0, cut), sample.slice(cut, cut2), sample.slice(cut2)];
            assert.deepEqual(
              bodyHash(how, parts),
              whole,
              `${how} ${cut}/${cut2} ${JSON.stringify(sample)}`,
            );
          }
        }
      }
    }
  });
  test('random bodies, split at random, match the canonicalization rules read plainly', () => {
    let seed = 2024;
    const random = (below: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % below;
    };
    const pieces = [
      '\r\n',
      '\r\n',
      ' ',
      '  ',
      '\t',
      '\r',
      '\n',
      '\r\n\r\n',
      ' \r\n',
      '\x00',
      '\xe9',
      // Prose: single spaces, which relaxed leaves alone, at every alignment.
      'a few words of prose ',
      'more prose, with single spaces and a line end\r\n',
      ' x',
    ];
    const run = () =>
      'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo'.slice(0, 1 + random(35)).repeat(1 + random(4));
    for (let round = 0; round < 1500; round++) {
      let body = '';
      const parts = random(40);
      for (let p = 0; p < parts; p++)
        body += random(3) === 0 ? pieces[random(pieces.length)]! : run();
      for (const how of ['simple', 'relaxed'] as const) {
        const expected = sha256(plainCanonical(how, body));
        const cuts = Array.from({ length: random(6) }, () => random(body.length + 1)).sort(
          (a, b) => a - b,
        );
        const chunks: string[] = [];
        let from = 0;
        for (const cut of cuts) {
          chunks.push(body.slice(from, cut));
          from = cut;
        }
        chunks.push(body.slice(from));
        assert.equal(
          bodyHash(how, chunks).hash,
          expected,
          `${how} ${JSON.stringify(body)} ${cuts}`,
        );
      }
    }
  });

  test('thousands of empty lines before content are kept', () => {
    const body = `a${'\r\n'.repeat(3000)}b\r\n`;
    assert.equal(bodyHash('relaxed', [body]).hash, sha256(body));
    assert.equal(bodyHash('simple', [body]).length, body.length);
  });
  test('BodyHashes shares handles and matches BodyHasher', () => {
    const hashes = new BodyHashes();
    const a = hashes.want('relaxed', 'sha256');
    assert.equal(hashes.want('relaxed', 'sha256'), a);
    const b = hashes.want('simple', 'sha1', 4);
    assert.notEqual(b, a);
    assert.throws(() => a.result(), /before/);
    hashes.update(Buffer.from('x  y \r\n'));
    hashes.update(Buffer.from('\r\n'));
    hashes.finish();
    hashes.finish();
    assert.equal(a.result().hash.toString('base64'), sha256('x y\r\n'));
    const sha1 = createHash('sha1').update('x  y').digest('base64');
    assert.deepEqual(
      { ...b.result(), hash: b.result().hash.toString('base64') },
      { hash: sha1, hashedLength: 4, canonicalLength: 7 },
    );
  });
});

describe('parseKeyRecord', () => {
  const ed = generateKeyPairSync('ed25519');
  const edRaw = ed.publicKey
    .export({ format: 'der', type: 'spki' })
    .subarray(12)
    .toString('base64');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const rsaSpki = rsa.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const rsaPkcs1 = rsa.publicKey.export({ format: 'der', type: 'pkcs1' }).toString('base64');

  test('an RSA key in SubjectPublicKeyInfo, with restrictions', () => {
    const r = parseKeyRecord(`v=DKIM1; h=sha256:SHA1; s=email; t=y:s; p=${rsaSpki}`);
    assert.ok(r.ok);
    assert.equal(r.key.keyType, 'rsa');
    assert.equal(r.key.bits, 1024);
    assert.deepEqual(r.key.hashes, ['sha256', 'sha1']);
    assert.deepEqual(r.key.services, ['email']);
    assert.equal(r.key.testing, true);
    assert.equal(r.key.strict, true);
  });
  test('an RSA key as a bare RSAPublicKey, defaults', () => {
    const r = parseKeyRecord(`p=${rsaPkcs1}`);
    assert.ok(r.ok);
    assert.equal(r.key.bits, 1024);
    assert.equal(r.key.hashes, undefined);
    assert.deepEqual(r.key.services, ['*']);
    assert.equal(r.key.testing, false);
  });
  test('an Ed25519 key', () => {
    const r = parseKeyRecord(`v=DKIM1; k=ed25519; p=${edRaw}`);
    assert.ok(r.ok);
    assert.equal(r.key.keyType, 'ed25519');
    assert.equal(r.key.bits, 256);
  });
  for (const [text, reason] of [
    ['v=DKIM1; p=', 'key revoked (empty p=)'],
    ['v=DKIM2; p=x', 'key record v= is not DKIM1'],
    [`k=rsa; v=DKIM1; p=${rsaSpki}`, 'key record v= is not the first tag'],
    [`k=dsa; p=${rsaSpki}`, 'unknown key type k=dsa'],
    ['v=DKIM1; k=rsa', 'key record has no p='],
    ['p=!!!!', 'key record p= is not base64'],
    ['p=aGVsbG8=', 'key record p= is no rsa public key'],
    [`k=ed25519; p=${rsaSpki}`, 'key record p= is no ed25519 public key'],
    [`k=rsa; p=${edRaw}`, 'key record p= is no rsa public key'],
    ['garbage', "bad key record: tag 'garbage' has no '='"],
  ] as const) {
    test(`refuses ${text.slice(0, 30)}: ${reason}`, () => {
      const r = parseKeyRecord(text);
      assert.equal(r.ok, false);
      assert.ok(!r.ok);
      assert.equal(r.reason, reason);
    });
  }
});

describe('verifySignature and signData', () => {
  const data = Buffer.from('header data');
  for (const [algorithm, pair] of [
    ['rsa-sha256', generateKeyPairSync('rsa', { modulusLength: 1024 })],
    ['rsa-sha1', generateKeyPairSync('rsa', { modulusLength: 1024 })],
    ['ed25519-sha256', generateKeyPairSync('ed25519')],
  ] as const) {
    test(`${algorithm} round trip, and a changed byte fails`, () => {
      const signature = signData(algorithm, pair.privateKey, data);
      assert.equal(verifySignature(algorithm, pair.publicKey, data, signature), true);
      assert.equal(
        verifySignature(algorithm, pair.publicKey, Buffer.from('header datA'), signature),
        false,
      );
      assert.equal(verifySignature(algorithm, pair.publicKey, data, Buffer.from('short')), false);
    });
  }
  test('ed25519-sha256 signs the SHA-256 of the data (RFC 8463)', () => {
    const pair = generateKeyPairSync('ed25519');
    const signature = signData('ed25519-sha256', pair.privateKey, data);
    assert.equal(
      verify(null, createHash('sha256').update(data).digest(), pair.publicKey, signature),
      true,
    );
  });
  test('a key of the wrong type is false, not an exception', () => {
    const ed = generateKeyPairSync('ed25519');
    assert.equal(verifySignature('rsa-sha256', ed.publicKey, data, Buffer.alloc(64)), false);
    assert.throws(() => signData('rsa-sha256', ed.privateKey, data), TypeError);
  });
});
