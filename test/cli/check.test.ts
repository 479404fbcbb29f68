import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { runCli } from '../support/run-cli.js';

let server: FixtureDnsServer;

before(async () => {
  server = await startDnsServer({
    // A well-run sender: verified PTR, HELO = PTR, CSA record, SPF pass.
    '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.example.com' }],
    'mail.example.com': [{ A: '192.0.2.10' }],
    '_client._smtp.mail.example.com': [{ SRV: [1, 2, 0, 'mail.example.com'] }],
    'example.com': [{ TXT: 'v=spf1 a:mail.example.com -all' }],
    // A dial-up looking client on a blocklist.
    '9.113.0.203.in-addr.arpa': [{ PTR: 'dsl-203-0-113-9.dyn.example.net' }],
    'dsl-203-0-113-9.dyn.example.net': [{ A: '203.0.113.9' }],
    '9.113.0.203.bl.example': [{ A: '127.0.0.2' }, { TXT: 'listed for spam\r\nX-Injected: 1' }],
    '_client._smtp.example.net': [{ SRV: [1, 1, 1, '.'] }],
  });
});

after(() => server.close());

const check = (...args: string[]) => runCli(['--dns', server.address, 'check', ...args]);

test('--json prints one row per check', async () => {
  const run = await check(
    '--ip',
    '192.0.2.10',
    '--helo',
    'mail.example.com',
    '--sender',
    'jo@example.com',
    '--dnsbl',
    'bl.example',
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as {
    checks: Array<{ name: string; result: string; detail: string }>;
  };
  const byName = Object.fromEntries(out.checks.map((c) => [c.name, c]));
  assert.deepEqual(
    out.checks.map((c) => c.name),
    [
      'ptr',
      'helo',
      'csa',
      'dnsbl bl.example',
      'spf',
      'class',
      'decision connect',
      'decision helo',
      'decision mail',
    ],
  );
  assert.equal(byName.ptr!.result, 'verified');
  assert.match(byName.ptr!.detail, /mail\.example\.com/);
  assert.equal(byName.helo!.result, 'pass');
  assert.match(byName.helo!.detail, /bley score 0/);
  assert.equal(byName.csa!.result, 'pass');
  assert.equal(byName['dnsbl bl.example']!.result, 'not-listed');
  assert.equal(byName.spf!.result, 'pass');
  assert.equal(byName.class!.result, 'EXTERNAL');
  for (const c of out.checks)
    assert.ok(typeof c.detail === 'string' && c.detail.length > 0, c.name);
});

test('a listed dynamic client: the table shows why', async () => {
  const run = await check(
    '--ip',
    '203.0.113.9',
    '--helo',
    'box.example.net',
    '--dnsbl',
    'bl.example',
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^ptr +verified +dsl-203-0-113-9\.dyn\.example\.net; dynamic \(/m);
  assert.match(
    run.stdout,
    /^dnsbl bl\.example +listed +127\.0\.0\.2; listed for spam\?\?X-Injected: 1/m,
  );
  assert.match(run.stdout, /^csa +fail +explicit-authorization-required/m);
  assert.match(run.stdout, /^class +DYNAMIC +dynamic-ptr$/m);
  assert.doesNotMatch(run.stdout, /\r/);
});

test('internal networks and SMTP AUTH classify as INTERNAL', async () => {
  const run = await check(
    '--ip',
    '192.0.2.10',
    '--helo',
    'mail.example.com',
    '--internal',
    '192.0.2.0/24',
    '--json',
  );
  const out = JSON.parse(run.stdout) as {
    checks: Array<{ name: string; result: string; detail: string }>;
  };
  assert.deepEqual(
    out.checks.find((c) => c.name === 'class'),
    {
      name: 'class',
      result: 'INTERNAL',
      detail: 'internal-network',
    },
  );
});

test('--our-name takes names and addresses', async () => {
  for (const [helo, ours] of [
    ['mx.example.org', 'mx.example.org'],
    ['[192.0.2.1]', '192.0.2.1'],
    ['[IPv6:2001:db8::25]', '[IPv6:2001:db8::25]'],
  ]) {
    const run = await check('--ip', '198.51.100.7', '--helo', helo!, '--our-name', ours!, '--json');
    const out = JSON.parse(run.stdout) as {
      checks: Array<{ name: string; result: string; detail: string }>;
    };
    const row = out.checks.find((c) => c.name === 'helo')!;
    assert.equal(row.result, 'reject', `${helo}: ${row.detail}`);
    assert.match(row.detail, /own-name/);
  }
});

test('bad arguments exit 2 with one line', async () => {
  for (const args of [
    ['check', '--ip', 'nope', '--helo', 'x.example'],
    ['check', '--ip', '192.0.2.1'],
    ['check', '--ip', '192.0.2.1', '--helo', 'x.example', '--internal', '10.0.0.0/99'],
  ]) {
    const run = await runCli(['--dns', server.address, ...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});

test("--config explains a host with the daemon's own lists, networks and names", async () => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-check-'));
  try {
    const config = join(dir, 'mailgate.toml');
    await writeFile(
      config,
      `hostname = "mx.ours.example"\n[dns]\nservers = ["${server.address}"]\n` +
        '[milter]\ninternal_domains = ["example.com"]\n',
    );
    // No --dns: the configuration's servers are asked.
    const run = await runCli([
      'check',
      '--config',
      config,
      '--ip',
      '203.0.113.9',
      '--helo',
      'mx.ours.example',
      '--sender',
      'boss@example.com',
      '--json',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as {
      checks: Array<{ name: string; result: string; detail: string }>;
    };
    const helo = out.checks.find((c) => c.name === 'decision helo');
    assert.equal(helo?.result, 'reject');
    assert.match(helo?.detail ?? '', /^550 5\.7\.1 spam from self: mx\.ours\.example/);
    const mail = out.checks.find((c) => c.name === 'decision mail');
    assert.equal(mail?.result, 'reject');
    assert.match(mail?.detail ?? '', /forged MAIL FROM boss@example\.com: that domain is ours/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
