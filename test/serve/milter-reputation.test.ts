/**
 * Local sender reputation in the daemon, through the real milter door and a real SQLite store:
 * what a session counts, and the two switches that let senders of good standing skip work
 * (greylisting and the call-back).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MilterClient } from '../../src/milter/index.js';
import type { Daemon } from '../../src/serve/index.js';
import { type MilterDaemon, startMilterDaemon, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { replyOf } from '../support/milter-play.js';

const HALF_LIFE = 30 * 86_400_000;
const ZONE = {
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'soft.test': [{ TXT: 'v=spf1 ~all' }, { MX: [10, 'mx.soft.test'] }],
  // An MX on loopback: a call-back that is made refuses the sender at once (no SMTP needed).
  'mx.soft.test': [{ A: '127.0.0.1' }],
};

let dns: FixtureDnsServer;
let dir: string;
let daemon: Daemon;
let lines: Array<Record<string, unknown>>;
let play: MilterDaemon['play'];
let spec: string;

before(async () => {
  dns = await startDnsServer(ZONE);
  dir = await mkdtemp(join(tmpdir(), 'mailgate-milter-reputation-'));
  const path = await writeDaemonConfig(dir, 'reputation', {
    dnsPort: dns.port,
    dns: 'timeout = "300ms"\nattempts = 1',
    rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
greylist = true
[cbv]
timeout = "2s"
[greylist]
period = "1h"
[reputation]
flush_interval = "10ms"
greylist_skip = true
cbv_skip = true
`,
  });
  ({ daemon, lines, spec, play } = await startMilterDaemon(path, 'info'));
});

after(async () => {
  await daemon?.close();
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

/** The decayed counts of a subject, once the recorder's batch is written. */
async function counts(subject: string, wanted: string): Promise<Record<string, number>> {
  for (let i = 0; i < 100; i++) {
    const rows = await daemon.store.getReputation([subject]);
    if (rows.some((r) => r.event === wanted)) {
      return Object.fromEntries(rows.map((r) => [r.event, Math.round(r.amount * 1000) / 1000]));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`no ${wanted} for ${subject}`);
}

/** Good standing for a subject: twenty recent passes. */
const seed = (subject: string) =>
  daemon.store.addReputation(
    [{ subject, event: 'cbv:accepted', amount: 20, time: Date.now() }],
    HALF_LIFE,
  );

describe('reputation in the milter', () => {
  test("a delivered message counts its SPF pass for the sender's domain, not the network", async () => {
    // MAIL FROM then RSET, again and again, earns nothing: a pass counts once the message is in.
    const client = await MilterClient.connect(spec, { timeoutMs: 5000 });
    try {
      await client.negotiate();
      await client.connect('[192.0.2.10]', 'inet', 40000, '192.0.2.10');
      await client.helo('mail.pass.test');
      for (let i = 0; i < 5; i++) {
        assert.equal((await client.mail('<jo@pass.test>'))?.verdict, 'continue');
        await client.abort();
      }
    } finally {
      await client.close();
    }
    const { eom } = await play({
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
      recipient: 'postmaster@ours.test',
    });
    assert.equal(eom?.verdict.verdict, 'continue');
    assert.deepEqual(await counts('domain:pass.test', 'spf:pass'), { 'spf:pass': 1 });
    // A pass for a domain of the client's own choosing says nothing of the client's network.
    assert.deepEqual(await daemon.store.getReputation(['net:192.0.2.0/24']), []);
  });

  test('a new triplet greylisted counts a refusal for the sender and the network', async () => {
    const { answers } = await play({
      ip: '203.0.113.9',
      helo: 'x.soft.test',
      sender: 'jo@soft.test',
    });
    assert.equal(answers['rcpt']?.verdict, 'tempfail');
    assert.equal((await counts('net:203.0.113.0/24', 'greylist:refused'))['greylist:refused'], 1);
    assert.equal((await counts('domain:soft.test', 'spf:softfail'))['spf:softfail'], 1);
  });

  test('a network in good standing skips greylisting and the call-back', async () => {
    await seed('net:198.51.100.0/24');
    const { answers, eom } = await play({
      ip: '198.51.100.7',
      helo: 'x.soft.test',
      sender: 'jo@soft.test',
    });
    assert.equal(answers['rcpt']?.verdict, 'continue', 'not greylisted');
    assert.equal(eom?.verdict.verdict, 'continue', 'the call-back was skipped');
    const eomLine = lines.findLast((l) => l['stage'] === 'eom');
    assert.ok(
      (eomLine?.['tags'] as string[] | undefined)?.includes('skipped: good standing'),
      JSON.stringify(eomLine),
    );
    assert.ok(lines.some((l) => l['msg'] === 'greylist' && l['reason'] === 'reputation'));
  });

  test('without good standing the call-back is made (here it refuses: the MX is loopback)', async () => {
    const { eom } = await play({
      ip: '203.0.113.9',
      helo: 'x.soft.test',
      sender: 'jo@soft.test',
      recipient: 'postmaster@ours.test',
    });
    assert.equal(eom?.verdict.verdict, 'reject', replyOf(eom?.verdict));
    const eomLine = lines.findLast((l) => l['stage'] === 'eom');
    assert.ok(((eomLine?.['tags'] ?? []) as string[]).includes('CBV'));
  });
});
