/**
 * The report counts what the daemon decided: a running daemon (`Daemon.start`, the real
 * resolver on the fixture DNS server, a real SQLite file) answers policy requests and a milter
 * session; `mailgate report --format json` over its store then has one line per decision, the
 * actions the clients were answered, the SPF results they were judged by, the refused client
 * and sender domain, and the DNS tempfail.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Daemon } from '../../src/serve/index.js';
import { captureLogger, doorPort } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { playMilterSession } from '../support/milter-play.js';
import { policyClient, rcptRequest } from '../support/policy-client.js';
import { runCli } from '../support/run-cli.js';

const ZONE = {
  'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'mail.pass.test': [{ A: '192.0.2.10' }],
  '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.pass.test' }],
  'fail.test': [{ TXT: 'v=spf1 -all' }],
  'temp.test': ['TIMEOUT'],
};

type Named = Array<{ name: string; count: number }>;
const countOf = (list: Named, name: string) => list.find((e) => e.name === name)?.count ?? 0;

test('the report of the decision log counts the decisions the daemon made', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-report-counts-'));
  let dns: FixtureDnsServer | undefined;
  let daemon: Daemon | undefined;
  try {
    dns = await startDnsServer(ZONE);
    const path = join(dir, 'mailgate.toml');
    await writeFile(
      path,
      `hostname = "mx.mailgate.test"
[dns]
servers = ["127.0.0.1:${dns.port}"]
timeout = "300ms"
attempts = 1
[store]
url = "sqlite:${join(dir, 'mailgate.db')}"
[policyd]
listen = ["inet:0@127.0.0.1"]
[milter]
listen = ["inet:0@127.0.0.1"]
[cbv]
enabled = false
`,
    );
    const started = Date.now();
    const { logger } = captureLogger('warn');
    daemon = await Daemon.start({ configPath: path, logger });
    const client = await policyClient(doorPort(daemon, 'policyd'));
    const answers: string[] = [];
    const ask = async (attributes: Record<string, string>) => {
      answers.push(await client.ask(rcptRequest(attributes)));
    };
    // SPF pass from a verified client: let through.
    await ask({
      client_address: '192.0.2.10',
      client_name: 'mail.pass.test',
      helo_name: 'mail.pass.test',
      sender: 'jo@pass.test',
    });
    // SPF fail, twice from one client: refused.
    for (const recipient of ['a@rcpt.test', 'b@rcpt.test']) {
      await ask({
        client_address: '203.0.113.9',
        helo_name: 'relay.example',
        sender: 'ceo@fail.test',
        recipient,
      });
    }
    // The SPF record cannot be had: a DNS tempfail.
    await ask({
      client_address: '198.51.100.8',
      helo_name: 'relay.example',
      sender: 'x@temp.test',
    });
    client.close();
    // A message through the milter.
    const played = await playMilterSession(`inet:${doorPort(daemon, 'milter')}@127.0.0.1`, {
      ip: '192.0.2.10',
      helo: 'mail.pass.test',
      sender: 'jo@pass.test',
      recipient: 'bob@rcpt.test',
      headers: [['From', ' <jo@pass.test>']],
    });
    assert.ok(played.eom, 'the message reached end of message');
    assert.deepEqual(
      answers.map((a) => a.split(' ')[0]),
      ['DUNNO', '550', '550', '451'],
      JSON.stringify(answers),
    );
    await daemon.close();
    daemon = undefined;

    const run = await runCli([
      'report',
      '--config',
      path,
      '--from',
      new Date(started - 1000).toISOString(),
      '--to',
      new Date(Date.now() + 1000).toISOString(),
      '--format',
      'json',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as {
      total: number;
      actions: Named;
      stages: Named;
      spf: { results: Named };
      rejected: { lines: number; clients: Named; senderDomains: Named };
      dnsTempfails: { total: number };
    };
    // One line per decision: four policy requests and one message.
    assert.equal(report.total, 5, run.stdout);
    assert.equal(countOf(report.actions, 'pass'), 2);
    assert.equal(countOf(report.actions, 'reject'), 2);
    assert.equal(countOf(report.actions, 'tempfail'), 1);
    assert.equal(countOf(report.stages, 'eom'), 1);
    // The message's line and greylisting's (the request let through was greylisting's to
    // decide) both carry the SPF pass their MAIL FROM was judged by.
    assert.equal(countOf(report.spf.results, 'pass'), 2);
    assert.equal(countOf(report.stages, 'greylisting'), 1);
    assert.equal(countOf(report.spf.results, 'fail'), 2);
    assert.equal(report.rejected.lines, 2);
    assert.equal(countOf(report.rejected.clients, '203.0.113.9'), 2);
    assert.equal(countOf(report.rejected.senderDomains, 'fail.test'), 2);
    assert.equal(report.dnsTempfails.total, 1);
  } finally {
    await daemon?.close();
    await dns?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
