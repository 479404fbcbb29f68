/**
 * The Exim ACL of docs/integration/exim.md, read out of the page, run by a real Exim (host
 * checking, `exim -bh`) against a real policy server in exim mode.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  createPolicyServer,
  type PolicyRequest,
  type PolicyServer,
} from '../../src/policyd/index.js';
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
    assert.match(snippet, NO_ANSWER_DEFER, 'the snippet has the statement the guide says to swap');
    server = createPolicyServer({
      mode: 'exim',
      logger,
      handler: (request) => {
        requests.push(request);
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
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
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
});
