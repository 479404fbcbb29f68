/**
 * The policy server runs the engine's stages as far as a request's protocol_state allows: the
 * HELO policy at HELO (Exim's HELO ACL), the SPF policy at MAIL and RCPT, greylisting at RCPT.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Daemon } from '../../src/serve/index.js';
import { captureLogger, doorPort, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { type PolicyClient, policyClient, rcptRequest } from '../support/policy-client.js';

let dns: FixtureDnsServer;
let dir: string;

before(async () => {
  dns = await startDnsServer({
    'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
    'fail.test': [{ TXT: 'v=spf1 -all' }],
    '9.100.51.198.in-addr.arpa': [{ PTR: 'localhost' }],
    'good.test.registry.test': [{ TXT: 'ip4=192.0.2.0/24 svc=S1:A' }],
    'low.test.registry.test': [{ TXT: 'ip4=192.0.2.0/24 svc=S1:C' }],
    'broken.test.registry.test': [{ TXT: 'ip4=192.0.2.0/24 colour=blue' }],
  });
  dir = await mkdtemp(join(tmpdir(), 'mailgate-policy-door-'));
});

after(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(name: string, policyd: string) {
  const path = await writeDaemonConfig(dir, name, {
    dnsPort: dns.port,
    rest: `[milter]
enabled = false
[policyd]
listen = ["inet:0@127.0.0.1"]
${policyd}
[cbv]
enabled = false
[greylist]
enabled = false
`,
  });
  const { logger, lines } = captureLogger('info');
  const daemon = await Daemon.start({ configPath: path, logger });
  return { daemon, client: await policyClient(doorPort(daemon, 'policyd')), lines };
}

describe('the policy server runs the stages', () => {
  let daemon: Daemon;
  let client: PolicyClient;
  let lines: Array<Record<string, unknown>>;
  before(async () => {
    ({ daemon, client, lines } = await start('stages', ''));
  });
  after(async () => {
    client.close();
    await daemon.close();
  });

  test('at CONNECT a localhost PTR, at HELO a numeric name', async () => {
    assert.equal(
      await client.ask(
        rcptRequest({ protocol_state: 'CONNECT', client_address: '198.51.100.9', helo_name: '' }),
      ),
      '550 5.7.1 PTR is localhost',
    );
    assert.equal(
      await client.ask(
        rcptRequest({
          protocol_state: 'EHLO',
          client_address: '198.51.100.7',
          helo_name: '198.51.100.7',
        }),
      ),
      '550 5.7.1 numeric hello name: 198.51.100.7',
    );
    assert.equal(
      await client.ask(
        rcptRequest({
          protocol_state: 'HELO',
          client_address: '198.51.100.7',
          helo_name: 'mail.pass.test',
        }),
      ),
      'DUNNO',
    );
  });

  test('at MAIL and RCPT the SPF policy', async () => {
    const fail = rcptRequest({
      protocol_state: 'MAIL',
      helo_name: 'mail.fail.test',
      sender: 'jo@fail.test',
    });
    assert.match(
      await client.ask(fail),
      /^550 5\.7\.23 SPF policy of fail\.test does not authorize 192\.0\.2\.10/,
    );
    const pass = rcptRequest({ helo_name: 'mail.pass.test', sender: 'jo@pass.test' });
    assert.equal(await client.ask(pass), 'DUNNO');
    // States with no stage, and authenticated clients, are not the engine's business.
    assert.equal(await client.ask({ ...fail, protocol_state: 'DATA' }), 'DUNNO');
    assert.equal(await client.ask({ ...fail, sasl_username: 'jo' }), 'DUNNO');
  });

  test('a replayed session logs its earlier stages only when they object', async () => {
    const before = lines.length;
    await client.ask(
      rcptRequest({ helo_name: 'mail.pass.test', sender: 'jo@pass.test', recipient: 'x@y.test' }),
    );
    const stages = lines
      .slice(before)
      .filter((l) => typeof l['stage'] === 'string')
      .map((l) => l['stage']);
    assert.deepEqual(stages, ['rcpt']);
  });
});

test('with [policyd] policy = false only greylisting is asked', async () => {
  const { daemon, client } = await start('greylist-only', 'policy = false');
  try {
    const fail = rcptRequest({ helo_name: '192.0.2.10', sender: 'jo@fail.test' });
    assert.equal(await client.ask(fail), 'DUNNO');
  } finally {
    client.close();
    await daemon.close();
  }
});

test('the registry check at the policy server: a refusal, the vouching, and HOLD for quarantine', async () => {
  const { daemon, client, lines } = await start(
    'registry',
    `[registry]
enabled = true
zone = "registry.test"
filter = "quarantine"
[registry.services.S1]
grades = { A = 9, C = 5 }
weight = 15`,
  );
  try {
    const ask = (ip: string, helo: string) =>
      client.ask(rcptRequest({ client_address: ip, helo_name: helo, sender: 'jo@pass.test' }));
    assert.equal(
      await ask('198.51.100.7', 'mx.good.test'),
      "550 5.7.1 Sending MTA '198.51.100.7' not authorized by 'good.test'",
    );
    assert.equal(await ask('192.0.2.10', 'mx.good.test'), 'DUNNO');
    assert.match(
      await ask('192.0.2.10', 'mx.low.test'),
      /^HOLD Message will be sent to spam filter/,
    );
    assert.match(
      await ask('192.0.2.10', 'mx.unlisted.test'),
      /^550 5\.7\.1 Declared ID 'unlisted\.test' has no Registry record/,
    );
    // Asked at RCPT only, MAIL FROM is replayed: the administrator still hears of a broken record.
    assert.match(await ask('192.0.2.10', 'mx.broken.test'), /^451 4\.4\.3 Registry record/);
    const alert = lines.find((l) => l['msg'] === 'registry-alert');
    assert.match(String(alert?.['problem']), /unknown key 'colour'/);
  } finally {
    client.close();
    await daemon.close();
  }
});

test("the policy server counts a message's SPF once, at its first recipient", async () => {
  const { daemon, client } = await start('reputation', '[reputation]\nflush_interval = "10ms"');
  try {
    const ask = (instance: string, recipient: string) =>
      client.ask(
        rcptRequest({ client_address: '192.0.2.10', sender: 'jo@pass.test', instance, recipient }),
      );
    for (const recipient of ['a@example.net', 'b@example.net', 'c@example.net']) {
      assert.equal(await ask('1a2b.1.1.0', recipient), 'DUNNO');
    }
    const passes = async (want: number) => {
      for (let i = 0; i < 100; i++) {
        const rows = await daemon.store.getReputation(['domain:pass.test']);
        const amount = rows.find((r) => r.event === 'spf:pass')?.amount ?? 0;
        if (Math.round(amount) === want) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.fail(`spf:pass never reached ${want}`);
    };
    await passes(1);
    assert.equal(await ask('1a2b.2.2.0', 'a@example.net'), 'DUNNO');
    await passes(2);
    // Another round of the first message's recipients counts nothing more.
    await ask('1a2b.1.1.0', 'd@example.net');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await passes(2);
  } finally {
    client.close();
    await daemon.close();
  }
});
