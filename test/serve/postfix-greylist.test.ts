/**
 * End to end: swaks → a throwaway Postfix whose smtpd_recipient_restrictions ask mailgate
 * (check_policy_service) → the daemon, greylisting with a short period → the SMTP sink. The
 * first attempt is refused with 450; a retry after the period is accepted, and the delivered
 * message carries X-Greylist.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Daemon } from '../../src/serve/index.js';
import { captureLogger, doorPort, writeDaemonConfig } from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { type PostfixRig, startPostfix } from '../support/postfix.js';
import { guideBlock, mainCfLines, waitForBanner } from '../support/postfix-guide.js';
import { skipUnlessAvailable } from '../support/programs.js';

/**
 * The main.cf lines of docs/integration/postfix.md (between its postfix-policy markers), with the
 * daemon's real port for the documented 10027: the guide and the test cannot drift apart.
 */
async function documentedMainCf(port: number): Promise<Record<string, string>> {
  const block = await guideBlock(
    'docs/integration/postfix.md',
    /<!-- postfix-policy:start -->\n```\n([\s\S]*?)```\n<!-- postfix-policy:end -->/,
    'the postfix-policy block',
  );
  const params = Object.fromEntries(
    Object.entries(mainCfLines(block)).map(([name, value]) => [
      name,
      value.replace('127.0.0.1:10027', `127.0.0.1:${port}`),
    ]),
  );
  assert.ok(
    params.smtpd_recipient_restrictions?.includes(`check_policy_service inet:127.0.0.1:${port}`),
  );
  return params;
}

test('Postfix check_policy_service: 450 first, accepted after the period, X-Greylist added', async (t) => {
  if (skipUnlessAvailable(t, ['postfix', 'swaks', 'root'])) return;
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-e2e-'));
  let dns: FixtureDnsServer | undefined;
  let daemon: Daemon | undefined;
  let rig: PostfixRig | undefined;
  let log: Array<Record<string, unknown>> = [];
  try {
    dns = await startDnsServer({});
    const config = await writeDaemonConfig(dir, 'mailgate', {
      dnsPort: dns.port,
      rest: `[policyd]
listen = ["inet:0@127.0.0.1"]
[milter]
listen = ["inet:0@127.0.0.1"]
# Greylisting is the subject here: no call-backs of the test sender.
[cbv]
enabled = false
[greylist]
period = "3s"
penalty = "10m"
`,
    });
    const { logger, lines } = captureLogger('debug');
    log = lines;
    daemon = await Daemon.start({ configPath: config, logger });
    // The guide's check_policy_service clause, asked first: the rig's client is 127.0.0.1, one
    // of the rig's own networks, which the guide's order would permit before mailgate is asked.
    const documented = await documentedMainCf(doorPort(daemon, 'policyd'));
    const clause = /check_policy_service \S+/.exec(
      documented.smtpd_recipient_restrictions ?? '',
    )?.[0];
    assert.ok(clause);
    rig = await startPostfix({
      main: { smtpd_recipient_restrictions: `${clause}, permit_mynetworks, reject` },
    });
    // The test rig turns reverse lookups off, so Postfix sends client_name=unknown: with a HELO
    // that is no name of the client, the score is 2 and the first attempt is greylisted.
    const send = () =>
      rig!.swaks([
        '--helo',
        'client.mailgate.test',
        '--from',
        'alice@sender.mailgate.test',
        '--to',
        'bob@rcpt.mailgate.test',
        '--header',
        'Subject: greylisting end to end',
      ]);

    await waitForBanner(rig.smtpPort);
    const first = await send();
    const rcpt = first.transcript.find((e) => e.stage === 'rcpt');
    assert.match(
      rcpt?.reply.at(-1) ?? '',
      /^450 4\.7\.1 .*greylisted, try again later/,
      first.stdout + first.stderr,
    );
    assert.equal(rig.sink.deliveries.length, 0);

    // An early retry is refused again, and adds the penalty; so wait for the period before the
    // first retry instead.
    await sleep(3500);
    const second = await send();
    const rcpt2 = second.transcript.find((e) => e.stage === 'rcpt');
    assert.match(rcpt2?.reply.at(-1) ?? '', /^250 /, second.stdout + second.stderr);
    const delivery = await rig.nextDelivery({ timeoutMs: 20_000 });
    assert.deepEqual(delivery.to, ['bob@rcpt.mailgate.test']);
    const header = delivery.header('X-Greylist') ?? '';
    assert.match(
      header,
      /^delayed \d+ seconds by mailgate-\S+ at mx\.mailgate\.test; \w{3}, /,
      header,
    );
    const delay = Number(/delayed (\d+) seconds/.exec(header)?.[1]);
    assert.ok(delay >= 3 && delay < 60, header);

    const decisions = await daemon.store.recentDecisions(5);
    assert.deepEqual(decisions.map((d) => [d.action, d.reason]).slice(0, 2), [
      ['pass', 'waited'],
      ['greylist', 'score'],
    ]);
  } catch (err) {
    if (rig) t.diagnostic(`maillog:\n${rig.maillog()}`);
    t.diagnostic(`mailgate log:\n${log.map((l) => JSON.stringify(l)).join('\n')}`);
    throw err;
  } finally {
    await rig?.stop();
    await daemon?.close();
    await dns?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
