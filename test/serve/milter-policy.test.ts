/**
 * The milter policy through the real door: `Daemon.start` with a milter on an ephemeral port,
 * the real resolver pointed at the fixture DNS server, and the MTA side of the milter protocol
 * playing each SMTP session. Every case asserts the reply at the stage where it is due.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MilterClient } from '../../src/milter/index.js';
import { type MilterDaemon, startMilterDaemon, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { type MilterSession, replyOf } from '../support/milter-play.js';

const ZONE = {
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'fail.test': [{ TXT: 'v=spf1 -all' }],
  'soft.test': [{ TXT: 'v=spf1 ~all' }],
  'softok.test': [{ TXT: 'v=spf1 ~all' }],
  'neutral.test': [{ TXT: 'v=spf1 ?all' }],
  'forged.test': [{ TXT: 'v=spf1 ?all' }],
  'perm.test': [{ TXT: 'v=spf1 include -all' }],
  'temp.test': [{ TXT: 'TIMEOUT' }],
  'none.test': [{ A: '203.0.113.200' }],
  'ours.test': [{ TXT: 'v=spf1 ?all' }],
  'foreign.test': [{ TXT: 'v=spf1 ?all' }],
  // 192.0.2.20 has a verified PTR that looks static.
  '20.2.0.192.in-addr.arpa': [{ PTR: 'host.good.test' }],
  'host.good.test': [{ A: '192.0.2.20' }],
  // 198.51.100.9 claims to be localhost.
  '9.100.51.198.in-addr.arpa': [{ PTR: 'localhost' }],
  // A HELO name whose address is the client's (three strikes: HELO validated).
  'helo.valid.test': [{ A: '198.51.100.30' }],
  'fwd.test': [{ TXT: 'v=spf1 ip4:198.51.100.50 -all' }],
  'brokenfail.test': [{ TXT: 'v=spf1 -all' }],
  'strict.test': [{ TXT: 'v=spf1 ?all' }],
};

let dns: FixtureDnsServer;
let dir: string;

before(async () => {
  dns = await startDnsServer(ZONE);
  dir = await mkdtemp(join(tmpdir(), 'mailgate-milter-policy-'));
});

after(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

type Rig = MilterDaemon;

async function startRig(name: string, extra = '', spfExtra = ''): Promise<Rig> {
  const path = await writeDaemonConfig(dir, name, {
    dnsPort: dns.port,
    dns: 'timeout = "300ms"\nattempts = 1',
    rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
internal_connect = ["10.1.0.0/16"]
internal_domains = ["ours.test"]
${extra}
[spf]
accept_softfail = ["softok.test"]
reject_neutral = ["forged.test"]
${spfExtra}
[cbv]
enabled = false
[greylist]
enabled = false
`,
  });
  return startMilterDaemon(path);
}

/** Plays a session as far as it goes; returns each step's answer. */
const play = (rig: Rig, s: MilterSession) => rig.play(s);

describe('milter policy', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig('main');
  });
  after(async () => {
    await rig.daemon.close();
  });

  test('SPF pass is delivered with Received-SPF on top and one Authentication-Results', async () => {
    const { eom } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
    });
    assert.equal(eom?.verdict.verdict, 'continue');
    const mods = eom?.modifications ?? [];
    const spf = mods.find((m) => m.action === 'insertHeader');
    assert.ok(spf && spf.action === 'insertHeader');
    assert.equal(spf.index, 0);
    assert.equal(spf.name, 'Received-SPF');
    assert.match(
      spf.value,
      // HDR_LEADSPC was agreed: values bring their own space after the colon.
      /^ Pass \(mx\.mailgate\.test: domain of pass\.test designates 192\.0\.2\.10 .* envelope-from="jo@pass\.test"/,
    );
    const ar = mods.filter((m) => m.action === 'addHeader' && m.name === 'Authentication-Results');
    assert.equal(ar.length, 1);
    assert.ok(ar[0]?.action === 'addHeader');
    assert.match(
      ar[0].value,
      /^ mx\.mailgate\.test; spf=pass smtp\.mailfrom=jo@pass\.test; spf=\w+ smtp\.helo=mail\.pass\.test; dkim=none; dmarc=permerror reason="no From field"; arc=none$/,
    );
  });

  test('SPF fail is rejected at MAIL FROM', async () => {
    const { answers } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.fail.test',
      sender: 'jo@fail.test',
    });
    assert.equal(answers['mail']?.verdict, 'reject');
    assert.match(replyOf(answers['mail']) ?? '', /^550 5\.7\.23 SPF policy of fail\.test/);
  });

  test('softfail from an accept_softfail domain is accepted; neutral from a reject_neutral domain is not', async () => {
    const ok = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.softok.test',
      sender: 'jo@softok.test',
    });
    assert.equal(ok.eom?.verdict.verdict, 'continue');
    const forged = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.forged.test',
      sender: 'jo@forged.test',
    });
    assert.equal(forged.answers['mail']?.verdict, 'reject');
  });

  test('permerror is rejected; a DNS timeout is a 451', async () => {
    const perm = await play(rig, { ip: '192.0.2.10', helo: 'h.perm.test', sender: 'jo@perm.test' });
    assert.equal(perm.answers['mail']?.verdict, 'reject');
    const temp = await play(rig, { ip: '192.0.2.10', helo: 'h.temp.test', sender: 'jo@temp.test' });
    assert.equal(temp.answers['mail']?.verdict, 'tempfail');
    assert.match(replyOf(temp.answers['mail']) ?? '', /^451 4\.4\.3 SPF temporary error/);
  });

  test('a numeric HELO and a HELO naming us are refused at HELO', async () => {
    const numeric = await play(rig, { ip: '198.51.100.7', helo: '198.51.100.7' });
    assert.equal(replyOf(numeric.answers['helo']), '550 5.7.1 numeric hello name: 198.51.100.7');
    const self = await play(rig, { ip: '198.51.100.7', helo: 'mx.mailgate.test' });
    assert.equal(replyOf(self.answers['helo']), '550 5.7.1 spam from self: mx.mailgate.test');
    // Our own client may call itself by our name.
    const internal = await play(rig, {
      ip: '10.1.2.3',
      helo: 'mx.mailgate.test',
      sender: 'a@ours.test',
    });
    assert.equal(internal.eom?.verdict.verdict, 'continue');
  });

  test('a PTR of localhost from outside is refused at connect', async () => {
    const { answers } = await play(rig, { ip: '198.51.100.9', helo: 'x.test' });
    assert.equal(replyOf(answers['connect']), '550 5.7.1 PTR is localhost');
  });

  test('our domain from outside is a forgery; a foreign domain from inside an infected PC', async () => {
    const forgery = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'boss@ours.test',
    });
    assert.equal(forgery.answers['mail']?.verdict, 'reject');
    assert.match(replyOf(forgery.answers['mail']) ?? '', /forged MAIL FROM <?boss@ours\.test/);
    const infected = await play(rig, {
      ip: '10.1.2.3',
      helo: 'pc1.ours.test',
      sender: 'x@foreign.test',
    });
    assert.equal(infected.answers['mail']?.verdict, 'reject');
    assert.match(replyOf(infected.answers['mail']) ?? '', /not one of our domains/);
  });

  test('a banned user as sender is refused; the null sender is not', async () => {
    const banned = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'MAILER-DAEMON@pass.test',
    });
    assert.equal(banned.answers['mail']?.verdict, 'reject');
    const bounce = await play(rig, { ip: '192.0.2.10', helo: 'mail.pass.test', sender: '' });
    assert.equal(bounce.answers['mail']?.verdict, 'continue');
  });

  test('three strikes: a verified static PTR or a HELO that leads back to the client passes', async () => {
    const ptr = await play(rig, {
      ip: '192.0.2.20',
      helo: 'host.good.test',
      sender: 'jo@none.test',
    });
    assert.equal(ptr.eom?.verdict.verdict, 'continue');
    const helo = await play(rig, {
      ip: '198.51.100.30',
      helo: 'helo.valid.test',
      sender: 'jo@none.test',
    });
    assert.equal(helo.eom?.verdict.verdict, 'continue');
    const guessed = helo.eom?.modifications.find(
      (m) => m.action === 'addHeader' && m.name === 'X-Guessed-SPF',
    );
    assert.ok(guessed, 'X-Guessed-SPF recorded');
  });

  test('Authentication-Results claiming our authserv-id are removed; others stay', async () => {
    const { eom } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
      headers: [
        ['Authentication-Results', 'other.example; spf=pass smtp.mailfrom=x@y'],
        ['Authentication-Results', 'MX.MAILGATE.TEST; dkim=pass header.d=pass.test'],
        ['Subject', 'forged'],
      ],
    });
    const removed = eom?.modifications.filter((m) => m.action === 'changeHeader');
    assert.deepEqual(removed, [
      { action: 'changeHeader', index: 2, name: 'Authentication-Results', value: '' },
    ]);
  });

  test('hostile HELO and sender never reach a reply or a log line raw', async () => {
    const { answers } = await play(rig, { ip: '198.51.100.7', helo: '1.2.3.4\r\nX-Evil: 1\u00ff' });
    const text = replyOf(answers['helo']) ?? '';
    assert.doesNotMatch(text, /[\r\n\0]/u);
    for (const line of rig.lines) assert.doesNotMatch(JSON.stringify(line), /\\r\\nX-Evil/u);
  });

  test('an MTA that grants no header changes still gets the message, without them', async () => {
    const client = await MilterClient.connect(rig.spec, { timeoutMs: 5000 });
    try {
      // Every action but SMFIF_ADDHDRS (0x01), which adding and inserting fields need.
      await client.negotiate({ actions: 0x1fe });
      await client.connect('[192.0.2.10]', 'inet', 40000, '192.0.2.10');
      await client.helo('mail.pass.test');
      const { eom } = await client.transaction({
        sender: '<jo@pass.test>',
        recipients: ['<sam@ours.test>'],
        headers: [['Subject', 'no headers for me']],
        body: 'Hi.\r\n',
      });
      assert.equal(eom.verdict.verdict, 'continue');
      assert.deepEqual(
        eom.modifications.filter((m) => m.action === 'addHeader' || m.action === 'insertHeader'),
        [],
      );
      assert.ok(rig.lines.some((l) => l['msg'] === 'milter-action-refused'));
    } finally {
      await client.close();
    }
  });

  test('each decision is one log line with the connection and its tags', async () => {
    await play(rig, { ip: '192.0.2.10', helo: 'mail.fail.test', sender: 'jo@fail.test' });
    const reject = rig.lines.filter((l) => l['msg'] === 'REJECT' && l['stage'] === 'mail').at(-1);
    assert.ok(reject, 'a REJECT line');
    assert.equal(typeof reject['conn'], 'string');
    assert.deepEqual((reject['tags'] as string[]).slice(0, 2), ['REJECT', 'SPF fail']);
    const spf = rig.lines.filter(
      (l) => l['msg'] === 'Received-SPF' && l['conn'] === reject['conn'],
    );
    assert.equal(spf.length, 1);
    assert.match(String(spf[0]!['value']), /^Fail \(mx\.mailgate\.test: domain of fail\.test/);
  });
});

describe('milter policy with reject_noptr', () => {
  test('a sender with no SPF, no valid HELO and no PTR is refused', async () => {
    const path = await writeDaemonConfig(dir, 'noptr2', {
      dnsPort: dns.port,
      rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
[spf]
reject_noptr = true
[greylist]
enabled = false
`,
    });
    const { daemon, play } = await startMilterDaemon(path, 'warn');
    try {
      const { answers } = await play({
        ip: '198.51.100.7',
        helo: 'nowhere.none.test',
        sender: 'jo@none.test',
      });
      assert.equal(answers['mail']?.verdict, 'reject');
      assert.match(replyOf(answers['mail']) ?? '', /^550 5\.7\.1 no PTR, HELO or SPF/);
    } finally {
      await daemon.close();
    }
  });
});

describe('SPF policy options', () => {
  let rig: Rig;
  before(async () => {
    const access = join(dir, 'access');
    await writeFile(
      access,
      'SPF-Neutral:strict.test ERROR:"550 5.7.1 strict.test mail must pass SPF"\n',
    );
    rig = await startRig(
      'options',
      '',
      `trusted_forwarder = ["fwd.test"]\naccept_fail = ["brokenfail.test"]\nsupply_sender = true\naccess_file = "${access}"`,
    );
  });
  after(async () => {
    await rig.daemon.close();
  });

  test('a trusted forwarder skips the SPF policy of the real sender', async () => {
    const { eom } = await play(rig, {
      ip: '198.51.100.50',
      helo: 'relay.fwd.test',
      sender: 'jo@fail.test',
    });
    assert.equal(eom?.verdict.verdict, 'continue');
  });

  test('accept_fail judges a fail as its softfail (a call-back, off here)', async () => {
    const { answers, eom } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'h.brokenfail.test',
      sender: 'jo@brokenfail.test',
    });
    assert.equal(answers['mail']?.verdict, 'continue');
    assert.equal(eom?.verdict.verdict, 'continue');
    const line = rig.lines.filter((l) => l['stage'] === 'mail').at(-1);
    assert.ok(
      ((line?.['tags'] as string[] | undefined) ?? []).includes('policy accept_fail'),
      JSON.stringify(line),
    );
  });

  test("the access map's ERROR reply is answered as written", async () => {
    const { answers } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'h.strict.test',
      sender: 'jo@strict.test',
    });
    assert.equal(replyOf(answers['mail']), '550 5.7.1 strict.test mail must pass SPF');
  });

  test('supply_sender adds Sender when From names another domain', async () => {
    const { eom } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'list-bounces@pass.test',
      headers: [
        ['From', 'Ann <ann@elsewhere.test>'],
        ['Subject', 'via a list'],
      ],
    });
    const sender = eom?.modifications.find((m) => m.action === 'addHeader' && m.name === 'Sender');
    assert.ok(sender && sender.action === 'addHeader');
    assert.equal(sender.value, ' <list-bounces@pass.test>');
  });

  test('garbage on the milter socket closes that connection only', async () => {
    const port = Number(/^inet:(\d+)@/.exec(rig.spec)?.[1]);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(Buffer.from([0, 0, 0, 5, 0x7a, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]));
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.resume();
    });
    const { eom } = await play(rig, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
    });
    assert.equal(eom?.verdict.verdict, 'continue');
  });
});

test('[milter] greylist: the first attempt waits at RCPT, a retry after the period gets X-Greylist', async () => {
  const path = await writeDaemonConfig(dir, 'greylist', {
    dnsPort: dns.port,
    rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
greylist = true
[spf]
accept_softfail = ["softok.test"]
[cbv]
enabled = false
[greylist]
period = "1s"
`,
  });
  const rig = await startMilterDaemon(path, 'info');
  const { daemon } = rig;
  try {
    const session = { ip: '198.51.100.7', helo: 'nowhere.test', sender: 'jo@softok.test' };
    const first = await play(rig, session);
    assert.equal(first.answers['rcpt']?.verdict, 'tempfail');
    assert.match(replyOf(first.answers['rcpt']) ?? '', /^450 4\.7\.1 greylisted, try again later/);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const retry = await play(rig, session);
    assert.equal(retry.answers['rcpt']?.verdict, 'continue');
    const header = retry.eom?.modifications.find(
      (m) => m.action === 'addHeader' && m.name === 'X-Greylist',
    );
    assert.ok(header && header.action === 'addHeader');
    assert.match(header.value, /^ delayed \d+ seconds by mailgate-\S+ at mx\.mailgate\.test; /);
  } finally {
    await daemon.close();
  }
});
