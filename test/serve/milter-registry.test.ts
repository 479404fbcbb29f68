/**
 * The registry check in the milter's MAIL FROM stage, through the real door: `Daemon.start`, the
 * real resolver on the fixture DNS server, and the MTA side of the milter protocol. ACCEPT skips
 * SPF and greylisting; REJECT and TEMPFAIL answer at MAIL FROM; FILTER marks the message and
 * the SPF policy still applies; CONTINUE goes on with the normal policy.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startMilterDaemon, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { replyOf } from '../support/milter-play.js';

const GOOD = 'svc=S1:A,M2:A,H1:B';
const ZONE = {
  'good.test.registry.test': [{ TXT: `ip4=192.0.2.0/24 ${GOOD}` }],
  'low.test.registry.test': [{ TXT: 'ip4=192.0.2.0/24 svc=S1:C,M2:C' }],
  'spfonly.test.registry.test': [{ TXT: `meth=SPF:10 ${GOOD}` }],
  'sid.test.registry.test': [{ TXT: `meth=SID:10 ${GOOD}` }],
  'slow.test.registry.test': ['TIMEOUT'],
  'broken.test.registry.test': [{ TXT: 'ip4=192.0.2.0/24 colour=blue' }],
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'fail.test': [{ TXT: 'v=spf1 -all' }],
};

let dns: FixtureDnsServer;
let dir: string;

before(async () => {
  dns = await startDnsServer(ZONE);
  dir = await mkdtemp(join(tmpdir(), 'mailgate-milter-registry-'));
});

after(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

async function startRig(name: string, filter: 'header' | 'quarantine') {
  const path = await writeDaemonConfig(dir, name, {
    dnsPort: dns.port,
    dns: 'timeout = "300ms"\nattempts = 1',
    rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
internal_connect = ["10.1.0.0/16"]
greylist = true
[cbv]
enabled = false
[greylist]
period = "1h"
[registry]
enabled = true
zone = "registry.test"
filter = "${filter}"
[registry.services.S1]
grades = { A = 9, B = 7, C = 5, D = 0 }
weight = 5
[registry.services.M2]
grades = { A = 9, B = 7, C = 5, D = 0 }
weight = 5
[registry.services.H1]
grades = { A = 9, B = 7, C = 5, D = 0 }
weight = 5
`,
  });
  return startMilterDaemon(path, 'info');
}

type Rig = Awaited<ReturnType<typeof startRig>>;

// HDR_LEADSPC was agreed: each value brings its own space after the colon, left out here.
const added = (mods: readonly { action: string }[], name: string) =>
  mods
    .filter(
      (m): m is { action: 'insertHeader' | 'addHeader'; name: string; value: string } =>
        (m.action === 'insertHeader' || m.action === 'addHeader') &&
        (m as { name?: string }).name === name,
    )
    .map((m) => ({ ...m, value: m.value.replace(/^ /u, '') }));

describe('registry in the milter, FILTER as a header', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig('header', 'header');
  });
  after(() => rig.daemon.close());

  test('ACCEPT vouches for the sender: no SPF policy, no greylisting, Authent and x-registry', async () => {
    // The sender's domain fails SPF for this client: the registry's ACCEPT decides instead.
    const { answers, eom } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.good.test',
      sender: 'jo@fail.test',
    });
    assert.equal(answers['mail']?.verdict, 'continue');
    assert.equal(answers['rcpt']?.verdict, 'continue', 'not greylisted');
    assert.equal(eom?.verdict.verdict, 'continue');
    const mods = eom?.modifications ?? [];
    const authent = added(mods, 'Authent');
    assert.equal(authent.length, 1);
    assert.equal(authent[0]?.value, '192.0.2.10 good.test QR1 PASS ratings=S1:A,M2:A,H1:B');
    assert.equal(added(mods, 'Received-SPF').length, 0);
    const ar = added(mods, 'Authentication-Results');
    assert.equal(ar.length, 1);
    assert.match(
      ar[0]?.value ?? '',
      /^mx\.mailgate\.test; x-registry=pass \(QR1, rating HIGH\) policy\.id=good\.test/,
    );
    const line = rig.lines.find(
      (l) => l['stage'] === 'mail' && l['reason'] === 'registry-authenticated',
    );
    assert.ok(line, 'the MAIL FROM decision is logged with its registry tags');
    assert.deepEqual(line['tags'], ['mail from', 'registry', 'ACCEPT', 'QR1', 'authenticated']);
    assert.ok(rig.lines.some((l) => l['stage'] === 'rcpt' && l['reason'] === 'registry-vouched'));
  });

  test('an address outside the netblocks is refused at MAIL FROM', async () => {
    const { answers } = await rig.play({
      ip: '198.51.100.10',
      helo: 'mx.good.test',
      sender: 'jo@pass.test',
    });
    assert.equal(answers['mail']?.verdict, 'reject');
    assert.equal(
      replyOf(answers['mail']),
      "550 5.7.1 Sending MTA '198.51.100.10' not authorized by 'good.test'",
    );
  });

  test('no record: 550; a registry timeout: 451', async () => {
    const none = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.unlisted.test',
      sender: 'jo@pass.test',
    });
    assert.match(
      replyOf(none.answers['mail']) ?? '',
      /^550 5\.7\.1 Declared ID 'unlisted\.test' has no Registry record/,
    );
    const slow = await rig.play({ ip: '192.0.2.10', helo: 'mx.slow.test', sender: 'jo@pass.test' });
    assert.match(
      replyOf(slow.answers['mail']) ?? '',
      /^451 4\.4\.3 Timeout getting Registry record 'slow\.test\.registry\.test'/,
    );
  });

  test('a broken record: 451 and one registry-alert line for the administrator', async () => {
    const before = rig.lines.length;
    const { answers } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.broken.test',
      sender: 'jo@pass.test',
    });
    assert.equal(answers['mail']?.verdict, 'tempfail');
    const alerts = rig.lines.slice(before).filter((l) => l['msg'] === 'registry-alert');
    assert.equal(alerts.length, 1);
    assert.match(String(alerts[0]?.['problem']), /unknown key 'colour'/);
    assert.equal(alerts[0]?.['level'], 'warn');
  });

  test('FILTER (a low rating) adds X-Registry-Filter, and the SPF policy still applies', async () => {
    // FILTER vouches for nothing: greylisting applies, so the message goes to postmaster.
    const { answers, eom } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.low.test',
      sender: 'jo@pass.test',
      recipient: 'postmaster@ours.test',
    });
    assert.equal(answers['mail']?.verdict, 'continue');
    const mods = eom?.modifications ?? [];
    assert.equal(added(mods, 'X-Registry-Filter')[0]?.value, 'YES');
    assert.equal(
      added(mods, 'Authent')[0]?.value,
      '192.0.2.10 low.test QR1 PASS ratings=S1:C,M2:C',
    );
    assert.equal(added(mods, 'Received-SPF').length, 1);
    const ar = added(mods, 'Authentication-Results')[0]?.value ?? '';
    assert.match(ar, /spf=pass smtp\.mailfrom=jo@pass\.test/);
    assert.match(ar, /x-registry=pass \(QR1, rating LOW\)/);
    const refused = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.low.test',
      sender: 'jo@fail.test',
    });
    assert.equal(
      refused.answers['mail']?.verdict,
      'reject',
      'FILTER does not vouch: SPF fail still refuses',
    );
    const line = rig.lines.findLast((l) => l['stage'] === 'mail' && l['verdict'] === 'reject');
    assert.ok(((line?.['tags'] ?? []) as string[]).includes('FILTER'));
  });

  test('an SPF-only ID keeps one Received-SPF', async () => {
    const { eom } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.spfonly.test',
      sender: 'jo@pass.test',
    });
    const mods = eom?.modifications ?? [];
    assert.equal(added(mods, 'Received-SPF').length, 1);
    assert.equal(
      added(mods, 'Authent')[0]?.value,
      '192.0.2.10 spfonly.test SPF1 pass ratings=S1:A,M2:A,H1:B',
    );
  });

  test('CONTINUE (no supported method) goes on with the normal policy, greylisting included', async () => {
    const { answers } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.sid.test',
      sender: 'jo@pass.test',
    });
    assert.equal(answers['mail']?.verdict, 'continue');
    assert.equal(answers['rcpt']?.verdict, 'tempfail', 'greylisted');
    const line = rig.lines.findLast((l) => l['stage'] === 'mail');
    assert.deepEqual(((line?.['tags'] ?? []) as string[]).slice(-3), [
      'registry',
      'CONTINUE',
      'no-methods',
    ]);
  });

  test('internal clients are not asked about', async () => {
    const { answers } = await rig.play({ ip: '10.1.2.3', helo: 'JUPITER', sender: 'jo@pass.test' });
    assert.equal(answers['mail']?.verdict, 'continue');
  });
});

test('registry FILTER as quarantine holds the message', async () => {
  const rig = await startRig('quarantine', 'quarantine');
  try {
    const { eom } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mx.low.test',
      sender: 'jo@pass.test',
      recipient: 'postmaster@ours.test',
    });
    const mods = eom?.modifications ?? [];
    const hold = mods.find((m) => m.action === 'quarantine');
    assert.ok(hold && hold.action === 'quarantine');
    assert.match(hold.reason, /Message will be sent to spam filter/);
    assert.equal(added(mods, 'X-Registry-Filter').length, 0);
  } finally {
    await rig.daemon.close();
  }
});
