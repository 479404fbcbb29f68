import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fieldFromParts,
  fieldFromText,
  fieldValue,
  formatMessage,
  parseMessage,
  unfoldedValue,
  withCrlf,
} from '../../../src/checks/message/index.js';

test('a milter field with its leading space kept is the bytes as sent, LF folds made CRLF', () => {
  const field = fieldFromParts(
    Buffer.from('Subject'),
    Buffer.from('  hi\n\tthere \xff', 'latin1'),
    true,
  );
  assert.equal(field.raw.toString('latin1'), 'Subject:  hi\r\n\tthere \xff');
  assert.equal(field.key, 'subject');
  assert.equal(fieldValue(field), '  hi\r\n\tthere \xff');
});

test('a milter field without its leading space gets one space back', () => {
  const field = fieldFromParts(Buffer.from('To'), Buffer.from('b@example.org'), false);
  assert.equal(field.raw.toString(), 'To: b@example.org');
});

test('CRLF already there is kept; a bare LF at the start becomes CRLF', () => {
  assert.equal(withCrlf(Buffer.from('a\r\nb')).toString(), 'a\r\nb');
  assert.equal(withCrlf(Buffer.from('\nb\n')).toString(), '\r\nb\r\n');
  const same = Buffer.from('no line ends');
  assert.equal(withCrlf(same), same);
});

test('a message with LF line ends is taken apart into fields and a CRLF body', () => {
  const parsed = parseMessage(
    Buffer.from('From: a@example.org\nSubject: one\n two\n\nbody\nline\n'),
  );
  assert.deepEqual(
    parsed.headers.map((h) => h.raw.toString()),
    ['From: a@example.org', 'Subject: one\r\n two'],
  );
  assert.equal(parsed.body.toString(), 'body\r\nline\r\n');
  assert.equal(parsed.malformedLines, 0);
  assert.equal(unfoldedValue(parsed.headers[1]!), 'one two');
});

test('no blank line means all header; a leading blank line means no header', () => {
  assert.equal(parseMessage(Buffer.from('A: 1\r\nB: 2')).headers.length, 2);
  assert.equal(parseMessage(Buffer.from('A: 1\r\nB: 2')).body.length, 0);
  const bodyOnly = parseMessage(Buffer.from('\r\nhello\r\n'));
  assert.equal(bodyOnly.headers.length, 0);
  assert.equal(bodyOnly.body.toString(), 'hello\r\n');
});

test('lines that are no field are skipped and counted', () => {
  const parsed = parseMessage(
    Buffer.from(' stray continuation\nno colon here\nBad Name: x\nOk: y\n\n'),
  );
  assert.deepEqual(
    parsed.headers.map((h) => h.name),
    ['Ok'],
  );
  assert.equal(parsed.malformedLines, 3);
});

test('formatMessage puts a parsed message back byte for byte', () => {
  const text = 'From: a@example.org\r\nSubject: x\r\n\ty\r\n\r\nbody\r\n';
  const parsed = parseMessage(Buffer.from(text));
  assert.equal(formatMessage(parsed.headers, parsed.body).toString(), text);
  assert.equal(fieldFromText('X: 1\n 2').raw.toString(), 'X: 1\r\n 2');
  assert.throws(() => fieldFromText('nocolon'), TypeError);
});
