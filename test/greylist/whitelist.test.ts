import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseIp } from '../../src/dns/address.js';
import {
  ClientWhitelist,
  formatProblem,
  RecipientWhitelist,
  WhitelistFile,
} from '../../src/greylist/index.js';
import { ManualClock, RecordingLogger } from './helpers.js';

const ip = (text: string) => parseIp(text)!;

test('client lines: names match themselves and their subdomains, never a mere suffix', () => {
  const { list, problems } = ClientWhitelist.parse(
    '# postgrey-style list\n\nmail.example.com\n.example.net   # leading dot\nExample.ORG.\n',
    'clients',
  );
  assert.deepEqual(problems, []);
  assert.equal(list.size, 3);
  const other = ip('198.51.100.1');
  assert.equal(list.match(other, 'mail.example.com'), 'clients:3: mail.example.com');
  assert.equal(list.match(other, 'MX.Mail.Example.Com.'), 'clients:3: mail.example.com');
  assert.equal(list.match(other, 'example.com'), null);
  assert.equal(list.match(other, 'evilmail.example.com'), null);
  assert.equal(list.match(other, 'a.b.example.net'), 'clients:4: .example.net');
  assert.equal(list.match(other, 'example.org'), 'clients:5: Example.ORG.');
  assert.equal(list.match(other, 'example.org.evil.test'), null);
  // Names are matched only against a verified name.
  assert.equal(list.match(other, undefined), null);
  assert.ok(list.needsName);
});

test('client lines: addresses, partial IPv4 (whole octets), networks', () => {
  const { list, problems } = ClientWhitelist.parse(
    [
      '192.0.2.1',
      '198.51.100',
      '10.20',
      '11',
      '203.0.113.64/26',
      '2001:db8:1::/48',
      '2001:db8:ff::7',
      '::ffff:100.64.0.0/120',
    ].join('\n'),
  );
  assert.deepEqual(problems, []);
  assert.ok(!list.needsName);
  const hits = (a: string) => list.match(ip(a), undefined);
  assert.equal(hits('192.0.2.1'), 'inline:1: 192.0.2.1');
  assert.equal(hits('::ffff:192.0.2.1'), 'inline:1: 192.0.2.1');
  assert.equal(hits('192.0.2.2'), null);
  assert.equal(hits('198.51.100.200'), 'inline:2: 198.51.100');
  assert.equal(hits('198.51.10.1'), null, '198.51.100 is whole octets, not a string prefix');
  assert.equal(hits('10.20.255.1'), 'inline:3: 10.20');
  assert.equal(hits('10.2.0.1'), null);
  assert.equal(hits('11.0.0.1'), 'inline:4: 11');
  assert.equal(hits('203.0.113.127'), 'inline:5: 203.0.113.64/26');
  assert.equal(hits('203.0.113.128'), null);
  assert.equal(hits('2001:db8:1:ffff::1'), 'inline:6: 2001:db8:1::/48');
  assert.equal(hits('2001:db8:2::1'), null);
  assert.equal(hits('2001:DB8:FF:0::7'), 'inline:7: 2001:db8:ff::7');
  assert.equal(hits('100.64.0.9'), 'inline:8: ::ffff:100.64.0.0/120');
});

test('client lines: regular expressions against the client name, case-insensitive', () => {
  const { list, problems } = ClientWhitelist.parse('/^mx\\d+\\.example\\.com$/\n');
  assert.deepEqual(problems, []);
  assert.equal(
    list.match(ip('192.0.2.1'), 'MX12.example.com'),
    'inline:1: /^mx\\d+\\.example\\.com$/',
  );
  assert.equal(list.match(ip('192.0.2.1'), 'mx.example.com'), null);
  assert.equal(list.match(ip('192.0.2.1'), undefined), null);
});

test('bad lines are reported with file and line, and skipped', () => {
  const text = [
    'good.example.com',
    '/(unclosed/',
    '192.0.2.0/33',
    '300.1.2',
    'not a name',
    '*.example.com',
    '//',
    '198.51.100.0/24',
  ].join('\n');
  const { list, problems } = ClientWhitelist.parse(text, '/etc/mailgate/whitelist_clients');
  assert.deepEqual(
    problems.map((p) => [p.line, p.problem]),
    [
      [2, 'bad regular expression'],
      [3, 'bad network'],
      [4, 'bad address'],
      [5, 'not a host name, address, network or /regex/'],
      [6, 'not a host name, address, network or /regex/'],
      [7, 'empty regular expression'],
    ],
  );
  assert.equal(
    formatProblem(problems[0]!),
    '/etc/mailgate/whitelist_clients:2: bad regular expression: /(unclosed/',
  );
  assert.equal(list.size, 2);
  assert.ok(list.match(ip('198.51.100.9'), undefined));
  // A hostile line stays one log-safe line.
  const { problems: hostile } = RecipientWhitelist.parse('/[\r/\nx\0y z\n');
  for (const p of hostile) assert.match(formatProblem(p), /^[\x20-\x7e]*$/);
});

test('recipient lines: local part@, address, domain, @domain, regex', () => {
  const { list, problems } = RecipientWhitelist.parse(
    [
      'Hostmaster@',
      'jo@example.com',
      'example.org',
      '@example.net',
      '/^list-[a-z]+@lists\\.example\\.com$/',
      'sam+sales@example.com',
    ].join('\n'),
    'recipients',
  );
  assert.deepEqual(problems, []);
  assert.equal(list.match('hostmaster@anything.test'), 'recipients:1: Hostmaster@');
  assert.equal(list.match('<HOSTMASTER@x.example>'), 'recipients:1: Hostmaster@');
  assert.equal(list.match('hostmasters@x.example'), null);
  assert.equal(list.match('jo@example.com'), 'recipients:2: jo@example.com');
  // The normalised form also counts: an extension or BATV tag does not hide the address.
  assert.equal(list.match('Jo+news@Example.com'), 'recipients:2: jo@example.com');
  assert.equal(list.match('jo@sub.example.com'), null, 'an address is exact');
  assert.equal(list.match('anyone@example.org'), 'recipients:3: example.org');
  assert.equal(list.match('anyone@deep.sub.example.org'), 'recipients:3: example.org');
  assert.equal(list.match('anyone@notexample.org'), null);
  assert.equal(list.match('anyone@a.example.net'), 'recipients:4: @example.net');
  assert.equal(
    list.match('list-dev@lists.example.com'),
    'recipients:5: /^list-[a-z]+@lists\\.example\\.com$/',
  );
  assert.equal(list.match('list-dev2@lists.example.com'), null);
  // An entry with an extension matches that address as given, not its siblings.
  assert.equal(list.match('sam+sales@example.com'), 'recipients:6: sam+sales@example.com');
  assert.equal(list.match('sam@example.com'), null);
  assert.equal(list.match('sam+other@example.com'), null);
});

test('regexes see at most 254 characters of a recipient', () => {
  const { list } = RecipientWhitelist.parse('/^a{255}/\n/^a{254}$/\n');
  assert.equal(list.match(`${'a'.repeat(5000)}@example.com`), 'inline:2: /^a{254}$/');
});

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailgate-wl-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('a missing file at start-up is an error naming the path', async () => {
  const path = join(dir, 'nope');
  await assert.rejects(WhitelistFile.clients(path), (err: Error) => err.message.includes(path));
  await assert.rejects(WhitelistFile.recipients(dir), /not a regular file/);
});

test('a file is read again when it changes, at most once a second, and on reload()', async () => {
  const path = join(dir, 'clients');
  await writeFile(path, '192.0.2.1\n/(bad/\n');
  const clock = new ManualClock(1_000_000);
  const logger = new RecordingLogger();
  const file = await WhitelistFile.clients(path, { clock, logger });
  assert.equal(file.problems.length, 1);
  assert.ok(logger.has('warn', `${path}:2: bad regular expression: /(bad/`));
  assert.ok(file.list.match(ip('192.0.2.1'), undefined));

  await writeFile(path, '198.51.100.7\nnew.example.com\n');
  // Within the second: the old content, without a look at the file.
  clock.advance(999);
  await file.refresh();
  assert.ok(file.list.match(ip('192.0.2.1'), undefined));
  clock.advance(1);
  await file.refresh();
  assert.equal(file.list.match(ip('192.0.2.1'), undefined), null);
  assert.ok(file.list.match(ip('198.51.100.7'), undefined));
  assert.ok(logger.has('info', 'whitelist reloaded'));
  assert.deepEqual(file.problems, []);

  // Replaced by rename (a new inode), as editors and config management do.
  await writeFile(`${path}.new`, '203.0.113.9\n');
  await rename(`${path}.new`, path);
  const reloaded = await file.reload();
  assert.equal(reloaded, true);
  assert.ok(file.list.match(ip('203.0.113.9'), undefined));
});

test('a clock stepped back does not stop the file from being looked at', async () => {
  const path = join(dir, 'clients-clock');
  await writeFile(path, '192.0.2.1\n');
  const clock = new ManualClock(50_000_000);
  const file = await WhitelistFile.clients(path, { clock, logger: new RecordingLogger() });
  // An hour back (an NTP step): the next look must not wait until the clock has caught up.
  clock.set(50_000_000 - 3_600_000);
  await writeFile(path, '198.51.100.7\n');
  clock.advance(1000);
  await file.refresh();
  assert.ok(file.list.match(ip('198.51.100.7'), undefined));
});

test('a file removed later keeps its last content and is reported once', async () => {
  const path = join(dir, 'recipients');
  await writeFile(path, 'jo@example.com\n');
  const clock = new ManualClock(5_000_000);
  const logger = new RecordingLogger();
  const file = await WhitelistFile.recipients(path, { clock, logger });
  await unlink(path);
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    await file.refresh();
  }
  assert.equal(await file.reload(), false);
  assert.equal(logger.count('warn', 'whitelist file unreadable; keeping its last content'), 1);
  assert.ok(file.list.match('jo@example.com'));
  // It comes back: read again, and a later removal is reported again.
  await writeFile(path, 'sam@example.com\n');
  clock.advance(1000);
  await file.refresh();
  assert.ok(file.list.match('sam@example.com'));
  assert.equal(file.list.match('jo@example.com'), null);
  await unlink(path);
  clock.advance(1000);
  await file.refresh();
  assert.equal(logger.count('warn', 'whitelist file unreadable; keeping its last content'), 2);
});

test('concurrent uses share one look at the file', async () => {
  const path = join(dir, 'shared');
  await writeFile(path, '192.0.2.1\n');
  const clock = new ManualClock(9_000_000);
  const logger = new RecordingLogger();
  const file = await WhitelistFile.clients(path, { clock, logger });
  await writeFile(path, '192.0.2.2\n192.0.2.3\n');
  clock.advance(1000);
  await Promise.all([file.refresh(), file.refresh(), file.refresh()]);
  assert.equal(logger.count('info', 'whitelist reloaded'), 1);
  assert.ok(file.list.match(ip('192.0.2.3'), undefined));
});
