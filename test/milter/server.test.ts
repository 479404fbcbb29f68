import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  applyModifications,
  createMilterServer,
  MilterClient,
  type MilterDefinition,
  type MilterServer,
  reply,
} from '../../src/milter/index.js';
import { captureLogger, optnegPkt, pkt } from './helpers.js';

/** A small content milter: rejects one sender, tags and rewrites messages at the end. */
function contentMilter(): MilterDefinition {
  return {
    name: 'content',
    actions: [
      'addHeader',
      'changeHeader',
      'addRecipient',
      'deleteRecipient',
      'changeFrom',
      'replaceBody',
    ],
    macros: { envfrom: ['i'] },
    handler: () => {
      const headers: string[] = [];
      let body = '';
      return {
        envfrom: async (ctx, sender) => {
          ctx.state.set('queue', ctx.getSymbol('i'));
          return sender === '<spammer@example.net>' ? reply(550, '5.7.1', 'Go away') : 'continue';
        },
        header: (_ctx, name) => {
          headers.push(name);
          return 'continue';
        },
        body: (_ctx, chunk) => {
          body += chunk.toString('utf8');
          return 'continue';
        },
        eom: (ctx) => {
          ctx.addHeader('X-Queue', String(ctx.state.get('queue')));
          ctx.changeHeader('Subject', 1, `[seen ${headers.length}] ${body.length}`);
          ctx.addRecipient('<archive@example.org>');
          ctx.deleteRecipient('<b@example.org>');
          ctx.changeFrom('<bounces@example.com>');
          ctx.replaceBody(body.toUpperCase());
          return 'continue';
        },
      };
    },
  };
}

async function playMessage(client: MilterClient) {
  await client.macro('C', { j: 'mx.example.org' });
  assert.deepEqual(await client.connect('client.example', 'inet', 40000, '192.0.2.1'), undefined);
  assert.equal(await client.helo('client.example'), undefined);
  await client.macro('M', { i: 'Q42' });
  assert.deepEqual(await client.mail('<a@example.com>'), { verdict: 'continue' });
  assert.equal(await client.rcpt('<b@example.org>'), undefined);
  assert.deepEqual(await client.header('Subject', 'hello'), { verdict: 'continue' });
  assert.deepEqual(await client.header('From', 'a@example.com'), { verdict: 'continue' });
  assert.deepEqual(await client.body('line one\r\n'), { verdict: 'continue' });
  return client.eom();
}

describe('the server over TCP', () => {
  let server: MilterServer;
  let address: string;
  const logger = captureLogger();

  before(async () => {
    server = createMilterServer(contentMilter(), { listen: 'inet:0@127.0.0.1', logger });
    ({ address } = await server.listen());
  });
  after(() => server.close(1000));

  test('listen gives the effective spec with the ephemeral port', () => {
    assert.match(address, /^inet:[1-9][0-9]*@127\.0\.0\.1$/);
    assert.equal(server.address, address);
  });

  test('a whole SMTP session: negotiation, steps, modifications applied as an MTA would', async () => {
    const client = await MilterClient.connect(address);
    const negotiated = await client.negotiate();
    assert.deepEqual(negotiated.macros, { envfrom: ['i'] });
    const eom = await playMessage(client);
    assert.deepEqual(eom.verdict, { verdict: 'continue' });
    const result = applyModifications(
      {
        headers: [
          ['Subject', 'hello'],
          ['From', 'a@example.com'],
        ],
        body: Buffer.from('line one\r\n'),
        sender: '<a@example.com>',
        recipients: ['<b@example.org>', '<c@example.org>'],
      },
      eom.modifications,
    );
    assert.deepEqual(result, {
      headers: [
        ['Subject', '[seen 2] 10'],
        ['From', 'a@example.com'],
        ['X-Queue', 'Q42'],
      ],
      body: Buffer.from('LINE ONE\r\n'),
      sender: '<bounces@example.com>',
      recipients: ['<c@example.org>', '<archive@example.org>'],
    });
    // A second message on the same connection, rejected at MAIL with a custom reply.
    await client.abort();
    const rejected = await client.mail('<spammer@example.net>');
    assert.deepEqual(rejected, {
      verdict: 'reject',
      reply: { code: 550, xcode: '5.7.1', lines: ['Go away'], text: '550 5.7.1 Go away' },
    });
    await client.abort();
    await client.quit();
    await client.closed;
    assert.ok(client.log.length > 20);
    assert.deepEqual(client.log[0], {
      direction: 'sent',
      command: { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
    });
  });

  test('QUIT_NC: a second SMTP connection on the same socket, options kept', async () => {
    const client = await MilterClient.connect(address);
    await client.negotiate();
    const first = await playMessage(client);
    await client.quitNc();
    const second = await playMessage(client);
    assert.deepEqual(second, first);
    await client.quit();
    await client.close();
  });

  test('transaction() pipelines a message and reads the same answers', async () => {
    const client = await MilterClient.connect(address, { log: false });
    await client.negotiate();
    await client.connect('client.example', 'inet', 1, '192.0.2.1');
    const result = await client.transaction({
      sender: '<a@example.com>',
      recipients: ['<b@example.org>', { address: '<c@example.org>', args: ['NOTIFY=NEVER'] }],
      headers: [['Subject', 'hello']],
      body: 'x'.repeat(70000),
      macros: { envfrom: { i: 'Q7' } },
    });
    assert.deepEqual(
      result.responses.map((r) => `${r.step}:${r.response.verdict}`),
      ['envfrom:continue', 'header:continue', 'body:continue', 'body:continue'],
    );
    assert.deepEqual(result.eom.modifications[0], {
      action: 'addHeader',
      name: 'X-Queue',
      value: 'Q7',
    });
    assert.equal(client.log.length, 0);
    await client.close();
  });

  test('thousands of connections at once', async () => {
    // Both ends live in this process: two descriptors per connection, within the process limit.
    const limit = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim()) || 1024;
    const count = Math.min(2000, Math.floor((limit - 256) / 2));
    // Connected in batches under the listen backlog (511): a full accept queue makes the kernel
    // drop connections, and the clients' resends (1, 3, 7 s) outlast their timeout.
    const clients: MilterClient[] = [];
    for (let i = 0; i < count; i += 200) {
      const batch = Math.min(200, count - i);
      clients.push(
        ...(await Promise.all(Array.from({ length: batch }, () => MilterClient.connect(address)))),
      );
    }
    const results = await Promise.all(
      clients.map(async (client) => {
        await client.negotiate();
        return (await playMessage(client)).verdict.verdict;
      }),
    );
    assert.deepEqual(new Set(results), new Set(['continue']));
    await Promise.all(clients.map((c) => c.close()));
  });

  test('bad bytes: one warning, the connection closed, other connections unharmed', async () => {
    const good = await MilterClient.connect(address);
    await good.negotiate();
    logger.lines.length = 0;
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from('GET / HTTP/1.0\r\n\r\n'), /packet length 1195725856 exceeds the limit/],
      [Buffer.from([0, 0, 0, 0]), /packet length 0/],
      [Buffer.concat([optnegPkt(), pkt(0x0d, 'x\r\ny')]), /unknown command 0x0d/],
      [Buffer.concat([optnegPkt(), pkt('H', 'no-nul\r\n')]), /SMFIC_HELO: truncated/],
    ];
    for (const [bytes, reason] of cases) {
      const before = logger.lines.length;
      await new Promise<void>((resolve, reject) => {
        const socket: Socket = connect(Number(address.split(':')[1]!.split('@')[0]), '127.0.0.1');
        socket.on('error', reject);
        socket.on('close', () => resolve());
        socket.on('connect', () => socket.write(bytes));
        socket.resume();
      });
      const added = logger.lines.slice(before).filter((l) => l.level !== 'debug');
      assert.equal(added.length, 1, `one log line for ${reason}`);
      assert.equal(added[0]!.level, 'warn');
      assert.match(String(added[0]!.fields.reason), reason);
      assert.match(String(added[0]!.fields.remote), /^127\.0\.0\.1:\d+$/);
      assert.doesNotMatch(String(added[0]!.fields.reason), /[\r\n]/);
    }
    const eom = await playMessage(good);
    assert.equal(eom.verdict.verdict, 'continue');
    await good.close();
  });

  test('reading stops while a callback is pending and input piles up, then all is answered in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let chunks = 0;
    const slow = createMilterServer(
      {
        name: 'slow-body',
        handler: () => ({
          body: async () => {
            chunks += 1;
            await gate;
            return 'continue' as const;
          },
        }),
      },
      { listen: 'inet:0@127.0.0.1', logger: captureLogger() },
    );
    const { address: slowAddress } = await slow.listen();
    const client = await MilterClient.connect(slowAddress);
    await client.negotiate();
    const packets = 40;
    const chunk = Buffer.alloc(65535, 0x61);
    const sent = Promise.all(Array.from({ length: packets }, () => client.body(chunk)));
    // The first callback is pending; the other 39 packets wait in the server, not in a callback.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(chunks, 1);
    release();
    const replies = await sent;
    assert.equal(replies.length, packets);
    assert.ok(replies.every((r) => r?.verdict === 'continue'));
    assert.equal(chunks, packets);
    await client.close();
    await slow.close(1000);
  });
});

describe('the server over a unix socket', () => {
  test('socket mode, a transaction, removal on close', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'milter-test-'));
    const path = join(dir, 'milter.sock');
    const server = createMilterServer(contentMilter(), {
      listen: `unix:${path}`,
      socketMode: 0o660,
      logger: captureLogger(),
    });
    try {
      const { address } = await server.listen();
      assert.equal(address, `unix:${path}`);
      assert.equal((await stat(path)).mode & 0o777, 0o660);
      const client = await MilterClient.connect(address);
      await client.negotiate();
      const eom = await playMessage(client);
      assert.equal(eom.modifications.length, 6);
      await client.quit();
      await client.closed;
    } finally {
      await server.close(1000);
      await assert.rejects(stat(path), /ENOENT/);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('connection lifetime', () => {
  test('an idle connection is closed, and its handler too', async () => {
    let handlerClosed!: () => void;
    const closed = new Promise<void>((resolve) => {
      handlerClosed = resolve;
    });
    const logger = captureLogger();
    const server = createMilterServer(
      {
        name: 'idle',
        handler: () => ({
          helo: () => 'continue',
          close: () => handlerClosed(),
        }),
      },
      { listen: 'inet:0@127.0.0.1', idleTimeoutMs: 30, logger },
    );
    const { address } = await server.listen();
    const client = await MilterClient.connect(address);
    await client.negotiate();
    await client.helo('h');
    await client.closed;
    await closed;
    assert.equal(server.connections, 0);
    assert.ok(logger.lines.some((l) => l.level === 'info' && /idle/.test(l.message)));
    await server.close(1000);
  });

  test('close(): stops accepting, waits up to the deadline, then drops what is left', async () => {
    const server = createMilterServer(
      { name: 'x', handler: () => ({ helo: () => 'continue' }) },
      { listen: 'inet:0@127.0.0.1', logger: captureLogger() },
    );
    const { address } = await server.listen();
    const lingering = await MilterClient.connect(address);
    await lingering.negotiate();
    const quitter = await MilterClient.connect(address);
    await quitter.negotiate();
    assert.equal(server.connections, 2);
    const closing = server.close(100);
    await quitter.quit();
    await closing;
    await lingering.closed;
    await quitter.closed;
    assert.equal(server.connections, 0);
    await assert.rejects(MilterClient.connect(address, { timeoutMs: 1000 }), /cannot connect/);
  });

  test('bad definitions and options fail at creation', () => {
    assert.throws(
      () => createMilterServer({ name: 'x', handler: () => ({}) }, { listen: 'tcp:25' }),
      /unknown type "tcp"/,
    );
    assert.throws(
      () =>
        createMilterServer(
          { name: 'x', handler: () => ({}), actions: ['teleport' as 'addHeader'] },
          { listen: 'inet:0' },
        ),
      /unknown action "teleport"/,
    );
    assert.throws(
      () =>
        createMilterServer(
          { name: 'x', handler: () => ({}) },
          { listen: 'inet:0', idleTimeoutMs: 0 },
        ),
      /idleTimeoutMs must be a positive number/,
    );
  });
});
