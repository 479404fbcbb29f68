import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  authenticationResults,
  authResultsClause,
  receivedSpf,
} from '../../../src/checks/spf/header.js';
import type { SpfResult } from '../../../src/checks/spf/types.js';

const base: Pick<
  SpfResult,
  'result' | 'identity' | 'ip' | 'sender' | 'domain' | 'helo' | 'mechanism' | 'problem'
> = {
  result: 'pass',
  identity: 'mailfrom',
  ip: '192.0.2.3',
  sender: 'strong-bad@email.example.com',
  domain: 'email.example.com',
  helo: 'mx.example.org',
  mechanism: 'ip4:192.0.0.0/8',
};

test('Received-SPF has the RFC 7208 9.1 keys in order', () => {
  assert.equal(
    receivedSpf(base, { receiver: 'mybox.example.org' }),
    'Pass (mybox.example.org: domain of email.example.com designates 192.0.2.3 as permitted sender) ' +
      'client-ip=192.0.2.3; envelope-from="strong-bad@email.example.com"; helo=mx.example.org; ' +
      'receiver=mybox.example.org; mechanism="ip4:192.0.0.0/8"; identity=mailfrom',
  );
});

test('permerror carries the problem; the HELO identity has no envelope-from', () => {
  const v = receivedSpf(
    {
      ...base,
      result: 'permerror',
      identity: 'helo',
      sender: 'postmaster@mx.example.org',
      problem: 'unknown mechanism',
      mechanism: undefined,
    },
    {},
  );
  assert.match(
    v,
    /^PermError \(unknown: permanent error in processing domain of email.example.com: unknown mechanism\)/,
  );
  assert.doesNotMatch(v, /envelope-from/);
  assert.match(v, /problem="unknown mechanism"; identity=helo$/);
});

test('hostile input never breaks the header syntax', () => {
  const evil = {
    ...base,
    result: 'fail' as const,
    sender: 'a"b\\c\r\nX-Injected: yes\u0000\u00e9@evil.example',
    helo: 'h\r\nX-Bad: 1 (x) "q"',
    mechanism: '-all',
  };
  const v = receivedSpf(evil, { receiver: 'mx (ours)' });
  assert.doesNotMatch(v, /[\r\n\0]/);
  assert.doesNotMatch(v, /[^\x20-\x7e]/);
  // The comment's parentheses are balanced once escapes are taken out.
  const comment = v.slice(v.indexOf('(') + 1);
  let depth = 1;
  for (let i = 0; i < comment.length && depth > 0; i++) {
    if (comment[i] === '\\') i++;
    else if (comment[i] === '(') depth++;
    else if (comment[i] === ')') depth--;
  }
  assert.equal(depth, 0);
  assert.match(v, /envelope-from="a\\"b\\\\c\?\?X-Injected: yes\?\?@evil\.example";/);
  assert.match(v, /helo="h\?\?X-Bad: 1 \(x\) \\"q\\"";/);
  const clause = authResultsClause(evil);
  assert.doesNotMatch(clause, /[\r\n\0]/);
  assert.match(clause, /^spf=fail smtp\.mailfrom="/);
});

test('Authentication-Results clause and header', () => {
  assert.equal(authResultsClause(base), 'spf=pass smtp.mailfrom=strong-bad@email.example.com');
  assert.equal(
    authResultsClause({ ...base, identity: 'helo', sender: 'postmaster@mx.example.org' }),
    'spf=pass smtp.helo=mx.example.org',
  );
  assert.equal(
    authenticationResults('mx.example.net', [authResultsClause(base)]),
    'mx.example.net; spf=pass smtp.mailfrom=strong-bad@email.example.com',
  );
});

test('the longest hostile values still give a field under 998 characters', () => {
  const long = '"(\\'.repeat(300);
  const v = receivedSpf(
    {
      ...base,
      result: 'permerror',
      ip: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
      sender: `${long}@${long}`,
      domain: long,
      helo: long,
      mechanism: long,
      problem: long,
    },
    { receiver: long },
  );
  assert.ok(`Received-SPF: ${v}`.length <= 998, `${v.length}`);
  assert.doesNotMatch(v, /[^\x20-\x7e]/);
});

test('Authentication-Results values are tokens, domain names or quoted-strings', () => {
  assert.equal(
    authResultsClause({ ...base, identity: 'helo', helo: 'a=b/c?d' }),
    'spf=pass smtp.helo="a=b/c?d"',
  );
  assert.equal(authenticationResults('mx/1', []), '"mx/1"; none');
});
