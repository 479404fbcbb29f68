/**
 * The HTTP door over a real SQLite store and a real prom-client registry: routes and methods,
 * the token, /healthz with a working, a closed and a hanging source, and the status page's
 * escaping, search, paging, chart and error boxes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import {
  admit,
  bearerToken,
  checkStore,
  createHttpServer,
  FAILURE_LINES_PER_MINUTE,
  type HttpServerOptions,
  MAX_URL_LENGTH,
  PAGE_SIZE,
  tokenMatches,
  uptime,
} from '../../src/http/index.js';
import type { BoundAddress } from '../../src/listen/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import {
  decision,
  decisionIds,
  keptLogger,
  request,
  sourceOver,
  unescapeAttribute,
} from './helpers.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 30);
const TOKEN = 'status-token-0123456789';
const HOSTILE_HELO = '<script>alert("helo")</script>';
const HOSTILE_SENDER = `"><img src=x onerror=alert(1)>@evil.example`;
const HOSTILE_NAME = `a'b&c\u202Eexe.txt`;
const HOSTILE_TAG = '<b>bold</b>\r\nX-Injected: 1';
/** Lines logged within the chart's window (the last three hours). */
const BULK = 120;
const IN_WINDOW = BULK + 4;

let dir: string;
let store: Store;
let registry: Registry;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailgate-http-'));
  store = await openStore(`sqlite:${join(dir, 'status.db')}`);
  // Written together, so that the store commits them in one transaction rather than 120.
  const bulk: Promise<void>[] = [];
  for (let i = 0; i < BULK; i++) {
    bulk.push(
      store.logDecision(
        decision({
          time: NOW - 60_000 - i * 25_000,
          client: `198.51.100.${i % 200}`,
          sender: `bulk${i}@example.org`,
          action: i % 3 === 0 ? 'greylist' : 'pass',
          reason: i % 3 === 0 ? 'score' : 'known',
        }),
      ),
    );
  }
  await Promise.all(bulk);
  await store.logDecision(
    decision({
      time: NOW - 40_000,
      client: '203.0.113.9',
      clientName: HOSTILE_NAME,
      helo: HOSTILE_HELO,
      sender: HOSTILE_SENDER,
      action: 'reject',
      reason: 'numeric-helo',
      stage: 'helo',
      tags: ['REJECT', HOSTILE_TAG],
    }),
  );
  await store.logDecision(
    decision({
      time: NOW - 30_000,
      client: '192.0.2.77',
      clientName: 'mail.example.com',
      helo: 'mail.example.com',
      sender: 'alice@example.com',
      recipient: 'bob@example.net',
      action: 'reject',
      reason: 'spf-fail',
      stage: 'rcpt',
      tags: ['REJECT', 'SPF fail'],
    }),
  );
  for (const [n, time] of [NOW - 20_000, NOW - 10_000].entries()) {
    await store.logDecision(
      decision({
        time,
        client: `192.0.2.${10 + n}`,
        sender: `tempfailed${n}@example.org`,
        action: 'tempfail',
        reason: 'dns-timeout',
        tags: ['TEMPFAIL', 'SPF temperror'],
      }),
    );
  }
  // Outside the chart's window, still in the log.
  await store.logDecision(decision({ time: NOW - 5 * 3_600_000, sender: 'old@example.org' }));

  const key = (n: number) => ({
    client: `198.51.100.${n}`,
    sender: 's@example.org',
    recipient: 'r@example.net',
  });
  await store.firstAttempt(key(1), 'greylisted', NOW - 100_000);
  await store.firstAttempt(key(2), 'greylisted', NOW - 100_000);
  await store.firstAttempt(key(3), 'passed', NOW - 100_000);
  await store.countClient('198.51.100.3', NOW - 50_000, NOW - 60_000);

  registry = new Registry();
  const counter = new Counter({
    name: 'mailgate_test_decisions_total',
    help: 'Decisions made in this test',
    labelNames: ['verdict'],
    registers: [registry],
  });
  counter.inc({ verdict: 'reject' }, 3);
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** A server on an ephemeral loopback port over the shared store, closed after the test. */
async function start(
  t: { after(fn: () => unknown): void },
  options: Partial<HttpServerOptions> = {},
): Promise<
  { bound: BoundAddress; log: ReturnType<typeof keptLogger> } & {
    server: ReturnType<typeof createHttpServer>;
  }
> {
  const log = keptLogger();
  const server = createHttpServer({
    source: sourceOver(store, { startedAt: NOW - 3_723_000 }),
    registry,
    logger: log.logger,
    clock: () => NOW,
    ...options,
  });
  const [bound] = await server.listen(['inet:0@127.0.0.1']);
  t.after(() => server.close(500));
  return { server, bound: bound!, log };
}

function failures(log: ReturnType<typeof keptLogger>): Record<string, unknown>[] {
  return log.records().filter((r) => r['msg'] === 'http-request-failed');
}

describe('routes', () => {
  test('/metrics serves the registry in its content type', async (t) => {
    const { bound } = await start(t);
    const res = await request(bound, '/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], registry.contentType);
    assert.match(res.body, /^# HELP mailgate_test_decisions_total Decisions made in this test$/m);
    assert.match(res.body, /^mailgate_test_decisions_total\{verdict="reject"\} 3$/m);
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  test('/metrics is not found without a registry', async (t) => {
    const { bound, log } = await start(t, { registry: undefined });
    const res = await request(bound, '/metrics');
    assert.equal(res.status, 404);
    assert.deepEqual(failures(log), [], '404 is not logged');
  });

  test('only GET and HEAD are answered; other methods get 405 with Allow', async (t) => {
    const { bound, log } = await start(t);
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await request(bound, '/', { method, body: 'x'.repeat(100_000) });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers['allow'], 'GET, HEAD');
      assert.equal(res.headers['connection'], 'close', 'an unread body ends the connection');
    }
    const logged = failures(log);
    assert.equal(logged.length, 4);
    assert.deepEqual(
      logged.map((r) => [r['status'], r['method'], r['path']]),
      [
        [405, 'POST', '/'],
        [405, 'PUT', '/'],
        [405, 'DELETE', '/'],
        [405, 'OPTIONS', '/'],
      ],
    );
  });

  test('HEAD answers the headers of GET without a body', async (t) => {
    const { bound } = await start(t);
    const get = await request(bound, '/');
    const head = await request(bound, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    assert.equal(head.headers['content-length'], get.headers['content-length']);
  });

  test('unknown paths are 404 and not logged; an overlong URL is 414 and logged', async (t) => {
    const { bound, log } = await start(t);
    for (const path of ['/nope', '/metrics/', '//', '/index.html']) {
      assert.equal((await request(bound, path)).status, 404, path);
    }
    assert.deepEqual(failures(log), []);
    const long = await request(bound, `/?q=${'a'.repeat(MAX_URL_LENGTH)}`);
    assert.equal(long.status, 414);
    assert.equal(failures(log).length, 1);
    assert.equal(failures(log)[0]!['status'], 414);
  });

  test('a bad paging parameter is 400', async (t) => {
    const { bound } = await start(t);
    for (const before of ['abc', '-1', '0', '1e9', '99999999999999999999']) {
      assert.equal((await request(bound, `/?before=${before}`)).status, 400, before);
    }
  });

  test('refused requests: a line each up to the budget of a minute, then one line for the rest', async (t) => {
    const log = keptLogger();
    let now = 1_800_000_000_000;
    const server = createHttpServer({
      source: sourceOver(store),
      logger: log.logger,
      clock: () => now,
    });
    const [bound] = await server.listen(['inet:0@127.0.0.1']);
    t.after(() => server.close(100));
    const refused = () => request(bound!, '/', { method: 'POST' });
    for (let n = 0; n < FAILURE_LINES_PER_MINUTE + 5; n++)
      assert.equal((await refused()).status, 405);
    const failed = () => log.records().filter((r) => r['msg'] === 'http-request-failed');
    assert.equal(failed().length, FAILURE_LINES_PER_MINUTE);
    assert.equal(
      log.records().filter((r) => r['msg'] === 'http-request-failures-unlogged').length,
      0,
    );
    now += 60_000;
    await refused();
    const unlogged = log.records().filter((r) => r['msg'] === 'http-request-failures-unlogged');
    assert.deepEqual(
      unlogged.map((r) => r['suppressed']),
      [5],
    );
    assert.equal(failed().length, FAILURE_LINES_PER_MINUTE + 1);
  });

  test('listens on a unix socket, and close() stops it', async (t) => {
    const log = keptLogger();
    const server = createHttpServer({ source: sourceOver(store), logger: log.logger });
    const path = join(dir, 'http.sock');
    const [bound] = await server.listen([`unix:${path}`]);
    t.after(() => server.close(100));
    assert.equal(bound!.spec, `unix:${path}`);
    assert.deepEqual(server.addresses, [`unix:${path}`]);
    assert.equal((await request(bound!, '/healthz')).status, 200);
    assert.ok((await stat(path)).isSocket());
    await server.close(1000);
    await assert.rejects(request(bound!, '/healthz'));
    await assert.rejects(server.listen(['inet:0@127.0.0.1']), /after close/);
  });

  test('close() lets a request in flight finish, and drops it at the deadline', async () => {
    let release: (() => void) | undefined;
    const slow = sourceOver(store, {
      health: () =>
        new Promise((resolve) => {
          release = () => resolve({ ok: true, checks: [{ name: 'slow', ok: true }] });
        }),
    });
    const log = keptLogger();
    const server = createHttpServer({ source: slow, logger: log.logger, healthTimeoutMs: 60_000 });
    const [bound] = await server.listen(['inet:0@127.0.0.1']);
    const answer = request(bound!, '/healthz');
    while (release === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(server.connections(bound!.spec), 1);
    const closed = server.close(5000);
    release();
    const res = await answer;
    assert.equal(res.status, 200);
    assert.equal(res.headers['connection'], 'close');
    await closed;
    assert.equal(server.connections(bound!.spec), 0);

    const hanging = createHttpServer({
      source: sourceOver(store, { health: () => new Promise(() => {}) }),
      logger: log.logger,
      healthTimeoutMs: 60_000,
    });
    const [held] = await hanging.listen(['inet:0@127.0.0.1']);
    const dropped = request(held!, '/healthz').then(
      (res) => res.status,
      (err: Error) => err.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await hanging.close(200);
    assert.ok(Date.now() - started < 2000, 'close() keeps to its deadline');
    assert.match(String(await dropped), /socket hang up|ECONNRESET/);
  });

  test('malformed requests and oversized headers are refused and logged', async (t) => {
    const { bound, log } = await start(t);
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        assert.ok(bound.kind !== 'unix');
        const socket = connect(bound.port, bound.host);
        let answer = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          answer += chunk;
        });
        socket.on('end', () => resolve(answer));
        socket.on('error', reject);
        socket.write(text);
      });
    assert.match(
      await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431 /,
    );
    assert.match(await raw('NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.deepEqual(
      failures(log).map((r) => r['status']),
      [431, 400],
    );
  });

  test('when one listen spec fails, the ones bound in the same call are closed again', async (t) => {
    const { bound: busy } = await start(t);
    const log = keptLogger();
    const server = createHttpServer({ source: sourceOver(store), logger: log.logger });
    t.after(() => server.close(100));
    await assert.rejects(server.listen(['inet:0@127.0.0.1', busy.spec]), /EADDRINUSE/);
    assert.deepEqual(server.addresses, []);
  });
});

describe('health', () => {
  test('/healthz is 200 with every check when the store answers', async (t) => {
    const { bound } = await start(t);
    const res = await request(bound, '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    const lines = res.body.split('\n');
    assert.equal(lines[0], 'ok');
    assert.match(lines[1]!, /^store ok: sqlite:.*status\.db$/);
    assert.equal(lines[2], 'listen:policy ok');
  });

  test('/healthz is 503 with the failing check when the store is closed', async (t) => {
    const closed = await openStore(`sqlite:${join(dir, 'closed.db')}`);
    await closed.close();
    const { bound, log } = await start(t, { source: sourceOver(closed) });
    const res = await request(bound, '/healthz');
    assert.equal(res.status, 503);
    const lines = res.body.trimEnd().split('\n');
    assert.equal(lines[0], 'failed');
    assert.equal(lines.length, 2, 'only the failing check is listed');
    assert.match(lines[1]!, /^store failed: .+/);
    assert.equal(failures(log).length, 1);
    assert.equal(failures(log)[0]!['status'], 503);
  });

  test('/healthz answers 503 in bounded time when the source never answers', async (t) => {
    const hanging = sourceOver(store, { health: () => new Promise(() => {}) });
    const { bound } = await start(t, { source: hanging, healthTimeoutMs: 300 });
    const started = Date.now();
    const res = await request(bound, '/healthz');
    const took = Date.now() - started;
    assert.equal(res.status, 503);
    assert.match(
      res.body,
      /^failed\nhealth failed: the health check did not answer within 300 ms\n$/,
    );
    assert.ok(took < 2000, `took ${took} ms`);
  });

  test('checkStore counts a ping that does not answer in time as failed', async () => {
    const started = Date.now();
    const check = await checkStore({ ping: () => new Promise<void>(() => {}) }, 200);
    assert.equal(check.ok, false);
    assert.match(check.detail!, /did not answer within 200 ms/);
    assert.ok(Date.now() - started < 1500);
    assert.deepEqual(await checkStore(store), {
      name: 'store',
      ok: true,
      detail: store.description,
    });
  });

  test('a health check that throws is a 503, not a 500', async (t) => {
    const throwing = sourceOver(store, {
      health: () => {
        throw new Error('listener state\r\nunknown');
      },
    });
    const { bound } = await start(t, { source: throwing });
    const res = await request(bound, '/healthz');
    assert.equal(res.status, 503);
    assert.equal(res.body, 'failed\nhealth failed: listener state??unknown\n');
  });
});

describe('token', () => {
  test('every route but /healthz needs it, by header or by query', async (t) => {
    const { bound, log } = await start(t, { token: TOKEN });
    for (const path of ['/', '/metrics', '/nope', '/?q=alice']) {
      const res = await request(bound, path);
      assert.equal(res.status, 401, path);
      assert.match(String(res.headers['www-authenticate']), /^Bearer\b/);
    }
    assert.equal((await request(bound, '/healthz')).status, 200);
    const byHeader = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await request(bound, '/', { headers: byHeader })).status, 200);
    assert.equal((await request(bound, '/metrics', { headers: byHeader })).status, 200);
    assert.equal((await request(bound, '/nope', { headers: byHeader })).status, 404);
    assert.equal((await request(bound, `/?token=${TOKEN}`)).status, 200);
    assert.equal((await request(bound, `/metrics?token=${TOKEN}`)).status, 200);
    // A wrong token in one place does not spoil a right one in the other.
    assert.equal(
      (await request(bound, '/?token=wrong', { headers: byHeader })).status,
      200,
      'right header, wrong query',
    );
    assert.equal(failures(log).length, 4);
  });

  test('a wrong token is refused and never logged', async (t) => {
    const { bound, log } = await start(t, { token: TOKEN });
    const wrong = 'wrong-token-abcdefghijkl';
    const attempts: { path: string; headers: Record<string, string> }[] = [
      { path: '/', headers: { authorization: `Bearer ${wrong}` } },
      { path: `/?token=${wrong}`, headers: {} },
      { path: `/?token=${TOKEN.slice(0, -1)}`, headers: {} },
      {
        path: '/',
        headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` },
      },
      { path: `/metrics?token=${TOKEN}x`, headers: {} },
    ];
    for (const init of attempts) {
      const res = await request(bound, init.path, { headers: init.headers });
      assert.equal(res.status, 401, init.path);
    }
    // A right one too: neither is ever written.
    await request(bound, `/nope?token=${TOKEN}`);
    await request(bound, '/', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    const text = log.lines.join('\n');
    assert.equal(failures(log).length, 6);
    assert.ok(!text.includes(wrong), 'the wrong token is not logged');
    assert.ok(!text.includes(TOKEN.slice(0, -1)), 'the token is not logged');
    assert.ok(!text.includes('token='), 'no query is logged');
  });

  test('links and the search form carry the token when it came in the query', async (t) => {
    const { bound } = await start(t, { token: TOKEN });
    const byQuery = await request(bound, `/?token=${TOKEN}`);
    assert.match(byQuery.body, new RegExp(`<input type="hidden" name="token" value="${TOKEN}">`));
    const older = /<a id="older" href="([^"]+)"/.exec(byQuery.body);
    assert.ok(older, 'an older link');
    const link = new URLSearchParams(unescapeAttribute(older[1]!).slice(1));
    assert.equal(link.get('token'), TOKEN);
    const followed = await request(bound, `/${unescapeAttribute(older[1]!)}`);
    assert.equal(followed.status, 200);

    const byHeader = await request(bound, '/', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(byHeader.status, 200);
    assert.ok(!byHeader.body.includes(TOKEN), 'a token sent as a header stays out of the page');
    assert.ok(!byHeader.body.includes('name="token"'));
  });

  test('setToken changes what is asked for, and undefined opens the door', async (t) => {
    const { server, bound } = await start(t);
    assert.equal((await request(bound, '/')).status, 200);
    server.setToken(TOKEN);
    assert.equal((await request(bound, '/')).status, 401);
    assert.equal((await request(bound, `/?token=${TOKEN}`)).status, 200);
    server.setToken('another-token-9876543210');
    assert.equal((await request(bound, `/?token=${TOKEN}`)).status, 401);
    server.setToken(undefined);
    assert.equal((await request(bound, '/')).status, 200);
    assert.throws(() => server.setToken(''), RangeError);
  });

  test('bearerToken, tokenMatches and admit', () => {
    assert.equal(bearerToken(`Bearer ${TOKEN}`), TOKEN);
    assert.equal(bearerToken(`bearer  ${TOKEN} `), TOKEN);
    assert.equal(bearerToken(`Bearer ${TOKEN} extra`), undefined);
    assert.equal(bearerToken('Basic abc'), undefined);
    assert.equal(bearerToken(undefined), undefined);
    assert.equal(tokenMatches(TOKEN, TOKEN), true);
    assert.equal(tokenMatches(TOKEN, `${TOKEN}x`), false);
    assert.equal(tokenMatches(TOKEN, ''), false);
    assert.equal(tokenMatches(TOKEN, undefined), false);
    assert.equal(admit(undefined, undefined, null), 'open');
    assert.equal(admit(TOKEN, `Bearer ${TOKEN}`, null), 'header');
    assert.equal(admit(TOKEN, undefined, TOKEN), 'query');
    assert.equal(admit(TOKEN, 'Bearer nope', 'nope'), undefined);
  });
});

describe('status page', () => {
  test('is HTML under a strict policy, with the daemon facts', async (t) => {
    const { bound } = await start(t);
    const res = await request(bound, '/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /style-src 'unsafe-inline'/);
    assert.doesNotMatch(csp, /script-src/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.doesNotMatch(res.body, /<script/i);
    assert.match(res.body, /<dt>Host name<\/dt><dd>mx1\.example\.net<\/dd>/);
    assert.match(res.body, /<code>\/etc\/mailgate\/mailgate\.toml<\/code>/);
    assert.match(res.body, /<td>policy<\/td><td><code>inet:10027@127\.0\.0\.1<\/code><\/td>/);
    assert.match(res.body, /<span id="uptime">1h 2m<\/span>/);
    assert.match(res.body, /<dt>Version<\/dt><dd>\d+\.\d+\.\d+/);
  });

  test('every hostile value comes out escaped', async (t) => {
    const { bound } = await start(t);
    const res = await request(bound, '/?q=203.0.113.9');
    const body = res.body;
    assert.deepEqual(decisionIds(body).length, 1);
    assert.ok(!body.includes(HOSTILE_HELO), 'the raw HELO is not in the page');
    assert.ok(!body.includes('<img'), 'the raw sender is not in the page');
    assert.ok(!body.includes('<b>bold'), 'the raw tag is not in the page');
    assert.ok(!body.includes('\u202E'), 'no bidirectional override reaches the page');
    assert.ok(body.includes('&lt;script&gt;alert(&quot;helo&quot;)&lt;/script&gt;'));
    assert.ok(body.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@evil.example'));
    assert.ok(body.includes('a&#39;b&amp;c&lt;U+202E&gt;exe.txt'));
    // The store keeps a tag's CR and LF as U+FFFD; the page shows them so.
    assert.ok(body.includes('&lt;b&gt;bold&lt;/b&gt;\uFFFD\uFFFDX-Injected: 1'));
    // A hostile search is escaped where the page repeats it.
    const search = await request(bound, `/?q=${encodeURIComponent('"><script>x</script>')}`);
    assert.ok(!search.body.includes('<script>x'));
    assert.ok(search.body.includes('value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"'));
  });

  test('search finds the lines whose address, sender or recipient holds the text', async (t) => {
    const { bound } = await start(t);
    const all = await store.findDecisions({ limit: 1000 });
    const target = all.find((d) => d.client === '192.0.2.77')!;
    for (const q of ['192.0.2.77', 'ALICE@example', 'bob@example.net', 'mail.example.com']) {
      const res = await request(bound, `/?q=${encodeURIComponent(q)}`);
      assert.equal(res.status, 200);
      assert.deepEqual(decisionIds(res.body), [target.id], q);
      assert.match(res.body, /<span id="log-count">1<\/span>/);
    }
    const tempfailed = await request(bound, '/?q=tempfailed');
    assert.deepEqual(
      decisionIds(tempfailed.body),
      all.filter((d) => d.sender.startsWith('tempfailed')).map((d) => d.id),
    );
    const none = await request(bound, '/?q=nobody.invalid');
    assert.deepEqual(decisionIds(none.body), []);
    assert.match(none.body, /<span id="log-count">0<\/span>/);
    // `%` and `_` are plain characters, not wildcards.
    assert.deepEqual(decisionIds((await request(bound, '/?q=%25')).body), []);
  });

  test('pages through the whole log with the older link, 50 lines at a time', async (t) => {
    const { bound } = await start(t);
    const all = await store.findDecisions({ limit: 1000 });
    assert.equal(all.length, IN_WINDOW + 1);
    const seen: number[] = [];
    let path = '/';
    let pages = 0;
    for (;;) {
      const res = await request(bound, path);
      assert.equal(res.status, 200);
      const ids = decisionIds(res.body);
      assert.ok(ids.length <= PAGE_SIZE);
      seen.push(...ids);
      pages++;
      const older = /<a id="older" href="([^"]+)"/.exec(res.body);
      if (!older) break;
      assert.equal(ids.length, PAGE_SIZE, 'only a full page links to older lines');
      path = `/${unescapeAttribute(older[1]!)}`;
      if (pages > 1) assert.match(res.body, /<a id="newest" href="\?">newest<\/a>/);
    }
    assert.equal(pages, Math.ceil(all.length / PAGE_SIZE));
    assert.deepEqual(
      seen,
      all.map((d) => d.id),
      'every line once, newest first',
    );
  });

  test('paging keeps the search', async (t) => {
    const { bound } = await start(t);
    const matching = (await store.findDecisions({ search: 'bulk', limit: 1000 })).map((d) => d.id);
    assert.equal(matching.length, BULK);
    const seen: number[] = [];
    let path = '/?q=bulk';
    for (let page = 0; page < 10; page++) {
      const res = await request(bound, path);
      seen.push(...decisionIds(res.body));
      const older = /<a id="older" href="([^"]+)"/.exec(res.body);
      if (!older) break;
      const params = new URLSearchParams(unescapeAttribute(older[1]!).slice(1));
      assert.equal(params.get('q'), 'bulk');
      path = `/${unescapeAttribute(older[1]!)}`;
    }
    assert.deepEqual(seen, matching);
  });

  test('charts decisions per minute by verdict over the window', async (t) => {
    const { bound } = await start(t);
    const res = await request(bound, '/');
    const svg = /<svg[^>]*id="decisions-chart"[\s\S]*?<\/svg>/.exec(res.body);
    assert.ok(svg, 'the chart is there');
    const bars = [
      ...svg[0].matchAll(/<rect class="bar" data-series="([^"]+)" data-count="(\d+)"/g),
    ];
    assert.ok(bars.length > 0);
    const total = bars.reduce((sum, m) => sum + Number(m[2]), 0);
    assert.equal(total, IN_WINDOW, 'every line in the window, and the old one left out');
    const series = new Set(bars.map((m) => m[1]));
    assert.deepEqual([...series].sort(), ['greylist', 'pass', 'reject', 'tempfail']);
    const byVerdict = (verdict: string) =>
      bars.filter((m) => m[1] === verdict).reduce((sum, m) => sum + Number(m[2]), 0);
    assert.equal(byVerdict('greylist'), BULK / 3);
    assert.equal(byVerdict('tempfail'), 2);
    assert.match(res.body, /<li data-action="reject">.*?<b>2<\/b><\/li>/);
  });

  test('shows the greylist state and the recent tempfails with their causes', async (t) => {
    const { bound } = await start(t);
    const res = await request(bound, '/');
    assert.match(res.body, /<span id="greylist-waiting">2<\/span>/);
    assert.match(res.body, /<span id="greylist-passed">1<\/span>/);
    assert.match(res.body, /<span id="greylist-whitelisted">1<\/span>/);
    const table = /<table id="tempfails">[\s\S]*?<\/table>/.exec(res.body);
    assert.ok(table);
    const rows = table[0].match(/<tr data-id=/g) ?? [];
    assert.equal(rows.length, 2);
    assert.match(table[0], /dns-timeout/);
    assert.match(table[0], /<span class="tag">SPF temperror<\/span>/);

    const off = await start(t, { source: sourceOver(store, { whitelistAt: () => 0 }) });
    const offPage = await request(off.bound, '/');
    assert.match(offPage.body, /<span id="greylist-whitelisted" class="muted">off<\/span>/);
  });

  test('a failing store shows the page with error boxes, and is logged', async (t) => {
    const closed = await openStore(`sqlite:${join(dir, 'closed-page.db')}`);
    await closed.close();
    const { bound, log } = await start(t, { source: sourceOver(closed) });
    const res = await request(bound, '/?q=alice');
    assert.equal(res.status, 200);
    const boxes = res.body.match(/<div class="error" role="alert">/g) ?? [];
    assert.equal(boxes.length, 4, 'chart, greylist, tempfails and the log');
    assert.match(res.body, /<dt>Host name<\/dt><dd>mx1\.example\.net<\/dd>/);
    assert.doesNotMatch(res.body, /\bat [\w.]+ \(/, 'no stack trace');
    const logged = log.records().filter((r) => r['msg'] === 'status-page-store-failed');
    assert.equal(logged.length, 1);
  });

  test('a store that hangs costs its part of the page, not the page', async (t) => {
    const slow = new Proxy(store, {
      get(target, name, receiver) {
        if (name === 'greylistSummary') return () => new Promise(() => {});
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const { bound } = await start(t, { source: sourceOver(slow), readTimeoutMs: 200 });
    const res = await request(bound, '/');
    assert.equal(res.status, 200);
    assert.match(res.body, /<section id="greylist"><h2>Greylisting<\/h2><div class="error"/);
    assert.match(res.body, /did not answer within 200 ms/);
    assert.equal(decisionIds(res.body).length, PAGE_SIZE);
  });

  test('uptime reads as the two largest units', () => {
    assert.equal(uptime(0), '0s');
    assert.equal(uptime(59_999), '59s');
    assert.equal(uptime(3_723_000), '1h 2m');
    assert.equal(uptime(90_061_000), '1d 1h');
    assert.equal(uptime(86_400_000), '1d');
  });
});
