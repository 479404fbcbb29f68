/**
 * The Exim ACLs of docs/integration/exim.md (RCPT and HELO), read out of the page, run by a real
 * Exim (host checking, `exim -bh`): against a policy server in exim mode whose answers the test
 * chooses, and against mailgate's daemon with its policy engine and fixture DNS.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createPolicyServer,
  type PolicyRequest,
  type PolicyServer,
} from '../../src/policyd/index.js';
import { Daemon } from '../../src/serve/index.js';
import {
  captureLogger as captureDaemonLogger,
  doorPort,
  writeDaemonConfig,
} from '../support/daemon-rig.js';
import { type FixtureDnsServer, startDnsServer } from '../support/dns-server.js';
import { EximRig, type HostCheck, skipUnlessExim } from '../support/exim.js';
import { captureLogger } from './helpers.js';

const DOC = new URL('../../docs/integration/exim.md', import.meta.url);

/** The code block between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in the guide. */
async function docBlock(name: string): Promise<string> {
  const text = await readFile(DOC, 'utf8');
  const match = new RegExp(
    `<!-- ${name}:begin -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\`\\n<!-- ${name}:end -->`,
  ).exec(text);
  assert.ok(match, `docs/integration/exim.md has no ${name} block`);
  return match[1]!;
}

/** The statement of the snippet that defers when mailgate gives no answer. */
const NO_ANSWER_DEFER =
  /\n {2}defer\n {4}condition = \$\{if eq\{\$acl_m_mailgate\}\{\}\}\n(?: {4}.*\n)+/;

/** A port where nothing listens (it was free a moment ago). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The reply to HELO or EHLO: the first after the greeting. */
function heloReply(result: HostCheck): { code: number; text: string } {
  const reply = result.replies[1];
  assert.ok(reply, `no HELO reply in:\n${result.stdout}\n${result.stderr}`);
  return { code: reply.code, text: reply.lines.join('\n') };
}

/** The reply to the first RCPT TO: EHLO's comes after the greeting, then MAIL's. */
function rcptReply(result: HostCheck, index = 0): { code: number; text: string } {
  const reply = result.replies[3 + index];
  assert.ok(reply, `no RCPT reply in:\n${result.stdout}\n${result.stderr}`);
  return { code: reply.code, text: reply.lines.join('\n') };
}

describe('Exim with the ACL of docs/integration/exim.md', { timeout: 120_000 }, () => {
  let rig: EximRig | undefined;
  let failOpenRig: EximRig | undefined;
  /** The guide's ACL behind an Exim that offers AUTH PLAIN (jo / secret). */
  let authRig: EximRig | undefined;
  /** The guide's HELO ACL too, called from the rig's HELO ACL. */
  let heloRig: EximRig | undefined;
  let server: PolicyServer;
  let policy: string;
  const requests: PolicyRequest[] = [];
  const logger = captureLogger();
  /** A port where nothing listens. */
  let closedPort: number;
  /** A server that accepts and closes without answering. */
  let mute: Server;
  let mutePort: number;

  before(async () => {
    const snippet = await docBlock('exim-snippet');
    const failOpen = await docBlock('exim-fail-open');
    const helo = await docBlock('exim-helo');
    assert.match(snippet, NO_ANSWER_DEFER, 'the snippet has the statement the guide says to swap');
    server = createPolicyServer({
      mode: 'exim',
      logger,
      handler: (request) => {
        requests.push(request);
        const state = request['protocol_state'] ?? '';
        if (state === 'HELO' || state === 'EHLO') {
          const name = request['helo_name'] ?? '';
          if (name.startsWith('reject.')) return 'REJECT 5.7.1 not that name';
          if (name.startsWith('defer.')) return 'DEFER_IF_PERMIT 4.7.1 not now';
          if (name.startsWith('code5.')) return '554 5.7.1 go away';
          if (name.startsWith('code4.')) return '421 4.7.0 come back later';
          if (name.startsWith('hold.')) return 'HOLD';
          return 'DUNNO';
        }
        const sender = request['sender'] ?? '';
        if (sender.startsWith('greylist@')) return 'DEFER_IF_PERMIT greylisted, try again later';
        if (sender.startsWith('reject@')) return 'REJECT 5.7.1 no thanks';
        if (sender.startsWith('code@')) return '421 4.7.0 come back later';
        if (sender.startsWith('prepend@'))
          return 'PREPEND X-Greylist: delayed 300 seconds by mailgate';
        if (sender.startsWith('hold@')) return 'HOLD';
        return 'DUNNO';
      },
    });
    const bound = await server.listen('inet:0@127.0.0.1');
    policy = `inet:127.0.0.1:${bound.kind === 'unix' ? 0 : bound.port}`;
    closedPort = await freePort();
    mute = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    mutePort = (mute.address() as { port: number }).port;
    if (process.getuid?.() !== 0) return;
    try {
      rig = await EximRig.create({ acls: snippet, rcpt: '  require acl = mailgate_rcpt' });
      failOpenRig = await EximRig.create({
        acls: snippet.replace(NO_ANSWER_DEFER, `\n${failOpen}`),
        rcpt: '  require acl = mailgate_rcpt',
      });
      authRig = await EximRig.create({
        acls: snippet,
        rcpt: '  require acl = mailgate_rcpt',
        authenticators: [
          'plain:',
          '  driver = plaintext',
          '  public_name = PLAIN',
          '  server_prompts = :',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: an Exim expansion, not a template
          '  server_condition = ${if and {{eq{$auth2}{jo}}{eq{$auth3}{secret}}}}',
          '  server_set_id = $auth2',
        ].join('\n'),
      });
      heloRig = await EximRig.create({
        acls: `${snippet}\n${helo}`,
        rcpt: '  require acl = mailgate_rcpt',
        helo: '  require acl = mailgate_helo',
      });
    } catch {
      // skipUnlessExim says why in each test.
    }
  });
  after(async () => {
    await server.close(1000);
    await new Promise<void>((resolve) => mute.close(() => resolve()));
    await rig?.remove();
    await failOpenRig?.remove();
    await authRig?.remove();
    await heloRig?.remove();
  });

  const session = (
    sender: string,
    extra: { recipients?: string[]; message?: string; helo?: string; policy?: string } = {},
  ) =>
    rig!.session(
      {
        sender,
        recipients: extra.recipients ?? ['user@rcpt.test'],
        helo: extra.helo,
        message: extra.message,
      },
      { defines: { MAILGATE_POLICY: extra.policy ?? policy } },
    );

  test('DUNNO: 250, and the request carries what Postfix would send', async (t) => {
    if (skipUnlessExim(t)) return;
    requests.length = 0;
    const result = await session('someone@sender.test', {
      recipients: ['first@rcpt.test', 'second@rcpt.test'],
    });
    assert.equal(rcptReply(result, 0).code, 250, result.stdout);
    assert.equal(rcptReply(result, 1).code, 250);
    assert.equal(requests.length, 2);
    const [first, second] = requests.map((r) => ({ ...r }));
    const instance = first!['instance'];
    assert.match(instance ?? '', /^[0-9]+\.[0-9]+$/);
    assert.deepEqual(first, {
      request: 'smtpd_access_policy',
      protocol_state: 'RCPT',
      protocol_name: 'ESMTP',
      client_address: '192.0.2.1',
      client_port: '40000',
      client_name: 'mail.client.test',
      reverse_client_name: 'mail.client.test',
      helo_name: 'client.test',
      sender: 'someone@sender.test',
      recipient: 'first@rcpt.test',
      recipient_count: '0',
      sasl_username: '',
      size: '0',
      server_address: '198.51.100.25',
      server_port: '25',
      instance,
    });
    assert.equal(second!['recipient'], 'second@rcpt.test');
    assert.equal(second!['instance'], instance, 'one instance for the recipients of one message');
  });

  test('an authenticated client: sasl_username carries its login name', async (t) => {
    if (skipUnlessExim(t)) return;
    requests.length = 0;
    const plain = Buffer.from('\0jo\0secret').toString('base64');
    const result = await authRig!.hostCheck(
      [
        'EHLO client.test',
        `AUTH PLAIN ${plain}`,
        'MAIL FROM:<jo@sender.test>',
        'RCPT TO:<user@rcpt.test>',
        'QUIT',
      ],
      { defines: { MAILGATE_POLICY: policy } },
    );
    // Greeting, EHLO, AUTH, MAIL, RCPT.
    assert.equal(result.replies[2]?.code, 235, result.stdout);
    assert.equal(result.replies[4]?.code, 250, result.stdout);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!['sasl_username'], 'jo');
    assert.equal(requests[0]!['sender'], 'jo@sender.test');
  });

  test('DEFER_IF_PERMIT: 450 with the text', async (t) => {
    if (skipUnlessExim(t)) return;
    const result = await session('greylist@sender.test');
    assert.deepEqual(rcptReply(result), { code: 450, text: 'greylisted, try again later' });
    assert.ok(!result.log.some((l) => l.includes('gave no answer')));
  });

  test('REJECT: 550 with the text, the enhanced code kept', async (t) => {
    if (skipUnlessExim(t)) return;
    const result = await session('reject@sender.test');
    assert.deepEqual(rcptReply(result), { code: 550, text: '5.7.1 no thanks' });
  });

  test('a numeric action: its code and text', async (t) => {
    if (skipUnlessExim(t)) return;
    const result = await session('code@sender.test');
    assert.deepEqual(rcptReply(result), { code: 421, text: '4.7.0 come back later' });
  });

  test('PREPEND: the header is added to the message', async (t) => {
    if (skipUnlessExim(t)) return;
    const result = await session('prepend@sender.test', {
      message: 'Subject: hello\n\nbody\n',
    });
    assert.equal(rcptReply(result).code, 250);
    const header = result.log.find((l) => l.includes('rig header:'));
    assert.ok(header, result.stderr);
    assert.match(header, /\|X-Greylist: delayed 300 seconds by mailgate\|/);
    assert.match(header, /\|Subject: hello\|/);
  });

  test('an action the ACL does not know is ignored and logged', async (t) => {
    if (skipUnlessExim(t)) return;
    const result = await session('hold@sender.test');
    assert.equal(rcptReply(result).code, 250);
    assert.ok(result.log.some((l) => /action not supported by this ACL, ignored: HOLD/.test(l)));
  });

  test('mailgate down: 451, never a reject, and a log line', async (t) => {
    if (skipUnlessExim(t)) return;
    for (const down of [`inet:127.0.0.1:${closedPort}`, `inet:127.0.0.1:${mutePort}`]) {
      const result = await session('someone@sender.test', { policy: down });
      assert.deepEqual(
        rcptReply(result),
        { code: 451, text: '4.3.5 Policy service unavailable, try again later' },
        down,
      );
      assert.ok(
        result.log.some((l) => l.includes(`mailgate policy server ${down} gave no answer`)),
        result.stderr,
      );
    }
  });

  test('mailgate down, with the fail-open statement of the guide: 250 and a log line', async (t) => {
    if (skipUnlessExim(t)) return;
    const down = `inet:127.0.0.1:${closedPort}`;
    const result = await failOpenRig!.session(
      { sender: 'someone@sender.test', recipients: ['user@rcpt.test'] },
      { defines: { MAILGATE_POLICY: down } },
    );
    assert.equal(rcptReply(result).code, 250, result.stdout);
    assert.ok(
      result.log.some((l) => l.includes(`${down} gave no answer; not checked`)),
      result.stderr,
    );
  });

  test('hostile values cannot add attributes', async (t) => {
    if (skipUnlessExim(t)) return;
    requests.length = 0;
    // A bare CR (no LF) stays inside the SMTP command line, so it reaches Exim's variables.
    const result = await rig!.hostCheck(
      [
        'EHLO client.test',
        'MAIL FROM:<"x\rsender=evil@x.test\rinjected=1"@sender.test>',
        'RCPT TO:<"y\rrecipient=evil\r"@rcpt.test>',
        'QUIT',
      ],
      { defines: { MAILGATE_POLICY: policy } },
    );
    const asked = requests.map((r) => ({ ...r }));
    // Exim 4.96 takes a bare CR inside a quoted local part, so the request is made with them.
    assert.deepEqual(
      result.replies.slice(2, 4).map((r) => r.code),
      [250, 250],
      result.stdout,
    );
    assert.equal(asked.length, 1, result.stderr);
    const [asking] = asked;
    assert.equal(asking!['sender'], '"xsender=evil@x.testinjected=1"@sender.test');
    assert.equal(asking!['recipient'], 'yrecipient=evil@rcpt.test');
    assert.equal(asking!['injected'], undefined);
    for (const value of Object.values(asking!)) assert.doesNotMatch(value, /[\x00-\x1f]/);
    // mailgate read the request without complaint: nothing was cut off or refused.
    assert.deepEqual(logger.problems(), []);
  });

  test('the HELO ACL asks with protocol_state EHLO or HELO, the client and its name', async (t) => {
    if (skipUnlessExim(t)) return;
    requests.length = 0;
    const result = await heloRig!.hostCheck(['EHLO client.test', 'HELO other.test', 'QUIT'], {
      defines: { MAILGATE_POLICY: policy },
    });
    assert.deepEqual(
      result.replies.slice(1, 3).map((r) => r.code),
      [250, 250],
      result.stdout,
    );
    const base = {
      request: 'smtpd_access_policy',
      client_address: '192.0.2.1',
      client_port: '40000',
      client_name: 'mail.client.test',
      reverse_client_name: 'mail.client.test',
      server_address: '198.51.100.25',
      server_port: '25',
    };
    assert.deepEqual(
      requests.map((r) => ({ ...r })),
      [
        { ...base, protocol_state: 'EHLO', protocol_name: 'ESMTP', helo_name: 'client.test' },
        { ...base, protocol_state: 'HELO', protocol_name: 'SMTP', helo_name: 'other.test' },
      ],
    );
  });

  test('the HELO ACL: REJECT and 5NN deny, DEFER and 4NN defer, others accept', async (t) => {
    if (skipUnlessExim(t)) return;
    const cases: Array<[string, number, string]> = [
      ['reject.client.test', 550, '5.7.1 not that name'],
      ['code5.client.test', 554, '5.7.1 go away'],
      ['defer.client.test', 450, '4.7.1 not now'],
      ['code4.client.test', 421, '4.7.0 come back later'],
    ];
    for (const [name, code, text] of cases) {
      const result = await heloRig!.hostCheck([`EHLO ${name}`, 'QUIT'], {
        defines: { MAILGATE_POLICY: policy },
      });
      assert.deepEqual(heloReply(result), { code, text }, name);
    }
    const held = await heloRig!.hostCheck(['EHLO hold.client.test', 'QUIT'], {
      defines: { MAILGATE_POLICY: policy },
    });
    assert.equal(heloReply(held).code, 250, held.stdout);
    assert.ok(held.log.some((l) => /action not supported at HELO, ignored: HOLD/.test(l)));
  });

  test('a HELO name with a control character: Exim refuses it before the ACL asks', async (t) => {
    if (skipUnlessExim(t)) return;
    requests.length = 0;
    const result = await heloRig!.hostCheck(['EHLO a\rhelo_name=evil.test', 'QUIT'], {
      defines: { MAILGATE_POLICY: policy },
    });
    assert.equal(heloReply(result).code, 501, result.stdout);
    assert.equal(requests.length, 0);
  });

  test('the HELO ACL with mailgate down: 451 and a log line', async (t) => {
    if (skipUnlessExim(t)) return;
    const down = `inet:127.0.0.1:${closedPort}`;
    const result = await heloRig!.hostCheck(['EHLO client.test', 'QUIT'], {
      defines: { MAILGATE_POLICY: down },
    });
    assert.deepEqual(heloReply(result), {
      code: 451,
      text: '4.3.5 Policy service unavailable, try again later',
    });
    assert.ok(result.log.some((l) => l.includes(`mailgate policy server ${down} gave no answer`)));
  });
});

describe("Exim with the guide's HELO and RCPT ACLs, against mailgate", { timeout: 120_000 }, () => {
  /** mailgate's own name: what hello_blacklist holds by default. */
  const HOSTNAME = 'mx.mailgate.test';
  let dns: FixtureDnsServer;
  let dir: string;
  let daemon: Daemon;
  let policy: string;
  let lines: Array<Record<string, unknown>> = [];
  /** Both ACLs, mailgate_helo named as the HELO ACL. */
  let rig: EximRig | undefined;
  /** The same, with the guide's fail-open statements in mailgate_helo. */
  let failOpenRig: EximRig | undefined;
  /** The RCPT ACL alone. */
  let rcptOnlyRig: EximRig | undefined;

  before(async () => {
    const snippet = await docBlock('exim-snippet');
    const helo = await docBlock('exim-helo');
    const failOpen = await docBlock('exim-fail-open');
    assert.match(helo, NO_ANSWER_DEFER, 'the HELO ACL has the statement the guide says to swap');
    assert.doesNotMatch(helo, /^MAILGATE_POLICY\s*=/m, 'the HELO ACL uses the RCPT block macro');
    dns = await startDnsServer({
      // CSA (the SRV fields: priority = version 1, weight, port, target).
      '_client._smtp.good.csa.test': [{ SRV: [1, 2, 0, 'good.csa.test'] }],
      'good.csa.test': [{ A: '192.0.2.1' }],
      // Weight 1: the name may not send mail, whatever its addresses.
      '_client._smtp.forbidden.csa.test': [{ SRV: [1, 1, 0, 'forbidden.csa.test'] }],
      'forbidden.csa.test': [{ A: '192.0.2.1' }],
      // Weight 2, but the client is not the target.
      '_client._smtp.elsewhere.csa.test': [{ SRV: [1, 2, 0, 'elsewhere.csa.test'] }],
      'elsewhere.csa.test': [{ A: '198.51.100.77' }],
      // Weight 3: authorized, but not by address; the target's addresses do not count.
      '_client._smtp.unsure.csa.test': [{ SRV: [1, 3, 0, 'unsure.csa.test'] }],
      'unsure.csa.test': [{ A: '198.51.100.77' }],
      'nocsa.csa.test': [{ A: '192.0.2.1' }],
      'mail.client.test': [{ A: '192.0.2.1' }],
      '1.2.0.192.in-addr.arpa': [{ PTR: 'mail.client.test' }],
      '_client._smtp.broken.csa.test': [{ RCODE: 'SERVFAIL' }],
      // SPF, for the RCPT requests.
      'pass.test': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
      'fail.test': [{ TXT: 'v=spf1 -all' }],
      // 192.0.2.7 is on a block list: greylisted.
      '7.2.0.192.bl.test': [{ A: '127.0.0.2' }],
    });
    dir = await mkdtemp(join(tmpdir(), 'mailgate-exim-daemon-'));
    const config = await writeDaemonConfig(dir, 'mailgate', {
      dnsPort: dns.port,
      hostname: HOSTNAME,
      rest: `[policyd]
listen = ["inet:0@127.0.0.1"]
mode = "exim"
[milter]
enabled = false
csa = "reject"
internal_connect = ["192.0.2.99"]
[cbv]
enabled = false
[greylist]
dnsbl = ["bl.test"]
`,
    });
    const captured = captureDaemonLogger('info');
    lines = captured.lines;
    daemon = await Daemon.start({ configPath: config, logger: captured.logger });
    policy = `inet:127.0.0.1:${doorPort(daemon, 'policyd')}`;
    if (process.getuid?.() !== 0) return;
    try {
      rig = await EximRig.create({
        acls: `${snippet}\n${helo}`,
        main: 'acl_smtp_helo = mailgate_helo',
        rcpt: '  require acl = mailgate_rcpt',
      });
      failOpenRig = await EximRig.create({
        acls: `${snippet}\n${helo.replace(NO_ANSWER_DEFER, `\n${failOpen}`)}`,
        main: 'acl_smtp_helo = mailgate_helo',
        rcpt: '  require acl = mailgate_rcpt',
      });
      rcptOnlyRig = await EximRig.create({ acls: snippet, rcpt: '  require acl = mailgate_rcpt' });
    } catch {
      // skipUnlessExim says why in each test.
    }
  });
  after(async () => {
    await daemon?.close();
    await dns?.close();
    await rig?.remove();
    await failOpenRig?.remove();
    await rcptOnlyRig?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** One HELO (or EHLO, as `verb` says) from `client`, then whatever follows, then QUIT. */
  const hello = (
    name: string,
    options: { verb?: string; client?: string; after?: string[]; policy?: string } = {},
  ) =>
    rig!.hostCheck([`${options.verb ?? 'EHLO'} ${name}`, ...(options.after ?? []), 'QUIT'], {
      defines: { MAILGATE_POLICY: options.policy ?? policy },
      ...(options.client !== undefined ? { clientAddress: options.client } : {}),
    });

  test("a numeric HELO: 550 with mailgate's text, and no MAIL until a HELO passes", async (t) => {
    if (skipUnlessExim(t)) return;
    const before = lines.length;
    const result = await hello('192.0.2.1', { after: ['MAIL FROM:<jo@pass.test>'] });
    assert.deepEqual(heloReply(result), {
      code: 550,
      text: '5.7.1 numeric hello name: 192.0.2.1',
    });
    assert.equal(result.replies[2]?.code, 503, result.stdout);
    const decided = lines.slice(before).find((l) => l['stage'] === 'helo');
    assert.equal(decided?.['reason'], 'numeric-helo');
    assert.equal(decided?.['verdict'], 'reject');
    const plain = await hello('192.0.2.1', { verb: 'HELO' });
    assert.deepEqual(heloReply(plain), {
      code: 550,
      text: '5.7.1 numeric hello name: 192.0.2.1',
    });
    // An address literal is how RFC 5321 writes an address in HELO.
    assert.equal(heloReply(await hello('[192.0.2.1]')).code, 250);
  });

  test('our own name from outside: 550 spam from self; from internal_connect: 250', async (t) => {
    if (skipUnlessExim(t)) return;
    assert.deepEqual(heloReply(await hello(HOSTNAME)), {
      code: 550,
      text: `5.7.1 spam from self: ${HOSTNAME}`,
    });
    assert.equal(heloReply(await hello(HOSTNAME, { client: '192.0.2.99' })).code, 250);
  });

  test('CSA with [milter] csa = "reject": a fail is refused, weight 3 and none are not', async (t) => {
    if (skipUnlessExim(t)) return;
    // Exim splits a long text over several lines, each with the enhanced code.
    assert.deepEqual(heloReply(await hello('forbidden.csa.test')), {
      code: 550,
      text: [
        '5.7.1 CSA: 192.0.2.1 is not authorized by forbidden.csa.test:',
        '5.7.1 forbidden.csa.test may not send mail',
      ].join('\n'),
    });
    assert.deepEqual(heloReply(await hello('elsewhere.csa.test')), {
      code: 550,
      text: '5.7.1 CSA: 192.0.2.1 is not authorized by elsewhere.csa.test',
    });
    for (const name of ['good.csa.test', 'unsure.csa.test', 'nocsa.csa.test']) {
      const result = await hello(name);
      assert.equal(heloReply(result).code, 250, `${name}: ${result.stdout}`);
    }
    // CSA does not judge a client on loopback: nobody has to list localhost.
    assert.equal(heloReply(await hello('forbidden.csa.test', { client: '127.0.0.1' })).code, 250);
  });

  test('a CSA lookup that fails: 451, the HELO deferred', async (t) => {
    if (skipUnlessExim(t)) return;
    assert.deepEqual(heloReply(await hello('broken.csa.test')), {
      code: 451,
      text: '4.4.3 CSA lookup failed, try again later',
    });
  });

  test('after a good HELO the RCPT ACL gets the MAIL FROM policy and greylisting', async (t) => {
    if (skipUnlessExim(t)) return;
    // The HELO is the client's verified name: greylisting's HELO score is 0.
    const pass = await hello('mail.client.test', {
      after: ['MAIL FROM:<jo@pass.test>', 'RCPT TO:<user@rcpt.test>'],
    });
    assert.deepEqual(
      pass.replies.slice(1, 4).map((r) => r.code),
      [250, 250, 250],
      pass.stdout,
    );
    const fail = await hello('good.csa.test', {
      after: ['MAIL FROM:<jo@fail.test>', 'RCPT TO:<user@rcpt.test>'],
    });
    assert.equal(fail.replies[3]?.code, 550, fail.stdout);
    assert.match(
      fail.replies[3]!.lines.join('\n'),
      /^5\.7\.23 SPF policy of fail\.test does not authorize 192\.0\.2\.1/,
    );
    const listed = await hello('mail.pass.test', {
      client: '192.0.2.7',
      after: ['MAIL FROM:<jo@pass.test>', 'RCPT TO:<user@rcpt.test>'],
    });
    assert.deepEqual(
      { code: listed.replies[3]?.code, text: listed.replies[3]?.lines.join('\n') },
      { code: 450, text: 'greylisted, try again later' },
      listed.stdout,
    );
  });

  test('without the HELO ACL the RCPT ACL refuses the same HELO, at RCPT', async (t) => {
    if (skipUnlessExim(t)) return;
    const result = await rcptOnlyRig!.session(
      { helo: '192.0.2.1', sender: 'jo@pass.test', recipients: ['user@rcpt.test'] },
      { defines: { MAILGATE_POLICY: policy } },
    );
    assert.deepEqual(
      result.replies.slice(1, 3).map((r) => r.code),
      [250, 250],
      result.stdout,
    );
    assert.deepEqual(rcptReply(result), {
      code: 550,
      text: '5.7.1 numeric hello name: 192.0.2.1',
    });
  });

  test('mailgate down at HELO: 451 and a log line; with the fail-open statements, 250', async (t) => {
    if (skipUnlessExim(t)) return;
    const down = `inet:127.0.0.1:${await freePort()}`;
    const closed = await hello('good.csa.test', { policy: down });
    assert.deepEqual(heloReply(closed), {
      code: 451,
      text: '4.3.5 Policy service unavailable, try again later',
    });
    assert.ok(closed.log.some((l) => l.includes(`mailgate policy server ${down} gave no answer`)));
    const open = await failOpenRig!.hostCheck(['EHLO 192.0.2.1', 'QUIT'], {
      defines: { MAILGATE_POLICY: down },
    });
    assert.equal(heloReply(open).code, 250, open.stdout);
    assert.ok(open.log.some((l) => l.includes(`${down} gave no answer; not checked`)));
  });

  test('local SMTP (exim -bs, no client address): the HELO ACL does not ask', async (t) => {
    if (skipUnlessExim(t)) return;
    // mailgate is down and the HELO is numeric: asking would defer it, and mailgate refuse it.
    const down = `inet:127.0.0.1:${await freePort()}`;
    const result = await rig!.localSmtp(['EHLO 192.0.2.1', 'QUIT'], {
      defines: { MAILGATE_POLICY: down },
    });
    assert.equal(heloReply(result).code, 250, `${result.stdout}\n${result.stderr}`);
    assert.ok(!result.log.some((l) => l.includes('gave no answer')), result.log.join('\n'));
  });

  test('mailgate read every request of the ACLs without complaint', () => {
    const problems = lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 40);
    assert.deepEqual(problems, []);
  });
});
