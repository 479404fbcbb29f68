/**
 * DKIM, DMARC and ARC at end of message, through the real milter door: `Daemon.start`, the real
 * resolver on the fixture DNS server, keys in PEM files, and the MTA side of the milter protocol.
 * Incoming mail gets one Authentication-Results with every result; a p=reject failure is refused;
 * our own mail leaves signed; a forwarder's seal is added; aggregate-report rows are kept.
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
import {
  fieldFromText,
  fieldValue,
  formatMessage,
  parseMessage,
} from '../../src/checks/message/index.js';
import { createResolver } from '../../src/dns/index.js';
import { openStore } from '../../src/store/index.js';
import { startMilterDaemon, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { replyOf } from '../support/milter-play.js';

const BODY = 'Hi.\r\n';
const senderKey = generateKeyPair('ed25519');
const ourKey = generateKeyPair('rsa', 2048);

const ZONE = {
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  '_dmarc.pass.test': [{ TXT: 'v=DMARC1; p=reject' }],
  's1._domainkey.pass.test': [{ TXT: senderKey.publicKeyRecord }],
  'strict.test': [{ TXT: 'v=spf1 ?all' }],
  '_dmarc.strict.test': [{ TXT: 'v=DMARC1; p=reject' }],
  'quiet.test': [{ TXT: 'v=spf1 ?all' }],
  '_dmarc.quiet.test': [{ TXT: 'v=DMARC1; p=quarantine' }],
  'slow.test': [{ TXT: 'v=spf1 ?all' }],
  '_dmarc.slow.test': [{ TXT: 'v=DMARC1; p=reject' }],
  's1._domainkey.slow.test': ['TIMEOUT'],
  'ours.test': [{ TXT: 'v=spf1 ip4:10.1.0.0/16 -all' }],
  'm1._domainkey.ours.test': [{ TXT: ourKey.publicKeyRecord }],
};

let dns: FixtureDnsServer;
let dir: string;

before(async () => {
  dns = await startDnsServer(ZONE);
  dir = await mkdtemp(join(tmpdir(), 'mailgate-milter-auth-'));
  await writeFile(join(dir, 'ours.pem'), ourKey.privateKeyPem);
});

after(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

async function startRig(name: string, extra = '') {
  const path = await writeDaemonConfig(dir, name, {
    dnsPort: dns.port,
    dns: 'timeout = "300ms"\nattempts = 1',
    rest: `[policyd]
enabled = false
[milter]
listen = ["inet:0@127.0.0.1"]
internal_connect = ["10.1.0.0/16"]
internal_domains = ["ours.test"]
[cbv]
enabled = false
[dkim]
sign = true
keys = [{ domain = "ours.test", selector = "m1", key_file = "${join(dir, 'ours.pem')}" }]
time_budget = "1s"
${extra}`,
  });
  return startMilterDaemon(path, 'info');
}

/** A message's fields as the MTA passes them with HDR_LEADSPC: name, and all after the colon. */
function fieldsOf(message: Buffer): Array<[string, string]> {
  return parseMessage(message).headers.map((f) => [f.name, fieldValue(f).replace(/\r\n/gu, '\n')]);
}

function message(from: string, subject: string): Buffer {
  return Buffer.from(
    `From: <${from}>\r\nTo: <sam@ours.test>\r\nSubject: ${subject}\r\n\r\n${BODY}`,
  );
}

function signedBy(domain: string, pem: string, text: Buffer): Buffer {
  return signDkim(text, loadSigningKey(domain, 's1', pem));
}

type Added = { action: 'insertHeader' | 'addHeader'; name: string; value: string };
const added = (mods: readonly { action: string }[], name: string): Added[] =>
  mods.filter(
    (m): m is Added =>
      (m.action === 'insertHeader' || m.action === 'addHeader') &&
      (m as { name?: string }).name === name,
  );

describe('DKIM, DMARC and ARC in the milter', () => {
  let rig: Awaited<ReturnType<typeof startRig>>;
  before(async () => {
    rig = await startRig('main');
  });
  after(() => rig.daemon.close());

  test('a signed message whose domain aligns gets one Authentication-Results with spf, dkim, dmarc and arc', async () => {
    const signed = signedBy('pass.test', senderKey.privateKeyPem, message('jo@pass.test', 'hi'));
    const { eom } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
      headers: fieldsOf(signed),
    });
    assert.equal(eom?.verdict.verdict, 'continue');
    const ar = added(eom?.modifications ?? [], 'Authentication-Results');
    assert.equal(ar.length, 1);
    const value = ar[0]!.value;
    assert.match(value, /^ mx\.mailgate\.test; spf=pass smtp\.mailfrom=jo@pass\.test; /);
    assert.match(
      value,
      /; dkim=pass header\.d=pass\.test header\.i=@pass\.test header\.s=s1 header\.a=ed25519-sha256 header\.b=\S{8}/,
    );
    assert.match(value, /; dmarc=pass header\.from=pass\.test policy\.dmarc=reject/);
    assert.match(value, /; arc=none$/);
    const line = rig.lines.find((l) => l['stage'] === 'eom' && l['verdict'] === 'continue');
    assert.ok(((line?.['tags'] ?? []) as string[]).includes('DKIM pass:pass.test'));
  });

  test('a message failing DMARC under p=reject is refused at end of message, naming the domain', async () => {
    const { eom } = await rig.play({
      ip: '198.51.100.20',
      helo: 'mail.elsewhere.test',
      sender: 'jo@strict.test',
      headers: fieldsOf(message('jo@strict.test', 'forged')),
    });
    assert.equal(eom?.verdict.verdict, 'reject');
    assert.equal(
      replyOf(eom?.verdict),
      '550 5.7.1 message refused: it fails the DMARC policy of strict.test',
    );
  });

  test('a signature whose key lookup times out under p=reject is a tempfail, not a refusal', async () => {
    // A signature that would align, whose key never comes: the result is in doubt.
    const other = generateKeyPair('ed25519');
    const signed = signedBy('slow.test', other.privateKeyPem, message('jo@slow.test', 'slow'));
    const { eom } = await rig.play({
      ip: '198.51.100.20',
      helo: 'mail.elsewhere.test',
      sender: 'jo@slow.test',
      headers: fieldsOf(signed),
    });
    assert.equal(eom?.verdict.verdict, 'tempfail');
    assert.match(
      replyOf(eom?.verdict) ?? '',
      /^451 4\.7\.5 DMARC policy of slow\.test cannot be checked now/,
    );
  });

  test('a failure under p=quarantine is marked for the spam filter', async () => {
    const { eom } = await rig.play({
      ip: '198.51.100.20',
      helo: 'mail.elsewhere.test',
      sender: 'jo@quiet.test',
      headers: fieldsOf(message('jo@quiet.test', 'quiet')),
    });
    assert.equal(eom?.verdict.verdict, 'continue');
    const mark = added(eom?.modifications ?? [], 'X-DMARC-Quarantine');
    assert.equal(mark[0]?.value, ' quiet.test');
  });

  test('mail from an internal client leaves signed with our key, and verifies', async () => {
    const text = message('ann@ours.test', 'outgoing');
    const { eom } = await rig.play({
      ip: '10.1.2.3',
      helo: 'ws.ours.test',
      sender: 'ann@ours.test',
      headers: fieldsOf(text),
    });
    assert.equal(eom?.verdict.verdict, 'continue');
    const signature = added(eom?.modifications ?? [], 'DKIM-Signature');
    assert.equal(signature.length, 1);
    assert.equal(signature[0]!.action, 'insertHeader');
    assert.match(signature[0]!.value, /d=ours\.test;/);
    const parsed = parseMessage(text);
    const delivered = formatMessage(
      [fieldFromText(`DKIM-Signature:${signature[0]!.value}`), ...parsed.headers],
      parsed.body,
    );
    const resolver = createResolver({
      servers: [dns.address],
      timeout: 300,
      attempts: 1,
      cache: false,
    });
    try {
      const [result] = await verifyDkim(delivered, {}, { resolver });
      assert.equal(result?.result, 'pass', result?.reason);
    } finally {
      resolver.close();
    }
  });

  test('each DMARC evaluation is kept for aggregate reports', async () => {
    await rig.daemon.close();
    const store = await openStore(`sqlite:${join(dir, 'main.db')}`);
    try {
      const rows = await store.dmarcResults('strict.test', 0, Date.now() + 1, 10);
      assert.ok(rows.length >= 1);
      assert.equal(rows[0]!.result, 'fail');
      assert.equal(rows[0]!.disposition, 'reject');
      assert.equal(rows[0]!.sourceIp, '198.51.100.20');
      assert.equal(rows[0]!.published?.p, 'reject');
    } finally {
      await store.close();
    }
    rig = await startRig('main');
  });
});

describe('ARC sealing in the milter', () => {
  let rig: Awaited<ReturnType<typeof startRig>>;
  before(async () => {
    rig = await startRig(
      'seal',
      `[arc]
seal = true
seal_key = { domain = "ours.test", selector = "m1", key_file = "${join(dir, 'ours.pem')}" }
`,
    );
  });
  after(() => rig.daemon.close());

  test('incoming mail gets our ARC set on top, carrying our Authentication-Results, and it validates', async () => {
    const text = signedBy('pass.test', senderKey.privateKeyPem, message('jo@pass.test', 'list'));
    const { eom } = await rig.play({
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
      headers: fieldsOf(text),
    });
    assert.equal(eom?.verdict.verdict, 'continue');
    const mods = eom?.modifications ?? [];
    // Each is inserted at the top, the last first: the message reads them in reverse.
    const tops = added(mods, 'ARC-Seal')
      .concat(added(mods, 'ARC-Message-Signature'), added(mods, 'ARC-Authentication-Results'))
      .filter((m) => m.action === 'insertHeader');
    const order = mods.filter((m) => m.action === 'insertHeader').reverse() as Added[];
    assert.equal(tops.length, 3);
    assert.deepEqual(
      order.map((m) => m.name).filter((n) => n.startsWith('ARC-')),
      ['ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results'],
    );
    const ar = added(mods, 'Authentication-Results')[0]!.value.trim();
    const aar = added(mods, 'ARC-Authentication-Results')[0]!.value;
    assert.match(aar, /^ i=1; /);
    assert.ok(aar.replace(/\s+/gu, ' ').includes(ar.replace(/^mx\.mailgate\.test; /u, '')));
    const parsed = parseMessage(text);
    const arcFields = order
      .filter((m) => m.name.startsWith('ARC-'))
      .map((m) => fieldFromText(`${m.name}:${m.value}`));
    const delivered = formatMessage([...arcFields, ...parsed.headers], parsed.body);
    const resolver = createResolver({
      servers: [dns.address],
      timeout: 300,
      attempts: 1,
      cache: false,
    });
    try {
      const result = await verifyArc(delivered, {}, { resolver });
      assert.equal(result.cv, 'pass', result.reason);
    } finally {
      resolver.close();
    }
  });
});
