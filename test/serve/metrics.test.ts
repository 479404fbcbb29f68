/**
 * The HTTP door of a running daemon (`Daemon.start`, the real resolver on the fixture DNS
 * server, a real SQLite file or a real PostgreSQL): every metric family moves after the
 * requests that should move it, scraped from /metrics as Prometheus would; counters survive a
 * reload; /healthz turns 503 when the PostgreSQL server goes away and 200 when it is back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Daemon } from '../../src/serve/index.js';
import { captureLogger, doorPort } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { playMilterSession } from '../support/milter-play.js';
import { policyClient, rcptRequest } from '../support/policy-client.js';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.js';

const ZONE = {
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'mail.pass.test': [{ A: '192.0.2.10' }],
  '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.pass.test' }],
  // A softfail from a domain that takes no mail: the call-back needs no MX to say "rejected".
  'soft.test': [{ TXT: 'v=spf1 ~all' }, { MX: [0, '.'] }],
  'temp.test': ['TIMEOUT'],
  // 192.0.2.66 is on the block list.
  '66.2.0.192.bl.test': [{ A: '127.0.0.2' }],
};

function config(dnsPort: number, store: string, extra = ''): string {
  return `hostname = "mx.mailgate.test"
[log]
level = "info"
[dns]
servers = ["127.0.0.1:${dnsPort}"]
timeout = "300ms"
attempts = 1
[store]
url = "${store}"
[policyd]
listen = ["inet:0@127.0.0.1"]
[milter]
listen = ["inet:0@127.0.0.1"]
[http]
listen = ["inet:0@127.0.0.1"]
[cbv]
per_domain_rate = "1/h"
[greylist]
dnsbl = ["bl.test"]
${extra}`;
}

/** Every sample of the exposition: `name{labels}` → value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/u);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The sum of a family's samples whose labels include every `name="value"` given. */
function total(samples: Map<string, number>, name: string, labels: Record<string, string> = {}) {
  let sum = 0;
  let seen = false;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) continue;
    sum += value;
    seen = true;
  }
  return seen ? sum : undefined;
}

test('every metric family moves after the requests that should move it, and survives a reload', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-metrics-'));
  let dns: FixtureDnsServer | undefined;
  let daemon: Daemon | undefined;
  try {
    dns = await startDnsServer(ZONE);
    const path = join(dir, 'mailgate.toml');
    const text = config(dns.port, `sqlite:${join(dir, 'mailgate.db')}`);
    await writeFile(path, text);
    const { logger } = captureLogger('warn');
    daemon = await Daemon.start({ configPath: path, logger });
    const http = doorPort(daemon, 'http');
    const before = await scrape(http);
    assert.equal(total(before, 'mailgate_decisions_total'), undefined, 'nothing decided yet');
    assert.ok((total(before, 'process_cpu_user_seconds_total') ?? -1) >= 0, 'process metrics');

    const client = await policyClient(doorPort(daemon, 'policyd'));
    const ask = (attributes: Record<string, string>) => client.ask(rcptRequest(attributes));
    // SPF pass, PTR and HELO checked: a clean client, not delayed.
    const first = await ask({
      client_address: '192.0.2.10',
      client_name: 'mail.pass.test',
      helo_name: 'mail.pass.test',
      sender: 'jo@pass.test',
    });
    assert.equal(first, 'DUNNO');
    // On the block list: greylisted.
    const listed = await ask({
      client_address: '192.0.2.66',
      helo_name: 'mail.pass.test',
      sender: 'jo@pass.test',
    });
    assert.match(listed, /^DEFER_IF_PERMIT /u);
    // Softfail: the call-back finds a null MX (rejected), the next one is served from the cache,
    // a second sender of the domain is over its rate.
    for (const sender of ['a@soft.test', 'a@soft.test', 'b@soft.test']) {
      await ask({ client_address: '198.51.100.7', helo_name: 'relay.example', sender });
    }
    // The SPF lookup is never answered: a DNS timeout.
    await ask({
      client_address: '198.51.100.8',
      helo_name: 'relay.example',
      sender: 'x@temp.test',
    });
    // A message through the milter: DKIM, DMARC and ARC at end of message.
    const milterPort = doorPort(daemon, 'milter');
    const played = await playMilterSession(`inet:${milterPort}@127.0.0.1`, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
      recipient: 'bob@rcpt.test',
      headers: [
        ['From', ' <jo@pass.test>'],
        ['Subject', ' hello'],
      ],
    });
    assert.ok(played.eom, 'the message reached end of message');
    // The decision log's line of the delivered message says how SPF judged it (for reports).
    const [delivered] = await daemon.store.findDecisions({ search: 'bob@rcpt.test', limit: 5 });
    assert.equal(delivered?.stage, 'eom');
    assert.ok(delivered?.tags?.includes('SPF pass'), JSON.stringify(delivered));
    assert.equal(await daemon.reload(), true);
    await writeFile(path, `${text}\n[nonsense]\n`);
    assert.equal(await daemon.reload(), false);
    await writeFile(path, text);

    const after = await scrape(http);
    const expect = (name: string, labels: Record<string, string> = {}) => {
      const value = total(after, name, labels);
      assert.ok(
        value !== undefined && value > 0,
        `${name}${JSON.stringify(labels)} moved (got ${value}); families:\n${[...after.keys()]
          .filter((k) => k.startsWith('mailgate_'))
          .join('\n')}`,
      );
      return value;
    };
    expect('mailgate_decisions_total', { door: 'policy', stage: 'rcpt' });
    expect('mailgate_decisions_total', { door: 'milter', stage: 'eom' });
    expect('mailgate_decisions_total', { door: 'policy', verdict: 'reject' });
    expect('mailgate_stage_duration_seconds_count', { door: 'milter', stage: 'mail' });
    for (const [check, result] of [
      ['spf', 'pass'],
      ['spf', 'softfail'],
      ['spf', 'temperror'],
      ['ptr', 'verified'],
      ['helo', ''],
      ['dnsxl', 'listed'],
      ['greylist', 'greylist'],
      ['dkim', 'none'],
      ['dmarc', ''],
      ['arc', 'none'],
    ] as const) {
      expect('mailgate_check_results_total', result ? { check, result } : { check });
    }
    expect('mailgate_check_duration_seconds_count', { check: 'spf' });
    expect('mailgate_dns_queries_total', { type: 'TXT', outcome: 'answer' });
    expect('mailgate_dns_queries_total', { outcome: 'timeout' });
    expect('mailgate_dns_timeouts_total');
    expect('mailgate_dns_cache_total', { result: 'hit' });
    expect('mailgate_dns_query_duration_seconds_count');
    expect('mailgate_store_operations_total', { outcome: 'ok' });
    expect('mailgate_store_operation_duration_seconds_count');
    expect('mailgate_cbv_total', { event: 'call' });
    expect('mailgate_cbv_total', { event: 'cache-hit' });
    expect('mailgate_cbv_total', { event: 'rate-limited' });
    expect('mailgate_cbv_results_total', { result: 'rejected' });
    expect('mailgate_reloads_total', { outcome: 'ok' });
    expect('mailgate_reloads_total', { outcome: 'failed' });
    // The policy client's connection is still open.
    assert.equal(total(after, 'mailgate_open_connections', { door: 'policy' }), 1);
    assert.equal(total(after, 'mailgate_info'), 1);
    // No label holds an address or a domain of the requests.
    for (const key of after.keys()) {
      assert.doesNotMatch(key, /192\.0\.2\.|198\.51\.100\.|pass\.test|soft\.test/u, key);
    }
    // Counters run on across the reload: the decisions before it are still counted.
    assert.ok(
      (total(after, 'mailgate_decisions_total', { door: 'policy' }) ?? 0) >= 6,
      'the policy decisions before the reload are still counted',
    );
    client.close();

    // The status page and /healthz answer on the same listener.
    const page = await fetch(`http://127.0.0.1:${http}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /x@temp\.test|soft\.test/u, 'the page lists decisions');
    const health = await fetch(`http://127.0.0.1:${http}/healthz`);
    assert.equal(health.status, 200);
    assert.match(await health.text(), /^ok\npolicyd ok\nmilter ok\nstore ok/u);
  } finally {
    await daemon?.close();
    await dns?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('/healthz says 503 while the PostgreSQL store is away and 200 once it is back', async (t) => {
  if (skipUnlessPostgres(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-healthz-'));
  let pg: TestPostgres | undefined;
  let dns: FixtureDnsServer | undefined;
  let daemon: Daemon | undefined;
  try {
    pg = await startPostgres();
    dns = await startDnsServer(ZONE);
    const url = await pg.createDatabase('healthz');
    const path = join(dir, 'mailgate.toml');
    await writeFile(path, config(dns.port, url));
    const { logger } = captureLogger('warn');
    daemon = await Daemon.start({ configPath: path, logger });
    const http = doorPort(daemon, 'http');
    const healthz = async () => {
      const response = await fetch(`http://127.0.0.1:${http}/healthz`);
      return { status: response.status, text: await response.text() };
    };
    assert.equal((await healthz()).status, 200);

    await pg.pause();
    const away = await healthz();
    assert.equal(away.status, 503, away.text);
    assert.match(away.text, /^failed\nstore failed: /mu);
    // A request meanwhile fails in the store, and is counted there.
    const client = await policyClient(doorPort(daemon, 'policyd'));
    await client.ask(rcptRequest({ client_address: '192.0.2.10', sender: 'jo@pass.test' }));
    client.close();
    const samples = await scrape(http);
    assert.ok((total(samples, 'mailgate_store_errors_total') ?? 0) > 0, 'store errors counted');
    assert.ok((total(samples, 'mailgate_store_operations_total', { outcome: 'error' }) ?? 0) > 0);

    await pg.resume();
    // The pool makes new connections on the next use; the first may still see the old ones go.
    let back = await healthz();
    for (let n = 0; back.status !== 200 && n < 50; n++) {
      await sleep(100);
      back = await healthz();
    }
    assert.equal(back.status, 200, back.text);
  } finally {
    await daemon?.close();
    await dns?.close();
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
