import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  actionProblem,
  encodeReply,
  MAX_ACTION_LENGTH,
  PolicyActionError,
  PolicyDecoder,
  PolicyProtocolError,
  type PolicyProtocolErrorCode,
  type PolicyRequest,
} from '../../src/policyd/index.js';

/** Every attribute a Postfix 3.8 SMTP server sends, in its order (SMTPD_POLICY_README). */
const POSTFIX_REQUEST: Record<string, string> = {
  request: 'smtpd_access_policy',
  protocol_state: 'RCPT',
  protocol_name: 'ESMTP',
  helo_name: 'some.domain.example',
  queue_id: '8045F2AB23',
  sender: 'foo@bar.example',
  recipient: 'bar@foo.example',
  recipient_count: '0',
  client_address: '192.0.2.1',
  client_name: 'another.domain.example',
  reverse_client_name: 'another.domain.example',
  instance: '123.456.7',
  sasl_method: 'plain',
  sasl_username: 'you',
  sasl_sender: '',
  size: '12345',
  ccert_subject: 'solaris9.porcupine.example',
  ccert_issuer: 'Wietse+20Venema',
  ccert_fingerprint: 'C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04',
  encryption_protocol: 'TLSv1.3',
  encryption_cipher: 'TLS_AES_256_GCM_SHA384',
  encryption_keysize: '256',
  etrn_domain: '',
  stress: '',
  ccert_pubkey_fingerprint: '68:B3:29:DA:98:93:E3:40:99:C7:D8:AD:5C:B9:C9:40',
  client_port: '1234',
  policy_context: 'submission',
  server_address: '198.51.100.1',
  server_port: '25',
  compatibility_level: '3.6',
  mail_version: '3.8.0',
};

function wire(attributes: Record<string, string>, eol = '\n'): string {
  return (
    Object.entries(attributes)
      .map(([name, value]) => `${name}=${value}${eol}`)
      .join('') + eol
  );
}

/** Every request the decoder yields now. */
function drain(decoder: PolicyDecoder): PolicyRequest[] {
  const out: PolicyRequest[] = [];
  for (let r = decoder.next(); r !== undefined; r = decoder.next()) out.push(r);
  return out;
}

function decodeAll(input: string | Buffer, options = {}): PolicyRequest[] {
  const decoder = new PolicyDecoder(options);
  decoder.push(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  return drain(decoder);
}

function plain(requests: PolicyRequest[]): Record<string, string>[] {
  return requests.map((r) => ({ ...r }));
}

function assertProtocolError(run: () => unknown, code: PolicyProtocolErrorCode): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof PolicyProtocolError, `not a PolicyProtocolError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('PolicyDecoder', () => {
  test('decodes every attribute Postfix sends, in a null-prototype object', () => {
    const [request, ...rest] = decodeAll(wire(POSTFIX_REQUEST));
    assert.equal(rest.length, 0);
    assert.deepEqual({ ...request }, POSTFIX_REQUEST);
    assert.equal(Object.getPrototypeOf(request), null);
  });

  test('keeps unknown attributes and names like __proto__ as plain names', () => {
    const [request] = decodeAll('x_future_attribute=1\n__proto__=polluted\nconstructor=x\n\n');
    assert.equal(request!['x_future_attribute'], '1');
    assert.equal(Object.getOwnPropertyDescriptor(request, '__proto__')?.value, 'polluted');
    assert.equal(request!['constructor'], 'x');
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  test('LF and CRLF line ends, also mixed within one request', () => {
    const expected = [POSTFIX_REQUEST];
    assert.deepEqual(plain(decodeAll(wire(POSTFIX_REQUEST, '\n'))), expected);
    assert.deepEqual(plain(decodeAll(wire(POSTFIX_REQUEST, '\r\n'))), expected);
    assert.deepEqual(plain(decodeAll('a=1\r\nb=2\nc=3\r\n\n')), [{ a: '1', b: '2', c: '3' }]);
    assert.deepEqual(plain(decodeAll('a=1\n\r\n')), [{ a: '1' }]);
  });

  for (const eol of ['\n', '\r\n']) {
    test(`the same requests whatever byte the input is split at (${JSON.stringify(eol)})`, () => {
      const requests = [
        POSTFIX_REQUEST,
        { request: 'smtpd_access_policy', sender: 'é@exämple.test', recipient: 'a=b' },
        { request: 'smtpd_access_policy', sender: '' },
      ];
      const bytes = Buffer.from(requests.map((r) => wire(r, eol)).join(''), 'utf8');
      for (let cut = 0; cut <= bytes.length; cut++) {
        const decoder = new PolicyDecoder();
        decoder.push(bytes.subarray(0, cut));
        const got = drain(decoder);
        decoder.push(bytes.subarray(cut));
        got.push(...drain(decoder));
        assert.deepEqual(plain(got), requests, `cut at ${cut}`);
        assert.equal(decoder.buffered, 0);
      }
      const byteByByte = new PolicyDecoder();
      const got: PolicyRequest[] = [];
      for (let i = 0; i < bytes.length; i++) {
        byteByByte.push(bytes.subarray(i, i + 1));
        got.push(...drain(byteByByte));
      }
      assert.deepEqual(plain(got), requests);
    });
  }

  test('a name sent twice keeps the last value', () => {
    assert.deepEqual(plain(decodeAll('sender=a@x.test\nsender=b@y.test\n\n')), [
      { sender: 'b@y.test' },
    ]);
  });

  test('a value is everything after the first "="; it may be empty', () => {
    assert.deepEqual(plain(decodeAll('ccert_subject=CN=a=b\nsender=\nstress=\n\n')), [
      { ccert_subject: 'CN=a=b', sender: '', stress: '' },
    ]);
  });

  test('values keep spaces, tabs and UTF-8 as sent', () => {
    assert.deepEqual(plain(decodeAll('helo_name= spaced\tout \nsender=дмитрий@пример.test\n\n')), [
      { helo_name: ' spaced\tout ', sender: 'дмитрий@пример.test' },
    ]);
  });

  test('many requests in one chunk come out in order', () => {
    const input = Array.from({ length: 1000 }, (_, i) =>
      wire({ request: 'smtpd_access_policy', instance: String(i) }),
    ).join('');
    const requests = decodeAll(input);
    assert.equal(requests.length, 1000);
    for (const [i, r] of requests.entries()) assert.equal(r['instance'], String(i));
  });

  test('requests with other names or another order than the one before', () => {
    const input = [
      'a=1\nb=2\n\n',
      'b=3\na=4\n\n',
      'ab=5\nb=6\nc=7\n\n',
      'a=8\n\n',
      'a==9\n\n',
    ].join('');
    assert.deepEqual(plain(decodeAll(input)), [
      { a: '1', b: '2' },
      { b: '3', a: '4' },
      { ab: '5', b: '6', c: '7' },
      { a: '8' },
      { a: '=9' },
    ]);
    // A name like the one before, but not followed by "=", is checked as any other.
    assertProtocolError(() => decodeAll('a=1\n\na b=2\n\n'), 'bad-line');
    assertProtocolError(() => decodeAll('sender=1\n\nsender\n\n'), 'bad-line');
  });

  test('an empty line alone is an empty request', () => {
    assert.deepEqual(plain(decodeAll('\n\r\na=1\n\n')), [{}, {}, { a: '1' }]);
  });

  test('a partial request stays buffered until its empty line comes', () => {
    const decoder = new PolicyDecoder();
    decoder.push(Buffer.from('a=1\nb=2\n'));
    assert.equal(decoder.next(), undefined);
    assert.equal(decoder.buffered, 8);
    decoder.push(Buffer.from('\nc='));
    assert.deepEqual({ ...decoder.next() }, { a: '1', b: '2' });
    assert.equal(decoder.next(), undefined);
    assert.equal(decoder.buffered, 2);
  });

  test('a pushed chunk is never written into', () => {
    const first = Buffer.from('a=1\n');
    const copy = Buffer.from(first);
    const decoder = new PolicyDecoder();
    decoder.push(first);
    assert.equal(decoder.next(), undefined);
    decoder.push(Buffer.from('b=2\n\n'));
    assert.deepEqual(plain(drain(decoder)), [{ a: '1', b: '2' }]);
    assert.deepEqual(first, copy);
  });

  describe('line limit', () => {
    const max = 32;
    const line = (bytes: number) => `n=${'x'.repeat(bytes - 2)}`;

    for (const eol of ['\n', '\r\n']) {
      const name = JSON.stringify(eol);
      test(`a line of exactly maxLineBytes passes (${name})`, () => {
        const [request] = decodeAll(`${line(max)}${eol}${eol}`, { maxLineBytes: max });
        assert.equal(request!['n']!.length, max - 2);
      });

      test(`one byte more fails, complete or still arriving (${name})`, () => {
        assertProtocolError(
          () => decodeAll(`${line(max + 1)}${eol}${eol}`, { maxLineBytes: max }),
          'line-too-long',
        );
        // Known to be too long before its line end arrives: not one byte more is waited for.
        assertProtocolError(() => decodeAll(line(max + 1), { maxLineBytes: max }), 'line-too-long');
      });
    }

    test('a line of maxLineBytes and a CR waiting for its LF is not too long yet', () => {
      const decoder = new PolicyDecoder({ maxLineBytes: max });
      decoder.push(Buffer.from(`${line(max)}\r`));
      assert.equal(decoder.next(), undefined);
      decoder.push(Buffer.from('\n\n'));
      assert.equal(decoder.next()!['n']!.length, max - 2);
    });

    test('the default limit is 8192 bytes', () => {
      assert.equal(decodeAll(`${line(8192)}\n\n`).length, 1);
      assertProtocolError(() => decodeAll(`${line(8193)}\n\n`), 'line-too-long');
    });
  });

  describe('request limit', () => {
    // Lines of 10 bytes with their LF: "k0=" and 6 characters.
    const tenByteLines = (count: number) =>
      Array.from({ length: count }, (_, i) => `k${i % 10}=vvvvvv\n`).join('');

    test('a request of exactly maxRequestBytes passes; its empty line does not count', () => {
      const body = tenByteLines(10);
      assert.equal(body.length, 100);
      assert.equal(decodeAll(`${body}\n`, { maxRequestBytes: 100 }).length, 1);
      assert.equal(decodeAll(`${body}\r\n`, { maxRequestBytes: 100 }).length, 1);
    });

    test('one byte more fails, complete or still arriving', () => {
      const body = `${tenByteLines(9)}k9=vvvvvvv\n`;
      assert.equal(body.length, 101);
      assertProtocolError(
        () => decodeAll(`${body}\n`, { maxRequestBytes: 100 }),
        'request-too-large',
      );
      // 100 bytes of a line still without its end can only become more than 100.
      assertProtocolError(
        () => decodeAll(body.slice(0, 100), { maxRequestBytes: 100 }),
        'request-too-large',
      );
    });

    test('a full request and a lone CR waiting for its LF is not too large yet', () => {
      const decoder = new PolicyDecoder({ maxRequestBytes: 100 });
      decoder.push(Buffer.from(`${tenByteLines(10)}\r`));
      assert.equal(decoder.next(), undefined);
      decoder.push(Buffer.from('\n'));
      assert.equal(Object.keys(decoder.next()!).length, 10);
    });

    test('the limit is per request, not per connection', () => {
      const body = tenByteLines(10);
      assert.equal(decodeAll(`${body}\n`.repeat(50), { maxRequestBytes: 100 }).length, 50);
    });

    test('the default limit is 65536 bytes', () => {
      // Eight lines of 8191 bytes and their LF.
      const body = Array.from({ length: 8 }, (_, i) => `k${i}=${'x'.repeat(8188)}\n`).join('');
      assert.equal(Buffer.byteLength(body), 65536);
      assert.equal(decodeAll(`${body}\n`).length, 1);
      assertProtocolError(() => decodeAll(`a=1\n${body}\n`), 'request-too-large');
    });
  });

  describe('bad input', () => {
    const cases: Array<[string, string, PolicyProtocolErrorCode]> = [
      ['a line without "="', 'request=smtpd_access_policy\nnonsense\n\n', 'bad-line'],
      ['an empty name', '=value\n\n', 'bad-line'],
      ['a space in the name', 'client address=192.0.2.1\n\n', 'bad-line'],
      ['an HTTP request', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'bad-line'],
      ['an SMTP command', 'EHLO client.example\r\n\r\n', 'bad-line'],
      ['a NUL in a value', 'sender=a\0b\n\n', 'binary'],
      ['a NUL in a name', 'send\0er=a\n\n', 'binary'],
      ['a control character in a value', 'sender=a\x01b\n\n', 'binary'],
      ['a CR inside a value', 'sender=a\rb\n\n', 'binary'],
      ['DEL in a value', 'sender=a\x7fb\n\n', 'binary'],
    ];
    for (const [what, input, code] of cases) {
      test(`${what} is ${code}`, () => assertProtocolError(() => decodeAll(input), code));
    }

    test('a TLS ClientHello is binary before any line end arrives', () => {
      const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03]);
      assertProtocolError(() => decodeAll(hello), 'binary');
    });

    test('requests before the garbage are decoded first', () => {
      const decoder = new PolicyDecoder();
      decoder.push(Buffer.from('a=1\n\nb=2\n\n\0\0\0'));
      assert.deepEqual({ ...decoder.next() }, { a: '1' });
      assert.deepEqual({ ...decoder.next() }, { b: '2' });
      assertProtocolError(() => decoder.next(), 'binary');
    });

    test('an error is final: later input is ignored and next() throws again', () => {
      const decoder = new PolicyDecoder();
      decoder.push(Buffer.from('junk\n\n'));
      assertProtocolError(() => decoder.next(), 'bad-line');
      decoder.push(Buffer.from('a=1\n\n'));
      assertProtocolError(() => decoder.next(), 'bad-line');
      assert.equal(decoder.buffered, 0);
    });

    test('the error message shows the offending line, cut short', () => {
      assert.throws(
        () => decodeAll(`${'y'.repeat(100)}\n\n`),
        /line 1 of the request is not name=value: y{48}\.\.\./,
      );
    });

    test('limits must be positive integers', () => {
      assert.throws(() => new PolicyDecoder({ maxLineBytes: 0 }), RangeError);
      assert.throws(() => new PolicyDecoder({ maxRequestBytes: 1.5 }), RangeError);
    });
  });

  describe('finish() at end of input', () => {
    test('a request ended by EOF, with or without its last line end', () => {
      for (const input of ['a=1\nb=2\n', 'a=1\nb=2', 'a=1\r\nb=2\r\n', 'a=1\nb=2\r']) {
        const decoder = new PolicyDecoder();
        decoder.push(Buffer.from(input));
        assert.equal(decoder.next(), undefined);
        assert.deepEqual({ ...decoder.finish() }, { a: '1', b: '2' }, JSON.stringify(input));
      }
    });

    test('nothing pending: undefined', () => {
      const decoder = new PolicyDecoder();
      assert.equal(decoder.finish(), undefined);
      decoder.push(Buffer.from('a=1\n\n'));
      assert.deepEqual({ ...decoder.next() }, { a: '1' });
      assert.equal(decoder.finish(), undefined);
    });

    test('a bad last line is still an error', () => {
      const decoder = new PolicyDecoder();
      decoder.push(Buffer.from('a=1\nnonsense'));
      assert.equal(decoder.next(), undefined);
      assertProtocolError(() => decoder.finish(), 'bad-line');
    });

    test('complete requests must be taken first', () => {
      const decoder = new PolicyDecoder();
      decoder.push(Buffer.from('a=1\n\n'));
      assertProtocolError(() => decoder.finish(), 'incomplete');
    });
  });
});

describe('replies', () => {
  test('encodeReply writes action=, the action and the empty line', () => {
    assert.equal(encodeReply('DUNNO').toString('latin1'), 'action=DUNNO\n\n');
    assert.equal(
      encodeReply('PREPEND X-Greylist: delayed 300 seconds').toString('latin1'),
      'action=PREPEND X-Greylist: delayed 300 seconds\n\n',
    );
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['a CRLF that would smuggle a second reply', 'DUNNO\r\n\r\naction=OK', /control/],
    ['a LF', 'REJECT a\nb', /control/],
    ['a NUL', 'REJECT a\0', /control/],
    ['a tab', 'REJECT a\tb', /control/],
    ['non-ASCII', 'REJECT ünïcode', /non-ASCII/],
    ['empty', '', /empty/],
    ['blank', '   ', /empty/],
    ['too long', `REJECT ${'x'.repeat(MAX_ACTION_LENGTH)}`, /more than 4096/],
    ['not a string', 42, /is a number/],
    ['undefined', undefined, /is a undefined/],
    ['null', null, /is a null/],
  ];
  for (const [what, action, problem] of bad) {
    test(`an action with ${what} is refused`, () => {
      assert.match(actionProblem(action) ?? '', problem);
      assert.throws(() => encodeReply(action as string), PolicyActionError);
    });
  }

  test('the longest action allowed is sent', () => {
    const action = `REJECT ${'x'.repeat(MAX_ACTION_LENGTH - 7)}`;
    assert.equal(actionProblem(action), undefined);
    assert.equal(encodeReply(action).length, MAX_ACTION_LENGTH + 9);
  });
});
