import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BoundAddress } from '../../src/listen/index.js';
import {
  createPolicyServer,
  DEFAULT_ERROR_ACTION,
  type PolicyHandler,
  type PolicyRequest,
  type PolicyRequestInfo,
  type PolicyServer,
  type PolicyServerOptions,
} from '../../src/policyd/index.js';
import { captureLogger, deferred, RawClient, request, sleep, until } from './helpers.js';

const RCPT = {
  request: 'smtpd_access_policy',
  protocol_state: 'RCPT',
  protocol_name: 'ESMTP',
  client_address: '192.0.2.1',
  client_name: 'client.example',
  helo_name: 'client.example',
  sender: 'a@sender.example',
  recipient: 'b@rcpt.example',
  instance: '1a2b.5f0c1d2e.3',
};

/** A server on an ephemeral loopback port, closed after the test. */
async function start(
  t: { after(fn: () => unknown): void },
  options: Partial<PolicyServerOptions> & { handler: PolicyHandler },
): Promise<{
  server: PolicyServer;
  bound: BoundAddress;
  logger: ReturnType<typeof captureLogger>;
}> {
  const logger = captureLogger();
  const server = createPolicyServer({ logger, ...options });
  const bound = await server.listen('inet:0@127.0.0.1');
  t.after(() => server.close(500));
  return { server, bound, logger };
}

function canConnect(bound: BoundAddress): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = bound.kind === 'unix' ? connect(bound.path) : connect(bound.port, bound.host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('policy server over TCP', { timeout: 20_000 }, () => {
  test('answers a request with the handler action and tells it where it came from', async (t) => {
    const seen: Array<[PolicyRequest, PolicyRequestInfo]> = [];
    const { bound, logger } = await start(t, {
      handler: (req, info) => {
        seen.push([req, info]);
        return req['sender'] === 'a@sender.example' ? 'DEFER_IF_PERMIT 4.7.1 greylisted' : 'DUNNO';
      },
    });
    assert.match(bound.spec, /^inet:[1-9][0-9]*@127\.0\.0\.1$/);
    const client = await RawClient.connect(bound);
    assert.equal(await client.ask(RCPT), 'DEFER_IF_PERMIT 4.7.1 greylisted');
    assert.equal(await client.ask({ ...RCPT, sender: '' }), 'DUNNO');
    assert.deepEqual({ ...seen[0]![0] }, RCPT);
    assert.equal(seen[0]![1].peer, `127.0.0.1:${client.socket.localPort}`);
    assert.equal(seen[0]![1].connectionId, seen[1]![1].connectionId);
    assert.equal(client.ended, false, 'postfix mode keeps the connection');
    await client.close();
    assert.deepEqual(logger.problems(), []);
  });

  test('CRLF requests are answered too', async (t) => {
    const { bound } = await start(t, { handler: (req) => `OK ${req['sender']}` });
    const client = await RawClient.connect(bound);
    client.send(request(RCPT, '\r\n'));
    assert.equal(await client.reply(), 'OK a@sender.example');
    await client.close();
  });

  test('pipelined requests are answered in order although later ones finish first', async (t) => {
    let running = 0;
    let most = 0;
    const { bound } = await start(t, {
      handler: async (req) => {
        running++;
        most = Math.max(most, running);
        const n = Number(req['instance']);
        // The first requests are the slowest; some answer synchronously-fast.
        if (n % 3 !== 0) await sleep((20 - n) * 3);
        running--;
        return `OK ${n}`;
      },
    });
    const client = await RawClient.connect(bound);
    client.send(
      Array.from({ length: 20 }, (_, n) => request({ ...RCPT, instance: String(n) })).join(''),
    );
    for (let n = 0; n < 20; n++) assert.equal(await client.reply(), `OK ${n}`);
    assert.equal(most, 1, 'one request at a time per connection');
    await client.close();
  });

  test('pipelined requests to a synchronous handler, split at odd places', async (t) => {
    const { bound } = await start(t, { handler: (req) => `OK ${req['instance']}` });
    const client = await RawClient.connect(bound);
    const bytes = Buffer.from(
      Array.from({ length: 50 }, (_, n) => request({ ...RCPT, instance: String(n) })).join(''),
    );
    for (let at = 0; at < bytes.length; at += 37) {
      client.send(bytes.subarray(at, at + 37));
      await sleep(0);
    }
    for (let n = 0; n < 50; n++) assert.equal(await client.reply(), `OK ${n}`);
    await client.close();
  });

  test('many connections at once, each with its own conversation', async (t) => {
    const limit = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim()) || 1024;
    const count = Math.min(500, Math.floor((limit - 256) / 2));
    const { bound, server } = await start(t, {
      handler: async (req, info) => {
        await sleep(Number(req['instance']) % 5);
        return `OK ${req['client_name']} ${req['instance']} ${info.connectionId}`;
      },
    });
    const clients = await Promise.all(
      Array.from({ length: count }, () => RawClient.connect(bound)),
    );
    await until(() => server.connections === count, 'all connections accepted');
    const ids = await Promise.all(
      clients.map(async (client, c) => {
        let id = '';
        for (let n = 0; n < 5; n++) {
          const action = await client.ask({ ...RCPT, client_name: `c${c}`, instance: String(n) });
          const [ok, name, instance, connectionId] = action.split(' ');
          assert.deepEqual([ok, name, instance], ['OK', `c${c}`, String(n)]);
          if (n > 0) assert.equal(connectionId, id);
          id = connectionId!;
        }
        return id;
      }),
    );
    assert.equal(new Set(ids).size, count, 'every connection has its own id');
    assert.equal(server.stats.requests, count * 5);
    await Promise.all(clients.map((c) => c.close()));
    await until(() => server.connections === 0, 'all connections gone');
  });

  describe('bad input closes only its connection, with one log line and no reply', () => {
    const cases: Array<[string, string | Buffer, string]> = [
      ['NUL bytes', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00, 0x0a, 0x0a]), 'binary'],
      ['a control character', 'sender=a\x1bb\n\n', 'binary'],
      ['a line over 8192 bytes', `sender=${'x'.repeat(8190)}\n\n`, 'line-too-long'],
      ['an endless line', 'x'.repeat(20000), 'line-too-long'],
      [
        'a request over 65536 bytes',
        Array.from({ length: 9 }, (_, i) => `a${i}=${'y'.repeat(8000)}\n`).join('') + '\n',
        'request-too-large',
      ],
      ['a line without "="', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'bad-line'],
    ];
    for (const [what, bytes, code] of cases) {
      test(what, async (t) => {
        const { bound, logger, server } = await start(t, { handler: () => 'DUNNO' });
        const good = await RawClient.connect(bound);
        const bad = await RawClient.connect(bound);
        // A request before the junk is still answered.
        bad.send(request(RCPT));
        bad.send(bytes);
        bad.send(request(RCPT));
        assert.equal(await bad.reply(), 'DUNNO');
        assert.equal(await bad.serverEnded(), '', 'nothing after the junk is answered');
        await bad.closed;
        const problems = logger.problems();
        assert.equal(problems.length, 1, JSON.stringify(logger.lines));
        assert.equal(problems[0]!.level, 'warn');
        assert.equal(problems[0]!.message, 'policy protocol error');
        assert.equal(problems[0]!.fields['code'], code);
        assert.doesNotMatch(String(problems[0]!.fields['reason']), /[\x00-\x1f]/);
        assert.equal(server.stats.protocolErrors, 1);
        assert.equal(await good.ask(RCPT), 'DUNNO');
        await good.close();
      });
    }
  });

  test('a hostile line is logged escaped', async (t) => {
    const { bound, logger } = await start(t, { handler: () => 'DUNNO' });
    const client = await RawClient.connect(bound);
    client.send('fake\tlog\u00e9 line\\\n\n');
    await client.serverEnded();
    const [line] = logger.problems();
    assert.equal(line!.fields['code'], 'bad-line');
    assert.match(String(line!.fields['reason']), /fake\\x09log\\xc3\\xa9 line\\\\$/);
  });

  test('a handler that throws: the error action, one log line with the stack', async (t) => {
    const { bound, logger, server } = await start(t, {
      handler: (req) => {
        if (req['sender'] === 'boom@x.example') throw new Error('store is down');
        return 'DUNNO';
      },
    });
    const client = await RawClient.connect(bound);
    assert.equal(await client.ask({ ...RCPT, sender: 'boom@x.example' }), DEFAULT_ERROR_ACTION);
    assert.equal(await client.ask(RCPT), 'DUNNO', 'the connection goes on');
    const problems = logger.problems();
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.level, 'error');
    const err = problems[0]!.fields['err'] as Error;
    assert.equal(err.message, 'store is down');
    assert.match(err.stack ?? '', /server\.test\.ts/);
    assert.equal(server.stats.handlerFailures, 1);
    await client.close();
  });

  test('an async handler that rejects, even with a non-error', async (t) => {
    const { bound, logger } = await start(t, {
      handler: async (req) => {
        await sleep(1);
        if (req['sender'] === 'string@x.example') throw 'just a string';
        throw new TypeError('bad data');
      },
      errorAction: '451 4.3.0 try again later',
    });
    const client = await RawClient.connect(bound);
    assert.equal(await client.ask(RCPT), '451 4.3.0 try again later');
    assert.equal(
      await client.ask({ ...RCPT, sender: 'string@x.example' }),
      '451 4.3.0 try again later',
    );
    const errors = logger.problems().map((l) => (l.fields['err'] as Error).message);
    assert.deepEqual(errors, ['bad data', 'non-error thrown: just a string']);
    // A stable tag; the answer is a field, so that another error action keeps the tag.
    for (const line of logger.problems()) {
      assert.equal(line.message, 'policy handler failed');
      assert.equal(line.fields['answered'], '451 4.3.0 try again later');
    }
    await client.close();
  });

  test('a handler that hangs: the error action after handlerTimeoutMs, one log line', async (t) => {
    const never = deferred<string>();
    const { bound, logger } = await start(t, {
      handler: (req) => (req['sender'] === 'hang@x.example' ? never.promise : 'DUNNO'),
      handlerTimeoutMs: 50,
    });
    const client = await RawClient.connect(bound);
    client.send(request({ ...RCPT, sender: 'hang@x.example' }) + request(RCPT));
    assert.equal(await client.reply(), DEFAULT_ERROR_ACTION);
    assert.equal(await client.reply(), 'DUNNO', 'the request behind it goes on');
    // A late answer is dropped, not sent as a reply to something else.
    never.resolve('OK late');
    await sleep(20);
    assert.equal(await client.ask(RCPT), 'DUNNO');
    const problems = logger.problems();
    assert.equal(problems.length, 1);
    assert.match((problems[0]!.fields['err'] as Error).message, /did not answer within 50 ms/);
    assert.equal(problems[0]!.message, 'policy handler timed out');
    assert.equal(problems[0]!.fields['answered'], DEFAULT_ERROR_ACTION);
    await client.close();
  });

  test('an invalid action is replaced by the error action and logged', async (t) => {
    const actions: unknown[] = [
      'DUNNO\n\naction=OK',
      'REJECT a\r\nb',
      '',
      undefined,
      `REJECT ${'x'.repeat(5000)}`,
      'PREPEND X-Bad: \0',
    ];
    let next = 0;
    const { bound, logger } = await start(t, {
      handler: () => (next < actions.length ? (actions[next++] as string) : 'DUNNO'),
    });
    const client = await RawClient.connect(bound);
    for (let i = 0; i < actions.length; i++) {
      assert.equal(await client.ask(RCPT), DEFAULT_ERROR_ACTION, String(actions[i]));
    }
    assert.equal(await client.ask(RCPT), 'DUNNO', 'no smuggled reply is in the way');
    assert.equal(client.pending, '');
    const problems = logger.problems();
    assert.equal(problems.length, actions.length);
    for (const line of problems) {
      assert.equal(line.level, 'error');
      assert.equal(line.message, 'policy handler returned an invalid action');
      assert.equal(line.fields['answered'], DEFAULT_ERROR_ACTION);
      assert.doesNotMatch(String(line.fields['action']), /[\x00-\x1f]/);
    }
    await client.close();
  });

  test('options are checked when the server is made', () => {
    const handler = () => 'DUNNO';
    assert.throws(() => createPolicyServer({ handler, errorAction: 'DEFER\r\nx' }), RangeError);
    assert.throws(() => createPolicyServer({ handler, idleTimeoutMs: 0 }), RangeError);
    assert.throws(() => createPolicyServer({ handler, maxLineBytes: -1 }), RangeError);
    assert.throws(
      () => createPolicyServer({ handler, mode: 'sendmail' as 'postfix' }),
      /mode must be/,
    );
    assert.throws(() => createPolicyServer({ handler: 'DUNNO' as never }), TypeError);
  });

  test('limits are configurable', async (t) => {
    const { bound, logger } = await start(t, { handler: () => 'DUNNO', maxLineBytes: 20 });
    const client = await RawClient.connect(bound);
    assert.equal(await client.ask({ sender: 'x'.repeat(13) }), 'DUNNO');
    client.send(request({ sender: 'x'.repeat(14) }));
    await client.serverEnded();
    assert.equal(logger.problems()[0]!.fields['code'], 'line-too-long');
  });

  test('the peer ending its side after a request still gets the reply', async (t) => {
    const { bound } = await start(t, {
      handler: async () => {
        await sleep(20);
        return 'DUNNO';
      },
    });
    const client = await RawClient.connect(bound);
    client.socket.end(request(RCPT));
    assert.equal(await client.reply(), 'DUNNO');
    await client.closed;
  });

  test('postfix mode: a request cut short by EOF gets no reply', async (t) => {
    const { bound, logger } = await start(t, { handler: () => 'DUNNO' });
    const client = await RawClient.connect(bound);
    client.socket.end('request=smtpd_access_policy\nsender=a@b.example\n');
    assert.equal(await client.serverEnded(), '');
    assert.deepEqual(logger.problems(), []);
  });

  test('a connection idle longer than idleTimeoutMs is closed; a busy one is not', async (t) => {
    const { bound, logger } = await start(t, {
      handler: async (req) => {
        if (req['sender'] === 'slow@x.example') await sleep(300);
        return 'DUNNO';
      },
      idleTimeoutMs: 100,
    });
    const busy = await RawClient.connect(bound);
    const idle = await RawClient.connect(bound);
    assert.equal(await idle.ask(RCPT), 'DUNNO');
    assert.equal(await busy.ask({ ...RCPT, sender: 'slow@x.example' }), 'DUNNO');
    assert.equal(await idle.serverEnded(), '');
    await idle.closed;
    assert.ok(logger.lines.some((l) => l.level === 'info' && /idle/.test(l.message)));
    assert.deepEqual(logger.problems(), []);
    await busy.closed;
  });

  test('backpressure: a peer that does not read stops the server reading, nothing is lost', async (t) => {
    const padding = 'p'.repeat(3000);
    const { bound, server } = await start(t, { handler: (req) => `OK ${req['n']} ${padding}` });
    const client = await RawClient.connect(bound);
    client.socket.pause();
    // 20 MB of requests and 60 MB of replies: more than socket buffers hold either way.
    const total = 20000;
    const filler = 'f'.repeat(1000);
    let sent = 0;
    const batch = () => {
      while (sent < total) {
        const ok = client.socket.write(request({ n: String(sent++), filler }));
        if (!ok) return client.socket.once('drain', batch);
      }
    };
    batch();
    let before = -1;
    await until(() => {
      const now = server.stats.requests;
      const stalled = now === before;
      before = now;
      return stalled;
    }, 'the server to stop answering');
    await sleep(100);
    const stalledAt = server.stats.requests;
    assert.ok(stalledAt < total, `the server answered ${stalledAt} of ${total} without being read`);
    // The server stopped reading too, or our writes would all have gone out.
    assert.ok(
      sent < total || client.socket.writableLength > 0,
      'the server kept reading requests it could not answer',
    );
    client.socket.resume();
    for (let n = 0; n < total; n++) {
      const action = await client.reply();
      assert.equal(action, `OK ${n} ${padding}`);
    }
    assert.equal(server.stats.requests, total);
    await client.close();
  });
});

describe('policy server on a unix socket, and several listeners', { timeout: 20_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailgate-policyd-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a unix socket with a mode; the peer is "unix"', async (t) => {
    const logger = captureLogger();
    let peer = '';
    const server = createPolicyServer({
      handler: (_req, info) => {
        peer = info.peer;
        return 'DUNNO';
      },
      logger,
      socketMode: 0o660,
    });
    t.after(() => server.close(500));
    const bound = await server.listen(`unix:${join(dir, 'policy.sock')}`);
    assert.equal(bound.kind, 'unix');
    assert.equal((await stat(join(dir, 'policy.sock'))).mode & 0o777, 0o660);
    const client = await RawClient.connect(bound);
    assert.equal(await client.ask(RCPT), 'DUNNO');
    assert.equal(peer, 'unix');
    await client.close();
  });

  test('listen() on several specs at once; all answer, addresses lists them', async (t) => {
    const server = createPolicyServer({ handler: () => 'DUNNO', logger: captureLogger() });
    t.after(() => server.close(500));
    const specs = ['inet:0@127.0.0.1', `unix:${join(dir, 'several.sock')}`];
    const bound = await server.listen(specs);
    assert.equal(bound.length, 2);
    assert.deepEqual(
      server.addresses,
      bound.map((b) => b.spec),
    );
    for (const b of bound) {
      const client = await RawClient.connect(b);
      assert.equal(await client.ask(RCPT), 'DUNNO');
      await client.close();
    }
  });

  test('listen() on several specs is all or nothing', async (t) => {
    const server = createPolicyServer({ handler: () => 'DUNNO', logger: captureLogger() });
    t.after(() => server.close(500));
    const first = `unix:${join(dir, 'first.sock')}`;
    await assert.rejects(server.listen([first, `unix:${join(dir, 'no-such-dir', 'x.sock')}`]));
    assert.deepEqual(server.addresses, []);
    assert.equal(
      await canConnect({ kind: 'unix', path: join(dir, 'first.sock'), spec: first }),
      false,
    );
  });
});

describe('exim mode', { timeout: 20_000 }, () => {
  test('closes after each reply', async (t) => {
    const { bound, server } = await start(t, { handler: () => 'DUNNO', mode: 'exim' });
    assert.equal(server.mode, 'exim');
    const client = await RawClient.connect(bound);
    client.send(request(RCPT) + request(RCPT));
    assert.equal(await client.reply(), 'DUNNO');
    assert.equal(await client.serverEnded(), '', 'one reply per connection');
    await client.closed;
  });

  for (const [what, text] of [
    ['a request ended by EOF', 'request=smtpd_access_policy\nsender=a@b.example\n'],
    ['without its last line end', 'request=smtpd_access_policy\nsender=a@b.example'],
    ['with CRLF', 'request=smtpd_access_policy\r\nsender=a@b.example\r\n'],
  ] as const) {
    test(`answers ${what}`, async (t) => {
      const { bound } = await start(t, {
        handler: async (req) => {
          await sleep(5);
          return `OK ${req['sender']}`;
        },
        mode: 'exim',
      });
      const client = await RawClient.connect(bound);
      client.socket.end(text);
      assert.equal(await client.reply(), 'OK a@b.example');
      assert.equal(await client.serverEnded(), '');
    });
  }

  test('EOF without any request: closed without a reply or a log line', async (t) => {
    const { bound, logger } = await start(t, { handler: () => 'DUNNO', mode: 'exim' });
    const client = await RawClient.connect(bound);
    client.socket.end();
    assert.equal(await client.serverEnded(), '');
    assert.deepEqual(logger.problems(), []);
  });
});

describe('graceful close and reloads', { timeout: 20_000 }, () => {
  test('close() stops listening, answers the request in flight, then ends connections', async (t) => {
    const gate = deferred<string>();
    const entered = deferred<void>();
    const { bound, server, logger } = await start(t, {
      handler: (req) => {
        if (req['sender'] !== 'slow@x.example') return 'DUNNO';
        entered.resolve();
        return gate.promise;
      },
    });
    const busy = await RawClient.connect(bound);
    const idle = await RawClient.connect(bound);
    assert.equal(await idle.ask(RCPT), 'DUNNO');
    busy.send(request({ ...RCPT, sender: 'slow@x.example' }));
    await entered.promise;
    let closed = false;
    const closing = server.close(5000).then(() => {
      closed = true;
    });
    assert.equal(await idle.serverEnded(), '', 'an idle connection is ended at once');
    await until(async () => !(await canConnect(bound)), 'the listener to stop');
    assert.equal(await canConnect(bound), false);
    assert.equal(closed, false, 'close waits for the request in flight');
    assert.equal(busy.ended, false);
    gate.resolve('DEFER_IF_PERMIT 4.7.1 later');
    assert.equal(await busy.reply(), 'DEFER_IF_PERMIT 4.7.1 later');
    assert.equal(await busy.serverEnded(), '');
    await closing;
    assert.equal(server.connections, 0);
    assert.deepEqual(logger.problems(), []);
    await assert.rejects(server.listen('inet:0@127.0.0.1'), /after close/);
  });

  test('close(deadline) destroys what has not finished by then', async (t) => {
    const { bound, server } = await start(t, {
      handler: () => new Promise<string>(() => {}),
      handlerTimeoutMs: 60_000,
    });
    const client = await RawClient.connect(bound);
    client.send(request(RCPT));
    await until(() => server.stats.requests === 1, 'the request to arrive');
    await server.close(50);
    await client.closed;
    assert.equal(client.pending, '');
    assert.equal(server.connections, 0);
  });

  test('reconfigure changes the error action and handler timeout for the next requests', async (t) => {
    const never = deferred<string>();
    const { bound, server, logger } = await start(t, {
      handler: () => never.promise,
      handlerTimeoutMs: 60_000,
    });
    const client = await RawClient.connect(bound);
    server.reconfigure({ handlerTimeoutMs: 30, errorAction: '451 4.3.0 reloaded' });
    assert.equal(await client.ask(RCPT), '451 4.3.0 reloaded');
    // A bad value changes nothing, not even the good values given with it.
    assert.throws(
      () => server.reconfigure({ handlerTimeoutMs: 40, errorAction: 'DUNNO\r\nx' }),
      RangeError,
    );
    assert.throws(() => server.reconfigure({ idleTimeoutMs: 2 ** 31 }), RangeError);
    assert.equal(await client.ask(RCPT), '451 4.3.0 reloaded');
    assert.match(
      (logger.problems()[1]!.fields['err'] as Error).message,
      /did not answer within 30 ms/,
    );
    assert.equal(client.ended, false);
    await client.close();
  });

  test('setHandler swaps the handler without dropping connections', async (t) => {
    const gate = deferred<string>();
    const { bound, server } = await start(t, {
      handler: (req) => (req['sender'] === 'slow@x.example' ? gate.promise : 'DUNNO old'),
    });
    const client = await RawClient.connect(bound);
    const other = await RawClient.connect(bound);
    assert.equal(await client.ask(RCPT), 'DUNNO old');
    other.send(request({ ...RCPT, sender: 'slow@x.example' }));
    await until(() => server.stats.requests === 2, 'the slow request to be in flight');
    server.setHandler(() => 'DUNNO new');
    assert.equal(await client.ask(RCPT), 'DUNNO new');
    gate.resolve('DUNNO old, in flight');
    assert.equal(await other.reply(), 'DUNNO old, in flight');
    assert.equal(await other.ask(RCPT), 'DUNNO new');
    assert.equal(client.ended || other.ended, false);
    assert.equal(server.stats.accepted, 2);
    assert.throws(() => server.setHandler(undefined as never), TypeError);
    await client.close();
    await other.close();
  });
});
