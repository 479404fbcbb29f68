import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import {
  applyModifications,
  MilterClient,
  MilterClientError,
  type Modification,
} from '../../src/milter/index.js';
import { be32, cs, pkt } from './helpers.js';

/**
 * A fake milter that answers each packet it reads with the next canned answer (bytes), so that
 * the client can be shown replies no correct milter would send.
 */
async function fakeMilter(answers: Buffer[]): Promise<{ server: Server; spec: string }> {
  const server = createServer((socket: Socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const letter = String.fromCharCode(pending[4]!);
        pending = pending.subarray(4 + pending.readUInt32BE(0));
        if (letter === 'D' || letter === 'A' || letter === 'Q') continue;
        const answer = answers.shift();
        if (answer) socket.write(answer);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, spec: `inet:${port}@127.0.0.1` };
}

const OPTNEG_ALL = pkt('O', be32(6), be32(0x1ff), be32(0));

async function expectClientError(
  answers: Buffer[],
  play: (c: MilterClient) => Promise<unknown>,
  pattern: RegExp,
) {
  const { server, spec } = await fakeMilter(answers);
  const client = await MilterClient.connect(spec, { timeoutMs: 2000 });
  try {
    await assert.rejects(
      play(client),
      (err: unknown) => err instanceof MilterClientError && pattern.test(err.message),
    );
  } finally {
    await client.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('the client refuses replies that break the protocol', () => {
  test('a negotiation answer asking for more than was offered', async () => {
    await expectClientError(
      [pkt('O', be32(6), be32(0x1ff), be32(0))],
      (c) => c.negotiate({ actions: 0x01 }),
      /asked for actions 0x1ff; 0x1 were offered/,
    );
    await expectClientError(
      [pkt('O', be32(7), be32(0), be32(0))],
      (c) => c.negotiate(),
      /protocol version 7; 6 was offered/,
    );
    await expectClientError(
      [pkt('c')],
      (c) => c.negotiate(),
      /expected the SMFIC_OPTNEG answer, got SMFIR_CONTINUE/,
    );
  });

  test('a modification outside end of message, or not negotiated', async () => {
    await expectClientError(
      [OPTNEG_ALL, pkt('h', cs('X'), cs('y'))],
      async (c) => {
        await c.negotiate();
        await c.helo('h');
      },
      /SMFIR_ADDHEADER is not an answer to helo/,
    );
    await expectClientError(
      [pkt('O', be32(6), be32(0), be32(0)), Buffer.concat([pkt('h', cs('X'), cs('y')), pkt('c')])],
      async (c) => {
        await c.negotiate();
        await c.eom();
      },
      /SMFIR_ADDHEADER was not negotiated/,
    );
  });

  test('a malformed reply text, a truncated packet, an unknown reply, silence', async () => {
    for (const [text, pattern] of [
      ['250 2.0.0 ok', /malformed SMFIR_REPLYCODE/],
      ['550 no enhanced code', /malformed SMFIR_REPLYCODE/],
      ['550 4.7.1 class mismatch', /malformed SMFIR_REPLYCODE/],
      ['550 5.7.1 a\r\n550 5.7.1 b', /malformed SMFIR_REPLYCODE/],
    ] as const) {
      await expectClientError(
        [OPTNEG_ALL, pkt('y', cs(text))],
        async (c) => {
          await c.negotiate();
          await c.helo('h');
        },
        pattern,
      );
    }
    await expectClientError(
      [OPTNEG_ALL, pkt('y', '550 5.7.1 no NUL')],
      async (c) => {
        await c.negotiate();
        await c.helo('h');
      },
      /malformed reply from the milter: SMFIR_REPLYCODE: truncated/,
    );
    await expectClientError(
      [OPTNEG_ALL, pkt('Z')],
      async (c) => {
        await c.negotiate();
        await c.helo('h');
      },
      /unknown reply 'Z'/,
    );
    const { server, spec } = await fakeMilter([OPTNEG_ALL]);
    const client = await MilterClient.connect(spec, { timeoutMs: 50 });
    await client.negotiate();
    await assert.rejects(client.helo('h'), /no reply from the milter within 50 ms/);
    await client.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test('skip without SKIP, interleaved body parts', async () => {
    await expectClientError(
      [OPTNEG_ALL, pkt('s')],
      async (c) => {
        await c.negotiate({ protocol: 0 });
        await c.body('x');
      },
      /SMFIR_SKIP without the SKIP protocol flag/,
    );
    await expectClientError(
      [
        OPTNEG_ALL,
        Buffer.concat([pkt('b', 'a'), pkt('h', cs('X'), cs('y')), pkt('b', 'b'), pkt('c')]),
      ],
      async (c) => {
        await c.negotiate();
        await c.eom();
      },
      /SMFIR_REPLBODY parts interleaved/,
    );
  });

  test('a milter that asked not to get a step is not sent it', async () => {
    // NOHELO (0x2) and NR_MAIL (0x4000): HELO not sent, MAIL sent without waiting.
    const { server, spec } = await fakeMilter([pkt('O', be32(6), be32(0), be32(0x4002)), pkt('c')]);
    const client = await MilterClient.connect(spec);
    await client.negotiate();
    assert.equal(await client.helo('h'), undefined);
    assert.equal(await client.mail('<a@b>'), undefined);
    assert.deepEqual(await client.rcpt('<c@d>'), { verdict: 'continue' });
    assert.deepEqual(
      client.log
        .filter((e) => e.direction === 'sent')
        .map((e) => (e.direction === 'sent' ? e.command.type : '')),
      ['optneg', 'mail', 'rcpt'],
    );
    await client.close();
    await new Promise((resolve) => server.close(resolve));
  });
});

describe('applyModifications', () => {
  const message = {
    headers: [
      ['Received', 'one'],
      ['Subject', 'first'],
      ['X-Tag', 'a'],
      ['subject', 'second'],
    ] as Array<[string, string]>,
    body: Buffer.from('body'),
    sender: '<a@example.com>',
    recipients: ['<B@Example.org>', '<c@example.org>'],
  };

  test('headers by index and name, recipients by address, the body, the sender', () => {
    const modifications: Modification[] = [
      { action: 'changeHeader', index: 2, name: 'SUBJECT', value: 'changed second' },
      { action: 'changeHeader', index: 1, name: 'X-Tag', value: '' },
      { action: 'changeHeader', index: 1, name: 'X-Missing', value: 'appended' },
      { action: 'changeHeader', index: 3, name: 'X-Missing', value: '' },
      { action: 'insertHeader', index: 0, name: 'X-Top', value: 'top' },
      { action: 'insertHeader', index: 99, name: 'X-Bottom', value: 'bottom' },
      { action: 'addHeader', name: 'X-Added', value: 'added' },
      { action: 'deleteRecipient', recipient: 'b@example.org' },
      { action: 'addRecipientWithArgs', recipient: '<d@example.org>', args: 'NOTIFY=NEVER' },
      { action: 'changeFrom', sender: '<>' },
      { action: 'replaceBody', body: Buffer.from('new') },
      { action: 'quarantine', reason: 'odd' },
      { action: 'progress' },
    ];
    assert.deepEqual(applyModifications(message, modifications), {
      headers: [
        ['X-Top', 'top'],
        ['Received', 'one'],
        ['Subject', 'first'],
        ['subject', 'changed second'],
        ['X-Missing', 'appended'],
        ['X-Bottom', 'bottom'],
        ['X-Added', 'added'],
      ],
      body: Buffer.from('new'),
      sender: '<>',
      recipients: ['<c@example.org>', '<d@example.org>'],
      quarantine: 'odd',
    });
    assert.equal(message.headers.length, 4, 'the input is not changed');
  });
});
