import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createResolver } from '../../src/dns/index.js';
import {
  type CallbackSettings,
  callbackVerify,
  createSmtpClient,
  type NotifyServices,
} from '../../src/notify/index.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { type Mx, onOnePort, PRINTABLE, type RawMx, startMx, startRawMx } from './support.js';

// Mail hosts are on loopback: 127.0.0.1 is the smtp-server MX, 127.0.0.2 has nothing listening,
// 127.0.0.3 accepts connections and never speaks; all on one port.
const ZONE = {
  'good.test': [{ MX: [10, 'mx.good.test'] }],
  'mx.good.test': [{ A: '127.0.0.1' }],
  'implicit.test': [{ A: '127.0.0.1' }],
  'nullmx.test': [{ MX: [0, '.'] }],
  'servfail.test': [{ RCODE: 'SERVFAIL' }],
  'downfirst.test': [{ MX: [10, 'down.downfirst.test'] }, { MX: [20, 'mx.good.test'] }],
  'down.downfirst.test': [{ A: '127.0.0.2' }],
  'silentfirst.test': [{ MX: [10, 'silent.silentfirst.test'] }, { MX: [20, 'mx.good.test'] }],
  'silent.silentfirst.test': [{ A: '127.0.0.3' }],
  'silent.test': [{ MX: [10, 'silent.silentfirst.test'] }],
  'allsilent.test': [
    { MX: [10, 'silent.silentfirst.test'] },
    { MX: [20, 'silent2.allsilent.test'] },
  ],
  'silent2.allsilent.test': [{ A: '127.0.0.3' }, { AAAA: '::ffff:127.0.0.3' }],
  'ours.test': [{ MX: [10, 'mx.ours.test'] }],
  'mx.ours.test': [{ A: '127.0.0.1' }],
  'oursaddr.test': [{ MX: [10, 'relay.oursaddr.test'] }],
  'relay.oursaddr.test': [{ A: '127.0.0.1' }],
  'unlisted.test': [{ MX: [10, 'lo.unlisted.test'] }],
  'lo.unlisted.test': [{ A: '127.0.0.9' }],
};

let dns: FixtureDnsServer;
let mx: Mx;
let silent: RawMx;
const refusing: Mx[] = [];

before(async () => {
  dns = await startDnsServer(ZONE);
  [mx, silent] = (await onOnePort<Mx | RawMx>([
    (port) =>
      startMx({
        port,
        rcpt: (a) =>
          a.startsWith('gone')
            ? { code: 550, message: '5.1.1 user unknown' }
            : a.startsWith('later')
              ? { code: 450, message: '4.2.0 mailbox busy' }
              : undefined,
      }),
    (port) => startRawMx({ host: '127.0.0.3', port, banner: null }),
  ])) as [Mx, RawMx];
});
after(async () => {
  await Promise.all([dns.close(), mx.close(), silent.close(), ...refusing.map((m) => m.close())]);
});

const services = (): NotifyServices => ({
  resolver: createResolver({ servers: [dns.address], timeout: 300, attempts: 1, cache: false }),
  smtp: createSmtpClient(),
});
const settings = (extra: Partial<CallbackSettings> = {}): CallbackSettings => ({
  helo: 'mail.ours.test',
  ourNames: ['mx.ours.test'],
  ourAddresses: ['203.0.113.25'],
  allowAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
  port: mx.port,
  timeoutMs: 5_000,
  hostTimeoutMs: 2_000,
  ...extra,
});
const verify = (sender: string, extra?: Partial<CallbackSettings>) =>
  callbackVerify(sender, services(), settings(extra));

test('an accepting MX: accepted, with the host and its reply', async () => {
  const before = mx.commands.length;
  const r = await verify('Jo.Smith@Good.Test');
  assert.equal(r.outcome, 'accepted', r.detail);
  assert.equal(r.domain, 'good.test');
  assert.deepEqual(r.host, { name: 'mx.good.test', address: '127.0.0.1', port: mx.port });
  assert.equal(r.reply?.code, 250);
  assert.deepEqual(mx.commands.slice(before), [
    'EHLO mail.ours.test',
    'MAIL FROM:<>',
    'RCPT TO:<Jo.Smith@good.test>',
    'QUIT',
  ]);
  assert.equal(r.attempts.length, 1);
});

test('550 user unknown: rejected, carrying the reply text', async () => {
  const r = await verify('gone@good.test');
  assert.equal(r.outcome, 'rejected');
  assert.deepEqual(r.reply, { code: 550, text: '5.1.1 user unknown' });
  assert.match(r.detail, /550 at RCPT TO: 5\.1\.1 user unknown/);
});

test('450 at RCPT: tempfail after trying the host', async () => {
  const r = await verify('later@good.test');
  assert.equal(r.outcome, 'tempfail');
  assert.equal(r.attempts.length, 1);
  assert.equal(r.attempts[0]!.code, 450);
  assert.match(r.detail, /no mail host gave a final answer/);
});

test('a refused null sender at MAIL is a rejection', async () => {
  const strict = await startMx({ mail: () => ({ code: 550, message: 'no bounces accepted' }) });
  refusing.push(strict);
  const r = await verify('jo@good.test', { port: strict.port });
  assert.equal(r.outcome, 'rejected');
  assert.deepEqual(r.reply, { code: 550, text: 'no bounces accepted' });
  assert.equal(r.attempts[0]!.stage, 'mail');
});

test('an MX that accepts the connection and never speaks: tempfail within the host timeout', async () => {
  const started = Date.now();
  const r = await verify('jo@silent.test', { hostTimeoutMs: 300 });
  assert.equal(r.outcome, 'tempfail');
  assert.deepEqual([r.attempts[0]!.stage, r.attempts[0]!.kind], ['banner', 'timeout']);
  assert.ok(Date.now() - started < 3_000);
});

test('one budget covers every host', async () => {
  const started = Date.now();
  const r = await verify('jo@allsilent.test', { timeoutMs: 500, hostTimeoutMs: 5_000 });
  assert.equal(r.outcome, 'tempfail');
  assert.match(r.detail, /time budget ran out/);
  assert.ok(Date.now() - started < 3_000);
});

test('the first host down, the second answers', async () => {
  const r = await verify('jo@downfirst.test');
  assert.equal(r.outcome, 'accepted', r.detail);
  assert.deepEqual(
    r.attempts.map((a) => [a.address, a.stage, a.kind]),
    [
      ['127.0.0.2', 'connect', 'network'],
      ['127.0.0.1', 'done', 'ok'],
    ],
  );
});

test('the first host silent, the second answers', async () => {
  const r = await verify('jo@silentfirst.test', { hostTimeoutMs: 300 });
  assert.equal(r.outcome, 'accepted', r.detail);
  assert.deepEqual(
    r.attempts.map((a) => a.kind),
    ['timeout', 'ok'],
  );
});

test('a 5xx banner is no answer about the sender: the next host is tried', async () => {
  const [closed, open] = await onOnePort<Mx>([
    (port) => startMx({ host: '127.0.0.2', port, connect: { code: 554, message: 'no service' } }),
    (port) => startMx({ port }),
  ]);
  refusing.push(closed!, open!);
  const r = await verify('jo@downfirst.test', { port: closed!.port });
  assert.equal(r.outcome, 'accepted', r.detail);
  assert.deepEqual(
    r.attempts.map((a) => [a.stage, a.code]),
    [
      ['banner', 554],
      ['done', 250],
    ],
  );
});

test('an MX whose banner names us: fraud, and no MAIL is ever sent', async () => {
  const us = await startMx({ name: 'mail.ours.test' });
  refusing.push(us);
  const r = await verify('jo@good.test', { port: us.port });
  assert.equal(r.outcome, 'fraud');
  assert.match(r.detail, /names itself mail\.ours\.test/);
  assert.ok(!us.commands.some((c) => c.startsWith('MAIL')));
});

test('an MX that is ours by name or address, or on loopback: fraud without connecting', async () => {
  const before = mx.connections;
  const byName = await verify('jo@ours.test');
  assert.equal(byName.outcome, 'fraud');
  const byAddress = await verify('jo@oursaddr.test', { ourAddresses: ['127.0.0.1'] });
  assert.equal(byAddress.outcome, 'fraud');
  const loopback = await verify('jo@unlisted.test');
  assert.equal(loopback.outcome, 'fraud');
  assert.match(loopback.detail, /127\.0\.0\.9 \(loopback\)/);
  // Without the explicit exemption, the test MX itself is loopback.
  const strict = await verify('jo@good.test', { allowAddresses: [] });
  assert.equal(strict.outcome, 'fraud');
  assert.equal(mx.connections, before);
});

test('DNS outcomes: null MX, no MX with A fallback, NXDOMAIN, SERVFAIL', async () => {
  assert.equal((await verify('jo@nullmx.test')).outcome, 'null-mx');
  const implicit = await verify('jo@implicit.test');
  assert.equal(implicit.outcome, 'accepted');
  assert.equal(implicit.host?.name, 'implicit.test');
  assert.equal((await verify('jo@absent.test')).outcome, 'no-domain');
  const servfail = await verify('jo@servfail.test');
  assert.equal(servfail.outcome, 'tempfail');
  assert.match(servfail.detail, /MX lookup for servfail\.test failed/);
});

test('hostile sender text is never looked up nor sent', async () => {
  const hostile = [
    'jo@good.test>\r\nRCPT TO:<victim@good.test',
    'jo\r\n@good.test',
    'jo@good.test\u0000',
    'jo@good.test\r\n',
    '<jo@good.test>',
    'jo smith@good.test',
    '"jo>"@good.test',
    '"jo\\<"@good.test',
    'j\u00f6@good.test',
    'jo@[127.0.0.1]',
    'jo@good.test.',
    '',
    '@good.test',
    `${'x'.repeat(65)}@good.test`,
    `jo@${'a'.repeat(250)}.test`,
  ];
  dns.resetLog();
  const before = mx.connections;
  for (const sender of hostile) {
    const r = await verify(sender);
    assert.equal(r.outcome, 'invalid', JSON.stringify(sender));
    assert.match(r.detail, PRINTABLE);
    assert.ok(r.detail.length < 200);
  }
  assert.equal(dns.queries.length, 0);
  assert.equal(mx.connections, before);
});

test('a quoted local part is probed as written', async () => {
  // smtp-server refuses quoted local parts with spaces; a raw server shows what was sent.
  const raw = await startRawMx({ banner: '220 mx.good.test' });
  try {
    const r = await verify('"jo smith"@good.test', { port: raw.port });
    assert.equal(r.outcome, 'accepted', r.detail);
    assert.ok(raw.commands.includes('RCPT TO:<"jo smith"@good.test>'));
  } finally {
    await raw.close();
  }
});
