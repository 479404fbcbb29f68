// `mailgate checkid` through the real binary entry, the real resolver and the fixture DNS server,
// with the registry settings of a configuration file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { runCli } from '../support/run-cli.js';

let server: FixtureDnsServer;
let dir: string;
let config: string;

before(async () => {
  server = await startDnsServer({
    'heaven.net.registry.example': [{ TXT: 'ip4=208.20.133.16/29 svc=S1:A,M2:A,H1:B' }],
    'wayforward.net.registry.example': [{ TXT: 'meth=SPF:10 svc=S1:A,M2:A' }],
    'optsw.com': [{ TXT: 'v=spf1 ip4:69.55.226.139 -all' }],
    'broken.tld.registry.example': [{ TXT: 'ip4=192.0.2.1 colour=blue' }],
  });
  dir = mkdtempSync(join(tmpdir(), 'mailgate-checkid-'));
  config = join(dir, 'mailgate.toml');
  writeFileSync(
    config,
    [
      'hostname = "mx.receiver.example"',
      '[registry]',
      'zone = "registry.example"',
      'help = "https://registry.example/rejects"',
      '[registry.services.S1]',
      'grades = { A = 9, B = 7, C = 5, D = 0 }',
      'weight = 5',
      '[registry.services.M2]',
      'grades = { A = 9, B = 7, C = 5, D = 0 }',
      'weight = 5',
      '[registry.services.H1]',
      'grades = { A = 9, B = 7, C = 5, D = 0 }',
      'weight = 5',
      '',
    ].join('\n'),
  );
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const checkid = (...args: string[]) => runCli(['--dns', server.address, 'checkid', ...args]);

test('--json prints one object with the action, ID, method, rating, reply and headers', async () => {
  const run = await checkid(
    '--ip',
    '208.20.133.17',
    '--helo',
    'mailout17.heaven.net',
    '--config',
    config,
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const out = JSON.parse(lines[0]!);
  assert.equal(out.action, 'ACCEPT');
  assert.equal(out.id, 'heaven.net');
  assert.equal(out.method, 'QR1');
  assert.equal(out.rating, 'HIGH');
  assert.deepEqual(out.reply, { code: 250, xcode: '2.7.0', text: 'Sender OK' });
  assert.deepEqual(out.headers, [
    { name: 'Authent', value: '208.20.133.17 heaven.net QR1 PASS ratings=S1:A,M2:A,H1:B' },
  ]);
});

test('for people: labelled lines; the SPF method with the sender, and its Received-SPF', async () => {
  const run = await checkid(
    '--ip',
    '69.55.226.139',
    '--helo',
    'mx1.wayforward.net',
    '--sender',
    '<tway@optsw.com>',
    '--config',
    config,
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^action: +ACCEPT$/m);
  assert.match(run.stdout, /^method: +SPF pass$/m);
  assert.match(
    run.stdout,
    /^header: +Authent: 69\.55\.226\.139 wayforward\.net SPF1 pass ratings=S1:A,M2:A$/m,
  );
  assert.match(
    run.stdout,
    /^header: +Received-SPF: Pass \(mx\.receiver\.example: domain of optsw\.com/m,
  );
  // Two services of weight 5 are below the 15 it takes; both A: still HIGH.
  assert.match(run.stdout, /^rating: +HIGH \(S1:A,M2:A\)$/m);
});

test('a refusal is exit 0 too, with the help pointer', async () => {
  const run = await checkid(
    '--ip',
    '192.0.2.1',
    '--helo',
    'mx.unlisted.tld',
    '--config',
    config,
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.action, 'REJECT');
  assert.equal(
    out.reply.text,
    "Declared ID 'unlisted.tld' has no Registry record. See https://registry.example/rejects",
  );
});

test('a broken record: TEMPFAIL with the alert', async () => {
  const run = await checkid(
    '--ip',
    '192.0.2.1',
    '--helo',
    'mx.broken.tld',
    '--config',
    config,
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.action, 'TEMPFAIL');
  assert.match(out.alert, /unknown key 'colour'/);
});

test('--zone without a file: no trusted services, so FILTER', async () => {
  const run = await checkid(
    '--ip',
    '208.20.133.17',
    '--helo',
    'mailout17.heaven.net',
    '--zone',
    'registry.example',
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.action, 'FILTER');
  assert.equal(out.reason, 'no-trusted-ratings');
});

test('bad arguments: exit 2', async () => {
  for (const args of [
    ['--ip', 'nope', '--helo', 'mx.heaven.net', '--zone', 'registry.example'],
    ['--ip', '192.0.2.1', '--helo', 'mx.heaven.net'],
    ['--ip', '192.0.2.1', '--helo', 'mx.heaven.net', '--zone', 'bad zone'],
    ['--helo', 'mx.heaven.net', '--zone', 'registry.example'],
  ]) {
    const run = await checkid(...args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}`);
    assert.match(run.stderr, /^mailgate: /);
  }
});
