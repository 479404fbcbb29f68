/**
 * Store URLs: which backend a URL opens, where an SQLite file goes, and that neither a log
 * description nor an error ever carries a password.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
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
});
