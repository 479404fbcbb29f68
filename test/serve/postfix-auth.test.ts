/**
 * End to end through a real Postfix: swaks → a throwaway Postfix (test/support/postfix.ts) with
 * the main.cf lines of docs/milter-policy.md → mailgate's milter (`Daemon.start`, the real
 * resolver on the fixture DNS server) → the SMTP sink. What DKIM, DMARC and ARC look like to a
 * site: mail from an internal client leaves signed (and the signature holds after Postfix has
 * put its Received on top, checked by mailgate and by dkimpy), incoming mail gets one
 * Authentication-Results with spf, dkim, dmarc and arc (a forged one of ours removed), a p=reject
 * failure is refused at end of message and never queued, and a forwarder's ARC seal survives
 * Postfix.
 *
 * swaks connects from 127.0.0.1 and hands the session over with XCLIENT, so that mailgate sees
 * the client the test names, as test/serve/postfix-milter-policy.test.ts does.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyArc } from '../../src/checks/arc/index.js';
import {
  generateKeyPair,
  loadSigningKey,
  signDkim,
  verifyDkim,
} from '../../src/checks/dkim/index.js';
import { createResolver } from '../../src/dns/index.js';
import type { Resolver } from '../../src/dns/types.js';
import { isPositive, show } from '../milter/case-check.js';
import { type MilterDaemon, startMilterDaemon, writeDaemonConfig } from '../support/daemon-rig.js';
import { dkimpyVerify, peersAvailable } from '../support/dkim-peers.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { type PostfixRig, startPostfix } from '../support/postfix.js';
import { guideBlock, mainCfLines, waitForBanner } from '../support/postfix-guide.js';
import { missingRequirements } from '../support/programs.js';
import type { SmtpExchange } from '../support/smtp-transcript.js';

const senderKey = generateKeyPair('ed25519');
const ourKey = generateKeyPair('rsa', 2048);

const ZONE = {
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  '_dmarc.pass.test': [{ TXT: 'v=DMARC1; p=reject' }],
  's1._domainkey.pass.test': [{ TXT: senderKey.publicKeyRecord }],
  // Anyone may send as strict.test as far as SPF goes, but DMARC wants a signature of its own.
  'strict.test': [{ TXT: 'v=spf1 ?all' }],
  '_dmarc.strict.test': [{ TXT: 'v=DMARC1; p=reject' }],
  'ours.test': [{ TXT: 'v=spf1 ip4:10.1.0.0/16 -all' }],
  '_dmarc.ours.test': [{ TXT: 'v=DMARC1; p=reject' }],
  'm1._domainkey.ours.test': [{ TXT: ourKey.publicKeyRecord }],
};

const needs = missingRequirements(['postfix', 'swaks', 'root']);
const skip = needs.length ? `missing: ${needs.join(', ')}` : false;
if (skip) console.error(`*** SKIPPED Postfix DKIM/DMARC/ARC end to end: ${skip} ***`);

let dns: FixtureDnsServer;
let dir: string;
let resolver: Resolver;
let milter: MilterDaemon;
let rig: PostfixRig;
let sent = 0;

/** The Postfix lines of the guide, pointed at the daemon's real port. */
async function documentedMainCf(port: number): Promise<Record<string, string>> {
  const block = await guideBlock(
    'docs/milter-policy.md',
    /^## Setting it up\n(?:(?!^## )[\s\S])*?Postfix \(`main\.cf`\):\n\n((?: {4}.*\n)+)/m,
    'the Postfix main.cf block in "Setting it up"',
  );
  const params = mainCfLines(block);
  params['smtpd_milters'] = `inet:127.0.0.1:${port}`;
  return params;
}

before(async () => {
  if (skip) return;
  dns = await startDnsServer(ZONE);
  resolver = createResolver({ servers: [dns.address], timeout: 500, attempts: 1, cache: false });
  dir = await mkdtemp(join(tmpdir(), 'mailgate-postfix-auth-'));
  await writeFile(join(dir, 'ours.pem'), ourKey.privateKeyPem);
  await writeFile(join(dir, 'seal.pem'), ourKey.privateKeyPem);
  const configPath = await writeDaemonConfig(dir, 'main', {
    dnsPort: dns.port,
    dns: 'timeout = "500ms"\nattempts = 1',
    rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
internal_connect = ["127.0.0.1", "10.1.0.0/16"]
internal_domains = ["ours.test"]
[cbv]
enabled = false
[greylist]
enabled = false
[dkim]
sign = true
keys = [{ domain = "ours.test", selector = "m1", key_file = "${join(dir, 'ours.pem')}" }]
[arc]
seal = true
seal_key = { domain = "ours.test", selector = "m1", key_file = "${join(dir, 'seal.pem')}" }
`,
  });
  milter = await startMilterDaemon(configPath, 'info');
  const {
    smtpd_milters,
    non_smtpd_milters: _local,
    ...lines
  } = await documentedMainCf(Number(milter.spec.split(':')[1]!.split('@')[0]));
  rig = await startPostfix({
    milter: smtpd_milters,
    main: { ...lines, smtpd_authorized_xclient_hosts: '127.0.0.0/8', mynetworks: '0.0.0.0/0' },
  });
  await waitForBanner(rig.smtpPort);
});

after(async () => {
  if (skip) return;
  await rig?.stop();
  await milter?.daemon.close();
  await dns?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Sending {
  ip: string;
  name: string;
  helo: string;
  from: string;
  to: string;
  message: Buffer;
}

/** Sends one message with swaks as the client `ip`; returns the dialogue and the queue id. */
async function send(s: Sending): Promise<{ exchanges: SmtpExchange[]; queueId?: string }> {
  const file = join(dir, `message-${++sent}.eml`);
  await writeFile(file, `${s.message.toString('latin1').replace(/^\./gm, '..')}.`, 'latin1');
  const run = await rig.swaks([
    '--helo',
    s.helo,
    '--from',
    s.from,
    '--to',
    s.to,
    '--data',
    `@${file}`,
    '--no-data-fixup',
    '--timeout',
    '30s',
    '--xclient',
    `ADDR=${s.ip} NAME=${s.name}`,
  ]);
  assert.ok(!run.timedOut, `swaks timed out:\n${run.stdout}\n${run.stderr}`);
  const dot = run.transcript.find((e) => e.stage === 'dot');
  const queueId =
    dot && isPositive(dot) ? /queued as (\w+)/.exec(dot.reply.join(' '))?.[1] : undefined;
  return { exchanges: run.transcript, queueId };
}

async function delivered(s: Sending): Promise<Buffer> {
  const { exchanges, queueId } = await send(s);
  assert.ok(queueId, `the message was not queued:\n${show(exchanges)}`);
  const delivery = await rig.nextDelivery({
    match: (d) => d.queueId === queueId,
    timeoutMs: 20_000,
  });
  return delivery.raw;
}

const crlf = (text: string): Buffer => Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');

/** The fields of a message named `name` (case-insensitive), unfolded. */
function fields(message: Buffer, name: string): string[] {
  const head = message
    .toString('latin1')
    .split('\r\n\r\n')[0]!
    .replace(/\r\n[ \t]/g, ' ');
  return head
    .split('\r\n')
    .filter((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((line) => line.slice(name.length + 1).trim());
}

describe('DKIM, DMARC and ARC through Postfix', { skip }, () => {
  test('mail from an internal client leaves signed, and the signature verifies after Postfix', async (t) => {
    const raw = await delivered({
      ip: '10.1.0.5',
      name: 'desk.ours.test',
      helo: 'desk.ours.test',
      from: 'jo@ours.test',
      to: 'sam@rcpt.test',
      message: crlf(
        'From: Jo <jo@ours.test>\nTo: <sam@rcpt.test>\nSubject: Minutes\n' +
          'Message-ID: <minutes.1@ours.test>\n\nThe minutes are attached.\n  Indented line.\n',
      ),
    });
    const signatures = fields(raw, 'DKIM-Signature');
    assert.equal(signatures.length, 1, 'one DKIM-Signature');
    assert.match(signatures[0]!, /\bd=ours\.test;/);
    assert.match(signatures[0]!, /\bs=m1;/);
    assert.match(signatures[0]!, /\ba=rsa-sha256;/);
    const ours = await verifyDkim(raw, {}, { resolver });
    assert.deepEqual(
      ours.map((s) => [s.result, s.domain]),
      [['pass', 'ours.test']],
      JSON.stringify(ours),
    );
    // Internal mail is signed, not judged: no Authentication-Results of ours on it.
    assert.deepEqual(fields(raw, 'Authentication-Results'), []);
    if (!peersAvailable().dkimpy) {
      t.skip('python3-dkim is missing: the dkimpy check of the signature did not run');
      return;
    }
    const dkimpy = await dkimpyVerify(raw, { 'm1._domainkey.ours.test': ourKey.publicKeyRecord });
    assert.ok(dkimpy.ok, `dkimpy: ${dkimpy.output}`);
  });

  test('incoming signed mail gets one Authentication-Results with spf, dkim, dmarc and arc', async () => {
    const unsigned = crlf(
      'Authentication-Results: mx.mailgate.test; dkim=pass header.d=bank.test; dmarc=pass\n' +
        'From: Jo <jo@pass.test>\nTo: <bob@rcpt.test>\nSubject: Hello\n' +
        // A Date of its own: the signer signs Date, so one that Postfix added would break it.
        'Date: Mon, 7 Dec 2026 10:00:00 +0000\nMessage-ID: <hello.1@pass.test>\n\nHello Bob.\n',
    );
    const message = signDkim(unsigned, loadSigningKey('pass.test', 's1', senderKey.privateKeyPem));
    const raw = await delivered({
      ip: '192.0.2.10',
      name: 'mail.pass.test',
      helo: 'mail.pass.test',
      from: 'jo@pass.test',
      to: 'bob@rcpt.test',
      message,
    });
    const results = fields(raw, 'Authentication-Results');
    assert.equal(results.length, 1, `one Authentication-Results, the forged one gone: ${results}`);
    const ar = results[0]!;
    assert.match(ar, /^mx\.mailgate\.test;/);
    assert.match(ar, /\bspf=pass smtp\.mailfrom=jo@pass\.test\b/);
    assert.match(ar, /\bdkim=pass [^;]*header\.d=pass\.test\b[^;]*header\.s=s1\b/);
    assert.match(ar, /\bdmarc=pass [^;]*header\.from=pass\.test\b/);
    assert.match(ar, /\barc=none\b/);
    // A forwarder seals what it relays: the seal names our result and validates after Postfix.
    const arc = await verifyArc(raw, {}, { resolver });
    assert.equal(arc.cv, 'pass', JSON.stringify(arc));
    assert.match(fields(raw, 'ARC-Authentication-Results')[0] ?? '', /^i=1; mx\.mailgate\.test;/);
  });

  test('a p=reject failure is refused at end of message and never queued', async () => {
    const { exchanges, queueId } = await send({
      ip: '198.51.100.7',
      name: 'unknown',
      helo: 'relay.example',
      from: 'ceo@strict.test',
      to: 'bob@rcpt.test',
      message: crlf('From: CEO <ceo@strict.test>\nTo: <bob@rcpt.test>\nSubject: Wire\n\nPay.\n'),
    });
    assert.equal(queueId, undefined, 'not queued');
    const dot = exchanges.find((e) => e.stage === 'dot');
    assert.ok(dot, `the client never got to the end of DATA:\n${show(exchanges)}`);
    assert.match(
      dot.reply.join('\n'),
      /^550 5\.7\.1 .*message refused: it fails the DMARC policy of strict\.test/,
    );
    await rig.waitForLog(/milter-reject: END-OF-MESSAGE .*5\.7\.1/);
  });
});
