import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  greetingName,
  isHeloName,
  namedHost,
  parseMailbox,
  replyCode,
  replyText,
} from '../../src/notify/index.js';
import { formatDate, headerLine, isSevenBit, quotedPrintable } from '../../src/notify/mime.js';

test('parseMailbox accepts what may follow RCPT TO and nothing else', () => {
  assert.deepEqual(parseMailbox('Jo.Smith+tag@Example.COM'), {
    local: 'Jo.Smith+tag',
    domain: 'example.com',
    address: 'Jo.Smith+tag@example.com',
  });
  assert.equal(parseMailbox('"a b\\"c"@example.com')?.local, '"a b\\"c"');
  assert.equal(parseMailbox('a@b@example.com'), null, 'an @ outside quotes');
  for (const bad of [
    '',
    'jo',
    '@example.com',
    'jo@',
    'jo@-bad.example',
    'jo@ex..ample',
    'jo.@example.com',
    '"unclosed@example.com',
    'jo@exa_mple.com',
  ]) {
    assert.equal(parseMailbox(bad), null, bad);
  }
  assert.ok(isHeloName('mx.example.org'));
  assert.ok(isHeloName('[192.0.2.1]'));
  assert.ok(isHeloName('[IPv6:2001:db8::1]'));
  assert.ok(!isHeloName('[2001:db8::1]'));
  assert.ok(!isHeloName('[IPv6:192.0.2.1]'));
  assert.ok(!isHeloName('mx example'));
});

test('replies are read as a code and one line', () => {
  assert.equal(replyCode('250 OK'), 250);
  assert.equal(replyCode('250'), 250);
  assert.equal(replyCode('hello'), undefined);
  assert.equal(replyCode('2500 no'), undefined);
  assert.equal(replyText('550-5.1.1 a\n550-\n550 5.1.1   b'), '5.1.1 a 5.1.1 b');
  assert.equal(replyText('x'.repeat(1_000)).length, 300);
  assert.equal(greetingName('250-MX.Example.org. hi\n250 SIZE'), 'mx.example.org');
  assert.equal(greetingName('250 \x00bad'), undefined);
  assert.equal(namedHost('220 ESMTP mx.us.test ready', undefined, ['MX.US.TEST']), 'mx.us.test');
  assert.equal(namedHost('220 mx.us.test.example ready', undefined, ['mx.us.test']), undefined);
  assert.equal(
    namedHost('220-a\n220 mx.us.test', undefined, ['mx.us.test']),
    undefined,
    'first line only',
  );
});

test('headers are folded, and encoded only when not ASCII', () => {
  const long = headerLine('Subject', `${'word '.repeat(40)}end`);
  for (const line of long.split('\r\n')) assert.ok(line.length <= 78, line);
  assert.equal(long.replace(/\r\n/g, ''), `Subject: ${'word '.repeat(40)}end`);
  const encoded = headerLine('Subject', '\u00e9'.repeat(100));
  for (const line of encoded.split('\r\n')) {
    assert.match(line, /^(Subject:)? =\?utf-8\?B\?[A-Za-z0-9+/=]+\?=$/);
    assert.ok(line.length <= 78);
  }
  const words = encoded.split('\r\n').map((l) => l.replace(/^(Subject:)? /, ''));
  const decoded = words
    .map((w) => Buffer.from(w.slice(10, -2), 'base64').toString('utf8'))
    .join('');
  assert.equal(decoded, '\u00e9'.repeat(100));
  assert.equal(
    formatDate(new Date(Date.UTC(2024, 1, 29, 23, 59, 59))),
    'Thu, 29 Feb 2024 23:59:59 +0000',
  );
});

test('quoted-printable keeps lines to 76 characters and decodes to the original', () => {
  const text = `${'\u00fc'.repeat(60)} = tail \r\n\tstart\r\n${'a'.repeat(200)}`;
  const qp = quotedPrintable(text);
  for (const line of qp.split('\r\n')) {
    assert.ok(line.length <= 76, line);
    assert.match(line, /^[\x21-\x7e\x20\x09]*$/);
    assert.ok(!/[ \t]$/.test(line), 'no white space at a line end');
  }
  const bytes = qp
    .replace(/=\r\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(Number.parseInt(h, 16)));
  assert.equal(Buffer.from(bytes, 'latin1').toString('utf8'), text);
  assert.ok(isSevenBit('a\r\nb'));
  assert.ok(!isSevenBit('\u00e9'));
  assert.ok(!isSevenBit('x'.repeat(999)));
});
