/**
 * Store URLs: which backend a URL opens, where an SQLite file goes, and that neither a log
 * description nor an error ever carries a password.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { storeError } from '../../src/store/common.js';
import { describeStoreUrl, openStore, StoreError } from '../../src/store/index.js';
import { parseStoreUrl } from '../../src/store/url.js';

test('sqlite URLs: relative to the current directory, absolute, in memory', () => {
  assert.deepEqual(parseStoreUrl('sqlite:./var/mailgate.db'), {
    kind: 'sqlite',
    path: resolve(process.cwd(), 'var/mailgate.db'),
    description: 'sqlite:./var/mailgate.db',
  });
  assert.equal((parseStoreUrl('sqlite:var/x.db') as { path: string }).path, resolve('var/x.db'));
  assert.equal((parseStoreUrl('sqlite:/srv/m.db') as { path: string }).path, '/srv/m.db');
  assert.equal((parseStoreUrl('sqlite:///srv/m.db') as { path: string }).path, '/srv/m.db');
  assert.equal((parseStoreUrl('SQLITE:/srv/m.db') as { path: string }).path, '/srv/m.db');
  assert.equal((parseStoreUrl('sqlite::memory:') as { path: string }).path, ':memory:');
});

test('postgres URLs keep the URL for the driver and describe it without the password', () => {
  const target = parseStoreUrl(
    'postgres://mx:p%40ss@db1.example.net:5433/mailgate?sslmode=require',
  );
  assert.equal(target.kind, 'postgres');
  assert.equal(target.description, 'postgres://mx@db1.example.net:5433/mailgate?sslmode=require');
  assert.ok(target.kind === 'postgres' && target.secrets.includes('p@ss'));
  assert.equal(parseStoreUrl('postgresql://db/mailgate').kind, 'postgres');
});

test('describeStoreUrl removes passwords wherever a URL can hold one', () => {
  assert.equal(
    describeStoreUrl('postgres://mailgate:secret@db1:5432/mailgate'),
    'postgres://mailgate@db1:5432/mailgate',
  );
  assert.equal(
    describeStoreUrl('postgres://db1/mailgate?user=mx&password=secret'),
    'postgres://db1/mailgate?user=mx&password=***',
  );
  assert.equal(describeStoreUrl('postgres://db1/mailgate'), 'postgres://db1/mailgate');
  assert.equal(describeStoreUrl('sqlite:./var/mailgate.db'), 'sqlite:./var/mailgate.db');
  assert.equal(describeStoreUrl('mysql://u:secret@h/db'), 'mysql://u@h/db');
  assert.ok(!describeStoreUrl('postgres://u:secret@[bad').includes('secret'));
  assert.ok(!describeStoreUrl('no scheme secret').includes('secret'));
  // A password with an unencoded / ? or # ends the authority early; the URL still parses, with
  // the password outside the password field: it is not shown at all.
  for (const url of [
    'postgres://mailgate:/Secret1@db1/mailgate',
    'postgres://mailgate:2024/Spring!@db1/mailgate',
    'postgres://mailgate:1234#abc@db1/mailgate',
    'postgres://mailgate:99?x@db1/mailgate',
  ]) {
    const shown = describeStoreUrl(url);
    assert.match(shown, /^postgres:\(URL not shown: an @ after the host/, url);
    for (const part of ['Secret1', 'Spring', 'abc', 'x@db1'])
      assert.ok(!shown.includes(part), shown);
  }
});

/** Asserts `openStore(url)` rejects with a StoreError matching `message` and not containing `secret`. */
async function refused(url: string, message: RegExp, secret = 'secret') {
  await assert.rejects(openStore(url), (error: unknown) => {
    assert.ok(error instanceof StoreError, `not a StoreError: ${error}`);
    assert.match(error.message, message);
    assert.ok(!error.message.includes(secret), error.message);
    return true;
  });
}

test('unknown schemes and malformed URLs are refused, naming the scheme and no password', async () => {
  await refused('mysql://u:secret@db/mailgate', /unsupported store URL scheme "mysql:"/);
  await refused('redis://:secret@cache', /unsupported store URL scheme "redis:"/);
  await refused('/var/lib/mailgate.db?secret', /store URL has no scheme/);
  await refused('postgres://u:secret@[bad/db', /not a valid postgres:\/\/ URL/);
  await refused('sqlite://host/path.db', /an SQLite URL has no host/);
  await refused('sqlite:', /SQLite file path is empty/);
  await refused(
    'postgres://mailgate:2024/Spring!@db1/mailgate',
    /store URL postgres:\/\/\(not shown\): an @ after the host: percent-encode/,
    'Spring',
  );
});

test('a store error carries no secret, in its cause either (loggers print the cause too)', () => {
  const driver = Object.assign(new Error('connect failed for pw hunter2pw at db1'), {
    code: 'ECONNREFUSED',
  });
  const error = storeError('open', driver, ['hunter2pw']);
  assert.ok(!error.message.includes('hunter2pw'), error.message);
  const cause = error.cause as Error & { code?: string };
  assert.ok(cause instanceof Error);
  assert.ok(!cause.message.includes('hunter2pw'), cause.message);
  assert.ok(!String(cause.stack).includes('hunter2pw'), cause.stack);
  assert.equal(cause.code, 'ECONNREFUSED');
  // Without secrets the driver's error is kept as it is.
  assert.equal(storeError('open', driver, []).cause, driver);
});
