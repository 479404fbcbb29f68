/**
 * The Postfix rig proves itself without a milter: it relays to the sink, logs to its file, applies
 * milter_default_action when the milter is unreachable, and leaves nothing behind. The pure parts
 * (transcript parsing, milter specs, the multi-transaction client) are tested without Postfix.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { freePort, isRunning, processesIn, startPostfix, toPostfixMilter } from './postfix.js';
import { skipUnlessAvailable } from './programs.js';
import { startSmtpSink } from './smtp-sink.js';
import { parseSwaksTranscript, smtpDialogue } from './smtp-transcript.js';

const NEEDS = ['postfix', 'swaks', 'root'] as const;

test('toPostfixMilter converts Sendmail-style listen specs', () => {
  assert.equal(toPostfixMilter('inet:8891@127.0.0.1'), 'inet:127.0.0.1:8891');
  assert.equal(toPostfixMilter('inet6:8891@::1'), 'inet:[::1]:8891');
  assert.equal(toPostfixMilter('inet6:8891@[::1]'), 'inet:[::1]:8891');
  assert.equal(toPostfixMilter('unix:/run/mailgate.sock'), 'unix:/run/mailgate.sock');
  assert.equal(toPostfixMilter('local:/run/mailgate.sock'), 'unix:/run/mailgate.sock');
  assert.equal(toPostfixMilter('inet:127.0.0.1:8891'), 'inet:127.0.0.1:8891');
});

test('parseSwaksTranscript pairs commands with replies, multi-line and errors included', () => {
  const output = [
    '=== Trying 127.0.0.1:2525...',
    '<-  220 mx ESMTP',
    ' -> EHLO client',
    '<-  250-mx',
    '<-  250 PIPELINING',
    ' -> MAIL FROM:<a@example.com>',
    '<-  250 2.1.0 Ok',
    ' -> RCPT TO:<later@example.net>',
    '<** 451 4.7.1 try later',
    ' -> RCPT TO:<b@example.net>',
    '<-  250 2.1.5 Ok',
    ' -> DATA',
    '<-  354 End data with <CR><LF>.<CR><LF>',
    ' -> Subject: hi',
    ' -> ',
    ' -> ..',
    ' -> .',
    '<-  250 2.0.0 Ok: queued as ABC',
    ' -> QUIT',
    '<-  221 2.0.0 Bye',
    '=== Connection closed with remote host.',
  ].join('\n');
  assert.deepEqual(parseSwaksTranscript(output), [
    { stage: 'banner', command: '', reply: ['220 mx ESMTP'] },
    { stage: 'ehlo', command: 'EHLO client', reply: ['250-mx', '250 PIPELINING'] },
    {
      stage: 'mail',
      command: 'MAIL FROM:<a@example.com>',
      address: 'a@example.com',
      reply: ['250 2.1.0 Ok'],
    },
    {
      stage: 'rcpt',
      command: 'RCPT TO:<later@example.net>',
      address: 'later@example.net',
      reply: ['451 4.7.1 try later'],
    },
    {
      stage: 'rcpt',
      command: 'RCPT TO:<b@example.net>',
      address: 'b@example.net',
      reply: ['250 2.1.5 Ok'],
    },
    { stage: 'data', command: 'DATA', reply: ['354 End data with <CR><LF>.<CR><LF>'] },
    { stage: 'dot', command: '', reply: ['250 2.0.0 Ok: queued as ABC'] },
    { stage: 'quit', command: 'QUIT', reply: ['221 2.0.0 Bye'] },
  ]);
});

test('smtpDialogue plays several transactions on one connection', async () => {
  const sink = await startSmtpSink();
  try {
    const exchanges = await smtpDialogue(sink.port, 'client.mailgate.test', [
      { from: 'a@example.com', to: ['b@example.net'], data: 'Subject: one\r\n\r\n.dot\r\n' },
      { from: '', to: ['c@example.net', 'd@example.net'], data: 'Subject: two\r\n\r\nbody' },
    ]);
    assert.deepEqual(
      exchanges.map((e) => e.stage),
      [
        'banner',
        'ehlo',
        'mail',
        'rcpt',
        'data',
        'dot',
        'mail',
        'rcpt',
        'rcpt',
        'data',
        'dot',
        'quit',
      ],
    );
    const one = await sink.next();
    const two = await sink.next();
    assert.equal(one.from, 'a@example.com');
    assert.equal(one.body, '.dot\r\n');
    assert.equal(two.from, '');
    assert.deepEqual(two.to, ['c@example.net', 'd@example.net']);
    assert.equal(two.header('subject'), 'two');
    assert.equal(two.body, 'body\r\n');
  } finally {
    await sink.close();
  }
});

test('the rig relays through a throwaway Postfix to the sink, and stops cleanly', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessAvailable(t, NEEDS)) return;
  const rig = await startPostfix();
  let masterPid = 0;
  try {
    masterPid = Number(readFileSync(`${rig.queueDir}/pid/master.pid`, 'utf8').trim());
    assert.ok(masterPid > 0, 'master.pid names the master');
    assert.equal(await rig.postconf('smtpd_milters'), '');
    assert.equal(await rig.postconf('relayhost'), `[127.0.0.1]:${rig.sink.port}`);

    const run = await rig.swaks([
      '--helo',
      'client.mailgate.test',
      '--from',
      'alice@example.com',
      '--to',
      'bob@example.net,carol@example.org',
      '--header',
      'Subject: rig self-test',
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.transcript[0]?.reply[0] ?? '', /^220 mx\.mailgate\.test ESMTP/);
    const dot = run.transcript.find((e) => e.stage === 'dot');
    const queueId = /queued as (\w+)/.exec(dot?.reply.join('\n') ?? '')?.[1];
    assert.ok(queueId, `queued: ${dot?.reply}`);

    const delivery = await rig.nextDelivery({ timeoutMs: 20_000 });
    assert.equal(delivery.queueId, queueId);
    assert.equal(delivery.from, 'alice@example.com');
    assert.deepEqual([...delivery.to].sort(), ['bob@example.net', 'carol@example.org']);
    assert.equal(delivery.header('Subject'), 'rig self-test');
    assert.match(delivery.body, /This is a test mailing/);

    await rig.waitForLog(
      new RegExp(`${queueId}: to=<bob@example.net>, relay=127\\.0\\.0\\.1.*status=sent`),
    );
    assert.match(rig.maillog(), /postfix\/master\[\d+\]: daemon started/);
    assert.deepEqual(await rig.queue(), []);
  } finally {
    await rig.stop();
  }
  await rig.stop(); // twice is harmless
  assert.equal(isRunning(masterPid), false, 'the master is gone');
  assert.deepEqual(processesIn(rig.queueDir), [], 'no Postfix daemon is left');
  assert.equal(existsSync(rig.dir), process.env['MAILGATE_KEEP_POSTFIX'] === '1');
});

test('an unreachable milter gets milter_default_action = tempfail', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessAvailable(t, NEEDS)) return;
  // A port nobody listens on: bound, read, released.
  const closed = await freePort();
  const rig = await startPostfix({ milter: `inet:${closed}@127.0.0.1` });
  try {
    assert.equal(rig.milter, `inet:127.0.0.1:${closed}`);
    assert.equal(await rig.postconf('milter_default_action'), 'tempfail');
    const run = await rig.swaks(['--from', 'alice@example.com', '--to', 'bob@example.net']);
    assert.equal(run.code, 23, 'swaks: error in MAIL');
    const mail = run.transcript.find((e) => e.stage === 'mail');
    assert.deepEqual(mail?.reply, ['451 4.7.1 Service unavailable - try again later']);
    await rig.waitForLog(new RegExp(`connect to Milter service inet:127\\.0\\.0\\.1:${closed}`));
    assert.equal(rig.sink.deliveries.length, 0);
  } finally {
    await rig.stop();
  }
});

test('a port taken before Postfix binds it is given up for another', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessAvailable(t, ['postfix', 'root'])) return;
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const taken = (squatter.address() as AddressInfo).port;
  const offered: number[] = [];
  try {
    const rig = await startPostfix({
      choosePort: async () => {
        const port = offered.length === 0 ? taken : await freePort();
        offered.push(port);
        return port;
      },
    });
    try {
      assert.equal(offered.length, 2);
      assert.equal(rig.smtpPort, offered[1]);
      assert.match(
        rig.maillog(),
        new RegExp(`bind 127\\.0\\.0\\.1 port ${taken}: Address already in use`),
      );
    } finally {
      await rig.stop();
    }
  } finally {
    squatter.close();
  }
});

test('the integration guide states the milter parameters the rig runs with', {
  timeout: 120_000,
}, async (t) => {
  if (skipUnlessAvailable(t, ['postfix', 'root'])) return;
  const guide = readFileSync(new URL('../../docs/integration/postfix.md', import.meta.url), 'utf8');
  // The guide's main.cf block; every milter_* line in it must be what the rig configures.
  const block = /```(?:ini|cf|conf)?\n# main\.cf[^\n]*\n([\s\S]*?)```/.exec(guide)?.[1];
  assert.ok(block, 'docs/integration/postfix.md has a ```-fenced block starting with "# main.cf"');
  const documented = block
    .split('\n')
    .map((line) => /^(milter_\w+)\s*=\s*(.*?)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null);
  assert.ok(documented.length >= 5, 'the guide documents the milter_* parameters');
  const rig = await startPostfix({ milter: 'inet:1@127.0.0.1' });
  try {
    for (const [, name, value] of documented) {
      assert.equal(await rig.postconf(name!), value, `${name} in the guide vs the rig`);
    }
  } finally {
    await rig.stop();
  }
});
