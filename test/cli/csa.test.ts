import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { runCli } from '../support/run-cli.js';

let server: FixtureDnsServer;
let silent: Socket;
let silentAddress: string;

before(async () => {
  server = await startDnsServer(
    {
      '_client._smtp.mx.example.com': [{ SRV: [1, 2, 0, 'host.example.com'] }],
      'host.example.com': [{ A: '192.0.2.10' }, { AAAA: '2001:db8::10' }],
      '_client._smtp.example.net': [{ SRV: [1, 2, 1, '.'] }],
      '_client._smtp.1.2.0.192.in-addr.arpa': [{ SRV: [1, 2, 0, 'host.example.com'] }],
    },
    { srvAdditional: true },
  );
  // A DNS "server" that never answers.
  silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  silentAddress = `127.0.0.1:${silent.address().port}`;
});

after(async () => {
  await server.close();
  silent.close();
});

const csa = (...args: string[]) => runCli(['--dns', server.address, 'csa', ...args]);

test('--json prints one object with the result, reason and reply', async () => {
  const run = await csa('--ip', '192.0.2.10', '--helo', 'mx.example.com', '--json');
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!), {
    result: 'pass',
    reason: 'ok',
    ip: '192.0.2.10',
    helo: 'mx.example.com',
    domain: 'mx.example.com',
    record: '_client._smtp.mx.example.com',
    target: 'host.example.com',
    problem: null,
    queries: 1,
    reply: { code: 250, xcode: '2.7.0', text: 'CSA: 192.0.2.10 is authorized by mx.example.com' },
  });
});

test('an IPv6 fail, for people: labelled lines and the reply', async () => {
  const run = await csa('--ip', '2001:db8::99', '--helo', 'mx.example.com');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^result: +fail$/m);
  assert.match(run.stdout, /^reason: +address-mismatch$/m);
  assert.match(run.stdout, /^target: +host\.example\.com$/m);
  assert.match(
    run.stdout,
    /^reply: +550 5\.7\.1 CSA: 2001:db8::99 is not authorized by mx\.example\.com$/m,
  );
});

test('the parent search and address literals from the command line', async () => {
  const strict = await csa('--ip', '192.0.2.10', '--helo', 'mail.example.net', '--json');
  const out = JSON.parse(strict.stdout);
  assert.equal(out.result, 'fail');
  assert.equal(out.reason, 'explicit-authorization-required');
  assert.equal(out.record, '_client._smtp.example.net');
  const literal = await csa('--ip', '192.0.2.10', '--helo', '[192.0.2.1]', '--json');
  assert.equal(JSON.parse(literal.stdout).result, 'pass');
  const none = await csa('--ip', '2001:db8::10', '--helo', '[IPv6:2001:db8::5]', '--json');
  assert.equal(none.code, 0);
  assert.equal(JSON.parse(none.stdout).reason, 'no-record');
});

test('a hostile HELO is reported escaped, on one line each', async () => {
  const run = await csa('--ip', '192.0.2.10', '--helo', 'evil.example.com\r\nQUIT');
  assert.equal(run.code, 0, run.stderr);
  assert.ok(!run.stdout.includes('\r'));
  assert.match(run.stdout, /^reason: +invalid-helo$/m);
  assert.match(run.stdout, /^helo: +evil\.example\.com\\x0d\\x0aQUIT$/m);
  assert.match(run.stdout, /^reply: +250 2\.7\.0 CSA: evil\.example\.com\?\?QUIT is not a host/m);
  const empty = await csa('--ip', '192.0.2.10', '--helo', '', '--json');
  assert.equal(empty.code, 0);
  assert.equal(JSON.parse(empty.stdout).reason, 'invalid-helo');
});

test('bad arguments exit 2 with one line on stderr', async () => {
  for (const args of [
    ['csa', '--ip', '192.0.2.300', '--helo', 'mx.example.com'],
    ['csa', '--ip', 'mx.example.com', '--helo', 'mx.example.com'],
    ['csa', '--ip', '192.0.2.1'],
    ['csa', '--helo', 'mx.example.com'],
    ['csa', '--ip', '192.0.2.1', '--helo', 'mx.example.com', '--time-budget', 'soon'],
    ['--dns', 'resolver.example:53', 'csa', '--ip', '192.0.2.1', '--helo', 'mx.example.com'],
  ]) {
    const run = await runCli(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, /^mailgate: /);
    assert.equal(run.stdout, '');
  }
});

test('a DNS server that never answers gives tempfail, not a hang', async () => {
  const run = await runCli(
    [
      '--dns',
      silentAddress,
      'csa',
      '--ip',
      '192.0.2.10',
      '--helo',
      'mx.example.com',
      '--time-budget',
      '700',
      '--json',
    ],
    15_000,
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.result, 'tempfail');
  assert.equal(out.reason, 'srv-lookup-failed');
  assert.deepEqual([out.reply.code, out.reply.xcode], [451, '4.4.3']);
  assert.match(out.problem, /time budget exhausted/);
});
