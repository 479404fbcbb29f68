import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { runCli } from '../support/run-cli.js';

let server: FixtureDnsServer;
let silent: Socket;
let silentAddress: string;

before(async () => {
  server = await startDnsServer({
    'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all exp=why.example.com' }],
    'why.example.com': [{ TXT: '%{c} may not send for %{d}' }],
    'mx.example.com': [{ A: '198.51.100.7' }],
    'nospf.example.com': [{ A: '198.51.100.7' }, { MX: [10, 'mx.example.com'] }],
    'broken.example.com': [{ TXT: 'v=spf1 prt -all' }],
  });
  // A DNS "server" that never answers.
  silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  silentAddress = `127.0.0.1:${silent.address().port}`;
});

after(async () => {
  await server.close();
  silent.close();
});

const spf = (...args: string[]) => runCli(['--dns', server.address, 'spf', ...args]);

test('--json prints one object with the result, headers and counters', async () => {
  const run = await spf(
    '--ip',
    '192.0.2.55',
    '--sender',
    'jo@example.com',
    '--helo',
    'mx.example.com',
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const out = JSON.parse(lines[0]!);
  assert.equal(out.result, 'pass');
  assert.equal(out.mechanism, 'ip4:192.0.2.0/24');
  assert.equal(out.explanation, null);
  assert.equal(out.lookups, 0);
  assert.match(
    out.receivedSpf,
    /^Pass \(unknown: domain of example\.com designates 192\.0\.2\.55 as permitted sender\)/,
  );
  assert.equal(out.authResults, 'spf=pass smtp.mailfrom=jo@example.com');
  assert.deepEqual(out.reply.code, 250);
});

test('a fail carries the exp= explanation; people get labelled lines', async () => {
  const run = await spf(
    '--ip',
    '203.0.113.9',
    '--sender',
    'jo@example.com',
    '--receiver',
    'mx.example.org',
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^result: +fail$/m);
  assert.match(run.stdout, /^explanation: 203\.0\.113\.9 may not send for example\.com$/m);
  assert.match(run.stdout, /^mechanism: +-all$/m);
  assert.match(run.stdout, /^lookups: +0 DNS-querying terms, 0 void, 2 queries$/m);
  assert.match(
    run.stdout,
    /^Received-SPF: Fail \(mx\.example\.org: .*receiver=mx\.example\.org; mechanism=-all; identity=mailfrom$/m,
  );
});

test('--best-guess reports a guess when there is no record', async () => {
  const run = await spf(
    '--ip',
    '198.51.100.9',
    '--sender',
    'a@nospf.example.com',
    '--best-guess',
    '--json',
  );
  const out = JSON.parse(run.stdout);
  assert.equal(out.result, 'none');
  assert.equal(out.guess, 'pass');
});

test('--lax reports the lax result of a broken record', async () => {
  const run = await spf(
    '--ip',
    '198.51.100.9',
    '--sender',
    'a@broken.example.com',
    '--lax',
    '--json',
  );
  const out = JSON.parse(run.stdout);
  assert.equal(out.result, 'permerror');
  assert.equal(out.laxResult, 'fail');
  assert.match(out.problem, /prt/);
  assert.deepEqual(out.forgiven, ["misspelled mechanism 'prt'"]);
});

test('the null sender checks the HELO identity', async () => {
  const run = await spf('--ip', '192.0.2.1', '--sender', '', '--helo', 'example.com', '--json');
  const out = JSON.parse(run.stdout);
  assert.equal(out.identity, 'helo');
  assert.equal(out.sender, 'postmaster@example.com');
  assert.equal(out.result, 'pass');
  assert.equal(out.authResults, 'spf=pass smtp.helo=example.com');
});

test('bad arguments exit 2 with one line on stderr', async () => {
  for (const args of [
    ['spf', '--ip', '192.0.2.300', '--sender', 'a@example.com'],
    ['spf', '--ip', '192.0.2.1'],
    ['spf', '--sender', 'a@example.com'],
    ['--dns', 'resolver.example:53', 'spf', '--ip', '192.0.2.1', '--sender', 'a@example.com'],
    ['spf', '--ip', '192.0.2.1', '--sender', 'a@example.com', '--identity', 'rcpt'],
  ]) {
    const run = await runCli(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, /^mailgate: /);
    assert.equal(run.stdout, '');
  }
});

test('a DNS server that never answers gives temperror, not a hang', async () => {
  const run = await runCli(
    [
      '--dns',
      silentAddress,
      'spf',
      '--ip',
      '192.0.2.1',
      '--sender',
      'a@example.com',
      '--time-budget',
      '700',
      '--json',
    ],
    15_000,
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.result, 'temperror');
  assert.equal(out.reply.code, 451);
  assert.match(out.problem, /time budget/);
});
