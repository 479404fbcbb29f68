/**
 * A milter connection keeps the world it started with: a reload that replaces the store leaves
 * the old store open for as long as that connection lives, and closes it when it ends.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MilterClient } from '../../src/milter/index.js';
import { createLogger } from '../../src/observe/index.js';
import { Daemon } from '../../src/serve/index.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';

let dns: FixtureDnsServer;
let dir: string;

before(async () => {
  dns = await startDnsServer({ 'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }] });
  dir = await mkdtemp(join(tmpdir(), 'mailgate-milter-reload-'));
});

after(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

const config = (db: string) => `hostname = "mx.mailgate.test"
[dns]
servers = ["127.0.0.1:${dns.port}"]
[store]
url = "sqlite:${join(dir, db)}"
[policyd]
enabled = false
request_timeout = "200ms"
[milter]
listen = ["inet:0@127.0.0.1"]
[cbv]
enabled = false
[greylist]
enabled = false
dns_budget = "150ms"
`;

test('a reload never closes the store under a live milter connection', async () => {
  const path = join(dir, 'mailgate.toml');
  await writeFile(path, config('first.db'));
  const daemon = await Daemon.start({
    configPath: path,
    logger: createLogger({ level: 'silent' }),
  });
  try {
    const address = daemon.addresses.find((a) => a.door === 'milter');
    assert.ok(address && address.kind === 'inet');
    const first = daemon.store;
    const client = await MilterClient.connect(`inet:${address.port}@127.0.0.1`);
    await client.negotiate();
    await client.connect('[192.0.2.10]', 'inet', 40000, '192.0.2.10');
    await client.helo('mail.pass.test');

    await writeFile(path, config('second.db'));
    assert.equal(await daemon.reload(), true);
    assert.notEqual(daemon.store, first);
    // Past the policy requests' grace period (request timeout + 1 s): the old store stays, since
    // the connection still holds it.
    await sleep(1500);
    await first.ping();
    const eom = (
      await client.transaction({
        sender: '<jo@pass.test>',
        recipients: ['<sam@ours.test>'],
        headers: [['Subject', 'across a reload']],
        body: 'Hi.\r\n',
      })
    ).eom;
    assert.equal(eom.verdict.verdict, 'continue');
    // The message was decided by the world the connection started with.
    await sleep(100);
    assert.equal((await first.recentDecisions(5)).length, 1);
    assert.equal((await daemon.store.recentDecisions(5)).length, 0);

    await client.close();
    // The connection's close releases the world; the old store closes.
    let closed = false;
    for (let i = 0; i < 50 && !closed; i++) {
      await sleep(50);
      closed = await first.ping().then(
        () => false,
        () => true,
      );
    }
    assert.ok(closed, 'the old store closed once the last connection holding it ended');
    await daemon.store.ping();
  } finally {
    await daemon.close();
  }
});
