import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSmtpClient } from '../../src/notify/index.js';
import type { SmtpScript, SmtpTarget } from '../../src/notify/types.js';
import { eventually, PRINTABLE, startMx, startRawMx } from './support.js';

const smtp = createSmtpClient();
const probe: SmtpScript = { helo: 'mx.ours.test', from: '', to: 'jo@remote.test' };
const at = (port: number, address = '127.0.0.1'): SmtpTarget => ({
  address,
  port,
  name: 'mx.remote.test',
});

// These two tests pin what nodemailer-session.ts relies on in nodemailer's SMTPConnection: a
// command sent on its own (no DATA after RCPT), and the banner read from the transaction log.
test('a probe says EHLO, MAIL FROM:<>, RCPT TO and QUIT, and never DATA', async () => {
  const mx = await startMx({ banner: 'welcome' });
  try {
    const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 5_000 });
    assert.equal(o.kind, 'ok');
    assert.equal(o.stage, 'done');
    assert.equal(o.code, 250);
    assert.equal(o.banner, 'mx.remote.test ESMTP welcome');
    assert.equal(o.greetingName, 'mx.remote.test');
    assert.deepEqual(mx.commands, [
      'EHLO mx.ours.test',
      'MAIL FROM:<>',
      'RCPT TO:<jo@remote.test>',
      'QUIT',
    ]);
    assert.equal(mx.deliveries.length, 0);
  } finally {
    await mx.close();
  }
});

test('the banner and the EHLO greeting are read even when they differ', async () => {
  const mx = await startRawMx({
    banner: '220-first.remote.test ready\r\n220 second line',
    reply: (line) =>
      line.startsWith('EHLO') ? '250-other.remote.test hi\r\n250 8BITMIME' : '250 OK',
  });
  try {
    const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 5_000 });
    assert.equal(o.kind, 'ok');
    assert.equal(o.banner, 'first.remote.test ready second line');
    assert.equal(o.greetingName, 'other.remote.test');
  } finally {
    await mx.close();
  }
});

test('a message goes with DATA under the null sender, dot-stuffed and whole', async () => {
  const mx = await startMx();
  try {
    const message = Buffer.from('Subject: hi\r\n\r\n.leading dot\r\n..two\r\nend\r\n');
    const o = await smtp.converse(at(mx.port), { ...probe, message }, { timeoutMs: 5_000 });
    assert.equal(o.kind, 'ok');
    assert.equal(o.stage, 'done');
    assert.ok(mx.commands.includes('DATA'));
    assert.equal(mx.deliveries.length, 1);
    assert.equal(mx.deliveries[0]!.from, '');
    assert.deepEqual(mx.deliveries[0]!.to, ['jo@remote.test']);
    assert.equal(mx.deliveries[0]!.raw.toString(), message.toString());
  } finally {
    await mx.close();
  }
});

test('replies to MAIL, RCPT and DATA are told apart by stage and kind', async () => {
  const mx = await startMx({
    mail: (a) => (a === 'bounce@ours.test' ? { code: 553, message: 'no bounces here' } : undefined),
    rcpt: (a) =>
      a.startsWith('gone')
        ? { code: 550, message: '5.1.1 user unknown' }
        : a.startsWith('later')
          ? { code: 450, message: '4.2.0 try again later' }
          : undefined,
  });
  try {
    const gone = await smtp.converse(
      at(mx.port),
      { ...probe, to: 'gone@remote.test' },
      { timeoutMs: 5_000 },
    );
    assert.deepEqual(
      [gone.stage, gone.kind, gone.code, gone.reply],
      ['rcpt', 'permanent', 550, '5.1.1 user unknown'],
    );
    const later = await smtp.converse(
      at(mx.port),
      { ...probe, to: 'later@remote.test' },
      { timeoutMs: 5_000 },
    );
    assert.deepEqual([later.stage, later.kind, later.code], ['rcpt', 'temporary', 450]);
    const mail = await smtp.converse(
      at(mx.port),
      { ...probe, from: 'bounce@ours.test' },
      { timeoutMs: 5_000 },
    );
    assert.deepEqual([mail.stage, mail.kind, mail.code], ['mail', 'permanent', 553]);
    // Every refused conversation still ends politely.
    assert.equal(mx.commands.filter((c) => c === 'QUIT').length, 3);
  } finally {
    await mx.close();
  }
  const refusing = await startMx({ data: { code: 554, message: '5.7.1 not wanted' } });
  try {
    const message = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    const o = await smtp.converse(at(refusing.port), { ...probe, message }, { timeoutMs: 5_000 });
    assert.deepEqual(
      [o.stage, o.kind, o.code, o.reply],
      ['data', 'permanent', 554, '5.7.1 not wanted'],
    );
  } finally {
    await refusing.close();
  }
});

test('a refused EHLO falls back to HELO', async () => {
  const mx = await startRawMx({
    banner: '220 old.remote.test',
    reply: (line) =>
      line.startsWith('EHLO')
        ? '502 command not implemented'
        : line.startsWith('HELO')
          ? '250 old.remote.test'
          : '250 OK',
  });
  try {
    const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 5_000 });
    assert.equal(o.kind, 'ok');
    assert.equal(o.greetingName, 'old.remote.test');
    assert.deepEqual(mx.commands.slice(0, 2), ['EHLO mx.ours.test', 'HELO mx.ours.test']);
  } finally {
    await mx.close();
  }
});

test('a 5xx or 4xx banner ends the conversation at the banner', async () => {
  for (const [code, kind] of [
    [554, 'permanent'],
    [421, 'temporary'],
  ] as const) {
    const mx = await startMx({ connect: { code, message: 'go away' } });
    try {
      const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 5_000 });
      assert.equal(o.stage, 'banner', String(code));
      assert.equal(o.kind, kind, String(code));
      assert.equal(o.code, code);
    } finally {
      await mx.close();
    }
  }
});

test('a server that never speaks times out at the banner and its socket is closed', async () => {
  const mx = await startRawMx({ banner: null });
  try {
    const started = Date.now();
    const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 300 });
    assert.equal(o.stage, 'banner');
    assert.equal(o.kind, 'timeout');
    assert.ok(Date.now() - started < 2_000, 'the deadline holds');
    assert.ok(await eventually(() => mx.connections === 1 && mx.open() === 0), 'socket closed');
  } finally {
    await mx.close();
  }
});

test('a server that stops answering after MAIL times out at RCPT', async () => {
  const mx = await startRawMx({
    banner: '220 slow.remote.test',
    reply: (line) => (line.startsWith('RCPT') ? null : '250 OK'),
  });
  try {
    const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 400 });
    assert.deepEqual([o.stage, o.kind], ['rcpt', 'timeout']);
    assert.ok(await eventually(() => mx.open() === 0), 'socket closed');
  } finally {
    await mx.close();
  }
});

test('refused connections, closed connections and bad targets are network outcomes', async () => {
  const mx = await startRawMx({ banner: '220 closing.remote.test' });
  const port = mx.port;
  await mx.close();
  const refused = await smtp.converse(at(port), probe, { timeoutMs: 2_000 });
  assert.deepEqual(
    [refused.stage, refused.kind, refused.detail],
    ['connect', 'network', 'connection refused'],
  );

  const closing = await startRawMx({ banner: '220 closing.remote.test', reply: () => null });
  try {
    // Close as soon as EHLO arrives.
    const o = smtp.converse(at(closing.port), probe, { timeoutMs: 2_000 });
    await eventually(() => closing.commands.length > 0);
    await closing.close();
    const closed = await o;
    assert.equal(closed.kind, 'network');
    assert.equal(closed.stage, 'ehlo');
  } finally {
    await closing.close();
  }

  const name = await smtp.converse(
    { address: 'mx.remote.test', port: 25, name: 'mx.remote.test' },
    probe,
    { timeoutMs: 1_000 },
  );
  assert.deepEqual([name.stage, name.kind], ['connect', 'network']);
});

test('hostile replies reach the outcome as one bounded printable line', async () => {
  const mx = await startRawMx({
    banner: `220 evil.remote.test \x1b[31m\x00caf\u00e9 ${'x'.repeat(5_000)}`,
    reply: (line) =>
      line.startsWith('RCPT')
        ? '550-5.1.1 first\x00line\x07\r\n550-\r\n550 5.1.1 second\ttab \u202e line'
        : line.startsWith('EHLO')
          ? '250-evil.remote.test\x1b hi\r\n250 OK'
          : '250 OK',
  });
  try {
    const o = await smtp.converse(at(mx.port), probe, { timeoutMs: 5_000 });
    assert.equal(o.kind, 'permanent');
    for (const text of [o.reply!, o.banner!, o.detail, o.greetingName ?? '']) {
      assert.match(text, PRINTABLE);
      assert.ok(text.length <= 400, `${text.length}`);
    }
    assert.equal(o.reply, '5.1.1 first?line? 5.1.1 second?tab ? line');
  } finally {
    await mx.close();
  }
});

test('a server that floods us is cut off', async () => {
  const flooding = createSmtpClient({ maxReadBytes: 100_000 });
  const mx = await startRawMx({ banner: null, flood: 1 });
  try {
    const o = await flooding.converse(at(mx.port), probe, { timeoutMs: 5_000 });
    assert.equal(o.kind, 'network');
    assert.match(o.detail, /more than 100000 bytes/);
  } finally {
    await mx.close();
  }
});

test('a server naming one of selfNames ends the conversation before MAIL', async () => {
  const mx = await startMx({ name: 'MX.Ours.Test' });
  try {
    const o = await smtp.converse(
      at(mx.port),
      { ...probe, selfNames: ['mx.ours.test.'] },
      { timeoutMs: 5_000 },
    );
    assert.deepEqual([o.stage, o.kind, o.selfName], ['ehlo', 'self', 'mx.ours.test']);
    assert.deepEqual(mx.commands, ['EHLO mx.ours.test', 'QUIT']);
  } finally {
    await mx.close();
  }
  const greeting = await startRawMx({
    banner: '220 ESMTP ready',
    reply: (line) => (line.startsWith('EHLO') ? '250-relay.ours.test\r\n250 OK' : '250 OK'),
  });
  try {
    const o = await smtp.converse(
      at(greeting.port),
      { ...probe, selfNames: ['relay.ours.test'] },
      { timeoutMs: 5_000 },
    );
    assert.equal(o.kind, 'self');
    assert.ok(!greeting.commands.some((c) => c.startsWith('MAIL')));
  } finally {
    await greeting.close();
  }
});

test('a script that could inject a command is refused before connecting', async () => {
  const mx = await startRawMx({ banner: '220 mx.remote.test' });
  try {
    const bad: SmtpScript[] = [
      { ...probe, to: 'jo@remote.test>\r\nRCPT TO:<other@remote.test' },
      { ...probe, to: 'jo@remote.test\r\n' },
      { ...probe, from: 'a\nb@ours.test' },
      { ...probe, helo: 'mx.ours.test\r\nMAIL FROM:<>' },
      { ...probe, to: '' },
    ];
    for (const script of bad) {
      await assert.rejects(smtp.converse(at(mx.port), script, { timeoutMs: 1_000 }), TypeError);
    }
    assert.equal(mx.connections, 0);
  } finally {
    await mx.close();
  }
});

test('STARTTLS is used when asked for and offered, and not otherwise', async () => {
  const mx = await startMx({ starttls: true });
  try {
    const message = Buffer.from('Subject: tls\r\n\r\nbody\r\n');
    const secure = await smtp.converse(
      at(mx.port),
      { ...probe, message },
      {
        timeoutMs: 5_000,
        starttls: true,
      },
    );
    assert.equal(secure.kind, 'ok', secure.detail);
    const plain = await smtp.converse(at(mx.port), { ...probe, message }, { timeoutMs: 5_000 });
    assert.equal(plain.kind, 'ok', plain.detail);
    assert.deepEqual(
      mx.deliveries.map((d) => d.secure),
      [true, false],
    );
  } finally {
    await mx.close();
  }
});
