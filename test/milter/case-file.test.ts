/**
 * The case-file format: every case under test/milter/cases parses (so a typo fails here even on a
 * machine without Postfix), and the parser refuses what it does not understand.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CaseSyntaxError, globToRegExp, messageText, parseCase, readCase } from './case-file.js';

const CASES = fileURLToPath(new URL('./cases/', import.meta.url));

test('every case file parses, and says what it is about', () => {
  const files = readdirSync(CASES).filter((f) => f.endsWith('.case'));
  assert.ok(files.length >= 8, 'the cases are there');
  for (const file of files) {
    const c = readCase(join(CASES, file));
    assert.ok(c.description, `${file} opens with a comment saying what it is about`);
    assert.ok(c.transactions.length >= 1);
  }
});

test('a case with everything', () => {
  const c = parseCase(
    [
      '# What it is about,',
      '# over two lines.',
      'HELO client.example.org',
      'MAIL <alice@example.com>',
      'RCPT <later@example.net>',
      'RCPT <bob@example.net>',
      'HEADER',
      'Subject: hi',
      ' folded',
      '.',
      'BODY',
      '..dot',
      '',
      '.',
      'REPLY MAIL 550-5.7.1 one',
      'REPLY MAIL 550 5.7.1 two',
      'REPLY RCPT <later@example.net> 451 4.7.1 try later',
      'REPLY DOT 250 *',
      'OUTCOME delivered',
      'ENVELOPE-FROM <alice@example.com>',
      'ENVELOPE-TO <bob@example.net>',
      'HEADER-HAS Subject[1]: [sample] hi*',
      'HEADER-LACKS X-Spam',
      'HEADER-LACKS X-Other: yes',
      'HEADER-LAST X-Sample-Milter: 127.0.0.1',
      'BODY-IS',
      'replaced',
      '.',
      'BODY-HAS rep',
      'BODY-LACKS dot',
      'LOG status=sent',
      'MILTER-LOG step="eom"',
    ].join('\n'),
    'cases/all.case',
  );
  assert.equal(c.name, 'all');
  assert.equal(c.description, 'What it is about, over two lines.');
  assert.equal(c.helo, 'client.example.org');
  const [tx] = c.transactions;
  assert.ok(tx);
  assert.equal(tx.from, 'alice@example.com');
  assert.deepEqual(tx.to, ['later@example.net', 'bob@example.net']);
  assert.deepEqual(tx.replies, [
    { stage: 'mail', lines: ['550-5.7.1 one', '550 5.7.1 two'] },
    { stage: 'rcpt', address: 'later@example.net', lines: ['451 4.7.1 try later'] },
    { stage: 'dot', lines: ['250 *'] },
  ]);
  assert.equal(tx.outcome, 'delivered');
  assert.deepEqual(tx.envelopeTo, ['bob@example.net']);
  assert.deepEqual(tx.headerHas, [{ name: 'Subject', occurrence: 1, value: '[sample] hi*' }]);
  assert.deepEqual(tx.headerLacks, [{ name: 'X-Spam' }, { name: 'X-Other', value: 'yes' }]);
  assert.deepEqual(tx.headerLast, { name: 'X-Sample-Milter', value: '127.0.0.1' });
  assert.equal(tx.bodyIs, 'replaced\r\n');
  assert.equal(messageText(c, tx), 'Subject: hi\r\n folded\r\n\r\n.dot\r\n\r\n');
});

test('transactions, the null sender and the default header', () => {
  const c = parseCase(
    [
      '# Two messages.',
      'TRANSACTION first',
      'MAIL <>',
      'RCPT <a@example.net>',
      'OUTCOME refused',
      'TRANSACTION second',
      'MAIL <b@example.com>',
      'RCPT <c@example.net>',
      'OUTCOME held',
    ].join('\n'),
    'two.case',
  );
  assert.deepEqual(
    c.transactions.map((t) => [t.name, t.from, t.outcome]),
    [
      ['first', '', 'refused'],
      ['second', 'b@example.com', 'held'],
    ],
  );
  assert.equal(
    messageText(c, c.transactions[1]!),
    'From: <b@example.com>\r\nTo: <c@example.net>\r\nSubject: mailgate case two (second)\r\n\r\n',
  );
});

test('mistakes are refused with the file and line', () => {
  const bad: [string, RegExp][] = [
    ['MAIL alice@example.com\nRCPT <b@x>\nOUTCOME delivered', /x\.case:1: MAIL wants <address>/],
    ['MAIL <a@x>\nRCPT <b@x>\nOUTCOME sent', /x\.case:3: OUTCOME is one of/],
    [
      'MAIL <a@x>\nRCPT <b@x>\nREPLY QUIT 221 bye\nOUTCOME refused',
      /x\.case:3: REPLY wants a stage/,
    ],
    [
      'MAIL <a@x>\nRCPT <b@x>\nRCPT <c@x>\nREPLY RCPT 250 ok\nOUTCOME refused',
      /x\.case:4: REPLY RCPT needs the <recipient>/,
    ],
    ['MAIL <a@x>\nRCPT <b@x>\nBODY\nno end', /x\.case:3: block not ended/],
    [
      'MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nHEADER-HAS X-A: 1',
      /message expectations for a refused/,
    ],
    ['MAIL <a@x>\nRCPT <b@x>', /x\.case:1: transaction 1: no OUTCOME/],
    ['MAIL <a@x>\nOUTCOME refused', /no RCPT/],
    ['RCPT <b@x>\nOUTCOME refused', /no MAIL/],
    ['MAIL <a@x>\nMAIL <b@x>', /x\.case:2: a second MAIL/],
    ['MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nFROB 1', /x\.case:4: unknown directive FROB/],
    ['MAIL <a@x>\nRCPT <b@x>\nOUTCOME refused\nlowercase', /x\.case:4: not a directive/],
  ];
  for (const [text, message] of bad) {
    assert.throws(
      () => parseCase(text, 'x.case'),
      (e: unknown) => {
        assert.ok(e instanceof CaseSyntaxError, String(e));
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

test('globs: * is any text, the rest is literal', () => {
  assert.ok(globToRegExp('250 2.0.0 Ok: queued as *').test('250 2.0.0 Ok: queued as 4AbC'));
  assert.ok(!globToRegExp('250 2.0.0 Ok').test('250 2.0.0 Ok: queued'));
  assert.ok(globToRegExp('[sample] (a+b)?').test('[sample] (a+b)?'));
  assert.ok(!globToRegExp('a.c').test('abc'));
  assert.ok(globToRegExp('status=sent', { anywhere: true }).test('x: status=sent (250 ok)'));
});
