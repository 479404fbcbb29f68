// The daemon as a whole: configuration in, a policy server that greylists out, reloads that keep
// connections, and a clean stop. Real parts: the fixture DNS server, SQLite files, sockets.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../src/config/index.js';
import { Daemon } from '../../src/serve/index.js';
import { captureLogger, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { policyClient, rcptRequest } from '../support/policy-client.js';

let dns: FixtureDnsServer;
let dir: string;
before(async () => {
  dns = await startDnsServer({
    // A DNSBL listing 192.0.2.66, and SPF for the clean sender's domain.
    '66.2.0.192.bl.test': [{ A: '127.0.0.2' }],
    // A client whose PTR lookup never ends: its decision outlives any request timeout.
    '99.2.0.192.in-addr.arpa': ['TIMEOUT'],
    'example.org': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  });
  dir = await mkdtemp(join(tmpdir(), 'mailgate-daemon-'));
});
after(async () => {
  await dns?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function writeConfig(name: string, extra = '', greylist = ''): Promise<string> {
  return writeDaemonConfig(dir, name, {
    dnsPort: dns.port,
    hostname: 'mx1.mailgate.test',
    log: 'level = "debug"',
    rest: `[milter]
listen = ["inet:0@127.0.0.1"]
[policyd]
listen = ["inet:0@127.0.0.1"]
${extra}
[greylist]
period = "1s"
penalty = "1s"
dnsbl = ["bl.test"]
${greylist}
`,
  });
}

function portOf(daemon: Daemon): number {
  const address = daemon.addresses[0];
  assert.ok(address && address.kind === 'inet');
  return address.port;
}

describe('daemon', () => {
  it('greylists a suspicious first attempt, passes it after the period with X-Greylist', async () => {
    const { logger, lines } = captureLogger();
    const daemon = await Daemon.start({ configPath: await writeConfig('timeline'), logger });
    const client = await policyClient(portOf(daemon));
    try {
      const request = rcptRequest({ client_name: 'unknown', helo_name: 'windowsxp.local' });
      assert.equal(await client.ask(request), 'DEFER_IF_PERMIT greylisted, try again later');
      await sleep(1300);
      const action = await client.ask(request);
      assert.match(
        action,
        /^PREPEND X-Greylist: delayed \d+ seconds by mailgate-\d+\.\d+\.\d+\S* at mx1\.mailgate\.test; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/,
      );
      assert.equal(await client.ask(request), 'DUNNO');
      // A clean client passes at once; a listed one is greylisted.
      const clean = rcptRequest({
        client_address: '192.0.2.20',
        client_name: 'mail.example.org',
        helo_name: 'mail.example.org',
      });
      assert.equal(await client.ask(clean), 'DUNNO');
      const listed = rcptRequest({
        client_address: '192.0.2.66',
        client_name: 'mail.example.org',
        helo_name: 'mail.example.org',
      });
      assert.equal(await client.ask(listed), 'DEFER_IF_PERMIT greylisted, try again later');
      // Not at RCPT, or authenticated: not greylisting's business.
      assert.equal(await client.ask({ ...request, protocol_state: 'DATA' }), 'DUNNO');
      assert.equal(
        await client.ask({ ...request, recipient: 'other@example.net', sasl_username: 'jo' }),
        'DUNNO',
      );
      // Decisions are logged with stable tags and in the store's decision log.
      assert.ok(lines.some((l) => l.msg === 'started'));
      assert.ok(lines.some((l) => l.msg === 'greylist' && l.verdict === 'greylist'));
      const decisions = await daemon.store.recentDecisions(10);
      assert.ok(decisions.length >= 4, JSON.stringify(decisions));
      assert.ok(decisions.every((d) => d.host === 'mx1.mailgate.test'));
    } finally {
      client.close();
      await daemon.close();
    }
    assert.ok(lines.some((l) => l.msg === 'stopped'));
  });

  it('reloads the configuration without dropping the connection; a bad file changes nothing', async () => {
    const { logger, lines } = captureLogger();
    const path = await writeConfig('reload');
    const daemon = await Daemon.start({ configPath: path, logger });
    const client = await policyClient(portOf(daemon));
    try {
      const request = rcptRequest({ helo_name: 'windowsxp.local' });
      assert.equal(await client.ask(request), 'DEFER_IF_PERMIT greylisted, try again later');

      await writeConfig('reload', '', 'action = "DEFER_IF_PERMIT come back in a while"');
      assert.equal(await daemon.reload(), true);
      const next = { ...request, recipient: 'second@example.net' };
      assert.equal(await client.ask(next), 'DEFER_IF_PERMIT come back in a while');
      assert.ok(lines.some((l) => l.msg === 'config-reloaded'));

      // A burst of reloads (a SIGHUP storm): the one running, and one more after it.
      const reloaded = () => lines.filter((l) => l.msg === 'config-reloaded').length;
      const before = reloaded();
      const burst = await Promise.all(Array.from({ length: 20 }, () => daemon.reload()));
      assert.ok(burst.every(Boolean));
      assert.equal(reloaded() - before, 2);

      await writeFile(path, '[greylist]\nperod = "5m"\n');
      assert.equal(await daemon.reload(), false);
      const failed = lines.find((l) => l.msg === 'config-reload-failed');
      assert.match(String(failed?.problems), /greylist\.perod: unknown key/);
      const third = { ...request, recipient: 'third@example.net' };
      assert.equal(await client.ask(third), 'DEFER_IF_PERMIT come back in a while');

      // Listeners are only read at start: a change is reported, the old ones stay.
      await writeConfig('reload', 'mode = "exim"', 'enabled = false');
      assert.equal(await daemon.reload(), true);
      assert.ok(lines.some((l) => l.msg === 'config-restart-needed'));
      assert.equal(await client.ask({ ...request, recipient: 'fourth@example.net' }), 'DUNNO');
      assert.equal(client.closed, false);
    } finally {
      client.close();
      await daemon.close();
    }
  });

  it('a reload changes the request timeout and the error action of the running server', async () => {
    const { logger, lines } = captureLogger();
    const path = await writeConfig(
      'timeouts',
      'request_timeout = "20s"\nerror_action = "DEFER_IF_PERMIT old"',
    );
    const daemon = await Daemon.start({ configPath: path, logger });
    const client = await policyClient(portOf(daemon));
    const warnings = () => lines.filter((l) => l.msg === 'config-warning');
    try {
      assert.deepEqual(warnings(), []);
      await writeConfig(
        'timeouts',
        'request_timeout = "300ms"\nerror_action = "DEFER_IF_PERMIT new"',
      );
      assert.equal(await daemon.reload(), true);
      // The DNS budget (10 s) is now longer than the request timeout: said, not refused.
      assert.equal(warnings().length, 1);
      assert.equal(warnings()[0]?.['key'], 'greylist.dns_budget');
      // No client_name: the greylister asks the PTR itself, which never answers.
      const slow = rcptRequest({ client_address: '192.0.2.99' });
      delete (slow as Record<string, string | undefined>).client_name;
      assert.equal(await client.ask(slow), 'DEFER_IF_PERMIT new');
    } finally {
      client.close();
      await daemon.close();
    }
  });

  it('a request it cannot read gets error_action and one warning; the connection goes on', async () => {
    const { logger, lines } = captureLogger();
    const daemon = await Daemon.start({ configPath: await writeConfig('bad-requests'), logger });
    const client = await policyClient(portOf(daemon));
    try {
      const bad: Array<[Record<string, string>, string]> = [
        [{ client_address: 'not-an-ip' }, 'the client address is not an IP address'],
        [{ client_address: '' }, 'no client address'],
        [{ recipient: '' }, 'no recipient'],
      ];
      for (const [attributes, problem] of bad) {
        assert.equal(
          await client.ask(rcptRequest(attributes)),
          'DEFER_IF_PERMIT 4.3.0 temporary policy failure',
          problem,
        );
        const warned = lines.filter((l) => l.msg === 'policy-bad-request');
        assert.equal(warned.at(-1)?.['problem'], problem);
      }
      assert.equal(lines.filter((l) => l.msg === 'policy-bad-request').length, bad.length);
      assert.deepEqual(
        lines.filter((l) => l.level === 'error'),
        [],
        'bad input is not an internal error',
      );
      // A good request on the same connection is decided by greylisting again.
      const decided = lines.filter((l) => l.msg === 'greylist').length;
      assert.match(await client.ask(rcptRequest()), /^(DUNNO|DEFER_IF_PERMIT greylisted)/);
      assert.equal(lines.filter((l) => l.msg === 'greylist').length, decided + 1);
      assert.equal(client.closed, false);
    } finally {
      client.close();
      await daemon.close();
    }
  });

  it('refuses a bad configuration before it binds or opens anything', async () => {
    const path = join(dir, 'bad.toml');
    const db = join(dir, 'never', 'bad.db');
    await writeFile(path, `[store]\nurl = "sqlite:${db}"\n[greylist]\nmax = "forever"\n`);
    await assert.rejects(
      Daemon.start({ configPath: path, logger: captureLogger().logger }),
      (err: unknown) =>
        err instanceof ConfigError && /greylist\.max: not a duration/.test(err.message),
    );
    assert.ok(!(await readdir(dir)).includes('never'));
  });

  it('refuses to start when an address is taken, and leaves nothing open', async () => {
    const first = await Daemon.start({
      configPath: await writeConfig('taken-a'),
      logger: captureLogger().logger,
    });
    try {
      const port = portOf(first);
      const path = join(dir, 'taken-b.toml');
      await writeFile(
        path,
        `[store]\nurl = "sqlite:${join(dir, 'taken-b.db')}"\n[policyd]\nlisten = ["inet:${port}@127.0.0.1"]\n[milter]\nenabled = false\n[dns]\nservers = ["127.0.0.1:${dns.port}"]\n`,
      );
      await assert.rejects(
        Daemon.start({ configPath: path, logger: captureLogger().logger }),
        /EADDRINUSE/,
      );
    } finally {
      await first.close();
    }
  });
});
