import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  escapeForLog,
  headerComment,
  headerValue,
  logValue,
  printableAscii,
  truncate,
} from '../../src/text/index.js';

test('printableAscii replaces everything that could end a line or carry 8-bit bytes', () => {
  assert.equal(printableAscii('ok text'), 'ok text');
  assert.equal(printableAscii('a\r\nb\0c\td\u00e9\u{1f600}'), 'a??b?c?d??');
});

test('escapeForLog shows what arrived on one line', () => {
  assert.equal(escapeForLog('a\r\nb'), 'a\\x0d\\x0ab');
  assert.equal(escapeForLog('back\\slash'), 'back\\\\slash');
  assert.equal(escapeForLog('\u00e9\u{1f600}'), '\\xe9\\u{1f600}');
});

test('headerValue gives a dot-atom or a safe quoted-string', () => {
  assert.equal(headerValue('mx.example.com'), 'mx.example.com');
  assert.equal(headerValue('2001:db8::1'), '"2001:db8::1"');
  assert.equal(headerValue('a "b"\\'), '"a \\"b\\"\\\\"');
  assert.equal(headerValue('x\r\ny'), 'x??y');
  assert.equal(headerValue(''), '""');
  assert.equal(headerValue('a'.repeat(400)), `"${'a'.repeat(253)}..."`);
});

test('headerComment escapes parentheses and backslashes', () => {
  assert.equal(headerComment('a (b) \\ c\n'), 'a \\(b\\) \\\\ c?');
});

test('truncate marks the cut', () => {
  assert.equal(truncate('abcdef', 5), 'ab...');
  assert.equal(truncate('abc', 5), 'abc');
});

test('logValue cuts first, then escapes: bounded, and nothing that ends a line', () => {
  assert.equal(logValue('mail.example.org', 100), 'mail.example.org');
  const hostile = 'a\r\nb'.repeat(1000);
  const shown = logValue(hostile, 8);
  assert.equal(shown, 'a\\x0d\\x0aba...');
  assert.doesNotMatch(shown, /[\r\n\0]/);
});
